// See device_collectives.h.
#include "runtime/comm/device_collectives.h"

#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "microkernel/base/error.h"
#include "runtime/dispatch/launch.h"

namespace loom {
namespace {

// comm/nccl_comm.cc maps the runtime's dtype codes to NCCL's types.
static_assert(static_cast<int>(DType::kFloat32) == 0 && static_cast<int>(DType::kFloat64) == 1 &&
              static_cast<int>(DType::kFloat16) == 2 && static_cast<int>(DType::kBFloat16) == 3 &&
              static_cast<int>(DType::kInt8) == 4 && static_cast<int>(DType::kUInt8) == 5 &&
              static_cast<int>(DType::kInt32) == 6 && static_cast<int>(DType::kInt64) == 7);

// Each distinct ordered set of devices gets its communicators once; NCCL's
// setup is a rendezvous among all of them, far too slow to repeat per call.
std::vector<std::unique_ptr<comm::NcclComm>>& comms_for(const std::vector<int>& devices) {
  static std::map<std::vector<int>, std::vector<std::unique_ptr<comm::NcclComm>>> cache;
  auto it = cache.find(devices);
  if (it == cache.end()) it = cache.emplace(devices, comm::NcclComm::for_devices(devices)).first;
  return it->second;
}

std::mutex& comms_mutex() {
  static std::mutex m;
  return m;
}

std::vector<int> check_inputs(const char* op, const std::vector<NDArray>& arrays) {
  LOOM_CHECK(!arrays.empty(), op, ": needs at least one array");
  std::vector<int> devices;
  for (std::size_t k = 0; k < arrays.size(); ++k) {
    const NDArray& a = arrays[k];
    LOOM_CHECK(a.defined(), op, ": array ", k, " is undefined");
    LOOM_CHECK(!a.device().is_cpu(), op, ": array ", k, " (", a.describe(), ") is on the host; NCCL sums GPU arrays "
               "(use the 'local' or 'device' KVStore for host arrays)");
    LOOM_CHECK(a.shape() == arrays[0].shape() && a.dtype() == arrays[0].dtype(), op, ": array ", k, " (",
               a.describe(), ") differs in shape or dtype from array 0 (", arrays[0].describe(), ")");
    for (int seen : devices) {
      LOOM_CHECK(seen != a.device().id, op, ": two arrays are on ", a.device().str(),
                 "; NCCL takes one array per GPU");
    }
    devices.push_back(a.device().id);
  }
  return devices;
}

template <typename Fn>
std::vector<NDArray> collective(const char* op, const std::vector<NDArray>& arrays, Fn call) {
  const std::vector<int> devices = check_inputs(op, arrays);
  std::vector<NDArray> sources, out;
  for (const NDArray& a : arrays) {
    sources.push_back(a.contiguous());
    out.push_back(NDArray::empty(a.shape(), a.dtype(), a.device()));
  }
  if (arrays[0].numel() == 0 || !should_run_kernels()) return out;
  std::lock_guard<std::mutex> hold(comms_mutex());
  auto& comms = comms_for(devices);
  comm::nccl_group([&] {
    for (std::size_t k = 0; k < comms.size(); ++k) call(*comms[k], sources[k], out[k]);
  });
  return out;
}

}  // namespace

std::vector<NDArray> all_reduce_across_devices(const std::vector<NDArray>& arrays, comm::ReduceOp op) {
  return collective("all_reduce_across_devices", arrays, [op](comm::NcclComm& c, const NDArray& src, NDArray& dst) {
    c.all_reduce(src.raw_data(), dst.raw_data(), src.numel(), static_cast<int>(src.dtype()), op);
  });
}

std::vector<NDArray> broadcast_across_devices(const std::vector<NDArray>& arrays, int root) {
  LOOM_CHECK_KIND(root >= 0 && static_cast<std::size_t>(root) < arrays.size(), ErrorKind::kIndex,
                  "broadcast_across_devices: root ", root, " is not one of the ", arrays.size(), " arrays");
  return collective("broadcast_across_devices", arrays, [root](comm::NcclComm& c, const NDArray& src, NDArray& dst) {
    c.broadcast(src.raw_data(), dst.raw_data(), src.numel(), static_cast<int>(src.dtype()), root);
  });
}

}  // namespace loom
