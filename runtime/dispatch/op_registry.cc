#include "runtime/dispatch/op_registry.h"

#include <algorithm>
#include <map>
#include <utility>

#include "microkernel/base/error.h"

namespace loom {
namespace {

// Created on first use, so registration order across files does not matter.
std::map<std::string, OpInfo>& table() {
  static std::map<std::string, OpInfo> ops;
  return ops;
}

}  // namespace

bool register_op(OpInfo info) {
  auto [it, inserted] = table().emplace(info.name, info);
  LOOM_CHECK_KIND(inserted, ErrorKind::kRuntime, "operator '", info.name, "' is registered twice: ",
                  it->second.source, " and ", info.source);
  return true;
}

std::vector<OpInfo> registered_ops() {
  std::vector<OpInfo> out;
  for (const auto& [name, info] : table()) out.push_back(info);
  return out;
}

const OpInfo* find_op(const std::string& name) {
  auto it = table().find(name);
  return it == table().end() ? nullptr : &it->second;
}

}  // namespace loom
