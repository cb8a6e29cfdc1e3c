// Autograd in Python: NDArray.attach_grad/grad/backward/detach, the
// differentiable view and conversion methods, and the per-thread recording
// switches that loom/autograd.py wraps in context managers.
#include "runtime/python/bind_autograd.h"
#include "runtime/python/bind_support.h"

#include <nanobind/stl/optional.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include <string>
#include <vector>

#include "microkernel/base/error.h"
#include "runtime/autograd/backward.h"
#include "runtime/autograd/assign.h"
#include "runtime/autograd/functions.h"
#include "runtime/autograd/grad_mode.h"
#include "runtime/autograd/record.h"

namespace nb = nanobind;
using namespace nb::literals;
using loom::NDArray;
namespace ag = loom::autograd;

namespace loom::python {
namespace {

ag::GradReq parse_grad_req(const std::string& req) {
  if (req == "write") return ag::GradReq::kWrite;
  if (req == "add") return ag::GradReq::kAdd;
  if (req == "null") return ag::GradReq::kNull;
  LOOM_THROW(ErrorKind::kValue, "attach_grad: grad_req must be 'write', 'add' or 'null', got '", req, "'");
}

const char* grad_req_name(ag::GradReq req) {
  switch (req) {
    case ag::GradReq::kWrite: return "write";
    case ag::GradReq::kAdd: return "add";
    case ag::GradReq::kNull: break;
  }
  return "null";
}

nb::object optional_array(const NDArray& a) { return a.defined() ? nb::cast(a) : nb::none(); }

// The node of a custom lm.autograd.Function: its backward is the Python
// method. The backward pass runs without the GIL; this node takes it for the
// call (and to drop its reference to the Python object).
class PyFunctionNode final : public ag::Node {
 public:
  PyFunctionNode(nb::object fn, std::string name) : fn_(std::move(fn)), name_(std::move(name)) {}
  ~PyFunctionNode() override {
    if (Py_IsInitialized()) {
      nb::gil_scoped_acquire gil;
      fn_.reset();
    } else {
      fn_.release();  // the interpreter is gone: nothing to decrement
    }
  }
  std::string name() const override { return name_; }

  std::vector<NDArray> apply(std::vector<NDArray>& grads) override {
    nb::gil_scoped_acquire gil;
    nb::list args;
    for (const NDArray& g : grads) args.append(nb::cast(g));
    nb::object result = fn_.attr("backward")(*args);
    std::vector<NDArray> out;
    if (nb::isinstance<NDArray>(result)) {
      out.push_back(nb::cast<NDArray>(result));
    } else if (nb::isinstance<nb::tuple>(result) || nb::isinstance<nb::list>(result)) {
      for (nb::handle item : result) {
        LOOM_CHECK_KIND(item.is_none() || nb::isinstance<NDArray>(item), ErrorKind::kType, name_,
                        ": backward must return NDArrays (or None), got ",
                        nb::cast<std::string>(nb::str(item.type())));
        out.push_back(item.is_none() ? NDArray() : nb::cast<NDArray>(item));
      }
    } else {
      LOOM_THROW(ErrorKind::kType, name_, ": backward must return an NDArray or a tuple of them, got ",
                 nb::cast<std::string>(nb::str(result.type())));
    }
    LOOM_CHECK(out.size() == next_edges().size(), name_, ": backward returned ", out.size(),
               " gradient(s) for ", next_edges().size(), " NDArray input(s) of forward");
    for (std::size_t i = 0; i < out.size(); ++i) {
      LOOM_CHECK(!out[i].defined() || out[i].shape() == input_meta()[i].shape ||
                     broadcast_shapes(name_, out[i].shape(), input_meta()[i].shape) == out[i].shape(),
                 name_, ": backward's gradient ", i, " has shape ", shape_str(out[i].shape()),
                 " but input ", i, " has ", input_meta()[i].describe());
    }
    return out;
  }

