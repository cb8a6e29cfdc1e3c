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

// Member m's arguments over the tile at `start`: external inputs in place
// (`stored_elem` bytes an element; single values as themselves, bit k of
// `mask` set; nullptr for an input the backward does not read), earlier
// members' results from their tile buffers.
unsigned member_arguments(const FusedTilePlan& p, std::size_t m, std::int64_t start, std::int64_t stored_elem,
                          const char* tiles_at, const void* in[kMaxTileArity]) {
  const auto elem = static_cast<std::int64_t>(p.elem);
  unsigned mask = 0;
  for (std::size_t k = 0; k < p.refs[m].size(); ++k) {
    const int r = p.refs[m][k];
    if (r >= 0) {
      const char* base = p.inputs[r];
      in[k] = p.scalar[r] || base == nullptr ? base : base + start * stored_elem;
      mask |= p.scalar[r] ? (1U << k) : 0U;
    } else {
      in[k] = tiles_at + static_cast<std::int64_t>(-r - 1) * kTile * elem;
    }
  }
  return mask;
}

// Half storage: every input is read through float copies. Single values
// are widened once (widen_single_values), each other input's tile per tile
// into a float tile of its own at widened_at (widen_input_tiles; inputs
// nobody reads are nullptr and skipped), and use_widened points a member's
// arguments at those copies.
std::vector<float> widen_single_values(const FusedTilePlan& p) {
  std::vector<float> single(p.inputs.size());
  for (std::size_t k = 0; k < single.size(); ++k) {
    if (p.scalar[k] && p.inputs[k] != nullptr) widen(&single[k], p.inputs[k], 1, p.storage);
  }
  return single;
}

void widen_input_tiles(const FusedTilePlan& p, std::int64_t start, std::int64_t n, char* widened_at) {
  for (std::size_t k = 0; k < p.inputs.size(); ++k) {
    if (p.scalar[k] || p.inputs[k] == nullptr) continue;
    widen(reinterpret_cast<float*>(widened_at + static_cast<std::int64_t>(k) * kTile * 4), p.inputs[k] + start * 2,
          n, p.storage);
  }
}

void use_widened(const FusedTilePlan& p, std::size_t m, const std::vector<float>& single, const char* widened_at,
                 const void* in[kMaxTileArity]) {
  for (std::size_t k = 0; k < p.refs[m].size(); ++k) {
    const int r = p.refs[m][k];
    if (r >= 0) {
      in[k] = p.scalar[r] ? static_cast<const void*>(&single[r]) : widened_at + static_cast<std::int64_t>(r) * kTile * 4;
    }
  }
}

