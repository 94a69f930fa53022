// PlanCache: plans found by their key, the most recently used kept, the least recently used evicted.
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "runtime/core/plan_cache.h"
#include "runtime/core/precision.h"

namespace dptrain {
namespace DPTRAIN_TEST_UNIT {

// A key like the convolution layer's: the batch and the precision.
struct Key {
  size_t batch;
  Precision precision;
  bool operator==(const Key& other) const { return batch == other.batch && precision == other.precision; }
};

// A plan that counts its destructions, to see evictions.
struct Plan {
  Plan(std::string name, int* destroyed) : name(std::move(name)), destroyed(destroyed) {}
  ~Plan() { ++*destroyed; }
  std::string name;
  int* destroyed;
};

TEST(PlanCache, FindsWhatWasInsertedByKey) {
  int destroyed = 0;
  PlanCache<Key, Plan> cache(4);
  EXPECT_EQ(cache.find({128, Precision::Float32}), nullptr);
  cache.insert({128, Precision::Float32}, std::make_unique<Plan>("train", &destroyed));
  cache.insert({1000, Precision::Float32}, std::make_unique<Plan>("eval", &destroyed));
  cache.insert({128, Precision::Bf16}, std::make_unique<Plan>("train bf16", &destroyed));
  // Alternating between training and evaluation batches plans nothing again.
  for (int round = 0; round < 3; ++round) {
    ASSERT_NE(cache.find({128, Precision::Float32}), nullptr);
    EXPECT_EQ(cache.find({128, Precision::Float32})->name, "train");
    EXPECT_EQ(cache.find({1000, Precision::Float32})->name, "eval");
  }
  EXPECT_EQ(cache.find({128, Precision::Bf16})->name, "train bf16");
  EXPECT_EQ(cache.find({1000, Precision::Bf16}), nullptr);
  EXPECT_EQ(cache.size(), 3u);
  EXPECT_EQ(destroyed, 0);
}

TEST(PlanCache, EvictsTheLeastRecentlyUsedBeyondItsCapacity) {
  int destroyed = 0;
  PlanCache<Key, Plan> cache(2);
  cache.insert({1, Precision::Float32}, std::make_unique<Plan>("a", &destroyed));
  cache.insert({2, Precision::Float32}, std::make_unique<Plan>("b", &destroyed));
  ASSERT_NE(cache.find({1, Precision::Float32}), nullptr);  // a is now more recent than b
  cache.insert({3, Precision::Float32}, std::make_unique<Plan>("c", &destroyed));
  EXPECT_EQ(destroyed, 1);
  EXPECT_EQ(cache.size(), 2u);
  EXPECT_EQ(cache.find({2, Precision::Float32}), nullptr);
  EXPECT_NE(cache.find({1, Precision::Float32}), nullptr);
  EXPECT_NE(cache.find({3, Precision::Float32}), nullptr);
  std::vector<std::string> order;
  cache.for_each([&](const Key&, const Plan& plan) { order.push_back(plan.name); });
  EXPECT_EQ(order, (std::vector<std::string>{"c", "a"}));
}

TEST(PlanCache, InsertingAnExistingKeyReplacesItsPlan) {
  int destroyed = 0;
  PlanCache<Key, Plan> cache(2);
  cache.insert({1, Precision::Float32}, std::make_unique<Plan>("old", &destroyed));
  Plan& now = cache.insert({1, Precision::Float32}, std::make_unique<Plan>("new", &destroyed));
  EXPECT_EQ(now.name, "new");
  EXPECT_EQ(destroyed, 1);
  EXPECT_EQ(cache.size(), 1u);
  EXPECT_EQ(cache.find({1, Precision::Float32})->name, "new");
}

TEST(PlanCache, ACapacityOfZeroStillHoldsOnePlan) {
  int destroyed = 0;
  PlanCache<Key, Plan> cache(0);
  EXPECT_EQ(cache.capacity(), 1u);
  cache.insert({1, Precision::Float32}, std::make_unique<Plan>("a", &destroyed));
  cache.insert({2, Precision::Float32}, std::make_unique<Plan>("b", &destroyed));
  EXPECT_EQ(cache.size(), 1u);
  EXPECT_EQ(cache.find({2, Precision::Float32})->name, "b");
}

}  // namespace
}  // namespace dptrain
