// The backward loop of fused pointwise groups (runtime/kernels/cpu/fused_tiles.h)
// on relu(a*b + a), with the generated gradient tile functions, against the
// formulas written out per element: whole and ragged tiles, several
// threads' shares, a single-value input, and gradients not wanted. Runs
// under the sanitizers, which watch its tile buffers.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "runtime/core/half.h"
#include "runtime/kernels/cpu/fused_tiles.h"
#include "runtime/kernels/cpu/tile_kernels.h"

namespace loom::kernels {
namespace {

struct Case {
  std::vector<double> a, b, grad;
  std::vector<double> ga, gb;  // what the kernel wrote
};

// relu(a*b + a): members mul(x0, x1), add(m0, x0), relu(m1).
FusedBackwardPlan relu_mul_add_plan(std::int64_t n, bool b_scalar, bool want_a, bool want_b) {
  const TileKernel* mul = find_tile_kernel("mul");
  const TileKernel* add = find_tile_kernel("add");
  const TileKernel* relu = find_tile_kernel("relu");
  FusedBackwardPlan p;
  p.forward.fns = {mul->f64, add->f64, relu->f64};
  p.forward.refs = {{0, 1}, {-1, 0}, {-2}};
  p.forward.attrs = {{}, {}, {}};
  p.forward.scalar = {0, static_cast<unsigned char>(b_scalar)};
  p.forward.n = n;
  p.forward.elem = sizeof(double);
  p.forward.storage = DType::kFloat64;
  // relu -> add (both arguments: m0 and a) -> mul (a and b, as wanted)
  p.grad_fns = {{want_a ? mul->grad_f64[0] : nullptr, want_b ? mul->grad_f64[1] : nullptr},
                {want_b || want_a ? add->grad_f64[0] : nullptr, want_a ? add->grad_f64[1] : nullptr},
                {relu->grad_f64[0]}};
  p.member_needed = {static_cast<unsigned char>(want_a || want_b), 1, 1};
  p.member_computed = {1, 1, 1};  // relu's formula reads its result, so every member
  return p;
}

void run(Case& c, bool b_scalar, bool want_a, bool want_b) {
  const auto n = static_cast<std::int64_t>(c.a.size());
  FusedBackwardPlan p = relu_mul_add_plan(n, b_scalar, want_a, want_b);
  c.ga.assign(c.a.size(), -7.0);
  c.gb.assign(c.a.size(), -7.0);
  p.forward.inputs = {reinterpret_cast<const char*>(c.a.data()), reinterpret_cast<const char*>(c.b.data())};
  p.grad = reinterpret_cast<const char*>(c.grad.data());
  p.input_grads = {want_a ? reinterpret_cast<char*>(c.ga.data()) : nullptr,
                   want_b ? reinterpret_cast<char*>(c.gb.data()) : nullptr};
  run_fused_backward_tiles(p);
}

Case make(std::size_t n, std::size_t b_size) {
  Case c;
  for (std::size_t i = 0; i < n; ++i) {
    c.a.push_back(std::sin(0.37 * static_cast<double>(i)));
    c.grad.push_back(std::cos(0.11 * static_cast<double>(i)) + 0.5);
  }
  for (std::size_t i = 0; i < b_size; ++i) c.b.push_back(std::cos(0.73 * static_cast<double>(i)) * 1.5);
  return c;
}

TEST(FusedBackward, EveryMemberHasGradientTileFunctions) {
  for (const char* op : {"mul", "add", "relu", "floor"}) {
    const TileKernel* k = find_tile_kernel(op);
    ASSERT_NE(k, nullptr) << op;
    EXPECT_TRUE(k->backward) << op;
  }
  EXPECT_NE(find_tile_kernel("mul")->grad_for(1, DType::kFloat32), nullptr);
  EXPECT_EQ(find_tile_kernel("floor")->grad_for(0, DType::kFloat64), nullptr);  // takes no gradient
  EXPECT_EQ(find_tile_kernel("mul")->grad_for(2, DType::kFloat32), nullptr);    // no such input
  EXPECT_EQ(find_tile_kernel("mul")->grad_for(0, DType::kFloat16), nullptr);    // the tiles are float32/float64
}

TEST(FusedBackward, MatchesTheFormulasOverWholeAndRaggedTilesAndThreads) {
  for (std::size_t n : {1U, 7U, 2048U, 2049U, 70001U}) {
    Case c = make(n, n);
    run(c, false, true, true);
    for (std::size_t i = 0; i < n; ++i) {
      const double a = c.a[i], b = c.b[i], g = c.grad[i];
      const double g1 = g * (a * b + a > 0 ? 1.0 : 0.0);
      // the engine's order: add's two arguments, then mul's (g1 + g1*b for a)
      ASSERT_EQ(c.ga[i], g1 + g1 * b) << "n " << n << " at " << i;
      ASSERT_EQ(c.gb[i], g1 * a) << "n " << n << " at " << i;
    }
  }
}

TEST(FusedBackward, ASingleValueInputAndOnlyOneGradientWanted) {
  Case c = make(5000, 1);
  run(c, true, true, false);
  for (std::size_t i = 0; i < c.a.size(); ++i) {
    const double a = c.a[i], b = c.b[0], g = c.grad[i];
    const double g1 = g * (a * b + a > 0 ? 1.0 : 0.0);
    ASSERT_EQ(c.ga[i], g1 + g1 * b) << i;
    ASSERT_EQ(c.gb[i], -7.0) << i;  // not wanted: untouched
  }
}

TEST(FusedBackward, HalfArraysAreWidenedPerTileAndEachGradientRoundedOnce) {
  // float16 inputs and gradient, the float tile functions: each gradient is
  // the float computation rounded once
  const std::size_t n = 5003;  // two whole tiles and a ragged one
  std::vector<f16> a(n), b(n), grad(n), ga(n, f16(-7.0F)), gb(n, f16(-7.0F));
  for (std::size_t i = 0; i < n; ++i) {
    a[i] = f16(std::sin(0.37F * static_cast<float>(i)));
    b[i] = f16(std::cos(0.73F * static_cast<float>(i)) * 1.5F);
    grad[i] = f16(std::cos(0.11F * static_cast<float>(i)) + 0.5F);
  }
  const TileKernel* mul = find_tile_kernel("mul");
  const TileKernel* add = find_tile_kernel("add");
  const TileKernel* relu = find_tile_kernel("relu");
  ASSERT_TRUE(mul && add && relu);
  FusedBackwardPlan p;
  p.forward.fns = {mul->f32, add->f32, relu->f32};
  p.forward.refs = {{0, 1}, {-1, 0}, {-2}};
  p.forward.attrs = {{}, {}, {}};
  p.forward.scalar = {0, 0};
  p.forward.n = static_cast<std::int64_t>(n);
  p.forward.elem = sizeof(float);
  p.forward.storage = DType::kFloat16;
  p.grad_fns = {{mul->grad_f32[0], mul->grad_f32[1]}, {add->grad_f32[0], add->grad_f32[1]}, {relu->grad_f32[0]}};
  p.member_needed = {1, 1, 1};
  p.member_computed = {1, 1, 1};
  p.forward.inputs = {reinterpret_cast<const char*>(a.data()), reinterpret_cast<const char*>(b.data())};
  p.grad = reinterpret_cast<const char*>(grad.data());
  p.input_grads = {reinterpret_cast<char*>(ga.data()), reinterpret_cast<char*>(gb.data())};
  run_fused_backward_tiles(p);
  for (std::size_t i = 0; i < n; ++i) {
    const float x = a[i], y = b[i], g = grad[i];
    const float m0 = x * y, m1 = m0 + x;
    const float g1 = g * (m1 > 0 ? 1.0F : 0.0F);
    ASSERT_EQ(static_cast<float>(ga[i]), static_cast<float>(f16(g1 + g1 * y))) << i;
    ASSERT_EQ(static_cast<float>(gb[i]), static_cast<float>(f16(g1 * x))) << i;
  }
}

}  // namespace
}  // namespace loom::kernels
