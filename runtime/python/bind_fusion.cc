#include "runtime/python/bind_fusion.h"

#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include "microkernel/base/error.h"
#include "runtime/graph/fuse_pointwise_cuda.h"
#include "runtime/graph/fused_kernel_source.h"
#include "runtime/graph/fusion_source.h"
#include "runtime/graph/nvrtc_compile.h"

namespace nb = nanobind;
using namespace nb::literals;

namespace loom::python {

void bind_fusion(nb::module_& m) {
  m.def("fusion_source", [](const std::string& op) -> nb::object {
        const graph::FusionSource* s = graph::find_fusion_source(op);
        if (s == nullptr) return nb::none();
        nb::dict d;
        d["arity"] = s->arity;
        d["functor"] = std::string(s->functor);
        d["attr_types"] = std::string(s->attr_types);
        d["text"] = std::string(s->text);
        return d;
      }, "op"_a, "The CUDA source an op contributes to fused GPU kernels, or None if it does not fuse.");
  m.def("pointwise_math_source", [] { return std::string(graph::pointwise_math_source()); },
        "runtime/kernels/pointwise_math.h as embedded in the library (what NVRTC includes).");
  m.def("fused_kernel_source",
        [](const std::vector<std::string>& ops, const std::vector<std::vector<int>>& refs,
           const std::vector<bool>& scalar, const std::string& dtype, const std::vector<std::vector<double>>& attrs) {
          graph::FusedKernelSpec spec{ops, refs, {scalar.begin(), scalar.end()}, dtype_from_name(dtype), attrs, {}};
          std::string source = graph::fused_kernel_source(spec);  // checks the spec first
          return nb::make_tuple(source, spec.signature(), spec.attr_values());
        },
        "ops"_a, "refs"_a, "scalar"_a, "dtype"_a = "float32", "attrs"_a = std::vector<std::vector<double>>(),
        "(source, signature, attr_values) of the fused kernel computing `ops` (refs and attrs as "
        "PointwiseGroup's; attr_values: the kernel's Attrs argument).");
  m.def("fused_backward_kernel_source",
        [](const std::vector<std::string>& ops, const std::vector<std::vector<int>>& refs,
           const std::vector<bool>& scalar, const std::vector<bool>& wants_grad, const std::string& dtype,
           const std::vector<std::vector<double>>& attrs) {
          graph::FusedKernelSpec spec{ops, refs, {scalar.begin(), scalar.end()}, dtype_from_name(dtype), attrs,
                                      {wants_grad.begin(), wants_grad.end()}};
          LOOM_CHECK_KIND(!spec.wants_grad.empty(), ErrorKind::kValue,
                          "fused backward kernel: wants_grad is empty (one flag per input expected)");
          std::string source = graph::fused_kernel_source(spec);  // checks the spec first
          return nb::make_tuple(source, spec.signature(), spec.attr_values(), spec.gradient_outputs());
        },
        "ops"_a, "refs"_a, "scalar"_a, "wants_grad"_a, "dtype"_a = "float32",
        "attrs"_a = std::vector<std::vector<double>>(),
        "(source, signature, attr_values, gradient_outputs) of the fused backward kernel of `ops` for the "
        "inputs flagged in wants_grad; gradient_outputs: the inputs it writes gradients of (its gin<k>).");
  m.def("fusion_grad_source", [](const std::string& op, int input) -> nb::object {
        const graph::FusionSource* s = graph::find_fusion_source(op);
        if (s == nullptr || input < 0 || input >= s->arity || s->grads[input].functor.empty()) return nb::none();
        nb::dict d;
        d["functor"] = std::string(s->grads[input].functor);
        d["operands"] = std::string(s->grads[input].operands);
        d["text"] = std::string(s->grads[input].text);
        d["backward"] = s->backward;
        return d;
      }, "op"_a, "input"_a, "The CUDA source of op's gradient for one input, for fused backward kernels, or None.");
  m.def("nvrtc_available", &graph::nvrtc_available);
  m.def("nvrtc_supported_archs", &graph::nvrtc_supported_archs);
  m.def("nvrtc_compile",
        [](const std::string& source, int arch) {
          graph::NvrtcImage image;
          {
            nb::gil_scoped_release release;
            image = graph::nvrtc_compile(source, arch);
          }
          return nb::make_tuple(nb::bytes(image.code.data(), image.code.size()), image.ptx, image.log);
        },
        "source"_a, "arch"_a, "(code, is_ptx, log): CUBIN for sm_<arch>, or PTX when NVRTC does not know it.");
  m.def("fused_cuda_available", &graph::fused_cuda_available,
        "True when groups on a GPU run as one NVRTC-compiled kernel (a CUDA build with NVRTC).");
  m.def("fused_cuda_cache_size", &graph::fused_cuda_cache_size, "Fused GPU kernels compiled so far.");
  m.def("fused_cuda_failure_count", &graph::fused_cuda_failure_count,
        "Fused GPU groups NVRTC could not compile (they run unfused).");
}

}  // namespace loom::python
