// The vectorisable float exp/log/tanh/erf against double-precision libm, over
// wide ranges and the special values: the error is measured in ulps of the
// correctly rounded float result.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>

#include "runtime/kernels/cpu/fast_math.h"

namespace loom::pw::fast {
namespace {

double ulp_error(float got, double want) {
  const float rounded = static_cast<float>(want);
  if (got == rounded) return 0;
  const float ulp = std::nextafter(std::fabs(rounded), std::numeric_limits<float>::infinity()) -
                    std::fabs(rounded);
  return std::fabs(static_cast<double>(got) - want) / ulp;
}

template <typename F, typename Ref>
double max_ulp(F f, Ref ref, float lo, float hi, int steps) {
  double worst = 0;
  for (int i = 0; i <= steps; ++i) {
    const float x = lo + (hi - lo) * static_cast<float>(i) / static_cast<float>(steps);
    worst = std::max(worst, ulp_error(f(x), ref(static_cast<double>(x))));
  }
  return worst;
}

TEST(FastMath, ExpIsWithinTwoUlpsAcrossItsRange) {
  EXPECT_LE(max_ulp([](float x) { return exp(x); }, [](double x) { return std::exp(x); },
                    -87.0f, 88.7f, 200000), 2.0);
  // Subnormal results underflow gradually, as libm's (within the rounding of
  // the scaled polynomial), down to 0 below e^-103.97.
  for (float x : {-88.0f, -95.5f, -100.0f, -103.0f}) {
    EXPECT_NEAR(exp(x), std::exp(static_cast<double>(x)), 2 * std::numeric_limits<float>::denorm_min()) << x;
  }
  EXPECT_EQ(exp(-104.0f), 0.0f);
  EXPECT_LE(ulp_error(exp(88.72283f), std::exp(static_cast<double>(88.72283f))), 2.0);  // the largest finite
  EXPECT_EQ(exp(88.7229f), std::numeric_limits<float>::infinity());
  EXPECT_EQ(exp(0.0f), 1.0f);
  EXPECT_EQ(exp(89.0f), std::numeric_limits<float>::infinity());
  EXPECT_EQ(exp(-1000.0f), 0.0f);
  EXPECT_EQ(exp(std::numeric_limits<float>::infinity()), std::numeric_limits<float>::infinity());
  EXPECT_EQ(exp(-std::numeric_limits<float>::infinity()), 0.0f);
  EXPECT_TRUE(std::isnan(exp(std::numeric_limits<float>::quiet_NaN())));
}

TEST(FastMath, LogIsWithinTwoUlpsFromSubnormalsToHuge) {
  double worst = 0;
  // Geometric steps, but at least one float apart (x * 1.0007 rounds back to
  // x among the subnormals).
  for (float x = 1e-44f; x < 3e38f;
       x = std::max(x * 1.0007f, std::nextafter(x, std::numeric_limits<float>::infinity()))) {
    worst = std::max(worst, ulp_error(log(x), std::log(static_cast<double>(x))));
  }
  EXPECT_LE(worst, 2.0);
  EXPECT_EQ(log(1.0f), 0.0f);
  EXPECT_EQ(log(0.0f), -std::numeric_limits<float>::infinity());
  EXPECT_TRUE(std::isnan(log(-1.0f)));
  EXPECT_EQ(log(std::numeric_limits<float>::infinity()), std::numeric_limits<float>::infinity());
  EXPECT_TRUE(std::isnan(log(std::numeric_limits<float>::quiet_NaN())));
}

TEST(FastMath, TanhIsWithinSixUlpsAndSaturates) {
  // A rational approximation (see fast_math.h): within 6 ulp everywhere
  // (the worst cases sit near |x| = 8, within 1e-6 of 1), 2 near 0.
  EXPECT_LE(max_ulp([](float x) { return tanh(x); }, [](double x) { return std::tanh(x); },
                    -10.0f, 10.0f, 200000), 6.0);
  EXPECT_LE(max_ulp([](float x) { return tanh(x); }, [](double x) { return std::tanh(x); },
                    -1.0f, 1.0f, 200000), 4.0);
  EXPECT_LE(max_ulp([](float x) { return tanh(x); }, [](double x) { return std::tanh(x); },
                    -1e-3f, 1e-3f, 20000), 2.0);  // no cancellation near 0
  EXPECT_TRUE(std::isnan(tanh(std::numeric_limits<float>::quiet_NaN())));
  EXPECT_EQ(tanh(std::numeric_limits<float>::infinity()), 1.0f);
  EXPECT_EQ(tanh(1e-30f), 1e-30f);  // tiny and subnormal inputs come back unchanged
  EXPECT_EQ(tanh(-0.0f), -0.0f);
  EXPECT_EQ(tanh(50.0f), 1.0f);
  EXPECT_EQ(tanh(-50.0f), -1.0f);
  EXPECT_EQ(tanh(0.0f), 0.0f);
}

TEST(FastMath, ErfIsWithinThreeUlpsAndSaturates) {
  EXPECT_LE(max_ulp([](float x) { return erf(x); }, [](double x) { return std::erf(x); },
                    -6.0f, 6.0f, 400000), 3.0);
  EXPECT_LE(max_ulp([](float x) { return erf(x); }, [](double x) { return std::erf(x); },
                    -1e-3f, 1e-3f, 20000), 3.0);  // relative accuracy near 0
  EXPECT_EQ(erf(0.0f), 0.0f);
  EXPECT_EQ(erf(10.0f), 1.0f);
  EXPECT_EQ(erf(-std::numeric_limits<float>::infinity()), -1.0f);
  EXPECT_TRUE(std::isnan(erf(std::numeric_limits<float>::quiet_NaN())));
}

}  // namespace
}  // namespace loom::pw::fast
