// Collectives across the processes of a job, one GPU each, through one NCCL
// communicator: all-reduce (how 'dist_sync_allreduce' sums GPU gradients
// without a trip through the host, kvstore/allreduce.py), broadcast,
// all-gather and reduce-scatter.
//
// The communicator is made on the first call, on that array's GPU: rank 0
// draws NCCL's unique id and `share` hands rank 0's bytes to every rank
// (MPI's broadcast in a job started by mpirun or srun, a message over the
// job's ZeroMQ group under loom.launch: kvstore/ranks.py). Every rank must
// make the same calls in the same order, like any collective; the first
// one is a rendezvous of all ranks. Arrays on another GPU of the process
// are copied to the communicator's GPU and the result back, so that one
// communicator serves the whole process (making a second one would be a
// rendezvous only this rank takes part in).
//
// The work runs on the GPU's comm lane (comm_lane.h): the result is a new
// array, the input is unchanged, and neither is touched by a kernel before
// the collective has finished with it.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <mutex>

#include "microkernel/comm/nccl_comm.h"
#include "runtime/comm/comm_lane.h"
#include "runtime/ndarray/ndarray.h"

namespace loom {

class RankCollectives {
 public:
  // Replaces `bytes` bytes at `data` on every rank with rank 0's.
  using ShareBytes = std::function<void(void* data, std::size_t bytes)>;

  RankCollectives(int rank, int size, ShareBytes share);
  ~RankCollectives();
  RankCollectives(const RankCollectives&) = delete;
  RankCollectives& operator=(const RankCollectives&) = delete;

  int rank() const { return rank_; }
  int size() const { return size_; }
  // The communicator's GPU, or -1 before the first call.
  int device() const;

  // Each returns a new array on a's device; every rank passes an array of
  // the same shape and dtype.
  // op over every rank's `a`.
  NDArray all_reduce(const NDArray& a, comm::ReduceOp op = comm::ReduceOp::kSum);
  // Rank `root`'s `a`.
  NDArray broadcast(const NDArray& a, int root = 0);
  // (size, *a.shape): every rank's `a`, stacked in rank order.
  NDArray all_gather(const NDArray& a);
  // For `a` of shape (size, *rest): op over the ranks' blocks a[rank], of shape rest.
  NDArray reduce_scatter(const NDArray& a, comm::ReduceOp op = comm::ReduceOp::kSum);

 private:
  comm::NcclComm& communicator(int device);
  // The steps every collective shares: checks, the communicator, a copy to
  // its GPU and back, the comm lane and its fences; `issue` queues NCCL.
  NDArray run(const char* what, const NDArray& a, const Shape& out_shape,
              const std::function<void(comm::NcclComm&, const LaneCall&)>& issue);

  int rank_, size_;
  ShareBytes share_;
  mutable std::mutex mutex_;  // held by all_reduce (see there) and device()
  std::unique_ptr<comm::NcclComm> comm_;
};

// The job's RankCollectives over MPI (mpi_world.h): made on first use, kept
// for the process.
RankCollectives& mpi_rank_collectives();

}  // namespace loom
