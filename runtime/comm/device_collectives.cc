// See device_collectives.h.
#include "runtime/comm/device_collectives.h"

#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "microkernel/base/error.h"
#include "runtime/comm/comm_lane.h"
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

// One rank's part of a collective: its communicator and its place on the
// comm lane.
struct RankCall {
  comm::NcclComm& comm;
  LaneCall lane;
};

// Runs `call` for every rank on the comm lane; `out_shape` is the shape of
// each result.
template <typename Fn>
std::vector<NDArray> collective(const char* op, const std::vector<NDArray>& arrays, const Shape& out_shape, Fn call) {
  const std::vector<int> devices = check_inputs(op, arrays);
  std::vector<NDArray> sources, out;
  for (const NDArray& a : arrays) {
    sources.push_back(a.contiguous());
    out.push_back(NDArray::empty(out_shape, a.dtype(), a.device()));
  }
  if (arrays[0].numel() == 0 || !should_run_kernels()) return out;
  std::lock_guard<std::mutex> hold(comms_mutex());
  auto& comms = comms_for(devices);
  std::vector<RankCall> calls;
  for (std::size_t k = 0; k < comms.size(); ++k) {
    calls.push_back(RankCall{*comms[k], enter_comm_lane(sources[k], out[k])});
  }
  try {
    comm::nccl_group([&] {
      for (RankCall& c : calls) call(c, sources[0]);
    });
  } catch (...) {
    // Part of the group may be queued: its arrays stay fenced all the same.
    for (std::size_t k = 0; k < calls.size(); ++k) leave_comm_lane_after_error(calls[k].lane, sources[k], out[k]);
    throw;
  }
  for (std::size_t k = 0; k < comms.size(); ++k) leave_comm_lane(calls[k].lane, sources[k], out[k]);
  return out;
}

int dtype_code(const NDArray& a) { return static_cast<int>(a.dtype()); }

// The first input's shape, before check_inputs has seen it (empty when
// there is none to look at; check_inputs then says why).
Shape first_shape(const std::vector<NDArray>& arrays) {
  return arrays.empty() || !arrays[0].defined() ? Shape{} : arrays[0].shape();
}

}  // namespace

std::vector<NDArray> all_reduce_across_devices(const std::vector<NDArray>& arrays, comm::ReduceOp op) {
  return collective("all_reduce_across_devices", arrays, first_shape(arrays), [op](RankCall& c, const NDArray& like) {
    c.comm.all_reduce(c.lane.send, c.lane.recv, like.numel(), dtype_code(like), op, c.lane.stream);
  });
}

std::vector<NDArray> broadcast_across_devices(const std::vector<NDArray>& arrays, int root) {
  LOOM_CHECK_KIND(root >= 0 && static_cast<std::size_t>(root) < arrays.size(), ErrorKind::kIndex,
                  "broadcast_across_devices: root ", root, " is not one of the ", arrays.size(), " arrays");
  return collective("broadcast_across_devices", arrays, first_shape(arrays), [root](RankCall& c, const NDArray& like) {
    c.comm.broadcast(c.lane.send, c.lane.recv, like.numel(), dtype_code(like), root, c.lane.stream);
  });
}

std::vector<NDArray> all_gather_across_devices(const std::vector<NDArray>& arrays) {
  Shape stacked = first_shape(arrays);
  stacked.insert(stacked.begin(), static_cast<std::int64_t>(arrays.size()));
  return collective("all_gather_across_devices", arrays, stacked, [](RankCall& c, const NDArray& like) {
    c.comm.all_gather(c.lane.send, c.lane.recv, like.numel(), dtype_code(like), c.lane.stream);
  });
}

std::vector<NDArray> reduce_scatter_across_devices(const std::vector<NDArray>& arrays, comm::ReduceOp op) {
  Shape rest;
  if (!arrays.empty() && arrays[0].defined()) {
    const Shape& shape = arrays[0].shape();
    const std::int64_t n = static_cast<std::int64_t>(arrays.size());
    LOOM_CHECK(!shape.empty() && shape[0] == n, "reduce_scatter_across_devices: each of the ", n,
               " arrays must have shape (", n, ", ...), one block per device; got ", arrays[0].describe());
    rest.assign(shape.begin() + 1, shape.end());
  }  // else check_inputs says what is wrong
  return collective("reduce_scatter_across_devices", arrays, rest, [op](RankCall& c, const NDArray& like) {
    c.comm.reduce_scatter(c.lane.send, c.lane.recv, like.numel() / c.comm.size(), dtype_code(like), op,
                         c.lane.stream);
  });
}

}  // namespace loom
