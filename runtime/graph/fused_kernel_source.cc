#include "runtime/graph/fused_kernel_source.h"

#include <algorithm>
#include <set>
#include <sstream>

#include "microkernel/base/error.h"
#include "runtime/graph/fusion_source.h"

namespace loom::graph {
namespace {

std::string operand(int ref) { return ref >= 0 ? "x" + std::to_string(ref) : "m" + std::to_string(-ref - 1); }

const std::vector<double>& member_attrs(const FusedKernelSpec& spec, std::size_t m) {
  static const std::vector<double> none;
  return m < spec.attrs.size() ? spec.attrs[m] : none;
}

// The functor's field initialisers for member m: bools as literals (they
// pick code paths), numbers read from the kernel's attribute argument,
// `next` counting the numbers of the members before it.
std::string field_values(std::string_view types, const std::vector<double>& values, int& next) {
  std::string out;
  for (std::size_t k = 0; k < types.size(); ++k) {
    if (k) out += ", ";
    const std::string slot = "attrs.v[" + std::to_string(next) + "]";
    if (types[k] == 'b') {
      out += values[k] != 0 ? "true" : "false";
      continue;
    }
    out += types[k] == 'i' ? "static_cast<long long>(" + slot + ")" : slot;
    ++next;
  }
  return out;
}

void check_spec(const FusedKernelSpec& spec) {
  LOOM_CHECK_KIND(!spec.ops.empty() && spec.ops.size() == spec.refs.size(), ErrorKind::kValue, "fused kernel: ",
                  spec.ops.size(), " ops with ", spec.refs.size(), " argument lists (expected equal, at least one)");
  LOOM_CHECK_KIND(spec.dtype == DType::kFloat32 || spec.dtype == DType::kFloat64 || spec.dtype == DType::kFloat16 ||
                      spec.dtype == DType::kBFloat16,
                  ErrorKind::kValue, "fused kernel: dtype ", dtype_name(spec.dtype),
                  " (expected float32, float64, float16 or bfloat16)");
  const int inputs = static_cast<int>(spec.scalar.size());
  for (std::size_t m = 0; m < spec.ops.size(); ++m) {
    const FusionSource* src = find_fusion_source(spec.ops[m]);
    LOOM_CHECK_KIND(src != nullptr, ErrorKind::kValue, "fused kernel: op '", spec.ops[m],
                    "' has no fusion source (only pointwise ops with a CPU tile function fuse)");
    LOOM_CHECK_KIND(static_cast<int>(spec.refs[m].size()) == src->arity, ErrorKind::kValue, "fused kernel: ",
                    spec.ops[m], " (member ", m, ") takes ", src->arity, " arrays, given ", spec.refs[m].size());
    LOOM_CHECK_KIND(member_attrs(spec, m).size() == src->attr_types.size(), ErrorKind::kValue, "fused kernel: ",
                    spec.ops[m], " (member ", m, ") has ", src->attr_types.size(), " attributes, given ",
                    member_attrs(spec, m).size());
    for (int r : spec.refs[m]) {
      LOOM_CHECK_KIND(r >= 0 ? r < inputs : -r - 1 < static_cast<int>(m), ErrorKind::kValue, "fused kernel: ",
                      spec.ops[m], " (member ", m, ") reads ", operand(r), ", which is not ",
                      r >= 0 ? "an input" : "an earlier member");
    }
    LOOM_CHECK_KIND(spec.wants_grad.empty() || src->backward, ErrorKind::kValue, "fused backward kernel: ",
                    spec.ops[m], " (member ", m, ") has a gradient formula that is not one scalar body");
  }
  LOOM_CHECK_KIND(spec.wants_grad.empty() || spec.wants_grad.size() == spec.scalar.size(), ErrorKind::kValue,
                  "fused backward kernel: ", spec.wants_grad.size(), " wanted-gradient flags for ", inputs, " inputs");
}



// The arrays' element type in the kernel source, and the type the members
// compute in: float for the half types, which are read and written
// through runtime/core/half.h's conversions (rounded once, at the store).
const char* storage_type(DType dtype) {
  switch (dtype) {
    case DType::kFloat64: return "double";
    case DType::kFloat16: return "::loom::f16";
    case DType::kBFloat16: return "::loom::bf16";
    default: return "float";
  }
}
const char* compute_type(DType dtype) { return dtype == DType::kFloat64 ? "double" : "float"; }

}  // namespace

std::string FusedKernelSpec::signature() const {
  std::string s = dtype == DType::kFloat64   ? "f64:"
                  : dtype == DType::kFloat16 ? "f16:"
                  : dtype == DType::kBFloat16 ? "bf16:"
                                              : "f32:";
  int next = 0;
  for (std::size_t m = 0; m < ops.size(); ++m) {
    s += (m ? ";" : "") + ops[m];
    const FusionSource* src = find_fusion_source(ops[m]);
    if (m < attrs.size() && !attrs[m].empty()) {
      s += "[";
      for (std::size_t k = 0; k < attrs[m].size(); ++k) {
        const bool is_bool = src != nullptr && k < src->attr_types.size() && src->attr_types[k] == 'b';
        s += (k ? "," : "") + (is_bool ? std::string(attrs[m][k] != 0 ? "true" : "false")
                                       : "a" + std::to_string(next++));
      }
      s += "]";
    }
    s += "(";
    if (m < refs.size()) {  // a malformed spec still names itself (fused_kernel_source then refuses it)
      for (std::size_t k = 0; k < refs[m].size(); ++k) s += (k ? "," : "") + operand(refs[m][k]);
    }
    s += ")";
  }
  s += "|s";
  for (unsigned char c : scalar) s += c ? '1' : '0';
  if (!wants_grad.empty()) {
    s += "|g";
    for (unsigned char c : wants_grad) s += c ? '1' : '0';
  }
  return s;
}

GradientPaths fused_backward_paths(const FusedKernelSpec& spec) {
  auto grad = [&](std::size_t m, std::size_t k) -> const FusionGradSource* {
    const FusionSource* src = m < spec.ops.size() ? find_fusion_source(spec.ops[m]) : nullptr;
    if (src == nullptr || k >= static_cast<std::size_t>(kMaxFusionArity) || src->grads[k].functor.empty()) {
      return nullptr;
    }
    return &src->grads[k];
  };
  GradientPaths paths =
      gradient_paths(spec.refs, spec.wants_grad, [&](std::size_t m, std::size_t k) { return grad(m, k) != nullptr; });
  mark_reads(spec.refs, paths, [&](std::size_t m, std::size_t k) { return grad(m, k)->operands; });
  return paths;
}

std::vector<int> FusedKernelSpec::gradient_outputs() const {
  std::vector<int> out;
  if (wants_grad.empty()) return out;
  const GradientPaths paths = fused_backward_paths(*this);
  for (std::size_t k = 0; k < paths.input_reached.size(); ++k) {
    if (paths.input_reached[k]) out.push_back(static_cast<int>(k));
  }
  return out;
}

std::vector<double> FusedKernelSpec::attr_values() const {
  std::vector<double> out;
  for (std::size_t m = 0; m < ops.size() && m < attrs.size(); ++m) {
    const FusionSource* src = find_fusion_source(ops[m]);
    for (std::size_t k = 0; k < attrs[m].size(); ++k) {
      if (src == nullptr || k >= src->attr_types.size() || src->attr_types[k] != 'b') out.push_back(attrs[m][k]);
    }
  }
  return out;
}

namespace {

// The element function's common part: each input read at i (or its single
// value), then each member in order; `base[m]` gets member m's first slot
// in the Attrs argument (its gradient functors read the same ones). A
// backward kernel (`paths`) reads and computes only what its walk reads:
// the other inputs may not even be passed.
void emit_members(std::ostringstream& o, const FusedKernelSpec& spec, std::vector<int>& base,
                  const GradientPaths* paths = nullptr) {
  for (std::size_t k = 0; k < spec.scalar.size(); ++k) {
    if (paths != nullptr && !paths->input_read[k]) continue;
    o << "  const T x" << k << " = T(in" << k << (spec.scalar[k] ? "[0]" : "[i]") << ");\n";
  }
  int next = 0;
  for (std::size_t m = 0; m < spec.ops.size(); ++m) {
    const FusionSource* src = find_fusion_source(spec.ops[m]);
    base.push_back(next);
    if (paths != nullptr && !paths->member_computed[m]) {
      field_values(src->attr_types, member_attrs(spec, m), next);  // its slots still count
      continue;
    }
    o << "  const T m" << m << " = ::loom::kernels::" << src->functor << "{"
      << field_values(src->attr_types, member_attrs(spec, m), next) << "}(";
    for (std::size_t k = 0; k < spec.refs[m].size(); ++k) o << (k ? ", " : "") << operand(spec.refs[m][k]);
    o << ");  // " << spec.ops[m] << "\n";
  }
}

// The backward walk: from the root's gradient back through each member's
// gradient functors, in the engine's order (later members first, a
// member's arguments in order; the first contribution assigned, later ones
// added), then each reached input's gradient stored.
void emit_backward_walk(std::ostringstream& o, const FusedKernelSpec& spec, const std::vector<int>& base,
                        const GradientPaths& paths) {
  const std::size_t members = spec.ops.size();
  o << "  const T g" << members - 1 << " = T(grad[i]);\n";
  for (std::size_t j = 0; j + 1 < members; ++j) {
    if (paths.member_needed[j]) o << "  T g" << j << " = T(0);\n";
  }
  for (std::size_t k = 0; k < paths.input_reached.size(); ++k) {
    if (paths.input_reached[k]) o << "  T gx" << k << " = T(0);\n";
  }
  std::vector<unsigned char> member_written(members, 0), input_written(spec.scalar.size(), 0);
  for (std::size_t m = members; m-- > 0;) {
    if (!paths.member_needed[m]) continue;
    const FusionSource* src = find_fusion_source(spec.ops[m]);
    for (std::size_t k = 0; k < spec.refs[m].size(); ++k) {
      if (!paths.along[m][k]) continue;
      const int r = spec.refs[m][k];
      const FusionGradSource& grad = src->grads[k];
      int slot = base[m];
      std::string call = "::loom::kernels::" + std::string(grad.functor) + "{" +
                         field_values(src->attr_types, member_attrs(spec, m), slot) + "}(";
      for (std::size_t c = 0; c < grad.operands.size(); ++c) {
        const char code = grad.operands[c];
        call += c ? ", " : "";
        call += code == 'g' ? "g" + std::to_string(m)
                : code == 'o' ? "m" + std::to_string(m)
                              : operand(spec.refs[m][static_cast<std::size_t>(code - '0')]);
      }
      call += ")";
      const std::string target = r >= 0 ? "gx" + std::to_string(r) : "g" + std::to_string(-r - 1);
      unsigned char& written = r >= 0 ? input_written[r] : member_written[-r - 1];
      o << "  " << target << " = " << (written ? target + " + " : "") << call << ";  // d " << spec.ops[m]
        << " / d arg " << k << "\n";
      written = 1;
    }
  }
  for (std::size_t k = 0; k < paths.input_reached.size(); ++k) {
    if (paths.input_reached[k]) o << "  gin" << k << "[i] = S(gx" << k << ");\n";
  }
}

}  // namespace

std::string fused_kernel_source(const FusedKernelSpec& spec) {
  check_spec(spec);
  const bool backward = !spec.wants_grad.empty();
  const int inputs = static_cast<int>(spec.scalar.size());
  const std::size_t numbers = spec.attr_values().size();
  std::ostringstream o;
  o << "// fused pointwise " << (backward ? "backward " : "") << "kernel: " << spec.signature() << "\n"
    << "#include \"runtime/kernels/pointwise_math.h\"\n"
    << (spec.dtype == DType::kFloat16 || spec.dtype == DType::kBFloat16 ? "#include \"runtime/core/half.h\"\n" : "")
    << "\n"
    << "namespace loom::kernels {\n";
  std::set<std::string_view> emitted;
  for (const std::string& op : spec.ops) {
    const FusionSource* src = find_fusion_source(op);
    if (emitted.insert(src->functor).second) o << src->text;
    for (int k = 0; backward && k < src->arity; ++k) {
      if (!src->grads[k].functor.empty() && emitted.insert(src->grads[k].functor).second) o << src->grads[k].text;
    }
  }
  o << "}  // namespace loom::kernels\n";
  // The functors' #line directives point into opdefs/; what follows is this text's own.
  const std::string so_far = o.str();
  o << "#line " << std::count(so_far.begin(), so_far.end(), '\n') + 2 << " \"loom_fused.cu\"\n\n"
    << "namespace loom_fused_kernel {\n"
    << "typedef " << storage_type(spec.dtype) << " S;  // the arrays' elements\n"
    << "typedef " << compute_type(spec.dtype) << " T;  // what the members compute in\n"
    << "// The members' numeric attributes, passed by value: one kernel serves every value.\n"
    << "struct Attrs {\n  double v[" << std::max<std::size_t>(numbers, 1) << "];\n};\n\n";
  // No __restrict__: the output may be an input's buffer (a planned run
  // writes over a dying input); each element is read before the thread
  // that reads it writes it, and by no other thread.
  std::string params, args;
  for (int k = 0; k < inputs; ++k) {
    params += "const S* in" + std::to_string(k) + ", ";
    args += "in" + std::to_string(k) + ", ";
  }
  const std::vector<int> grads = spec.gradient_outputs();
  if (backward) {
    params += "const S* grad, ";
    args += "grad, ";
    for (int k : grads) {
      params += "S* gin" + std::to_string(k) + ", ";
      args += "gin" + std::to_string(k) + ", ";
    }
  }
  std::vector<int> base;
  if (backward) {
    o << "// One element of each wanted input's gradient: the members recomputed, then walked back.\n"
      << "LOOM_HD void loom_fused_backward_at(" << params << "const Attrs& attrs, long long i) {\n";
    const GradientPaths paths = fused_backward_paths(spec);
    emit_members(o, spec, base, &paths);
    emit_backward_walk(o, spec, base, paths);
  } else {
    o << "// One element of the root's result: inputs read at i (or their single value), members in order.\n"
      << "LOOM_HD T loom_fused_at(" << params << "const Attrs& attrs, long long i) {\n";
    emit_members(o, spec, base);
  }
  if (numbers == 0) o << "  (void)attrs;\n";
  if (!backward) o << "  return m" << spec.ops.size() - 1 << ";\n";
  o << "}\n"
    << "}  // namespace loom_fused_kernel\n\n"
    << "#if defined(__CUDACC__)\n";
  // The kernel's own parameters, in the namespace's types.
  std::string kernel_params;
  for (int k = 0; k < inputs; ++k) kernel_params += "const loom_fused_kernel::S* in" + std::to_string(k) + ", ";
  if (backward) {
    kernel_params += "const loom_fused_kernel::S* grad, ";
    for (int k : grads) kernel_params += "loom_fused_kernel::S* gin" + std::to_string(k) + ", ";
    o << "// A grid-stride loop, one element per thread per step.\n"
      << "extern \"C\" __global__ void loom_fused_backward(" << kernel_params
      << "long long n, loom_fused_kernel::Attrs attrs) {\n"
      << "  const long long stride = (long long)blockDim.x * gridDim.x;\n"
      << "  for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {\n"
      << "    loom_fused_kernel::loom_fused_backward_at(" << args << "attrs, i);\n"
      << "  }\n"
      << "}\n";
  } else {
    o << "// A grid-stride loop, four elements per thread per step so four loads are in flight.\n"
      << "extern \"C\" __global__ void loom_fused(" << kernel_params
      << "loom_fused_kernel::S* out, long long n, loom_fused_kernel::Attrs attrs) {\n"
      << "  using loom_fused_kernel::loom_fused_at;\n"
      << "  const long long stride = (long long)blockDim.x * gridDim.x;\n"
      << "  long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;\n"
      << "  for (; i + 3 * stride < n; i += 4 * stride) {\n"
      << "    loom_fused_kernel::T r[4];\n"
      << "#pragma unroll\n"
      << "    for (int u = 0; u < 4; ++u) r[u] = loom_fused_at(" << args << "attrs, i + u * stride);\n"
      << "#pragma unroll\n"
      << "    for (int u = 0; u < 4; ++u) out[i + u * stride] = loom_fused_kernel::S(r[u]);\n"
      << "  }\n"
      << "  for (; i < n; i += stride) out[i] = loom_fused_kernel::S(loom_fused_at(" << args << "attrs, i));\n"
      << "}\n";
  }
  o << "#endif\n";
  return o.str();
}

}  // namespace loom::graph
