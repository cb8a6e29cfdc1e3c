#include "runtime/graph/trace.h"

#include "microkernel/base/error.h"
#include "runtime/ndarray/abstract_eval.h"

namespace loom::graph {
namespace {

thread_local Tracer* tl_tracer = nullptr;
// Depth of traced op calls in progress on this thread: only depth 0 records.
thread_local int tl_depth = 0;
// Each tracer runs the traced function in abstract evaluation.
thread_local std::unique_ptr<AbstractEvalScope> tl_abstract;

}  // namespace

bool tracing() { return tl_tracer != nullptr && tl_depth == 0; }

Tracer::Tracer(std::string what) : what_(std::move(what)), previous_(tl_tracer) {
  LOOM_CHECK(previous_ == nullptr, "trace: ", what_, " is traced while ", previous_->what_,
             " is being traced on the same thread (nested traces are not supported)");
  tl_tracer = this;
  tl_abstract = std::make_unique<AbstractEvalScope>();
}

Tracer::~Tracer() { end(); }

void Tracer::end() {
  if (tl_tracer == this) {
    tl_tracer = previous_;
    tl_abstract.reset();
  }
}

Tracer::Key Tracer::key_of(const NDArray& a) {
  return Key{a.storage().get(), a.offset(), a.shape(), a.strides(), static_cast<int>(a.dtype())};
}

void Tracer::add_variable(const std::string& name, const NDArray& array) {
  LOOM_CHECK(array.defined(), "trace: variable '", name, "' is an undefined array");
  entries_[key_of(array)] = Symbol::variable(name, array.shape(), array.dtype()).outputs()[0];
  alive_.push_back(array);
}

NodeEntry Tracer::entry_for(const NDArray& array, const char* op) {
  const Key key = key_of(array);
  if (auto it = entries_.find(key); it != entries_.end()) return it->second;
  // Arrays computed while tracing are abstract (no memory): one the trace
  // has not seen came from something it cannot follow.
  LOOM_CHECK(!array.storage()->is_abstract(), what_, ": ", op, " reads ", array.describe(),
             ", which was computed during tracing by an operation that cannot be traced (an array function "
             "without a graph form, such as indexing or a view); use operators, or keep this block imperative");
  // A real array: made before tracing (captured from outside the function)
  // or from host data during it (a Python number). Its value is fixed now.
  const std::string name = "_const" + std::to_string(constants_.size());
  constants_.emplace_back(name, array);
  NodeEntry e = Symbol::variable(name, array.shape(), array.dtype()).outputs()[0];
  entries_[key] = e;
  alive_.push_back(array);
  return e;
}

void Tracer::bind_outputs(const Symbol& node, std::span<const NDArray> outputs) {
  for (std::size_t k = 0; k < outputs.size(); ++k) {
    if (!outputs[k].defined()) continue;
    entries_[key_of(outputs[k])] = node.outputs().at(k);
    alive_.push_back(outputs[k]);
  }
}

Symbol Tracer::finish(const std::vector<NDArray>& outputs) {
  LOOM_CHECK(!finished_, "trace: ", what_, " finished twice");
  std::vector<NodeEntry> heads;
  for (std::size_t k = 0; k < outputs.size(); ++k) {
    LOOM_CHECK(outputs[k].defined(), what_, ": output ", k, " is not an array");
    auto it = entries_.find(key_of(outputs[k]));
    LOOM_CHECK(it != entries_.end(), what_, ": output ", k, " (", outputs[k].describe(),
               ") was not computed by traced operators from the inputs");
    heads.push_back(it->second);
  }
  finished_ = true;
  end();
  return Symbol(std::move(heads));
}

TraceCall::TraceCall() : TraceCall(false) {}

TraceCall::TraceCall(bool transparent) {
  if (tl_tracer == nullptr || transparent) return;
  if (tl_depth == 0) tracer_ = tl_tracer;
  ++tl_depth;
  entered_ = true;
}

TraceCall::~TraceCall() {
  if (entered_) --tl_depth;
}

namespace {

Symbol make_node(const char* op, const std::vector<NodeEntry>& inputs, const AttrMap& attrs) {
  const OpSchema& schema = schema_or_throw(op);
  auto node = std::make_shared<Node>();
  node->op = &schema;
  node->name = auto_name(op);
  node->attrs = complete_attrs(schema, attrs);
  node->inputs = inputs;
  std::vector<NodeEntry> outs;
  for (std::uint32_t i = 0; i < node->num_outputs(); ++i) outs.push_back(NodeEntry{node, i});
  return Symbol(std::move(outs));
}

}  // namespace

void TraceCall::record(const char* op, std::initializer_list<const NDArray*> inputs, AttrMap attrs,
                       std::span<const NDArray> outputs) {
  std::vector<NodeEntry> entries;
  for (const NDArray* a : inputs) {
    entries.push_back(a != nullptr && a->defined() ? tracer_->entry_for(*a, op) : NodeEntry{});
  }
  tracer_->bind_outputs(make_node(op, entries, attrs), outputs);
}

void TraceCall::record_list(const char* op, const std::vector<NDArray>& inputs, AttrMap attrs,
                            std::span<const NDArray> outputs) {
  std::vector<NodeEntry> entries;
  for (const NDArray& a : inputs) entries.push_back(tracer_->entry_for(a, op));
  tracer_->bind_outputs(make_node(op, entries, attrs), outputs);
}

void refuse_in_trace(const char* call) {
  LOOM_CHECK(!tracing(), call, ": out= and in-place calls cannot be traced (a graph has no mutation); compute a "
             "new array instead (y = x + 1, not x += 1), or keep this block imperative");
}

}  // namespace loom::graph
