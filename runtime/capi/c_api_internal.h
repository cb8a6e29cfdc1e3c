// What the C API's implementation files share: the handle type and the
// boundary that turns every C++ exception into a status code plus this
// thread's message. Generated per-op C functions (generated/capi/<op>.cc)
// use the same helpers.
#pragma once

#include <exception>
#include <new>

#include "microkernel/base/error.h"
#include "runtime/capi/c_api.h"
#include "runtime/ndarray/ndarray.h"

struct LoomArrayImpl {
  loom::NDArray array;
};

namespace loom::capi {

void set_last_error(const char* message);

// Runs `body`; returns LOOM_OK or the status of the exception it threw.
template <typename Body>
LoomStatus guarded(Body&& body) noexcept {
  try {
    body();
    return LOOM_OK;
  } catch (const Error& e) {
    set_last_error(e.what());
    return static_cast<LoomStatus>(static_cast<int>(e.kind()) + 1);
  } catch (const std::bad_alloc&) {
    set_last_error("out of memory");
    return LOOM_ERR_RUNTIME;
  } catch (const std::exception& e) {
    set_last_error(e.what());
    return LOOM_ERR_RUNTIME;
  } catch (...) {
    set_last_error("unknown error");
    return LOOM_ERR_RUNTIME;
  }
}

// The array behind a handle; a NULL handle is an error naming `what`.
const NDArray& unwrap(LoomArray a, const char* what);
LoomArray wrap(NDArray a);

// A generate op's dtype (runtime/core/dtype.h's enum value) and device
// (0 CPU, 1 GPU, and its number), checked; errors name `op`.
DType dtype_arg(const char* op, int code);
Device device_arg(const char* op, int type, int id);

}  // namespace loom::capi
