// cast (opdefs/elementwise/cast.yaml): the conversion loops NDArray's own
// dtype moves use (runtime/ndarray/host_copy.h on the host, device_cast.h
// on a GPU), behind the generated op, so x.astype, lm.nd.cast and the graph
// node all share one set of rules (saturation, NaN -> 0, != 0 for bool).
#include "generated/kernels/cast.h"
#include "runtime/ndarray/device_cast.h"
#include "runtime/ndarray/host_copy.h"

namespace loom::kernels {

Shape infer_cast(const NDArray& x, ::loom::DType /*dtype*/) { return x.shape(); }

// The dispatch gives a contiguous `out` of the result dtype on x's device;
// x is read as it is (dtype_rule {attr: dtype}: no float32 detour).
void cast_into(NDArray& out, const NDArray& x, ::loom::DType /*dtype*/) {
  if (x.numel() == 0) return;
  const NDArray src = x.contiguous();
  if (out.device().is_cpu()) {
    cast_host(src.raw_data(), src.dtype(), out.raw_data(), out.dtype(), src.numel());
    return;
  }
#if LOOM_WITH_CUDA
  cast_cuda(src, out);
#endif
}

}  // namespace loom::kernels
