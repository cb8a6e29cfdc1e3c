// GPU storage through the CUDA runtime (built only with CUDA). Unpooled for
// now: the microkernel issue brings the stream-aware caching allocator.
#include <cuda.h>  // CUcontext and CUresult only: the driver is reached through the runtime
#include <cuda_runtime_api.h>

#include <string>

#include "microkernel/base/error.h"
#include "microkernel/storage/gpu_backend.h"

namespace loom::storage::gpu {
namespace {

// Whether a best-effort call (a release, a restore) succeeded. A failure
// is cleared from the runtime's last-error slot, where the next kernel
// launch check (cudaGetLastError) would otherwise blame an unrelated kernel.
bool cleared(cudaError_t err) noexcept {
  if (err == cudaSuccess) return true;
  cudaGetLastError();
  return false;
}

// `what` completes "cannot ... gpu(N)", e.g. "allocate 1024 bytes on".
void check_device(int device_id, const std::string& what) {
  int n = count();
  LOOM_CHECK_KIND(device_id >= 0 && device_id < n, ErrorKind::kValue, "cannot ", what, " gpu(",
                  device_id, "): ", n, " GPU(s) visible to this process");
  cudaError_t err = cudaSetDevice(device_id);
  cleared(err);
  LOOM_CHECK_KIND(err == cudaSuccess, ErrorKind::kRuntime, "storage: cudaSetDevice(", device_id,
                  ") failed: ", cudaGetErrorString(err));
}

}  // namespace

// Raw memory and events on one GPU. The caching allocator calls it with its
// own lock held, from whichever thread allocates, so each call first makes
// its device current.
class CudaMemoryApi final : public DeviceMemoryApi {
 public:
  explicit CudaMemoryApi(int device_id) : device_id_(device_id) {}

  void* raw_alloc(std::size_t bytes) override {
    select();
    void* ptr = nullptr;
    cudaError_t err = cudaMalloc(&ptr, bytes);
    if (err == cudaErrorMemoryAllocation) {
      cudaGetLastError();  // not sticky, but clear it so later calls start clean
      return nullptr;      // the allocator frees its cache and retries
    }
    LOOM_CHECK_KIND(err == cudaSuccess, ErrorKind::kRuntime, "storage: cudaMalloc of ", bytes,
                    " bytes on gpu(", device_id_, ") failed: ", cudaGetErrorString(err));
    return ptr;
  }
  void raw_free(void* ptr) override {
    if (cleared(cudaSetDevice(device_id_))) cleared(cudaFree(ptr));
  }
  std::size_t total_memory() override {
    std::size_t free_bytes = 0, total = 0;
    if (!cleared(cudaSetDevice(device_id_)) || !cleared(cudaMemGetInfo(&free_bytes, &total))) return 0;
    return total;
  }
  Event record_event(Stream stream) override {
    select();
    cudaEvent_t event = nullptr;
    cudaError_t err = cudaEventCreateWithFlags(&event, cudaEventDisableTiming);
    if (err == cudaSuccess) err = cudaEventRecord(event, static_cast<cudaStream_t>(stream));
    cleared(err);
    LOOM_CHECK_KIND(err == cudaSuccess, ErrorKind::kRuntime, "storage: cannot record an event on gpu(",
                    device_id_, "): ", cudaGetErrorString(err));
    return event;
  }
  bool event_done(Event event) override {
    cudaError_t err = cudaEventQuery(static_cast<cudaEvent_t>(event));
    if (err == cudaErrorNotReady) return false;
    // A failed stream will never reach the event; treating the block as
    // reusable is safe because that stream runs nothing more.
    cleared(err);
    return true;
  }
  void destroy_event(Event event) override { cleared(cudaEventDestroy(static_cast<cudaEvent_t>(event))); }

 private:
  void select() {
    cudaError_t err = cudaSetDevice(device_id_);
    cleared(err);
    LOOM_CHECK_KIND(err == cudaSuccess, ErrorKind::kRuntime, "storage: cudaSetDevice(", device_id_,
                    ") failed: ", cudaGetErrorString(err));
  }
  int device_id_;
};

std::unique_ptr<DeviceMemoryApi> make_memory_api(int device_id) {
  check_device(device_id, "allocate memory on");
  return std::make_unique<CudaMemoryApi>(device_id);
}

void* alloc_pinned(std::size_t bytes) {
  void* ptr = nullptr;
  cudaError_t err = cudaHostAlloc(&ptr, bytes, cudaHostAllocPortable);
  if (err != cudaSuccess) {
    cudaGetLastError();
    return nullptr;
  }
  return ptr;
}

void free_pinned(void* ptr) { cudaFreeHost(ptr); }

int count() noexcept {
  int n = 0;
  // No driver or no device is not an error for a CPU user: it means zero GPUs.
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky error
    return 0;
  }
  return n;
}

void copy(void* dst, Device dst_device, const void* src, Device src_device,
          std::size_t bytes) {
  Device gpu_side = dst_device.is_gpu() ? dst_device : src_device;
  check_device(gpu_side.id, "copy " + std::to_string(bytes) + " bytes with");
  cudaError_t err = cudaMemcpy(dst, src, bytes, cudaMemcpyDefault);
  LOOM_CHECK_KIND(err == cudaSuccess, ErrorKind::kRuntime, "storage: copy of ", bytes,
                  " bytes from ", src_device.str(), " to ", dst_device.str(),
                  " failed: ", cudaGetErrorString(err));
}

