// Finding the first non-finite value of a flat buffer, and the parameter it belongs to.
#include <gtest/gtest.h>

#include <limits>
#include <vector>

#include "runtime/train/non_finite.h"

namespace dptrain {
namespace DPTRAIN_TEST_UNIT {

TEST(NonFinite, AllFiniteSeesEveryPosition) {
  std::vector<float> values(37, 1.5f);
  EXPECT_TRUE(all_finite(values.data(), values.size()));
  for (size_t i = 0; i < values.size(); ++i) {
    for (float bad : {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity(),
                      -std::numeric_limits<float>::infinity()}) {
      std::vector<float> v = values;
      v[i] = bad;
      EXPECT_FALSE(all_finite(v.data(), v.size())) << i;
    }
  }
  values[3] = std::numeric_limits<float>::max();
  EXPECT_TRUE(all_finite(values.data(), values.size()));
}

TEST(NonFinite, NamesTheParameterAndElement) {
  std::vector<ParamEntry> entries(3);
  entries[0] = {0, "frozen.weight", "dense", "weight", {2}, 0, ParamUse::Frozen};
  entries[1] = {1, "fc.weight", "dense", "weight", {2, 3}, 2, ParamUse::Trained};
  entries[2] = {1, "fc.bias", "dense", "bias", {2}, 8, ParamUse::Trained};
  std::vector<float> flat(10, 0.0f);
  flat[0] = std::numeric_limits<float>::quiet_NaN();  // frozen: not looked at for ParamUse::Trained
  EXPECT_FALSE(first_non_finite(flat.data(), entries, ParamUse::Trained));
  flat[9] = -std::numeric_limits<float>::infinity();
  flat[6] = std::numeric_limits<float>::infinity();
  EXPECT_EQ(first_non_finite(flat.data(), entries, ParamUse::Trained).value_or(""), "fc.weight (element 4 of 6: inf)");
}

}  // namespace
}  // namespace dptrain
