// The graph layer for loom/symbol.py: the Python Symbol class wraps
// graph::Symbol and builds its operator functions from schemas().
#include "runtime/python/bind_graph.h"
#include "runtime/python/bind_fusion.h"

#include <nanobind/stl/map.h>
#include <nanobind/stl/optional.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include "microkernel/base/error.h"
#include "runtime/graph/executor.h"
#include "runtime/graph/graph.h"
#include "runtime/graph/graph_json.h"
#include "runtime/graph/infer.h"
#include "runtime/graph/plan_memory.h"
#include "runtime/graph/simplify.h"
#include "runtime/graph/graph_program.h"
#include "runtime/graph/trace.h"

namespace nb = nanobind;
using namespace nb::literals;

namespace loom::python {
namespace {

using graph::AttrValue;

AttrValue to_attr(const nb::handle& v, const std::string& name) {
  if (v.is_none()) return AttrValue();
  if (nb::isinstance<nb::bool_>(v)) return nb::cast<bool>(v);
  if (nb::isinstance<nb::int_>(v)) return nb::cast<std::int64_t>(v);
  if (nb::isinstance<nb::float_>(v)) return nb::cast<double>(v);
  if (nb::isinstance<nb::list>(v) || nb::isinstance<nb::tuple>(v)) {
    std::vector<std::int64_t> list;
    for (nb::handle e : v) {
      if (!nb::isinstance<nb::int_>(e) || nb::isinstance<nb::bool_>(e)) {
        LOOM_THROW(ErrorKind::kType, "attribute '", name, "': a list attribute holds ints, got ",
                   nb::cast<std::string>(nb::repr(v)));
      }
      list.push_back(nb::cast<std::int64_t>(e));
    }
    return list;
  }
  // NumPy scalars and other numbers: by their Python value.
  if (nb::hasattr(v, "__index__")) return nb::cast<std::int64_t>(v.attr("__index__")());
  if (nb::hasattr(v, "__float__")) return nb::cast<double>(v.attr("__float__")());
  LOOM_THROW(ErrorKind::kType, "attribute '", name, "': unsupported value ", nb::cast<std::string>(nb::repr(v)));
}

nb::object from_attr(const AttrValue& v) {
  if (std::holds_alternative<std::monostate>(v)) return nb::none();
  if (const auto* i = std::get_if<std::int64_t>(&v)) return nb::int_(*i);
  if (const auto* d = std::get_if<double>(&v)) return nb::float_(*d);
  if (const auto* b = std::get_if<bool>(&v)) return nb::bool_(*b);
  nb::list list;
  for (std::int64_t e : std::get<std::vector<std::int64_t>>(v)) list.append(e);
  return list;
}

const char* kind_name(graph::ArgKind kind) {
  switch (kind) {
    case graph::ArgKind::kTensor: return "Tensor";
    case graph::ArgKind::kOptionalTensor: return "Tensor?";
    case graph::ArgKind::kTensorList: return "Tensor[]";
    case graph::ArgKind::kAttr: return "attr";
  }
  return "?";
}

nb::dict schema_dict(const graph::OpSchema& s) {
  nb::dict d;
  d["name"] = s.name;
  d["source"] = s.source;
  d["doc"] = s.doc;
  nb::list args;
  for (const graph::ArgSchema& a : s.args) {
    nb::dict arg;
    arg["name"] = a.name;
    arg["kind"] = kind_name(a.kind);
    arg["type"] = a.kind == graph::ArgKind::kAttr ? graph::attr_type_name(a.attr_type) : kind_name(a.kind);
    arg["has_default"] = a.has_default;
    arg["default"] = from_attr(a.default_value);
    arg["mutated"] = a.mutated;
    arg["doc"] = a.doc;
    arg["kwarg_only"] = a.kwarg_only;
    args.append(arg);
  }
  d["args"] = args;
  d["outputs"] = s.outputs;
  d["visible"] = s.visible;  // empty: every output
  d["output_count_attr"] = s.output_count_attr;
  d["inplace_slot"] = s.inplace_slot;
  return d;
}

nb::object value_type(const graph::ValueType& t) {
  nb::object shape = t.shape ? nb::object(nb::tuple(nb::cast(*t.shape))) : nb::none();
  nb::object dtype = t.dtype ? nb::object(nb::str(std::string(dtype_name(*t.dtype)).c_str())) : nb::none();
  return nb::make_tuple(shape, dtype);
}

nb::list value_types(const std::vector<graph::ValueType>& types) {
  nb::list out;
  for (const auto& t : types) out.append(value_type(t));
  return out;
}

std::map<std::string, DType> to_dtypes(const std::map<std::string, std::string>& names) {
  std::map<std::string, DType> out;
  for (const auto& [k, v] : names) out[k] = dtype_from_name(v);
  return out;
}

// A memory plan's figures (plan_memory.h), by field name.
nb::dict plan_dict(const graph::MemoryPlan& p) {
  nb::dict d;
  d["unplanned_bytes"] = p.unplanned_bytes;
  d["planned_bytes"] = p.planned_bytes;
  d["peak_live_bytes"] = p.peak_live_bytes;
  d["external_bytes"] = p.external_bytes;
  d["output_bytes"] = p.output_bytes;
  d["self_allocated_bytes"] = p.self_allocated_bytes;
  d["values"] = p.values;
  d["inplace"] = p.inplace;
  d["shared"] = p.shared;
  d["buffers"] = p.buffers;
  return d;
}

autograd::GradReq grad_req(const std::string& name) {
  if (name == "write") return autograd::GradReq::kWrite;
  if (name == "add") return autograd::GradReq::kAdd;
  if (name == "null") return autograd::GradReq::kNull;
  LOOM_THROW(ErrorKind::kValue, "bind: grad_req must be 'write', 'add' or 'null', got '", name, "'");
}

}  // namespace

void bind_graph(nb::module_& parent) {
  nb::module_ m = parent.def_submodule("graph", "Symbolic graphs (runtime/graph/).");

  bind_fusion(m);

  m.def("schemas", [] {
    nb::list out;
    for (const graph::OpSchema* s : graph::all_schemas()) out.append(schema_dict(*s));
    return out;
  });

  m.def("auto_name", &graph::auto_name, "op"_a);
  m.def("eliminate_common_subexpressions", &graph::eliminate_common_subexpressions, "symbol"_a);
  m.def("fold_epilogues", &graph::fold_epilogues, "symbol"_a,
        "Lone consumers folded into the ops that absorb them (batch_norm takes in relu).");
  m.def("fold_constants",
        [](const graph::Symbol& s, std::map<std::string, NDArray> constants) {
          graph::Symbol folded;
          {
            nb::gil_scoped_release release;  // folding runs the constant nodes' kernels
            folded = graph::fold_constants(s, constants);
          }
          return nb::make_tuple(folded, constants);
        },
        "symbol"_a, "constants"_a);

  nb::class_<graph::Symbol>(m, "Symbol")
      .def_static("variable",
                  [](const std::string& name, std::optional<std::vector<std::int64_t>> shape,
                     std::optional<std::string> dtype) {
                    std::optional<DType> dt;
                    if (dtype) dt = dtype_from_name(*dtype);
                    return graph::Symbol::variable(name, std::move(shape), dt);
                  },
                  "name"_a, "shape"_a.none(), "dtype"_a.none())
      .def_static("apply",
                  [](const std::string& op, const std::vector<std::optional<graph::Symbol>>& inputs,
                     const nb::dict& attrs, const std::string& name) {
                    graph::AttrMap map;
                    for (auto [k, v] : attrs) {
                      const std::string key = nb::cast<std::string>(k);
                      map[key] = to_attr(v, key);
                    }
                    return graph::Symbol::apply(op, inputs, map, name);
                  },
                  "op"_a, "inputs"_a, "attrs"_a, "name"_a)
      .def_static("group", &graph::Symbol::group)
      .def_static("from_json", &graph::from_json)
      .def("to_json", &graph::to_json)
      .def("with_traced_modes", &graph::Symbol::with_traced_modes)
      .def_prop_ro("keeps_traced_modes", &graph::Symbol::keeps_traced_modes)
      .def("num_outputs", &graph::Symbol::num_outputs)
      .def("output", [](const graph::Symbol& s, std::size_t k) { return s[k]; })
      .def("list_arguments", &graph::Symbol::list_arguments)
      .def("list_outputs", &graph::Symbol::list_outputs)
      .def("list_auxiliary_states", &graph::Symbol::list_auxiliary_states)
      .def("internals", &graph::Symbol::internals)
      .def("compose", &graph::Symbol::compose)
      // (name, op or None, attrs) of each output's node.
      .def("output_nodes",
           [](const graph::Symbol& s) {
             nb::list out;
             for (const graph::NodeEntry& e : s.outputs()) {
               nb::dict attrs;
               for (const auto& [k, v] : e.node->attrs) attrs[k.c_str()] = from_attr(v);
               out.append(nb::make_tuple(e.node->name,
                                         e.node->op ? nb::object(nb::str(e.node->op->name.c_str())) : nb::none(),
                                         attrs, e.index));
             }
             return out;
           })
      .def("memory_plan",
           [](const graph::Symbol& s, const std::map<std::string, std::vector<std::int64_t>>& shapes,
              const std::map<std::string, std::string>& dtypes) {
             const std::map<std::string, DType> dts = to_dtypes(dtypes);
             graph::MemoryPlan p;
             {
               nb::gil_scoped_release release;
               p = graph::plan_memory(s, shapes, dts);
             }
             return plan_dict(p);
           },
           "shapes"_a, "dtypes"_a)
      .def("infer",
           [](const graph::Symbol& s, const std::map<std::string, std::vector<std::int64_t>>& shapes,
              const std::map<std::string, std::string>& dtypes) {
             const std::map<std::string, DType> dts = to_dtypes(dtypes);
             graph::InferResult r;
             {
               nb::gil_scoped_release release;
               r = graph::infer(s, shapes, dts);
             }
             return nb::make_tuple(value_types(r.arguments), value_types(r.outputs),
                                   value_types(r.auxiliary_states), r.complete);
           },
           "shapes"_a, "dtypes"_a);

  // Tracing (hybridize): used as `with Tracer(what) as t:` on one thread.
  m.def("tracing", &graph::tracing, "True while a trace records on this thread.");
  nb::class_<graph::Tracer>(m, "Tracer")
      .def(nb::init<std::string>(), "what"_a)
      .def("add_variable", &graph::Tracer::add_variable, "name"_a, "array"_a)
      .def("end", &graph::Tracer::end, "Stops the trace (idempotent); for a `finally`.")
      .def("finish",
           [](graph::Tracer& t, const std::vector<NDArray>& outputs) {
             graph::Symbol s = t.finish(outputs);
             nb::list constants;
             for (const auto& [name, array] : t.constants()) constants.append(nb::make_tuple(name, array));
             return nb::make_tuple(s, constants);
           },
           "outputs"_a);

  // A symbol as a flat program over named variables (a cached op's body).
  nb::class_<graph::GraphProgram>(m, "Program")
      .def("__init__",
           [](graph::GraphProgram* self, const graph::Symbol& symbol, const std::vector<std::string>& names) {
             std::map<std::string, const graph::Node*> by_name;
             for (const graph::Node* n : symbol.topo_order()) {
               if (n->is_variable()) by_name[n->name] = n;
             }
             // A name the graph does not read (a parameter the function
             // ignored, an input folded away) still takes its input slot.
             std::vector<graph::Symbol> unread;
             std::vector<const graph::Node*> vars;
             for (const std::string& name : names) {
               auto it = by_name.find(name);
               if (it == by_name.end()) {
                 unread.push_back(graph::Symbol::variable(name));
                 vars.push_back(unread.back().outputs()[0].node.get());
               } else {
                 vars.push_back(it->second);
               }
             }
             new (self) graph::GraphProgram(symbol, vars);
           },
           "symbol"_a, "variables"_a)
      .def("run",
           [](const graph::GraphProgram& p, const std::vector<NDArray>& inputs, std::optional<bool> training) {
             return p.run(inputs, training);
           },
           "inputs"_a, "training"_a.none() = nb::none(), nb::call_guard<nb::gil_scoped_release>())
      .def_prop_ro("num_fused_groups", &graph::GraphProgram::num_fused_groups)
      .def_prop_ro("fused_groups",
                   [](const graph::GraphProgram& p) {
                     nb::list out;
                     for (const graph::PointwiseGroup& g : p.fused_groups()) {
                       nb::dict d;
                       d["ops"] = g.ops;
                       d["refs"] = g.refs;
                       d["attrs"] = g.attrs;
                       d["external"] = g.external;
                       d["inputs"] = g.external.size();
                       out.append(d);
                     }
                     return out;
                   },
                   "Each fused group's member ops (topological; the last is the root), their arguments "
                   "(input k >= 0, or -(j + 1) for member j), their attributes, how many inputs it reads and which values those are "
                   "(external: value indices; the program's variables come first, in order).")
      .def("set_static_alloc", &graph::GraphProgram::set_static_alloc, "keep"_a,
           "Keeps the memory plan's buffers between runs (MXNet's static_alloc).")
      .def("run_plan", [](const graph::GraphProgram& p) {
             graph::MemoryPlan stats;
             {
               nb::gil_scoped_release release;  // waits for a static_alloc run on another thread
               stats = p.run_plan_stats();
             }
             return plan_dict(stats);
           },
           "The memory plan of the last run autograd did not record (zeros before one).");

  nb::class_<graph::Executor>(m, "Executor")
      .def("__init__",
           [](graph::Executor* self, const graph::Symbol& symbol, const std::vector<NDArray>& args,
              const std::vector<std::optional<NDArray>>& arg_grads, const std::vector<std::string>& reqs,
              const std::vector<NDArray>& aux) {
             graph::Binding b;
             b.args = args;
             for (const auto& g : arg_grads) b.arg_grads.push_back(g.value_or(NDArray()));
             for (const auto& r : reqs) b.grad_reqs.push_back(grad_req(r));
             b.aux = aux;
             new (self) graph::Executor(symbol, std::move(b));
           },
           "symbol"_a, "args"_a, "arg_grads"_a, "grad_reqs"_a, "aux"_a)
      .def("forward", &graph::Executor::forward, "is_train"_a, nb::call_guard<nb::gil_scoped_release>())
      .def("backward", &graph::Executor::backward, "out_grads"_a, nb::call_guard<nb::gil_scoped_release>())
      .def_prop_ro("outputs", &graph::Executor::outputs)
      .def("run_plan", [](const graph::Executor& e) { return plan_dict(e.program().run_plan_stats()); });
}

}  // namespace loom::python
