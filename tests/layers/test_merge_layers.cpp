// add and concat: values, the gradients they hand each input, and the shapes they refuse.
#include <gtest/gtest.h>

#include <vector>

#include "layers/registry.h"
#include "tests/layers/layer_test_util.h"
#include "tests/test_util.h"

namespace dptrain {
namespace DPTRAIN_TEST_UNIT {

using testing::cpu_backend;

std::unique_ptr<Layer> make_merge(const std::string& yaml, const std::vector<Shape>& inputs) {
  ConfigMap options = ConfigMap::parse(yaml);
  return LayerRegistry::builtin().create_from_inputs(options, inputs, cpu_backend());
}

Tensor filled(const Shape& shape, float start) {
  Tensor t(shape);
  for (size_t i = 0; i < t.num_elements(); ++i) t.data()[i] = start + static_cast<float>(i);
  return t;
}

TEST(AddLayer, SumsItsInputsAndHandsDyToEach) {
  auto add = make_merge("{type: add}", {{2, 3}, {2, 3}, {2, 3}});
  ASSERT_EQ(add->num_inputs(), 3u);
  EXPECT_EQ(add->output_shape(), (Shape{2, 3}));
  const Tensor a = filled({2, 2, 3}, 0), b = filled({2, 2, 3}, 100), c = filled({2, 2, 3}, -7);
  Tensor y({2, 2, 3});
  add->forward_inputs({&a, &b, &c}, y, StepInfo{});
  for (size_t i = 0; i < 12; ++i) EXPECT_FLOAT_EQ(y.data()[i], 3.0f * i + 93.0f);
  const Tensor dy = filled({2, 2, 3}, 0.5f);
  Tensor da({2, 2, 3}), dc({2, 2, 3});
  add->backward_inputs({&a, &b, &c}, y, dy, {&da, nullptr, &dc}, StepInfo{});
  for (size_t i = 0; i < 12; ++i) {
    EXPECT_EQ(da.data()[i], dy.data()[i]);
    EXPECT_EQ(dc.data()[i], dy.data()[i]);
  }
}

TEST(AddLayer, RefusesInputsOfDifferentShapesOrASingleInput) {
  const std::string shapes =
      test_util::error_of<ConfigError>([] { make_merge("{type: add}", {{4, 6, 6}, {8, 3, 3}}); });
  EXPECT_NE(shapes.find("add needs inputs of one shape; input 0 is (4, 6, 6), input 1 is (8, 3, 3)"), std::string::npos)
      << shapes;
  const std::string one = test_util::error_of<ConfigError>([] { make_merge("{type: add}", {{4}}); });
  EXPECT_NE(one.find("at least two inputs"), std::string::npos) << one;
}

TEST(ConcatLayer, JoinsAlongChannelsSampleBySample) {
  auto concat = make_merge("{type: concat}", {{1, 2, 2}, {2, 2, 2}});
  EXPECT_EQ(concat->output_shape(), (Shape{3, 2, 2}));
  const Tensor a = filled({2, 1, 2, 2}, 0), b = filled({2, 2, 2, 2}, 100);
  Tensor y({2, 3, 2, 2});
  concat->forward_inputs({&a, &b}, y, StepInfo{});
  // Sample 0: a's 4 values, then b's first 8; sample 1: a's next 4, then b's next 8.
  const std::vector<float> expected = {0,   1,   2,   3,   100, 101, 102, 103, 104, 105, 106, 107,
                                       4,   5,   6,   7,   108, 109, 110, 111, 112, 113, 114, 115};
  EXPECT_EQ(std::vector<float>(y.data(), y.data() + 24), expected);
  Tensor da({2, 1, 2, 2}), db({2, 2, 2, 2});
  concat->backward_inputs({&a, &b}, y, y, {&da, &db}, StepInfo{});
  EXPECT_EQ(std::vector<float>(da.data(), da.data() + 8), std::vector<float>(a.data(), a.data() + 8));
  EXPECT_EQ(std::vector<float>(db.data(), db.data() + 16), std::vector<float>(b.data(), b.data() + 16));
}

TEST(ConcatLayer, RefusesInputsWhosePlanesDiffer) {
  const std::string msg =
      test_util::error_of<ConfigError>([] { make_merge("{type: concat}", {{4, 6, 6}, {4, 3, 3}}); });
  EXPECT_NE(msg.find("all other dimensions must agree"), std::string::npos) << msg;
}

TEST(MergeLayers, ASingleInputLayerGivenTwoInputsSaysSo) {
  const std::string msg = test_util::error_of<ConfigError>([] { make_merge("{type: relu}", {{4}, {4}}); });
  EXPECT_NE(msg.find("takes one input, got 2"), std::string::npos) << msg;
  EXPECT_NE(msg.find("inputs"), std::string::npos) << msg;
}

}  // namespace
}  // namespace dptrain
