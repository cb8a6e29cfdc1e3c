// Philox4x32-10 against the Random123 known-answer vectors (kat_vectors,
// "philox4x32 10"), and the stream layout lm.random relies on.
#include <gtest/gtest.h>

#include "runtime/random/philox.h"

namespace loom::random {
namespace {

void expect_block(PhiloxBlock got, std::uint32_t a, std::uint32_t b, std::uint32_t c, std::uint32_t d) {
  EXPECT_EQ(got.v[0], a);
  EXPECT_EQ(got.v[1], b);
  EXPECT_EQ(got.v[2], c);
  EXPECT_EQ(got.v[3], d);
}

TEST(Philox, MatchesRandom123KnownAnswers) {
  expect_block(philox4x32_10(PhiloxBlock{{0, 0, 0, 0}}, 0, 0), 0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu, 0x9b00dbd8u);
  expect_block(philox4x32_10(PhiloxBlock{{0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu}}, 0xffffffffu,
                             0xffffffffu),
               0x408f276du, 0x41c83b0eu, 0xa20bc7c6u, 0x6d5451fdu);
  expect_block(philox4x32_10(PhiloxBlock{{0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u}}, 0xa4093822u,
                             0x299f31d0u),
               0xd16cfe09u, 0x94fdccebu, 0x5001e420u, 0x24126ea1u);
}

TEST(Philox, ElementIsCounterOffsetPlusIndexKeyedBySeed) {
  const std::uint64_t seed = 0x0123456789abcdefull, offset = (std::uint64_t{1} << 32) + 5;
  const PhiloxBlock direct = philox4x32_10(PhiloxBlock{{7, 1, 0, 0}}, 0x89abcdefu, 0x01234567u);
  const PhiloxBlock via = philox_element(seed, offset, 2);
  for (int k = 0; k < 4; ++k) EXPECT_EQ(direct.v[k], via.v[k]);
}

TEST(Philox, UnitValuesStayInRange) {
  const PhiloxBlock zero{{0, 0, 0, 0}}, ones{{0xffffffffu, 0xffffffffu, 0, 0}};
  EXPECT_EQ(unit_float(zero), 0.0f);
  EXPECT_LT(unit_float(ones), 1.0f);
  EXPECT_EQ(unit_double(zero), 0.0);
  EXPECT_LT(unit_double(ones), 1.0);
}

}  // namespace
}  // namespace loom::random