template <typename T>
void add_into(char* dst, const char* src, std::int64_t n) {
  T* d = reinterpret_cast<T*>(dst);
  const T* s = reinterpret_cast<const T*>(src);
  for (std::int64_t i = 0; i < n; ++i) d[i] = d[i] + s[i];
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
  const std::vector<float> single = half ? widen_single_values(p) : std::vector<float>();
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
      if (half) widen_input_tiles(p, start, n, widened_at);
      for (std::size_t m = 0; m < members; ++m) {
        const void* in[kMaxTileArity];
        unsigned mask = member_arguments(p, m, start, stored_elem, tiles_at, in);
        if (half) use_widened(p, m, single, widened_at, in);
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

void LOOM_ISA_NAME(run_fused_backward_tiles)(const FusedBackwardPlan& b) {
  const FusedTilePlan& p = b.forward;
  const std::size_t members = p.fns.size(), inputs = p.inputs.size();
  const std::int64_t tiles = (p.n + kTile - 1) / kTile;
  const auto elem = static_cast<std::int64_t>(p.elem);
  // Half arrays: the inputs and the incoming gradient are read through
  // float copies and each gradient is rounded once, from its float tile.
  const bool half = is_half(p.storage);
  const std::int64_t stored_elem = half ? 2 : elem;
  const std::vector<float> single = half ? widen_single_values(p) : std::vector<float>();
  // Large gradients are summed in tile buffers and streamed out, as the
  // forward's result is; smaller ones are summed where they go.
  bool stream = !half && p.n * elem >= kStreamingBytes;
  for (char* g : b.input_grads) stream &= g == nullptr || reinterpret_cast<std::uintptr_t>(g) % kStreamAlign == 0;
#pragma omp parallel if (p.n >= kParallelMin)
  {
    // Tiles: each member's results, each member's gradient, each input's
    // gradient (streamed or half ones), one for a contribution to be
    // added, and for half arrays each input's and the gradient's float copy.
    const std::size_t slots = 2 * members + inputs + 1 + (half ? inputs + 1 : 0);
    std::vector<char> buffer(slots * kTile * p.elem + kStreamAlign);
    char* const results_at =
        buffer.data() + (kStreamAlign - reinterpret_cast<std::uintptr_t>(buffer.data()) % kStreamAlign) % kStreamAlign;
    auto tile = [&](std::size_t slot) { return results_at + static_cast<std::int64_t>(slot) * kTile * elem; };
    char* const scratch = tile(2 * members + inputs);
    char* const widened_at = tile(2 * members + inputs + 1);
    char* const widened_grad = tile(2 * members + 2 * inputs + 1);
    std::vector<unsigned char> member_written(members), input_written(inputs);
    auto arguments = [&](std::size_t m, std::int64_t start, const void* in[kMaxTileArity]) {
      const unsigned mask = member_arguments(p, m, start, stored_elem, results_at, in);
      if (half) use_widened(p, m, single, widened_at, in);
      return mask;
    };
#pragma omp for schedule(static)
    for (std::int64_t t = 0; t < tiles; ++t) {
      const std::int64_t start = t * kTile, n = std::min(kTile, p.n - start);
      const bool streamed = stream && n == kTile;
      const bool buffered = streamed || half;  // input gradients summed in tile buffers
      const void* in[kMaxTileArity];
      if (half) {
        widen_input_tiles(p, start, n, widened_at);
        widen(reinterpret_cast<float*>(widened_grad), b.grad + start * stored_elem, n, p.storage);
      }
      for (std::size_t m = 0; m < members; ++m) {
        if (!b.member_computed[m]) continue;
        const unsigned mask = arguments(m, start, in);
        p.fns[m](in, mask, tile(m), n, p.attrs[m].data());
      }
      std::fill(member_written.begin(), member_written.end(), 0);
      std::fill(input_written.begin(), input_written.end(), 0);
      for (std::size_t m = members; m-- > 0;) {
        if (!b.member_needed[m]) continue;
        const void* grad = m + 1 < members ? tile(members + m) : half ? widened_grad : b.grad + start * elem;
        const unsigned mask = arguments(m, start, in);
        for (std::size_t k = 0; k < p.refs[m].size(); ++k) {
          const TileGradFn fn = b.grad_fns[m][k];
          if (fn == nullptr) continue;
          const int r = p.refs[m][k];
          char* dst = r < 0                 ? tile(members + static_cast<std::size_t>(-r - 1))
                      : buffered            ? tile(2 * members + static_cast<std::size_t>(r))
                                            : b.input_grads[r] + start * elem;
          unsigned char& written = r < 0 ? member_written[-r - 1] : input_written[r];
          // The first contribution lands, later ones are added (the engine's order).
          fn(in, mask, tile(m), grad, written ? scratch : dst, n, p.attrs[m].data());
          if (written && p.elem == 4) add_into<float>(dst, scratch, n);
          if (written && p.elem == 8) add_into<double>(dst, scratch, n);
          written = 1;
        }
      }
      for (std::size_t r = 0; buffered && r < inputs; ++r) {
        if (b.input_grads[r] == nullptr) continue;
        char* const to = b.input_grads[r] + start * stored_elem;
        if (half) {
          narrow(to, reinterpret_cast<const float*>(tile(2 * members + r)), n, p.storage);
        } else if (p.elem == 4) {
          stream_copy(reinterpret_cast<float*>(to), reinterpret_cast<const float*>(tile(2 * members + r)), n);
        } else {
          stream_copy(reinterpret_cast<double*>(to), reinterpret_cast<const double*>(tile(2 * members + r)), n);
        }
      }
    }
    if (stream) stream_fence();
  }
}

}  // inline namespace LOOM_CPU_ISA

#if !defined(LOOM_CPU_ISA_BUILD)
LOOM_ISA_DECLARE(run_fused_tiles, (const FusedTilePlan& p))
LOOM_ISA_DECLARE(run_fused_backward_tiles, (const FusedBackwardPlan& p))

void run_fused_tiles(const FusedTilePlan& p) { LOOM_ISA_CALL(run_fused_tiles, p); }
void run_fused_backward_tiles(const FusedBackwardPlan& p) { LOOM_ISA_CALL(run_fused_backward_tiles, p); }
#endif

}  // namespace loom::kernels
