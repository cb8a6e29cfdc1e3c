// See rank_collectives.h.
#include "runtime/comm/rank_collectives.h"

#include <utility>

#include "microkernel/base/error.h"
#include "microkernel/comm/mpi_world.h"
#include "runtime/comm/comm_lane.h"
#include "runtime/dispatch/launch.h"

namespace loom {

RankCollectives::RankCollectives(int rank, int size, ShareBytes share)
    : rank_(rank), size_(size), share_(std::move(share)) {
  LOOM_CHECK(size > 0 && rank >= 0 && rank < size, "rank collectives: rank ", rank, " is outside a job of ", size);
  LOOM_CHECK(share_ != nullptr, "rank collectives: need a way to share NCCL's unique id among the ranks");
}

RankCollectives::~RankCollectives() = default;

int RankCollectives::device() const {
  std::lock_guard<std::mutex> hold(mutex_);
  return comm_ ? comm_->device() : -1;
}

comm::NcclComm& RankCollectives::communicator(int device) {
  if (!comm_) {
    comm::NcclUniqueId id{};
    if (rank_ == 0) id = comm::nccl_unique_id();
    share_(id.data(), id.size());
    comm_ = std::make_unique<comm::NcclComm>(id, rank_, size_, device);
  }
  return *comm_;
}

NDArray RankCollectives::all_reduce(const NDArray& a, comm::ReduceOp op) {
  constexpr const char* kOp = "all_reduce across ranks";
  LOOM_CHECK(a.defined(), kOp, ": the array is undefined");
  LOOM_CHECK(a.device().is_gpu(), kOp, ": ", a.describe(), " is on the host; NCCL sums GPU arrays "
             "(host arrays go through MPI)");
  if (!should_run_kernels()) return NDArray::empty(a.shape(), a.dtype(), a.device());
  // One call at a time: the communicator is made once, and the collectives
  // reach NCCL in the order this thread of every rank issues them.
  std::lock_guard<std::mutex> hold(mutex_);
  comm::NcclComm& nccl = communicator(a.device().id);
  const Device home = Device::gpu(nccl.device());
  NDArray send = a.device() == home ? a.contiguous() : a.to(home);
  NDArray recv = NDArray::empty(a.shape(), a.dtype(), home);
  if (a.numel() > 0) {
    LaneCall lane = enter_comm_lane(send, recv);
    try {
      nccl.all_reduce(lane.send, lane.recv, a.numel(), static_cast<int>(a.dtype()), op, lane.stream);
    } catch (...) {
      leave_comm_lane_after_error(lane, send, recv);  // whatever was queued keeps its arrays fenced
      throw;
    }
    leave_comm_lane(lane, send, recv);
  }
  return a.device() == home ? recv : recv.to(a.device());
}

RankCollectives& mpi_rank_collectives() {
  static RankCollectives* group = [] {
    const comm::MpiWorld world = comm::mpi_world();
    // Leaked on purpose: NCCL must not be torn down by static destructors
    // after MPI and the CUDA runtime may already be gone.
    return new RankCollectives(world.rank, world.size,
                               [](void* data, std::size_t bytes) { comm::mpi_broadcast(data, bytes, 0); });
  }();
  return *group;
}

}  // namespace loom
