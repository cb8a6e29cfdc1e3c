#include "runtime/kernels/cpu/tile_kernels.h"

#include <map>
#include <string>

namespace loom::kernels {
namespace {

// Filled by static initialisers, read-only afterwards.
std::map<std::string, TileKernel, std::less<>>& table() {
  static std::map<std::string, TileKernel, std::less<>> kernels;
  return kernels;
}

}  // namespace

bool register_tile_kernel(const char* op, int arity, TileFn f32, TileFn f64, int rank, TileGrads grads) {
  if (arity > kMaxTileArity) return false;  // the fused loops cannot call it
  auto [it, fresh] = table().try_emplace(op);
  if (!fresh && rank <= it->second.rank) return true;
  TileKernel k{arity, f32, f64, rank};
  k.backward = grads.complete;
  for (int i = 0; i < arity; ++i) {
    k.grad_f32[i] = grads.f32 != nullptr ? grads.f32[i] : nullptr;
    k.grad_f64[i] = grads.f64 != nullptr ? grads.f64[i] : nullptr;
  }
  it->second = k;
  return true;
}

const TileKernel* find_tile_kernel(const char* op) {
  auto it = table().find(op);
  return it == table().end() ? nullptr : &it->second;
}

}  // namespace loom::kernels
