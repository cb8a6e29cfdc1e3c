// shuffle_seeded (opdefs/random/shuffle.yaml): the permutation of x's rows
// that sorts their Philox keys, computed on the host (a sort of one double
// per row), and the rows gathered by it: here on the CPU, by take's kernel
// on a GPU. The gradient (autograd::unshuffle) takes the inverse.
#include <algorithm>
#include <cstring>
#include <numeric>
#include <vector>

#include "generated/kernels/shuffle_seeded.h"
#include "generated/kernels/take.h"
#include "microkernel/base/error.h"
#include "runtime/kernels/shuffle.h"
#include "runtime/random/philox.h"

namespace loom::kernels {

std::vector<std::int64_t> shuffle_permutation(std::int64_t rows, std::int64_t seed, std::int64_t offset) {
  // Row r's key is lm.random.uniform's float64 draw at offset + r.
  std::vector<double> keys(static_cast<std::size_t>(rows));
  for (std::int64_t r = 0; r < rows; ++r) {
    keys[r] = random::unit_double(random::philox_element(static_cast<std::uint64_t>(seed),
                                                         static_cast<std::uint64_t>(offset),
                                                         static_cast<std::uint64_t>(r)));
  }
  std::vector<std::int64_t> perm(static_cast<std::size_t>(rows));
  std::iota(perm.begin(), perm.end(), 0);
  std::stable_sort(perm.begin(), perm.end(), [&](std::int64_t a, std::int64_t b) { return keys[a] < keys[b]; });
  return perm;
}

Shape infer_shuffle_seeded(const NDArray& x, std::int64_t /*seed*/, std::int64_t /*offset*/) {
  LOOM_CHECK(x.ndim() >= 1, "shuffle: needs an array with a first dim to permute, got ", x.describe());
  return x.shape();
}

void shuffle_seeded_into(NDArray& out, const NDArray& x, std::int64_t seed, std::int64_t offset) {
  const std::int64_t rows = x.shape()[0];
  if (out.numel() == 0) return;
  const std::vector<std::int64_t> perm = shuffle_permutation(rows, seed, offset);
  if (out.device().is_cpu()) {
    const NDArray src = x.contiguous();
    const std::size_t row_bytes = static_cast<std::size_t>(src.nbytes() / rows);
    const auto* in = static_cast<const unsigned char*>(src.raw_data());
    auto* dst = static_cast<unsigned char*>(out.raw_data());
    for (std::int64_t r = 0; r < rows; ++r) std::memcpy(dst + r * row_bytes, in + perm[r] * row_bytes, row_bytes);
    return;
  }
#if LOOM_WITH_CUDA
  const NDArray indices = NDArray::from_host(perm.data(), rows, {rows}, DType::kInt64, out.device());
  take_cuda(out, x, indices, 0);
#endif
}

}  // namespace loom::kernels
