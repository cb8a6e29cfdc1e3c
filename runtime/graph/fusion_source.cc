#include "runtime/graph/fusion_source.h"

#include <map>
#include <string>

namespace loom::graph {
namespace {

// Filled by static initialisers (generated/graph/<op>.cc), read-only afterwards.
std::map<std::string, FusionSource, std::less<>>& table() {
  static std::map<std::string, FusionSource, std::less<>> sources;
  return sources;
}

}  // namespace

bool register_fusion_source(const char* op, int arity, const char* functor, const char* attr_types,
                            const char* text) {
  table()[op] = FusionSource{arity, functor, attr_types, text};
  return true;
}

const FusionSource* find_fusion_source(std::string_view op) {
  auto it = table().find(op);
  return it == table().end() ? nullptr : &it->second;
}

}  // namespace loom::graph
