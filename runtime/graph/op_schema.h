// What a graph needs to know about an operator, and a way to call it.
//
// The generator emits one schema per op (generated/graph/<op>.cc) from the
// same YAML as the op itself: its arguments in order (arrays and attributes,
// with types and defaults), its visible outputs, the arrays it changes in
// place, and an `invoke` that calls the C++ op (loom::op::<name>) with the
// arrays and attributes of one graph node. Symbols, JSON loading, shape
// inference and executors go through this table, so they name no operator.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "runtime/graph/attr_value.h"
#include "runtime/ndarray/ndarray.h"

namespace loom::graph {

// The most outputs a node may have (a list-output op's count): far beyond
// any real split, and small enough that a mistaken count is an error, not
// an attempt to allocate billions of arrays.
inline constexpr std::int64_t kMaxOutputs = std::int64_t{1} << 24;

enum class ArgKind {
  kTensor,          // an array
  kOptionalTensor,  // an array or None (`Tensor?`)
  kTensorList,      // any number of arrays (`Tensor[]`; a list op's only array argument)
  kAttr,            // an attribute (AttrType)
};

struct ArgSchema {
  std::string name;
  ArgKind kind = ArgKind::kTensor;
  AttrType attr_type = AttrType::kInt;  // kAttr only
  bool has_default = false;
  AttrValue default_value;
  // The op writes this array in place besides its outputs (batch_norm's
  // running statistics): a graph's auxiliary state, not an argument.
  bool mutated = false;
  std::string doc;
  // Python takes it by keyword only (YAML `kwarg_only: true`): lm.nd and lm.sym alike.
  bool kwarg_only = false;
};

struct OpSchema;

// One call of an op on concrete arrays: one array per array slot, in
// argument order (undefined for an absent optional; every array for a list
// op), and the node's complete attributes (complete_attrs).
class OpCall {
 public:
  OpCall(const OpSchema& schema, std::span<const NDArray> inputs, const AttrMap& attrs)
      : schema_(schema), inputs_(inputs), attrs_(attrs) {}

  const NDArray& tensor(std::size_t slot) const;
  std::vector<NDArray> tensor_list() const { return {inputs_.begin(), inputs_.end()}; }
  std::size_t num_inputs() const { return inputs_.size(); }
  std::int64_t int_attr(const char* name) const;
  double float_attr(const char* name) const;
  bool bool_attr(const char* name) const;
  std::optional<std::vector<std::int64_t>> dims_attr(const char* name) const;
  // A dtype (its enum value) and a device ([type, id]), as graph::attr stores them.
  DType dtype_attr(const char* name) const;
  Device device_attr(const char* name) const;

 private:
  const AttrValue& attr(const char* name) const;

  const OpSchema& schema_;
  std::span<const NDArray> inputs_;
  const AttrMap& attrs_;
};

using InvokeFn = std::vector<NDArray> (*)(const OpCall& call);
// Calls the op writing its outputs into `outs` (one per output, hidden ones
// included; each defined entry of its output's shape and dtype, an
// undefined one allocated by the op) and returns every output: the out=
// variant of a single-output op (whose `outs[0]` must be defined), the
// generated `<op>_into` of one with several. Planned execution
// (graph_program.h) places outputs in the memory plan's buffers through it.
using InvokeIntoFn = std::vector<NDArray> (*)(const OpCall& call, const std::vector<NDArray>& outs);

struct OpSchema {
  std::string name;
  std::string source;  // "opdefs/nn/convolution.yaml:11"
  std::string doc;
  std::vector<ArgSchema> args;
  // Every output in order, hidden ones (saved for the backward) included:
  // a node holds them all, and invoke returns them all.
  std::vector<std::string> outputs;
  InvokeFn invoke = nullptr;
  // The outputs the op returns to its caller (its Python/C++ result); empty: all.
  std::vector<int> visible;

  // The array slot the op may overwrite with its output (YAML `inplace`), or -1.
  int inplace_slot = -1;
  // A pointwise op (YAML kernel.pointwise): output element i reads only
  // element i of each same-shaped input, so it may be written over any of them.
  bool elementwise = false;
  // Lone consumers this op takes in (YAML `absorbs`): a node of `op` whose
  // only input is this op's first output, which nothing else reads,
  // becomes this op with `attrs` set (fold_epilogues, simplify.h).
  struct Absorb {
    std::string op;
    AttrMap attrs;
  };
  std::vector<Absorb> absorbs;
  // The result dtype from the inputs' dtypes alone (YAML dtype_rule), for
  // infer_type without shapes (infer.h): the array slots whose dtypes
  // promote to it (every slot: -1; none: not known from dtypes), whether
  // integer results widen to int64 (sum), and each output's dtype: fixed
  // (bool, int64, float32) or, as nullopt, the promoted one.
  std::vector<int> dtype_slots;
  bool int_to_int64 = false;
  std::vector<std::optional<DType>> output_dtypes;
  // An int attribute naming the result's dtype by its enum value (cast,
  // full), or empty: it decides the outputs' dtypes without any input.
  std::string dtype_attr;
  // The call into given outputs, or nullptr (no out= variant: update ops,
  // the runtime's own ops).
  InvokeIntoFn invoke_into = nullptr;
  // The attribute giving the number of outputs (YAML `Tensor[]` output
  // with `count:`): an int (split's num_outputs) or an int[] by its length
  // (split_with_sizes' sizes); empty: `outputs` are all.
  // Such an op declares one output name; a node has attrs[count] outputs,
  // every one visible.
  std::string output_count_attr;

  // The outputs a node with complete `attrs` has: `outputs.size()`, or
  // what the count attribute says for an op with a list of outputs.
  std::size_t num_outputs(const AttrMap& attrs) const;
  // The outputs a call returns (hidden ones left out), for a node with `attrs`.
  std::vector<int> visible_outputs(const AttrMap& attrs) const;
  // "out" for output k of a list-output op ("out3"), else outputs[k].
  std::string output_label(std::size_t k) const;
  bool has_output_list() const { return !output_count_attr.empty(); }

  bool is_list_op() const;
  // Array slots a node has (the list op's: any number, so -1).
  int num_array_slots() const;
  const ArgSchema* find_arg(const std::string& arg) const;
  // The argument array slot `slot` belongs to (a list op's list for every slot).
  const ArgSchema& slot_arg(std::size_t slot) const;
  std::vector<std::string> attr_names() const;
};

// Called from the generated files' static initialisers only.
bool register_schema(OpSchema schema);
// nullptr when no such operator is linked in.
const OpSchema* find_schema(const std::string& name);
// Throws a kValue error naming `name` and suggesting near names when unknown.
const OpSchema& schema_or_throw(const std::string& name);
// Sorted by name.
std::vector<const OpSchema*> all_schemas();

// `given` with every attribute converted to its declared type and the
// defaults filled in. An unknown attribute, a missing required one or a
// value of the wrong type raises an error naming the op and the attribute.
AttrMap complete_attrs(const OpSchema& schema, const AttrMap& given);

// Calls the op of `schema` on `inputs` (one per array slot) with `attrs`
// (complete), checking the number of arrays first.
std::vector<NDArray> invoke(const OpSchema& schema, std::span<const NDArray> inputs, const AttrMap& attrs);

}  // namespace loom::graph
