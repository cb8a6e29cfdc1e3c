// Collectives over copies of one array on several GPUs of this process,
// through NCCL (microkernel/comm/nccl_comm.h): what the 'nccl' KVStore and
// data-parallel training use to sum gradients without a trip through the
// host. One communicator per set of devices is made on first use and kept.
//
// Inputs: one array per GPU, each on a different GPU, all with the same
// shape and dtype. Results are new arrays, one on each input's device; the
// inputs are not changed.
//
// The comm lane: each collective runs on a stream of its own per device,
// not on the kernel stream, so that it overlaps the kernels queued after
// it (the rest of a backward pass, the update of another parameter). It
// starts after every kernel queued before the call, and the inputs and
// results carry a fence (Storage::add_fence): the first kernel or copy
// that touches one of them afterwards, to read a result or to overwrite an
// input, waits for the collective on the device; nothing else does, and
// the host never waits.
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
// out[k] (shape (n, *shape)) stacks every input in order, on arrays[k]'s device.
std::vector<NDArray> all_gather_across_devices(const std::vector<NDArray>& arrays);
// Inputs of shape (n, *rest) for n arrays: out[k] (shape rest) = op over j
// of arrays[j][k], on arrays[k]'s device.
std::vector<NDArray> reduce_scatter_across_devices(const std::vector<NDArray>& arrays,
                                                   comm::ReduceOp op = comm::ReduceOp::kSum);

}  // namespace loom