void set_device(int device_id) { check_device(device_id, "use"); }

void* create_stream(int device_id) {
  check_device(device_id, "create a stream on");
  cudaStream_t stream = nullptr;
  cudaError_t err = cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking);
  cleared(err);
  LOOM_CHECK_KIND(err == cudaSuccess, ErrorKind::kRuntime, "engine: cannot create a stream on gpu(",
                  device_id, "): ", cudaGetErrorString(err));
  return stream;
}

void destroy_stream(void* stream, int device_id) noexcept {
  if (cleared(cudaSetDevice(device_id))) cleared(cudaStreamDestroy(static_cast<cudaStream_t>(stream)));
}

void sync_stream(void* stream, int device_id) {
  cudaError_t err = cudaStreamSynchronize(static_cast<cudaStream_t>(stream));
  LOOM_CHECK_KIND(err == cudaSuccess, ErrorKind::kRuntime, "gpu(", device_id,
                  "): a kernel failed: ", cudaGetErrorString(err));
}

void sync_device(int device_id) {
  check_device(device_id, "synchronize");
  cudaError_t err = cudaDeviceSynchronize();
  LOOM_CHECK_KIND(err == cudaSuccess, ErrorKind::kRuntime, "gpu(", device_id, "): a kernel failed: ",
                  cudaGetErrorString(err));
}

namespace {

// Whether the calling thread has a CUDA context current. cudaGetDevice says
// 0 for a thread that never chose a device, and making 0 current again
// would create a context on gpu(0) (hundreds of MB) for a thread that only
// ever worked on gpu(1). The runtime has no call for this, so ask the
// driver, through the runtime's entry-point lookup (loom links no libcuda).
bool thread_has_context() noexcept {
  using GetCurrent = CUresult (*)(CUcontext*);
  static const GetCurrent get_current = [] {
    void* fn = nullptr;
    cudaDriverEntryPointQueryResult found{};
    if (cudaGetDriverEntryPointByVersion("cuCtxGetCurrent", &fn, 12000, cudaEnableDefault, &found) !=
            cudaSuccess ||
        found != cudaDriverEntryPointSuccess) {
      cudaGetLastError();
      return GetCurrent{nullptr};
    }
    return reinterpret_cast<GetCurrent>(fn);
  }();
  if (get_current == nullptr) return true;  // cannot tell: restore, as a plain guard would
  CUcontext context = nullptr;
  return get_current(&context) == CUDA_SUCCESS && context != nullptr;
}

// Makes `device_id` current for one call and gives the caller's device back
// afterwards, so that a wait queued from a thread working on another GPU
// leaves it be. It switches, and so restores, only when the thread was on
// another device, and restores only a device the thread had a context on.
// The checked form raises when the device cannot be made current; the
// unchecked one (for noexcept paths) reports it through ok().
class OnDevice {
 public:
  enum class Checked { kYes, kNo };

  explicit OnDevice(int device_id, Checked checked = Checked::kYes) {
    int current = -1;
    if (!cleared(cudaGetDevice(&current))) current = -1;
    if (current == device_id && thread_has_context()) return;
    const bool restore = current >= 0 && current != device_id && thread_has_context();
    if (checked == Checked::kYes) {
      check_device(device_id, "order work on");
    } else if (!cleared(cudaSetDevice(device_id))) {
      ok_ = false;
      return;
    }
    if (restore) previous_ = current;
  }
  ~OnDevice() {
    if (previous_ >= 0) cleared(cudaSetDevice(previous_));
  }
  OnDevice(const OnDevice&) = delete;
  OnDevice& operator=(const OnDevice&) = delete;

  bool ok() const { return ok_; }

 private:
  int previous_ = -1;  // the device to make current again, or -1 for none
  bool ok_ = true;
};

}  // namespace

void* record_event(void* stream, int device_id) {
  OnDevice on(device_id);
  cudaEvent_t event = nullptr;
  cudaError_t err = cudaEventCreateWithFlags(&event, cudaEventDisableTiming);
  if (err == cudaSuccess) {
    err = cudaEventRecord(event, static_cast<cudaStream_t>(stream));
    if (err != cudaSuccess) cleared(cudaEventDestroy(event));
  }
  cleared(err);
  LOOM_CHECK_KIND(err == cudaSuccess, ErrorKind::kRuntime, "storage: cannot record an event on gpu(", device_id,
                  "): ", cudaGetErrorString(err));
  return event;
}

void wait_event(void* stream, void* event, int device_id) {
  OnDevice on(device_id);
  cudaError_t err = cudaStreamWaitEvent(static_cast<cudaStream_t>(stream), static_cast<cudaEvent_t>(event), 0);
  cleared(err);
  LOOM_CHECK_KIND(err == cudaSuccess, ErrorKind::kRuntime, "storage: cannot order a stream of gpu(", device_id,
                  ") after an event: ", cudaGetErrorString(err));
}

void destroy_event(void* event, int device_id) noexcept {
  // CUDA releases an event still pending in a stream once it completes.
  OnDevice on(device_id, OnDevice::Checked::kNo);
  if (on.ok()) cleared(cudaEventDestroy(static_cast<cudaEvent_t>(event)));
}

}  // namespace loom::storage::gpu
