#include "runtime/kernels/cpu/fused_tiles.h"

#include <algorithm>

#include "runtime/core/half.h"
#include "runtime/kernels/cpu/pointwise_cpu.h"  // detail::widen, detail::narrow

#include "runtime/kernels/cpu/isa_dispatch.h"
#include "runtime/kernels/cpu/streaming_store.h"

namespace loom::kernels {
inline namespace LOOM_CPU_ISA {
namespace {

// Elements per tile: 2048 floats (8 KiB) a member, so the inputs' tiles and
// every member's buffer stay in L1 while each loop is long enough to
// vectorise and amortise the calls (1024 and 4096 measured no better).
constexpr std::int64_t kTile = 2048;
// Below this many elements the whole array is one thread's work.
constexpr std::int64_t kParallelMin = std::int64_t{1} << 16;

bool is_half(DType d) { return d == DType::kFloat16 || d == DType::kBFloat16; }

// n half elements at src as float at dst, and back: the unfused kernels'
// conversions (eight at a time with F16C).
void widen(float* dst, const char* src, std::int64_t n, DType storage) {
  if (storage == DType::kFloat16) return detail::widen(reinterpret_cast<const f16*>(src), dst, n);
  detail::widen(reinterpret_cast<const bf16*>(src), dst, n);
}

void narrow(char* dst, const float* src, std::int64_t n, DType storage) {
  if (storage == DType::kFloat16) return detail::narrow(src, reinterpret_cast<f16*>(dst), n);
  detail::narrow(src, reinterpret_cast<bf16*>(dst), n);
}

}  // namespace

void LOOM_ISA_NAME(run_fused_tiles)(const FusedTilePlan& p) {
  const std::size_t members = p.fns.size();
  const std::int64_t tiles = (p.n + kTile - 1) / kTile;
  const auto elem = static_cast<std::int64_t>(p.elem);
  // An output far beyond the caches goes out through streaming stores, as
  // the unfused kernels' do: the root computes into a tile buffer that is
  // then streamed, saving the read-for-ownership of every output line.
  // Half arrays: each input's tile is widened into a float buffer of its
  // own (single values once, up front) and the root's float tile narrowed.
  const bool half = is_half(p.storage);
  const std::int64_t stored_elem = half ? 2 : elem;
  const std::size_t inputs = p.inputs.size();
  std::vector<float> single(half ? inputs : 0);
  for (std::size_t k = 0; k < single.size(); ++k) {
    if (p.scalar[k]) widen(&single[k], p.inputs[k], 1, p.storage);
  }
  const bool stream = !half && p.n * elem >= kStreamingBytes &&
                      reinterpret_cast<std::uintptr_t>(p.out) % kStreamAlign == 0;
#pragma omp parallel if (p.n >= kParallelMin)
  {
    std::vector<char> buffer((members + (half ? inputs : 0)) * kTile * p.elem + kStreamAlign);
    char* const tiles_at =
        buffer.data() + (kStreamAlign - reinterpret_cast<std::uintptr_t>(buffer.data()) % kStreamAlign) % kStreamAlign;
    char* const widened_at = tiles_at + static_cast<std::int64_t>(members) * kTile * elem;
#pragma omp for schedule(static)
    for (std::int64_t t = 0; t < tiles; ++t) {
      const std::int64_t start = t * kTile, n = std::min(kTile, p.n - start);
      char* const final_at = p.out + start * stored_elem;
      const bool streamed = stream && n == kTile;  // whole tiles are 64-byte multiples
      for (std::size_t k = 0; half && k < inputs; ++k) {
        if (!p.scalar[k]) {
          widen(reinterpret_cast<float*>(widened_at + static_cast<std::int64_t>(k) * kTile * elem),
                p.inputs[k] + start * stored_elem, n, p.storage);
        }
      }
      for (std::size_t m = 0; m < members; ++m) {
        const void* in[8];
        unsigned mask = 0;
        for (std::size_t k = 0; k < p.refs[m].size(); ++k) {
          const int r = p.refs[m][k];
          if (r >= 0 && half) {
            in[k] = p.scalar[r] ? static_cast<const void*>(&single[r])
                                : widened_at + static_cast<std::int64_t>(r) * kTile * elem;
            mask |= p.scalar[r] ? (1U << k) : 0U;
          } else if (r >= 0) {
            in[k] = p.scalar[r] ? p.inputs[r] : p.inputs[r] + start * elem;
            mask |= p.scalar[r] ? (1U << k) : 0U;
          } else {
            in[k] = tiles_at + static_cast<std::int64_t>(-r - 1) * kTile * elem;
          }
        }
        const bool root = m + 1 == members;
        char* dst = root && !streamed && !half ? final_at : tiles_at + static_cast<std::int64_t>(m) * kTile * elem;
        p.fns[m](in, mask, dst, n, p.attrs[m].data());
        if (root && half) narrow(final_at, reinterpret_cast<const float*>(dst), n, p.storage);
        if (root && streamed) {
          if (p.elem == 4) {
            stream_copy(reinterpret_cast<float*>(final_at), reinterpret_cast<const float*>(dst), n);
          } else {
            stream_copy(reinterpret_cast<double*>(final_at), reinterpret_cast<const double*>(dst), n);
          }
        }
      }
    }
    if (stream) stream_fence();
  }
}

}  // inline namespace LOOM_CPU_ISA

#if !defined(LOOM_CPU_ISA_BUILD)
LOOM_ISA_DECLARE(run_fused_tiles, (const FusedTilePlan& p))

void run_fused_tiles(const FusedTilePlan& p) { LOOM_ISA_CALL(run_fused_tiles, p); }
#endif

}  // namespace loom::kernels
