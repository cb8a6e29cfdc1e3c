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

bool register_tile_kernel(const char* op, int arity, TileFn f32, TileFn f64, int rank) {
  auto [it, fresh] = table().try_emplace(op);
  if (fresh || rank > it->second.rank) it->second = TileKernel{arity, f32, f64, rank};
  return true;
}

const TileKernel* find_tile_kernel(const char* op) {
  auto it = table().find(op);
  return it == table().end() ? nullptr : &it->second;
}

}  // namespace loom::kernels
