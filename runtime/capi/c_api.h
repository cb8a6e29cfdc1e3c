/* loom's C API: arrays as opaque handles, every call returning a status.
 *
 *   LoomArray x, y;
 *   int64_t shape[1] = {3};
 *   float data[3] = {-1, 0, 2};
 *   if (loom_array_from_data(data, shape, 1, LOOM_FLOAT32, &x) != LOOM_OK) puts(loom_last_error());
 *   loom_relu(x, &y);                       (one function per operator: loom/c/<op>.h)
 *
 * Contract: a function that fails returns a non-zero LoomStatus, leaves its
 * out-parameters untouched, and sets this thread's message
 * (loom_last_error()), which names the operation, shapes and dtypes. No C++
 * exception ever crosses this boundary. Handles are owned by the caller and
 * freed with loom_array_free (NULL is ignored); a handle is a view, so
 * freeing it never invalidates another handle on the same data.
 * Thread-safe as far as the arrays passed are not written concurrently. */
#ifndef LOOM_C_API_H_
#define LOOM_C_API_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct LoomArrayImpl* LoomArray;

/* The values match loom::ErrorKind + 1. */
typedef enum {
  LOOM_OK = 0,
  LOOM_ERR_VALUE = 1,           /* a bad value or shape */
  LOOM_ERR_TYPE = 2,            /* an unsupported dtype or argument type */
  LOOM_ERR_INDEX = 3,           /* an index or dim out of range */
  LOOM_ERR_NOT_IMPLEMENTED = 4, /* valid, but not built in this configuration */
  LOOM_ERR_RUNTIME = 5          /* anything else (out of memory, ...) */
} LoomStatus;

/* The values match loom::DType. */
typedef enum {
  LOOM_FLOAT32 = 0, LOOM_FLOAT64, LOOM_FLOAT16, LOOM_BFLOAT16,
  LOOM_INT8, LOOM_UINT8, LOOM_INT32, LOOM_INT64, LOOM_BOOL
} LoomDType;

/* The message of this thread's last failed call ("" if none). */
const char* loom_last_error(void);

/* A new CPU array holding a copy of prod(shape) elements read from `data`
 * (row-major). `dtype` is a LoomDType value, taken as int so that a bad
 * value from C is reported (LOOM_ERR_TYPE) rather than undefined. */
LoomStatus loom_array_from_data(const void* data, const int64_t* shape, int ndim, int dtype,
                                LoomArray* out);
/* Copies the elements, row-major, into `dst`, which holds `bytes` bytes
 * (at least numel * element size), after the pending ops that write them. */
LoomStatus loom_array_copy_to(LoomArray a, void* dst, size_t bytes);
/* A CPU kernel whose arrays have nothing pending runs inside the call (its
 * error is the call's status); one queued on the engine's worker (its
 * arrays wait for queued ops, or it is above the in-place limit below)
 * runs later. Waits until the pending ops that write `a` have finished; an
 * error a queued kernel found while running (an out-of-range index) is
 * returned here, and by loom_array_copy_to, with its message. */
LoomStatus loom_array_wait(LoomArray a);
/* Kernels touching more than `elements` elements (read plus written) are
 * queued even when nothing is pending, so the caller runs ahead of them; a
 * negative value: no limit (the default, or LOOM_INLINE_WORK). *previous
 * (may be NULL) receives the limit it replaces. */
LoomStatus loom_set_inline_work_limit(int64_t elements, int64_t* previous);
/* Waits for every pending op; returns the first kernel error no wait has
 * reported yet. */
LoomStatus loom_wait_all(void);
/* ndim, dtype and element count; `shape` (may be NULL) receives up to
 * `max_dims` sizes. */
LoomStatus loom_array_info(LoomArray a, int* ndim, int64_t* shape, int max_dims, LoomDType* dtype,
                           int64_t* numel);
void loom_array_free(LoomArray a);

/* Autograd: leaves, recording, backward. */
LoomStatus loom_attach_grad(LoomArray a);
LoomStatus loom_set_recording(int on, int* previous);
/* Gradients land in the leaves; *grad (of a leaf) is a new handle or NULL. */
LoomStatus loom_backward(LoomArray head);
LoomStatus loom_array_grad(LoomArray a, LoomArray* grad);

#ifdef __cplusplus
}
#endif

#endif /* LOOM_C_API_H_ */
