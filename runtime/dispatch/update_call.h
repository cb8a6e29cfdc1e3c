// What a generated update op (kernel.update in its YAML: a fused optimizer
// step such as adam_update) does around its kernel: check that every array
// has one shape, one device and the updated arrays' dtype, hand the kernel
// dense buffers, and write the updated values back where an updated array
// is not dense.
//
//   UpdateCall call = prepare_update("sgd_mom_update", {{"weight", &w}, {"grad", &g}, {"mom", &m}}, {0, 2});
//   kernels::sgd_mom_update_cpu(call, f);
//   call.finish();
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string_view>
#include <vector>

#include "runtime/dispatch/pointwise_call.h"

namespace loom {

struct UpdateCall {
  std::vector<NDArray> arrays;   // dense, in argument order, all of one dtype and shape
  std::int64_t n = 0;            // elements in each
  // Updated arguments that were not dense: the dense stand-in in `arrays`
  // is copied back into the argument by finish().
  std::vector<std::pair<NDArray, NDArray>> write_back;  // (argument, stand-in)
  // `arrays` split by access, for the engine: what the kernel only reads,
  // and what it updates.
  std::vector<NDArray> reads, writes;

  void finish();
};

// `mutated` holds the positions in `inputs` of the arrays the op updates:
// they must have the first one's dtype and share no memory with any other
// argument; the others are converted to that dtype. Every updated array's
// version is bumped.
UpdateCall prepare_update(std::string_view op, std::initializer_list<NamedInput> inputs,
                          std::initializer_list<int> mutated);

}  // namespace loom
