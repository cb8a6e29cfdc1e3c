#include <cstring>
#include <string>

#include "microkernel/engine/engine.h"
#include "runtime/dispatch/launch.h"
#include "runtime/autograd/backward.h"
#include "runtime/autograd/grad_mode.h"
#include "runtime/autograd/record.h"
#include "runtime/capi/c_api_internal.h"

namespace loom::capi {
namespace {
thread_local std::string t_last_error;
}  // namespace

void set_last_error(const char* message) { t_last_error = message; }

const NDArray& unwrap(LoomArray a, const char* what) {
  LOOM_CHECK(a != nullptr && a->array.defined(), what, " is a NULL LoomArray");
  return a->array;
}

LoomArray wrap(NDArray a) { return new LoomArrayImpl{std::move(a)}; }

DType dtype_arg(const char* op, int code) {
  LOOM_CHECK_KIND(code >= 0 && code < kNumDTypes, ErrorKind::kType, op, ": dtype ", code,
                  " is not a dtype's enum value (0 to ", kNumDTypes - 1, ")");
  return static_cast<DType>(code);
}

Device device_arg(const char* op, int type, int id) {
  LOOM_CHECK((type == 0 || type == 1) && id >= 0, op, ": device (", type, ", ", id,
             ") is not (0 CPU or 1 GPU, a number >= 0)");
  return Device{static_cast<DeviceType>(type), id};
}

}  // namespace loom::capi

using loom::capi::guarded;
using loom::capi::unwrap;
using loom::capi::wrap;

extern "C" {

const char* loom_last_error(void) { return loom::capi::t_last_error.c_str(); }

LoomStatus loom_array_from_data(const void* data, const int64_t* shape, int ndim, int dtype,
                                LoomArray* out) {
  return guarded([&] {
    LOOM_CHECK(out != nullptr, "loom_array_from_data: out is NULL");
    LOOM_CHECK(ndim >= 0 && (ndim == 0 || shape != nullptr), "loom_array_from_data: bad shape (ndim ", ndim, ")");
    LOOM_CHECK_KIND(dtype >= LOOM_FLOAT32 && dtype <= LOOM_BOOL, loom::ErrorKind::kType,
                    "loom_array_from_data: unknown dtype code ", dtype);
    loom::Shape s(shape, shape + ndim);
    const std::int64_t n = loom::shape_numel(s);
    LOOM_CHECK(n == 0 || data != nullptr, "loom_array_from_data: data is NULL");
    *out = wrap(loom::NDArray::from_host(data, n, s, static_cast<loom::DType>(dtype)));
  });
}

LoomStatus loom_array_copy_to(LoomArray a, void* dst, size_t bytes) {
  return guarded([&] {
    const loom::NDArray& x = unwrap(a, "loom_array_copy_to: a");
    LOOM_CHECK(bytes >= x.nbytes(), "loom_array_copy_to: ", x.describe(), " needs ", x.nbytes(),
               " bytes, the buffer has ", bytes);
    LOOM_CHECK(x.nbytes() == 0 || dst != nullptr, "loom_array_copy_to: dst is NULL");
    x.copy_to_host(dst);
  });
}

LoomStatus loom_array_wait(LoomArray a) {
  return guarded([&] { unwrap(a, "loom_array_wait: a").wait_to_read(); });
}

LoomStatus loom_set_inline_work_limit(int64_t elements, int64_t* previous) {
  return guarded([&] {
    const std::int64_t prev = loom::set_inline_work_limit(elements);
    if (previous) *previous = prev;
  });
}

LoomStatus loom_wait_all(void) {
  return guarded([] { loom::engine::Engine::get().wait_all(); });
}

LoomStatus loom_array_info(LoomArray a, int* ndim, int64_t* shape, int max_dims, LoomDType* dtype,
                           int64_t* numel) {
  return guarded([&] {
    const loom::NDArray& x = unwrap(a, "loom_array_info: a");
    if (ndim) *ndim = x.ndim();
    for (int d = 0; shape && d < x.ndim() && d < max_dims; ++d) shape[d] = x.shape()[d];
    if (dtype) *dtype = static_cast<LoomDType>(x.dtype());
    if (numel) *numel = x.numel();
  });
}

void loom_array_free(LoomArray a) { delete a; }

LoomStatus loom_attach_grad(LoomArray a) {
  return guarded([&] {
    unwrap(a, "loom_attach_grad: a");
    loom::autograd::attach_grad(a->array, loom::autograd::GradReq::kWrite);
  });
}

LoomStatus loom_set_recording(int on, int* previous) {
  return guarded([&] {
    const bool prev = loom::autograd::set_recording(on != 0);
    loom::autograd::set_training(on != 0);
    if (previous) *previous = prev ? 1 : 0;
  });
}

LoomStatus loom_backward(LoomArray head) {
  return guarded([&] { loom::autograd::backward({unwrap(head, "loom_backward: head")}, {}, {}); });
}

LoomStatus loom_array_grad(LoomArray a, LoomArray* grad) {
  return guarded([&] {
    const loom::NDArray& x = unwrap(a, "loom_array_grad: a");
    LOOM_CHECK(grad != nullptr, "loom_array_grad: grad is NULL");
    const auto& meta = x.autograd_meta();
    *grad = meta && meta->grad.defined() ? wrap(meta->grad) : nullptr;
  });
}

}  // extern "C"
