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

// The three registrations of one op run in its file's order, but each
// keeps what the others set.
bool register_fusion_source(const char* op, int arity, const char* functor, const char* attr_types,
                            const char* text) {
  FusionSource& s = table()[op];
  s.arity = arity;
  s.functor = functor;
  s.attr_types = attr_types;
  s.text = text;
  return true;
}

bool register_fusion_grad_source(const char* op, int input, const char* functor, const char* operands,
                                 const char* text) {
  if (input < 0 || input >= kMaxFusionArity) return false;
  table()[op].grads[input] = FusionGradSource{functor, operands, text};
  return true;
}

bool register_fusion_backward(const char* op) {
  table()[op].backward = true;
  return true;
}

const FusionSource* find_fusion_source(std::string_view op) {
  auto it = table().find(op);
  return it == table().end() ? nullptr : &it->second;
}

}  // namespace loom::graph
