#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "runtime/core/errors.h"
#include "runtime/data/synthetic_dataset.h"

namespace dptrain {
namespace DPTRAIN_TEST_UNIT {

SyntheticSpec small_spec(size_t n = 500) {
  SyntheticSpec spec;
  spec.num_samples = n;
  spec.sample_shape = {2, 12, 10};
  spec.num_classes = 7;
  return spec;
}

std::vector<float> sample(const Dataset& ds, size_t i, int32_t* label) {
  std::vector<float> out(num_elements(ds.sample_shape()));
  ds.get(i, out.data(), label);
  return out;
}

TEST(SyntheticDataset, DescribesItself) {
  SyntheticDataset ds(small_spec(), 1, SyntheticSplit::Train);
  EXPECT_EQ(ds.size(), 500u);
  EXPECT_EQ(ds.sample_shape(), (Shape{2, 12, 10}));
  EXPECT_EQ(ds.num_classes(), 7u);
  EXPECT_NE(ds.describe().find("synthetic train: 500 x (2, 12, 10)"), std::string::npos) << ds.describe();
}

TEST(SyntheticDataset, IsDeterministic) {
  SyntheticDataset a(small_spec(), 5, SyntheticSplit::Train);
  SyntheticDataset b(small_spec(), 5, SyntheticSplit::Train);
  for (size_t i : {0u, 1u, 17u, 499u}) {
    int32_t la = -1, lb = -2;
    EXPECT_EQ(sample(a, i, &la), sample(b, i, &lb));
    EXPECT_EQ(la, lb);
    EXPECT_EQ(la, a.label(i));
  }
  // Reading in another order gives the same samples.
  int32_t l1 = 0, l2 = 0;
  const auto late = sample(a, 300, &l1);
  sample(a, 2, &l2);
  EXPECT_EQ(sample(a, 300, &l2), late);
}

TEST(SyntheticDataset, LabelsInRangeAndBalanced) {
  SyntheticDataset ds(small_spec(7000), 3, SyntheticSplit::Train);
  std::vector<size_t> counts(7);
  for (size_t i = 0; i < ds.size(); ++i) {
    const int32_t label = ds.label(i);
    ASSERT_GE(label, 0);
    ASSERT_LT(label, 7);
    ++counts[static_cast<size_t>(label)];
  }
  for (size_t c : counts) {
    EXPECT_GT(c, 800u);
    EXPECT_LT(c, 1200u);
  }
}

TEST(SyntheticDataset, SplitsAndSeedsDiffer) {
  SyntheticDataset train(small_spec(), 5, SyntheticSplit::Train);
  SyntheticDataset test(small_spec(), 5, SyntheticSplit::Test);
  SyntheticDataset other(small_spec(), 6, SyntheticSplit::Train);
  size_t same_labels = 0;
  for (size_t i = 0; i < 200; ++i) {
    int32_t a = 0, b = 0, c = 0;
    const auto x = sample(train, i, &a), y = sample(test, i, &b), z = sample(other, i, &c);
    EXPECT_NE(x, y) << i;
    EXPECT_NE(x, z) << i;
    same_labels += a == b;
  }
  EXPECT_LT(same_labels, 80u);  // about 1/7 by chance
}

TEST(SyntheticDataset, ValuesAreFiniteAndScaled) {
  SyntheticDataset ds(small_spec(200), 2, SyntheticSplit::Train);
  double sum = 0, sum_sq = 0;
  size_t n = 0;
  for (size_t i = 0; i < ds.size(); ++i) {
    int32_t label = 0;
    for (float v : sample(ds, i, &label)) {
      ASSERT_TRUE(std::isfinite(v));
      sum += v;
      sum_sq += double{v} * v;
      ++n;
    }
  }
  const double mean = sum / n, var = sum_sq / n - mean * mean;
  EXPECT_NEAR(mean, 0.0, 0.3);
  EXPECT_GT(var, 1.0);  // prototype (about 1) plus noise (1)
  EXPECT_LT(var, 4.0);
}

TEST(SyntheticDataset, NormalisationIsPerChannel) {
  SyntheticSpec plain = small_spec(), norm = small_spec();
  norm.mean = {1.0f, -2.0f};
  norm.std = {2.0f, 0.5f};
  SyntheticDataset a(plain, 9, SyntheticSplit::Test), b(norm, 9, SyntheticSplit::Test);
  int32_t la = 0, lb = 0;
  const auto x = sample(a, 4, &la), y = sample(b, 4, &lb);
  EXPECT_EQ(la, lb);
  for (size_t j = 0; j < x.size(); ++j) {
    const size_t c = j / 120;
    ASSERT_NEAR(y[j], (x[j] - norm.mean[c]) / norm.std[c], 1e-5f) << j;
  }
}

// Nearest class mean, estimated on the training split, classifies the test split far above chance:
// the classes are separable, and train and test share their prototypes.
TEST(SyntheticDataset, IsLearnable) {
  SyntheticSpec spec;
  spec.num_samples = 2000;
  spec.sample_shape = {1, 28, 28};
  spec.num_classes = 10;
  spec.noise = 2.0f;
  SyntheticDataset train(spec, 1234, SyntheticSplit::Train);
  spec.num_samples = 1000;
  SyntheticDataset test(spec, 1234, SyntheticSplit::Test);
  const size_t d = 28 * 28;
  std::vector<double> centroid(10 * d);
  std::vector<size_t> count(10);
  for (size_t i = 0; i < train.size(); ++i) {
    int32_t label = 0;
    const auto x = sample(train, i, &label);
    ++count[static_cast<size_t>(label)];
    for (size_t j = 0; j < d; ++j) centroid[static_cast<size_t>(label) * d + j] += x[j];
  }
  for (size_t k = 0; k < 10; ++k) {
    ASSERT_GT(count[k], 0u);
    for (size_t j = 0; j < d; ++j) centroid[k * d + j] /= static_cast<double>(count[k]);
  }
  size_t correct = 0;
  for (size_t i = 0; i < test.size(); ++i) {
    int32_t label = 0;
    const auto x = sample(test, i, &label);
    size_t best = 0;
    double best_dist = std::numeric_limits<double>::max();
    for (size_t k = 0; k < 10; ++k) {
      double dist = 0;
      for (size_t j = 0; j < d; ++j) dist += (x[j] - centroid[k * d + j]) * (x[j] - centroid[k * d + j]);
      if (dist < best_dist) best_dist = dist, best = k;
    }
    correct += static_cast<int32_t>(best) == label;
  }
  EXPECT_GT(static_cast<double>(correct) / test.size(), 0.9);
}

TEST(SyntheticDataset, RejectsBadSpecs) {
  SyntheticSpec spec = small_spec();
  spec.sample_shape = {28, 28};
  EXPECT_THROW(SyntheticDataset(spec, 0, SyntheticSplit::Train), ShapeError);
  spec = small_spec();
  spec.num_classes = 0;
  EXPECT_THROW(SyntheticDataset(spec, 0, SyntheticSplit::Train), DataError);
  spec = small_spec();
  spec.mean = {0.0f, 0.0f, 0.0f};
  EXPECT_THROW(SyntheticDataset(spec, 0, SyntheticSplit::Train), DataError);
  spec = small_spec();
  spec.std = {1.0f, 0.0f};
  EXPECT_THROW(SyntheticDataset(spec, 0, SyntheticSplit::Train), DataError);
  SyntheticDataset ds(small_spec(3), 0, SyntheticSplit::Train);
  std::vector<float> out(240);
  int32_t label = 0;
  EXPECT_THROW(ds.get(3, out.data(), &label), DataError);
}

}  // namespace
}  // namespace dptrain
