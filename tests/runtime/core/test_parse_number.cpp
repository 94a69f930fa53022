#include <gtest/gtest.h>

#include <cstdint>
#include <string>

#include "runtime/core/parse_number.h"

namespace dptrain {
namespace DPTRAIN_TEST_UNIT {

TEST(ParseDecimal, DigitsAreReadWhole) {
  EXPECT_EQ(parse_decimal("0"), 0u);
  EXPECT_EQ(parse_decimal("007"), 7u);
  EXPECT_EQ(parse_decimal("18446744073709551615"), UINT64_MAX);
  EXPECT_EQ(parse_decimal("15", 15), 15u);
}

TEST(ParseDecimal, AnythingElseIsRefusedWithoutThrowing) {
  for (const std::string text : {"", " 1", "1 ", "+1", "-1", "1.5", "1e3", "0x10", "12a", "a12", "٣"}) {
    EXPECT_EQ(parse_decimal(text), std::nullopt) << "'" << text << "'";
  }
  EXPECT_EQ(parse_decimal("18446744073709551616"), std::nullopt);  // 2^64
  EXPECT_EQ(parse_decimal("99999999999999999999999"), std::nullopt);
  EXPECT_EQ(parse_decimal("16", 15), std::nullopt);
  EXPECT_EQ(parse_decimal(std::string("1\0" "2", 3)), std::nullopt);
}

}  // namespace
}  // namespace dptrain
