// Tracing: turning imperative op calls into a symbol (what hybridize does).
//
// While a Tracer is active on a thread, every public op call on that
// thread (loom::op::<name>, and the runtime functions that have graph
// schemas: astype) records a node: the op, its attributes,
// and the nodes its input arrays came from. Only the outermost call is
// recorded; the ops a composite op or a kernel makes inside it are its own
// business. An input array the trace has not seen is
//   - a declared input or parameter (add_variable), found by identity;
//   - an array made before tracing began (a Python number turned into an
//     array, an array the function closes over): captured as a constant,
//     which the caller binds like a parameter (constants());
//   - an array made during tracing by something that cannot be traced (an
//     untraced view or function): an error, never a silently frozen value.
// out= and in-place calls are refused while tracing: a graph has no
// mutation (write `y = x + 1`, not `x += 1`).
#pragma once

#include <cstdint>
#include <initializer_list>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <tuple>
#include <vector>

#include "runtime/graph/graph.h"

namespace loom::graph {

// True when a Tracer is active on this thread and no traced op is running.
bool tracing();

class Tracer {
 public:
  explicit Tracer(std::string what);  // `what` names the traced function in messages
  ~Tracer();
  Tracer(const Tracer&) = delete;
  Tracer& operator=(const Tracer&) = delete;

  // Declares an array the trace reads as the variable `name`.
  void add_variable(const std::string& name, const NDArray& array);
  // The symbol whose outputs are `outputs` (arrays the traced calls made, or
  // variables). Ends the trace.
  Symbol finish(const std::vector<NDArray>& outputs);
  // Stops recording and leaves abstract evaluation on this thread, without a
  // symbol (an exception ended the traced function). Idempotent; the
  // destructor does it too, but a binding's object can outlive its use.
  void end();
  // Arrays captured as constants, by their variable names (_const0, ...).
  const std::vector<std::pair<std::string, NDArray>>& constants() const { return constants_; }

  // Called by TraceCall.
  NodeEntry entry_for(const NDArray& array, const char* op);
  void bind_outputs(const Symbol& node, std::span<const NDArray> outputs);

 private:
  using Key = std::tuple<const void*, std::int64_t, Shape, Strides, int>;
  static Key key_of(const NDArray& a);

  std::string what_;
  Tracer* previous_;
  std::map<Key, NodeEntry> entries_;
  // Every array entries_ has a key for, held for the trace's length: a key
  // holds a storage's address, and a freed temporary's address can come
  // back for the next array (a Python number's), which would then read as
  // the freed one's node.
  std::vector<NDArray> alive_;
  std::vector<std::pair<std::string, NDArray>> constants_;
  bool finished_ = false;
};

// Put in every public op function: while tracing, the outermost call
// records itself, and the calls inside it do not.
class TraceCall {
 public:
  TraceCall();
  // transparent: this call is not a node; the ops it makes are (each the
  // outermost at its depth). A composite op is transparent while autograd
  // records: its backward reads the inner ops' arrays, which a trace can
  // only find as nodes (trace_gradient of group_norm with a weight failed).
  explicit TraceCall(bool transparent);
  ~TraceCall();
  TraceCall(const TraceCall&) = delete;
  TraceCall& operator=(const TraceCall&) = delete;

  bool outermost() const { return tracer_ != nullptr; }
  // `inputs`: one per array slot (nullptr or an undefined array: absent).
  void record(const char* op, std::initializer_list<const NDArray*> inputs, AttrMap attrs,
              std::span<const NDArray> outputs);
  void record_list(const char* op, const std::vector<NDArray>& inputs, AttrMap attrs,
                   std::span<const NDArray> outputs);

 private:
  Tracer* tracer_ = nullptr;
  bool entered_ = false;
};

// Throws when tracing: out= and in-place variants ("relu_out", "relu_") have no graph form.
void refuse_in_trace(const char* call);

// Attribute values from the C++ argument types of the generated functions.
inline AttrValue attr(std::int64_t v) { return v; }
inline AttrValue attr(double v) { return v; }
inline AttrValue attr(bool v) { return v; }
inline AttrValue attr(const std::optional<std::vector<std::int64_t>>& v) {
  return v ? AttrValue(*v) : AttrValue();
}
// A generate op's dtype (its enum value) and device ([type, id]); OpCall's
// dtype_attr and device_attr read them back.
inline AttrValue attr(DType v) { return static_cast<std::int64_t>(v); }
inline AttrValue attr(Device v) {
  return std::vector<std::int64_t>{static_cast<std::int64_t>(v.type), static_cast<std::int64_t>(v.id)};
}

}  // namespace loom::graph
