// Single-precision exp, log, tanh and erf written as straight-line arithmetic, so
// the pointwise loops that call them vectorise (a call into libm stops the
// vectoriser: std::exp on float ran ~5x slower than PyTorch's SLEEF loops).
//
// Method: the classic argument reduction plus minimax polynomials (the
// coefficients are those of the Cephes single-precision library), with
// special values (NaN, +-inf, overflow, zero) selected explicitly. Accuracy
// is checked against float64 references over wide ranges in
// tests/cpp/fast_math_test.cc (max error a few ulp); exp underflows
// gradually, log scales subnormal inputs first. Host only: CUDA code keeps its own intrinsics.
#pragma once

#include <algorithm>
#include <bit>
#include <cstdint>
#include <limits>

namespace loom::pw::fast {

#define LOOM_FAST_INLINE inline __attribute__((always_inline))

// c ? a : b without a branch: GCC's if-conversion of float ternaries is
// fragile (it vectorised them for SSE2 but not for AVX2), bit masks are not.
LOOM_FAST_INLINE float select(bool c, float a, float b) {
  const std::int32_t mask = -static_cast<std::int32_t>(c);
  return std::bit_cast<float>((std::bit_cast<std::int32_t>(a) & mask) |
                              (std::bit_cast<std::int32_t>(b) & ~mask));
}
LOOM_FAST_INLINE std::int32_t select(bool c, std::int32_t a, std::int32_t b) {
  const std::int32_t mask = -static_cast<std::int32_t>(c);
  return (a & mask) | (b & ~mask);
}

LOOM_FAST_INLINE float exp(float x) {
  // The clamp bounds are chosen so that no special case needs a select (a
  // third of the instructions they cost): above 88.72 the final scaling
  // overflows to inf by itself (x = 89 gives 1.32 * 2^128), below -103.97
  // it underflows to 0, and in between results are gradually subnormal, as
  // libm's. A NaN passes through min/max (they return x when it is NaN) and
  // the arithmetic, so it comes out NaN.
  const float clamped = std::max(std::min(x, 89.0f), -104.0f);
  // x = n * ln2 + r, |r| <= ln2 / 2; ln2 split in two for exactness. n is
  // rounded by the float adder: adding 1.5 * 2^23 leaves round(t) in the
  // low mantissa bits (|t| <= 151 here), with no float->int conversion.
  const float t = clamped * 1.44269504088896341f;
  const float shifted = t + 12582912.0f;
  const int n = std::bit_cast<int>(shifted) - 0x4B400000;
  const float fn = shifted - 12582912.0f;
  float r = clamped - fn * 0.693359375f;
  r = r - fn * -2.12194440e-4f;
  // The polynomial by Estrin's scheme: three short chains instead of one of
  // five dependent FMAs, so consecutive elements overlap in the pipeline.
  const float r2 = r * r;
  const float p01 = 1.6666665459e-1f * r + 5.0000001201e-1f;
  const float p23 = 8.3334519073e-3f * r + 4.1665795894e-2f;
  const float p45 = 1.9875691500e-4f * r + 1.3981999507e-3f;
  const float p = p01 + r2 * (p23 + r2 * p45);
  const float y = p * r2 + (r + 1.0f);
  // Multiply by 2^n through the exponent field, in two halves so that every
  // n in [-150, 128] gives two normal scale factors (the second product is
  // what overflows or rounds into the subnormal range).
  const int n1 = n >> 1, n2 = n - n1;
  const float scale1 = std::bit_cast<float>(static_cast<std::int32_t>((n1 + 127) << 23));
  const float scale2 = std::bit_cast<float>(static_cast<std::int32_t>((n2 + 127) << 23));
  return y * scale1 * scale2;
}

LOOM_FAST_INLINE float log(float x) {
  // x = m * 2^e with m in [sqrt(1/2), sqrt(2)); log x = log m + e * ln2.
  // Subnormals are scaled into the normal range first.
  const bool subnormal = x < std::numeric_limits<float>::min();
  const float xs = select(subnormal, x * 8388608.0f, x);  // 2^23
  const std::int32_t bits = std::bit_cast<std::int32_t>(xs);
  std::int32_t e = ((bits >> 23) & 0xff) - 126 - select(subnormal, 23, 0);
  float m = std::bit_cast<float>((bits & 0x007fffff) | 0x3f000000);  // in [0.5, 1)
  const bool small = m < 0.707106781186547524f;
  e = select(small, e - 1, e);
  m = select(small, m + m - 1.0f, m - 1.0f);
  const float z = m * m;
  float p = 7.0376836292e-2f;
  p = p * m - 1.1514610310e-1f;
  p = p * m + 1.1676998740e-1f;
  p = p * m - 1.2420140846e-1f;
  p = p * m + 1.4249322787e-1f;
  p = p * m - 1.6668057665e-1f;
  p = p * m + 2.0000714765e-1f;
  p = p * m - 2.4999993993e-1f;
  p = p * m + 3.3333331174e-1f;
  float y = p * m * z;
  const float fe = static_cast<float>(e);
  y = y + fe * -2.12194440e-4f;
  y = y - 0.5f * z;
  float result = m + y + fe * 0.693359375f;
  result = select(x == 0.0f, -std::numeric_limits<float>::infinity(), result);
  result = select(x < 0.0f, std::numeric_limits<float>::quiet_NaN(), result);
  result = select(x == std::numeric_limits<float>::infinity(), x, result);
  return select(x != x, x, result);
}

LOOM_FAST_INLINE float tanh(float x) {
  // tanh(x) = x P(x^2) / Q(x^2), P and Q of degree 4, on x clamped to
  // [-9, 9] (tanh(9) rounds to 1 in float). The coefficients are loom's own:
  // a relative-error least-squares fit in double on [0, 9], reweighted
  // towards the largest errors (Lawson), fit error 2e-8. One division and
  // ten FMAs, against the exp, division, polynomial and selects of
  // 1 - 2 / (e^2x + 1): 3x faster, at up to ~5 ulp near |x| = 8 (where the
  // result is within 1e-6 of 1) instead of 3, the trade Eigen and XLA make.
  // A NaN passes through min/max and the arithmetic; +-inf give +-1.
  const float c = std::max(std::min(x, 9.0f), -9.0f);
  const float z = c * c;
  float p = 1.3354775063589841e-08f;
  p = p * z + 2.0609120838344097e-05f;
  p = p * z + 3.4955886658281090e-03f;
  p = p * z + 1.3381025195121765e-01f;
  p = p * z + 1.0f;
  float q = 7.7765918149452770e-07f;
  q = q * z + 3.2856367761269210e-04f;
  q = q * z + 2.5876982137560844e-02f;
  q = q * z + 4.6714341640472410e-01f;
  q = q * z + 1.0f;
  return c * p / q;
}

LOOM_FAST_INLINE float erf(float x) {
  // |x| < 1: x * P(x^2). 1 <= |x| < 4: 1 - exp(-x^2) * Q(|x| - 2.5), Q fitting
  // erfc(x) e^(x^2) (smooth, 0.43 to 0.14). |x| >= 4: +-1 (erfc(4) < 2^-25).
  // Coefficients: least-squares fits in double on Chebyshev nodes (loom's
  // own, made for this function), within ~2.5 ulp once evaluated in float.
  const float a = select(x < 0.0f, -x, x);
  const float z = x * x;
  float p = 7.933493907330558e-05f;
  p = p * z - 8.034846396185458e-04f;
  p = p * z + 5.191218573600054e-03f;
  p = p * z - 2.685539983212948e-02f;
  p = p * z + 1.128362566232681e-01f;
  p = p * z - 3.761262893676758e-01f;
  p = p * z + 1.128379225730896e+00f;
  const float small = x * p;
  const float t = a - 2.5f;
  float q = -4.269337239293236e-07f;
  q = q * t + 1.671801783231786e-06f;
  q = q * t - 3.744433342944831e-06f;
  q = q * t + 1.435366266377969e-05f;
  q = q * t - 5.952952778898180e-05f;
  q = q * t + 2.129720814991742e-04f;
  q = q * t - 7.331467350013554e-04f;
  q = q * t + 2.465982455760241e-03f;
  q = q * t - 8.001696318387985e-03f;
  q = q * t + 2.493820339441299e-02f;
  q = q * t - 7.434733957052231e-02f;
  q = q * t + 2.108063548803330e-01f;
  const float big_abs = select(a >= 4.0f, 1.0f, 1.0f - exp(-z) * q);
  const float big = select(x < 0.0f, -big_abs, big_abs);
  return select(a < 1.0f, small, big);
}

}  // namespace loom::pw::fast

#undef LOOM_FAST_INLINE
