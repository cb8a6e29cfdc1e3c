// x[index] = value recorded by autograd (runtime/autograd/assign.h): values,
// gradients into both sides, and the refusals, in C++ (so the sanitizer
// builds run them too).
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "loom/ops/mul.h"
#include "loom/ops/sum.h"
#include "microkernel/base/error.h"
#include "runtime/autograd/assign.h"
#include "runtime/autograd/backward.h"
#include "runtime/autograd/grad_mode.h"
#include "runtime/autograd/record.h"
#include "tests/cpp/test_arrays.h"

namespace loom::autograd {
namespace {

NDArray vec(const std::vector<double>& v) { return test::doubles(v); }
std::vector<double> values(const NDArray& a) { return test::values_of<double>(a); }

BasicIndex slice(std::int64_t start, std::int64_t size) {
  BasicIndex index;
  index.dims.push_back({start, 1, size, true});
  return index;
}

TEST(Assign, GradientsReachTheOldValueAndTheAssignedOne) {
  NDArray x = vec({1, 2, 3, 4}), y = vec({10, 20});
  attach_grad(x, GradReq::kWrite);
  attach_grad(y, GradReq::kWrite);
  NDArray loss;
  {
    ModeScope record(true, true);
    NDArray z = op::mul(x, vec({2, 2, 2, 2}));
    assign(z, slice(1, 2), op::mul(y, y));
    EXPECT_EQ(values(z), (std::vector<double>{2, 100, 400, 8}));
    loss = op::sum(op::mul(z, vec({1, 2, 3, 4})));
  }
  backward({loss}, {}, {});
  EXPECT_EQ(values(x.autograd_meta()->grad), (std::vector<double>{2, 0, 0, 8}));
  EXPECT_EQ(values(y.autograd_meta()->grad), (std::vector<double>{40, 120}));
}

TEST(Assign, RefusesALeafThatRequiresGrad) {
  NDArray x = vec({1, 2});
  attach_grad(x, GradReq::kWrite);
  ModeScope record(true, true);
  try {
    assign(x, slice(0, 1), vec({5}));
    FAIL() << "assigning into a leaf that requires grad was recorded";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("is a leaf that requires grad"), std::string::npos) << e.what();
  }
}

TEST(Assign, PlainWriteWithoutRecording) {
  NDArray x = vec({1, 2, 3});
  assign(x, slice(1, 2), vec({7}));  // broadcast
  EXPECT_EQ(values(x), (std::vector<double>{1, 7, 7}));
  EXPECT_THROW(assign(x, slice(0, 2), vec({1, 2, 3})), Error);
}

}  // namespace
}  // namespace loom::autograd
