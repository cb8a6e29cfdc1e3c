// Pointwise bodies over one tile of contiguous elements, for fused graphs.
//
// A fused chain of pointwise ops (runtime/graph/fuse_pointwise.h) runs tile
// by tile: each op's body over a few thousand elements held in a per-thread
// buffer, so intermediates stay in cache and never reach DRAM. The
// generator registers a tile function for every pointwise op with at most
// scalar attributes whose result has its inputs' dtype (float32 and
// float64), built from the op's own scalar functor (with its bool
// attributes fixed, as the unfused loop does), so a fused chain computes
// exactly what the ops compute one by one.
#pragma once

#include <array>
#include <cstdint>
#include <utility>

#include "runtime/core/dtype.h"
#include "runtime/kernels/cpu/cpu_isa.h"

namespace loom::kernels {

// in[k]: input k's tile (or its one value, when bit k of `scalars` is set);
// out: the tile's n results; attrs: the node's attributes in declared order
// (floats, ints and bools as doubles; unused by ops without).
using TileFn = void (*)(const void* const* in, unsigned scalars, void* out, std::int64_t n, const double* attrs);

// The op's gradient for one input over a tile, from its YAML formula (the
// scalar functor its first-order backward runs): in/scalars as for TileFn,
// out: the op's results over the tile, grad: the gradient arriving at them;
// dst receives the n gradient values for that input.
using TileGradFn = void (*)(const void* const* in, unsigned scalars, const void* out, const void* grad, void* dst,
                            std::int64_t n, const double* attrs);

// Inputs a tile function takes at most (the fused loops' pointer arrays).
constexpr int kMaxTileArity = 8;

// An op's gradient tile functions as its kernel file registers them: per
// input (arity entries, nullptr where the input takes no gradient or its
// formula is not one scalar functor), and whether every differentiable input has one.
struct TileGrads {
  const TileGradFn* f32 = nullptr;
  const TileGradFn* f64 = nullptr;
  bool complete = false;
};

struct TileKernel {
  int arity = 0;
  TileFn f32 = nullptr;
  TileFn f64 = nullptr;
  int rank = 0;  // which ISA build they come from
  // The backward of a fused group may hold this op: every differentiable
  // input has a gradient tile function; the others take no gradient.
  bool backward = false;
  TileGradFn grad_f32[kMaxTileArity] = {};
  TileGradFn grad_f64[kMaxTileArity] = {};

  TileFn for_dtype(DType d) const { return d == DType::kFloat32 ? f32 : d == DType::kFloat64 ? f64 : nullptr; }
  // nullptr: no gradient flows to input k (with `backward`), or none can be fused.
  TileGradFn grad_for(int k, DType d) const {
    if (k < 0 || k >= arity) return nullptr;
    return d == DType::kFloat32 ? grad_f32[k] : d == DType::kFloat64 ? grad_f64[k] : nullptr;
  }
};

// Each ISA build of an op's kernel file registers its tile functions with
// its rank (0 baseline, 1 AVX2, 2 AVX-512) when the CPU runs it; the highest wins.
bool register_tile_kernel(const char* op, int arity, TileFn f32, TileFn f64, int rank, TileGrads grads = {});
// nullptr when `op` has no tile kernel.
const TileKernel* find_tile_kernel(const char* op);

// The ISA build's own copies (see cpu_isa.h): the same template built for
// AVX-512 must not be the one the linker keeps for the baseline.
inline namespace LOOM_CPU_ISA {
namespace tile_detail {

template <typename T, typename F, unsigned Mask, std::size_t... K>
void tile_loop(const F& functor, const void* const* in, T* out, std::int64_t n, std::index_sequence<K...>) {
  // A local copy: its fields (an op's attributes) cannot alias `out`, so the
  // loop need not reload them after each store.
  const F f = functor;
  const T* p[] = {static_cast<const T*>(in[K])...};
  // Each input either walks the tile or repeats its one value; the mask is
  // a template argument, so every combination is its own vectorised loop.
  for (std::int64_t i = 0; i < n; ++i) out[i] = f(((Mask >> K) & 1U ? p[K][0] : p[K][i])...);
}

template <typename T, typename F, int N, unsigned... M>
constexpr auto tile_table(std::integer_sequence<unsigned, M...>) {
  using Fn = void (*)(const F&, const void* const*, T*, std::int64_t, std::make_index_sequence<N>);
  return std::array<Fn, sizeof...(M)>{&tile_loop<T, F, M>...};
}

}  // namespace tile_detail

template <typename T, typename F, int N>
void tile_apply(const F& f, const void* const* in, unsigned scalars, void* out, std::int64_t n) {
  static constexpr auto table = tile_detail::tile_table<T, F, N>(std::make_integer_sequence<unsigned, (1U << N)>{});
  table[scalars & ((1U << N) - 1)](f, in, static_cast<T*>(out), n, std::make_index_sequence<N>{});
}

}  // inline namespace LOOM_CPU_ISA

}  // namespace loom::kernels
