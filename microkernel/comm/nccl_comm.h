// NCCL collectives among GPUs: the GPU half of the comm layer. The 'nccl'
// KVStore sums gradients among the GPUs of one process with it
// (NcclComm::for_devices), and processes that share a unique id (passed
// over MPI or the scheduler's messages) form one communicator across hosts
// (the NcclComm constructor).
//
// Arguments are device pointers and the runtime's dtype codes
// (runtime/core/dtype.h; the comm layer knows no NDArray). Each collective
// is queued on `stream` (a cudaStream_t of the communicator's device) and
// returns before it runs. The default, nullptr, is the device's kernel
// stream, which orders it after the kernels that wrote its inputs and
// before the ones that read its outputs; on a side stream (the comm lane,
// runtime/comm/device_collectives.h) the caller orders it with
// microkernel/storage/stream_fence.h.
//
// libnccl is opened on first use, not linked (nccl_comm.cc says why); when
// it cannot be loaded, nccl_available() is false and calls throw. Built
// without NCCL (no CUDA toolkit, or no nccl.h with libnccl), every call
// throws kNotImplemented saying what to install.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

namespace loom::comm {

// Built with NCCL and its library loads.
bool nccl_available();
// major * 10000 + minor * 100 + patch of the NCCL loaded (0 without NCCL).
int nccl_version();

// The rendezvous token of a multi-process communicator: one rank makes it,
// the others receive it by any channel.
using NcclUniqueId = std::array<char, 128>;
NcclUniqueId nccl_unique_id();

enum class ReduceOp { kSum, kProd, kMax, kMin, kAvg };

class NcclComm {
 public:
  // One communicator per GPU of this process, rank i on devices[i] (which
  // must be distinct). One thread may drive them all inside nccl_group().
  static std::vector<std::unique_ptr<NcclComm>> for_devices(const std::vector<int>& devices);
  // Rank `rank` of `size` on GPU `device`; blocks until every rank joined.
  NcclComm(const NcclUniqueId& id, int rank, int size, int device);
  ~NcclComm();
  NcclComm(const NcclComm&) = delete;
  NcclComm& operator=(const NcclComm&) = delete;

  int rank() const { return rank_; }
  int size() const { return size_; }
  int device() const { return device_; }

  // recv[i] = op over ranks of send[i] (count elements; send may equal recv).
  void all_reduce(const void* send, void* recv, std::int64_t count, int dtype, ReduceOp op = ReduceOp::kSum,
                  void* stream = nullptr);
  // recv = rank root's send (count elements).
  void broadcast(const void* send, void* recv, std::int64_t count, int dtype, int root, void* stream = nullptr);
  // recv (size * count) = every rank's send (count), in rank order.
  void all_gather(const void* send, void* recv, std::int64_t count, int dtype, void* stream = nullptr);
  // recv (count) = op over ranks of this rank's block of send (size * count).
  void reduce_scatter(const void* send, void* recv, std::int64_t count, int dtype, ReduceOp op = ReduceOp::kSum,
                      void* stream = nullptr);

 private:
  struct Handle;  // the ncclComm_t, so includers need no nccl.h
  NcclComm(std::unique_ptr<Handle> handle, int rank, int size, int device);

  std::unique_ptr<Handle> handle_;
  int rank_, size_, device_;
};

// Runs fn between ncclGroupStart and ncclGroupEnd: the collectives it issues
// on several communicators from this one thread are launched together (one
// thread driving every GPU would deadlock on the first otherwise).
void nccl_group(const std::function<void()>& fn);

}  // namespace loom::comm
