// The dtype gate every generated op starts with: built dtypes pass, dtypes
// a spec declares but whose kernels are not generated (update ops in
// float16) are kNotImplemented, anything else kType, each naming the op.
#include <gtest/gtest.h>

#include <string>

#include "microkernel/base/error.h"
#include "runtime/dispatch/pointwise_call.h"

namespace loom {
namespace {

ErrorKind kind_of(DType dtype) {
  try {
    check_op_dtype("probe", dtype, {DType::kFloat32, DType::kFloat64}, {DType::kFloat16});
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("probe"), std::string::npos) << e.what();
    return e.kind();
  }
  return ErrorKind::kRuntime;  // stands for "accepted" here
}

TEST(DispatchChecks, DtypeGateSaysWhatIsMissing) {
  EXPECT_EQ(kind_of(DType::kFloat32), ErrorKind::kRuntime);
  EXPECT_EQ(kind_of(DType::kFloat16), ErrorKind::kNotImplemented);
  EXPECT_EQ(kind_of(DType::kInt32), ErrorKind::kType);
}

}  // namespace
}  // namespace loom
