// Collectives over copies of one array on several GPUs of this process,
// through NCCL (microkernel/comm/nccl_comm.h): what the 'nccl' KVStore and
// data-parallel training use to sum gradients without a trip through the
// host. One communicator per set of devices is made on first use and kept.
//
// Inputs: one array per GPU, each on a different GPU, all with the same
// shape and dtype. Results are new arrays, one on each input's device; the
// inputs are not changed. The work is queued on each device's default
// stream like any loom CUDA kernel.
#pragma once

#include <vector>

#include "microkernel/comm/nccl_comm.h"
#include "runtime/ndarray/ndarray.h"

namespace loom {

// out[k] = op over every input (elementwise), on arrays[k]'s device.
std::vector<NDArray> all_reduce_across_devices(const std::vector<NDArray>& arrays,
                                               comm::ReduceOp op = comm::ReduceOp::kSum);
// out[k] = arrays[root], on arrays[k]'s device.
std::vector<NDArray> broadcast_across_devices(const std::vector<NDArray>& arrays, int root);

}  // namespace loom