 private:
  nb::object fn_;
  std::string name_;
};

// Python lists may hold None for "ones like the head".
std::vector<NDArray> arrays_or_undefined(const std::optional<std::vector<std::optional<NDArray>>>& list) {
  std::vector<NDArray> out;
  if (!list) return out;
  for (const auto& a : *list) out.push_back(a ? *a : NDArray());
  return out;
}

}  // namespace

void bind_autograd(nb::module_& m, nb::class_<NDArray>& cls) {
  // Bindings that may run a kernel release the GIL around it: a kernel with
  // nothing pending runs on the calling thread (runtime/dispatch/launch.h),
  // and other Python threads should not wait for it.
  cls.def("attach_grad", [](NDArray& a, const std::string& grad_req) {
        const ag::GradReq req = parse_grad_req(grad_req);
        nb::gil_scoped_release release;
        ag::attach_grad(a, req);
      }, "grad_req"_a = "write",
      "Makes this array a leaf that receives gradients in `.grad` (zeros until a backward\n"
      "pass): grad_req 'write' overwrites them on each backward, 'add' accumulates, 'null'\n"
      "takes none. Any recorded history of the array is dropped.")
      .def_prop_ro("grad", [](const NDArray& a) {
        return a.autograd_meta() ? optional_array(a.autograd_meta()->grad) : nb::none();
      }, "The gradient buffer of a leaf (None until attach_grad()).")
      .def_prop_ro("grad_req", [](const NDArray& a) {
        return std::string(a.autograd_meta() ? grad_req_name(a.autograd_meta()->grad_req) : "null");
      })
      .def_prop_ro("requires_grad", [](const NDArray& a) { return ag::requires_grad(a); },
                   "True for leaves with attach_grad() and results of recorded operations on them.")
      .def_prop_ro("_grad_fn", [](const NDArray& a) -> nb::object {
        if (!a.autograd_meta() || !a.autograd_meta()->grad_fn) return nb::none();
        return nb::str(a.autograd_meta()->grad_fn->name().c_str());
      }, "Name of the recorded operation that produced this array (None for leaves).")
      .def_prop_ro("_version", [](const NDArray& a) { return a.storage()->version(); },
                   "How often the array's storage was written in place (out=).")
      .def("detach", &NDArray::without_autograd,
           "The same data without autograd history: gradients do not flow through it.")
      .def("backward", [](const NDArray& head, std::optional<NDArray> out_grad, bool retain_graph,
                          bool train_mode, bool create_graph) {
        ag::ModeScope training(ag::is_recording(), train_mode);
        ag::BackwardOptions options{retain_graph, create_graph, {}};
        ag::backward({head}, {out_grad ? *out_grad : NDArray()}, options);
      }, "out_grad"_a = nb::none(), "retain_graph"_a = false, "train_mode"_a = true,
      "create_graph"_a = false, nb::call_guard<nb::gil_scoped_release>(),
      "Runs the recorded graph backward from this array; gradients land in the leaves'\n"
      "`.grad`. out_grad defaults to ones. Without retain_graph the graph's saved arrays\n"
      "are freed, so a second backward through it raises.")
      // Differentiable versions of the view/conversion methods module.cc binds raw.
      .def_prop_ro("T", &ag::transpose, "The axes reversed, as a view (no copy).")
      .def("astype", [](const NDArray& a, const loom::python::DTypeArg& dtype) {
        const DType to = loom::python::to_dtype("astype", dtype);
        nb::gil_scoped_release release;
        return ag::astype(a, to);
      }, "dtype"_a, "The values converted to `dtype`, a name or a NumPy dtype (the cast op; itself when\n"
      "the dtype is already a's; differentiable for floating dtypes).")
      .def("to", &ag::to_device, "device"_a, nb::call_guard<nb::gil_scoped_release>(),
           "A copy on `device`.")
      .def("reshape", [](const NDArray& a, nb::args shape) {
        std::vector<std::int64_t> dims;
        if (shape.size() == 1 && !nb::isinstance<nb::int_>(shape[0])) {
          dims = nb::cast<std::vector<std::int64_t>>(shape[0]);
        } else {
          dims = nb::cast<std::vector<std::int64_t>>(shape);
        }
        nb::gil_scoped_release release;
        return ag::reshape(a, dims);
      }, "The same elements in a new shape (one dim may be -1); a view whenever the strides allow.")
      .def("broadcast_to", [](const NDArray& a, std::vector<std::int64_t> shape) {
        return ag::broadcast_to(a, shape);
      }, "shape"_a, "The array repeated along broadcast dims (a view with stride 0).");

  m.def("_index_view", [](const NDArray& a, const std::vector<std::int64_t>& starts,
                          const std::vector<std::int64_t>& steps, const std::vector<std::int64_t>& sizes,
                          const std::vector<bool>& keeps, const std::vector<int>& new_axes) {
    ag::BasicIndex index;
    for (std::size_t d = 0; d < starts.size(); ++d) {
      index.dims.push_back({starts.at(d), steps.at(d), sizes.at(d), static_cast<bool>(keeps.at(d))});
    }
    index.new_axes = new_axes;
    return ag::index_view(a, index);
  }, "array"_a, "starts"_a, "steps"_a, "sizes"_a, "keeps"_a, "new_axes"_a,
  "A basic-indexing view (loom/indexing.py builds the arguments); differentiable.");
  m.def("_assign", [](NDArray& a, const std::vector<std::int64_t>& starts, const std::vector<std::int64_t>& steps,
                      const std::vector<std::int64_t>& sizes, const std::vector<bool>& keeps,
                      const std::vector<int>& new_axes, const NDArray& value) {
    ag::BasicIndex index;
    for (std::size_t d = 0; d < starts.size(); ++d) {
      index.dims.push_back({starts.at(d), steps.at(d), sizes.at(d), static_cast<bool>(keeps.at(d))});
    }
    index.new_axes = new_axes;
    ag::assign(a, index, value);
  }, "array"_a, "starts"_a, "steps"_a, "sizes"_a, "keeps"_a, "new_axes"_a, "value"_a,
  nb::call_guard<nb::gil_scoped_release>(),
  "array[index] = value for a basic index (loom/indexing.py); recorded by autograd.");
  m.def("_record_function", [](nb::object fn, const std::vector<NDArray>& inputs, std::vector<NDArray> outputs) {
    std::string name = nb::cast<std::string>(fn.type().attr("__name__")) + "Backward";
    auto node = std::make_shared<PyFunctionNode>(std::move(fn), std::move(name));
    for (const NDArray& in : inputs) node->add_input(in, ag::gradient_edge(in));
    ag::set_outputs(node, outputs);
    return outputs;
  }, "function"_a, "inputs"_a, "outputs"_a,
  "Records a custom Function's outputs (loom/autograd.py: Function.__call__).");
  m.def("_set_recording", &ag::set_recording, "on"_a);
  m.def("_set_training", &ag::set_training, "on"_a);
  m.def("_is_recording", &ag::is_recording);
  m.def("_is_training", &ag::is_training);
  m.def("_backward", [](const std::vector<NDArray>& heads,
                        const std::optional<std::vector<std::optional<NDArray>>>& head_grads,
                        bool retain_graph, bool create_graph, bool train_mode) {
    ag::ModeScope training(ag::is_recording(), train_mode);
    ag::BackwardOptions options{retain_graph, create_graph, {}};
    ag::backward(heads, arrays_or_undefined(head_grads), options);
  }, "heads"_a, "head_grads"_a.none(), "retain_graph"_a, "create_graph"_a, "train_mode"_a,
  nb::call_guard<nb::gil_scoped_release>());
  m.def("_grad", [](const std::vector<NDArray>& heads, const std::vector<NDArray>& variables,
                    const std::optional<std::vector<std::optional<NDArray>>>& head_grads,
                    bool retain_graph, bool create_graph, bool train_mode) {
    ag::ModeScope training(ag::is_recording(), train_mode);
    ag::BackwardOptions options{retain_graph, create_graph, variables};
    std::vector<std::optional<NDArray>> grads;
    for (NDArray& g : ag::backward(heads, arrays_or_undefined(head_grads), options)) {
      grads.push_back(g.defined() ? std::optional<NDArray>(std::move(g)) : std::nullopt);
    }
    return grads;
  }, "heads"_a, "variables"_a, "head_grads"_a.none(), "retain_graph"_a, "create_graph"_a,
  "train_mode"_a, nb::call_guard<nb::gil_scoped_release>());
}

}  // namespace loom::python
