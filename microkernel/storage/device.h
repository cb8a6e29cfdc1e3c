// Where memory lives. Shared by the storage allocators and everything above.
#pragma once

#include <string>

namespace loom {

enum class DeviceType { kCPU = 0, kGPU = 1 };

struct Device {
  DeviceType type = DeviceType::kCPU;
  int id = 0;

  static Device cpu() { return {DeviceType::kCPU, 0}; }
  static Device gpu(int id) { return {DeviceType::kGPU, id}; }
  bool is_cpu() const { return type == DeviceType::kCPU; }
  bool is_gpu() const { return type == DeviceType::kGPU; }
  bool operator==(const Device& o) const { return type == o.type && id == o.id; }
  bool operator!=(const Device& o) const { return !(*this == o); }
  // "cpu(0)" / "gpu(1)", the spelling of lm.cpu() / lm.gpu(1).
  std::string str() const {
    return std::string(is_cpu() ? "cpu(" : "gpu(") + std::to_string(id) + ")";
  }
};

}  // namespace loom
