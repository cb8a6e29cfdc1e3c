#include "microkernel/storage/storage.h"

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <new>

#include "microkernel/base/error.h"
#include "microkernel/storage/gpu_backend.h"

namespace loom::storage {
namespace {

struct Counters {
  std::atomic<std::int64_t> in_use{0};
  std::atomic<std::int64_t> peak{0};

  void add(std::int64_t bytes) {
    std::int64_t now = in_use.fetch_add(bytes) + bytes;
    std::int64_t old_peak = peak.load();
    while (now > old_peak && !peak.compare_exchange_weak(old_peak, now)) {
    }
  }
  void sub(std::int64_t bytes) { in_use.fetch_sub(bytes); }
};

Counters& counters(DeviceType type) {
  static Counters host, device;
  return type == DeviceType::kCPU ? host : device;
}

}  // namespace

void* alloc(std::size_t bytes, Device device) {
  // A zero-byte request still gets a unique pointer (one aligned block).
  std::size_t rounded = (bytes + kAlignment - 1) / kAlignment * kAlignment;
  if (rounded == 0) rounded = kAlignment;
  void* ptr = nullptr;
  if (device.is_cpu()) {
    ptr = std::aligned_alloc(kAlignment, rounded);
    LOOM_CHECK_KIND(ptr != nullptr, ErrorKind::kRuntime, "storage: out of host memory allocating ",
                    bytes, " bytes on ", device.str());
  } else {
    ptr = gpu::alloc(rounded, device.id);
  }
  counters(device.type).add(static_cast<std::int64_t>(rounded));
  return ptr;
}

void free(void* ptr, std::size_t bytes, Device device) noexcept {
  if (ptr == nullptr) return;
  std::size_t rounded = (bytes + kAlignment - 1) / kAlignment * kAlignment;
  if (rounded == 0) rounded = kAlignment;
  if (device.is_cpu()) {
    std::free(ptr);
  } else {
    gpu::free(ptr, device.id);
  }
  counters(device.type).sub(static_cast<std::int64_t>(rounded));
}

Stats stats(DeviceType type) {
  Counters& c = counters(type);
  return {c.in_use.load(), c.peak.load()};
}

int gpu_count() noexcept { return gpu::count(); }

void copy(void* dst, Device dst_device, const void* src, Device src_device,
          std::size_t bytes) {
  if (bytes == 0) return;
  if (dst_device.is_cpu() && src_device.is_cpu()) {
    std::memcpy(dst, src, bytes);
  } else {
    gpu::copy(dst, dst_device, src, src_device, bytes);
  }
}

}  // namespace loom::storage
