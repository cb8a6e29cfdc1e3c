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

NDArray RankCollectives::run(const char* what, const NDArray& a, const Shape& out_shape,
                             const std::function<void(comm::NcclComm&, const LaneCall&)>& issue) {
  LOOM_CHECK(a.defined(), what, ": the array is undefined");
  LOOM_CHECK(a.device().is_gpu(), what, ": ", a.describe(), " is on the host; NCCL works on GPU arrays "
             "(host arrays go through MPI or the launcher's group)");
  if (!should_run_kernels()) return NDArray::empty(out_shape, a.dtype(), a.device());
  // One call at a time: the communicator is made once, and the collectives
  // reach NCCL in the order this thread of every rank issues them.
  std::lock_guard<std::mutex> hold(mutex_);
  comm::NcclComm& nccl = communicator(a.device().id);
  const Device home = Device::gpu(nccl.device());
  NDArray send = a.device() == home ? a.contiguous() : a.to(home);
  NDArray recv = NDArray::empty(out_shape, a.dtype(), home);
  if (a.numel() > 0) {
    LaneCall lane = enter_comm_lane(send, recv);
    try {
      issue(nccl, lane);
    } catch (...) {
      leave_comm_lane_after_error(lane, send, recv);  // whatever was queued keeps its arrays fenced
      throw;
    }
    leave_comm_lane(lane, send, recv);
  }
  return a.device() == home ? recv : recv.to(a.device());
}

NDArray RankCollectives::all_reduce(const NDArray& a, comm::ReduceOp op) {
  return run("all_reduce across ranks", a, a.defined() ? a.shape() : Shape{},
             [&](comm::NcclComm& nccl, const LaneCall& lane) {
               nccl.all_reduce(lane.send, lane.recv, a.numel(), static_cast<int>(a.dtype()), op, lane.stream);
             });
}

NDArray RankCollectives::broadcast(const NDArray& a, int root) {
  LOOM_CHECK(root >= 0 && root < size_, "broadcast across ranks: root ", root, " is outside a job of ", size_);
  return run("broadcast across ranks", a, a.defined() ? a.shape() : Shape{},
             [&](comm::NcclComm& nccl, const LaneCall& lane) {
               nccl.broadcast(lane.send, lane.recv, a.numel(), static_cast<int>(a.dtype()), root, lane.stream);
             });
}

NDArray RankCollectives::all_gather(const NDArray& a) {
  Shape stacked = a.defined() ? a.shape() : Shape{};
  stacked.insert(stacked.begin(), size_);
  return run("all_gather across ranks", a, stacked, [&](comm::NcclComm& nccl, const LaneCall& lane) {
    nccl.all_gather(lane.send, lane.recv, a.numel(), static_cast<int>(a.dtype()), lane.stream);
  });
}

NDArray RankCollectives::reduce_scatter(const NDArray& a, comm::ReduceOp op) {
  Shape rest;
  if (a.defined()) {
    const Shape& shape = a.shape();
    LOOM_CHECK(!shape.empty() && shape[0] == size_, "reduce_scatter across ranks: ", a.describe(),
               " must have shape (", size_, ", ...), one block per rank");
    rest.assign(shape.begin() + 1, shape.end());
  }
  return run("reduce_scatter across ranks", a, rest, [&](comm::NcclComm& nccl, const LaneCall& lane) {
    nccl.reduce_scatter(lane.send, lane.recv, a.numel() / size_, static_cast<int>(a.dtype()), op, lane.stream);
  });
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
