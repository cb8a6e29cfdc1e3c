#include "runtime/core/dtype.h"

#include <array>

#include "microkernel/base/error.h"

namespace loom {
namespace {

struct DTypeInfo {
  std::string_view name;
  std::size_t size;
  bool floating;
  bool is_signed;
};

constexpr std::array<DTypeInfo, kNumDTypes> kInfo = {{
    {"float32", 4, true, true},
    {"float64", 8, true, true},
    {"float16", 2, true, true},
    {"bfloat16", 2, true, true},
    {"int8", 1, false, true},
    {"uint8", 1, false, false},
    {"int32", 4, false, true},
    {"int64", 8, false, true},
    {"bool", 1, false, false},
}};

const DTypeInfo& info(DType t) { return kInfo[static_cast<int>(t)]; }

}  // namespace

std::string_view dtype_name(DType t) { return info(t).name; }
std::size_t dtype_size(DType t) { return info(t).size; }
bool is_floating(DType t) { return info(t).floating; }

DType dtype_from_name(std::string_view name) {
  for (int i = 0; i < kNumDTypes; ++i) {
    if (kInfo[i].name == name) return static_cast<DType>(i);
  }
  std::string valid;
  for (const auto& i : kInfo) valid += (valid.empty() ? "" : ", ") + std::string(i.name);
  LOOM_THROW(ErrorKind::kType, "unknown dtype '", name, "' (expected one of ", valid, ")");
}

DType promote_types(DType a, DType b) {
  if (a == b) return a;
  const DTypeInfo &ia = info(a), &ib = info(b);
  if (a == DType::kBool) return b;
  if (b == DType::kBool) return a;
  if (ia.floating != ib.floating) return ia.floating ? a : b;
  if (ia.floating) {
    // f16 with bf16 has no exact common 16-bit type: NumPy-free rule, as in
    // PyTorch, is float32.
    if (ia.size == ib.size) return DType::kFloat32;
    return ia.size > ib.size ? a : b;
  }
  if (ia.is_signed == ib.is_signed) return ia.size >= ib.size ? a : b;
  // Signed meets unsigned: the signed type must be strictly wider.
  const DTypeInfo& s = ia.is_signed ? ia : ib;
  const DTypeInfo& u = ia.is_signed ? ib : ia;
  if (s.size > u.size) return ia.is_signed ? a : b;
  // Only int8 with uint8 gets here (loom has no int16): int32 holds both.
  return DType::kInt32;
}

}  // namespace loom
