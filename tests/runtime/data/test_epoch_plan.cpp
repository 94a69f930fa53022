#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <vector>

#include "runtime/core/errors.h"
#include "runtime/data/epoch_plan.h"

namespace dptrain {
namespace DPTRAIN_TEST_UNIT {

std::vector<uint64_t> all_batches(const EpochPlan& plan) {
  std::vector<uint64_t> out;
  for (size_t s = 0; s < plan.num_steps(); ++s) {
    const std::vector<uint64_t> b = plan.batch(s);
    EXPECT_EQ(b.size(), plan.batch_size(s));
    out.insert(out.end(), b.begin(), b.end());
  }
  return out;
}

TEST(EpochPlan, EachEpochIsAPermutation) {
  for (size_t n : {1u, 2u, 7u, 1000u, 60000u}) {
    EpochPlan plan(n, 128, 42, 3, DropLast::No, Shuffle::Yes);
    std::vector<uint64_t> seen = all_batches(plan);
    ASSERT_EQ(seen.size(), n);
    std::sort(seen.begin(), seen.end());
    for (size_t i = 0; i < n; ++i) ASSERT_EQ(seen[i], i) << "n = " << n;
  }
}

TEST(EpochPlan, ShuffledOrderIsNotIdentity) {
  EpochPlan plan(1000, 100, 1, 0, DropLast::No, Shuffle::Yes);
  size_t fixed = 0;
  for (size_t i = 0; i < 1000; ++i) fixed += plan.order()[i] == i;
  EXPECT_LT(fixed, 10u);  // a random permutation has about 1 fixed point
}

TEST(EpochPlan, SameSeedAndEpochGiveTheSameOrder) {
  EpochPlan a(5000, 64, 7, 2, DropLast::No, Shuffle::Yes);
  EpochPlan b(5000, 64, 7, 2, DropLast::No, Shuffle::Yes);
  EXPECT_EQ(a.order(), b.order());
  // The batch size only cuts the order; it does not change it.
  EpochPlan c(5000, 100, 7, 2, DropLast::Yes, Shuffle::Yes);
  EXPECT_EQ(a.order(), c.order());
}

TEST(EpochPlan, EpochsAndSeedsDiffer) {
  EpochPlan e0(5000, 64, 7, 0, DropLast::No, Shuffle::Yes);
  EpochPlan e1(5000, 64, 7, 1, DropLast::No, Shuffle::Yes);
  EpochPlan s8(5000, 64, 8, 0, DropLast::No, Shuffle::Yes);
  EXPECT_NE(e0.order(), e1.order());
  EXPECT_NE(e0.order(), s8.order());
  size_t same = 0;
  for (size_t i = 0; i < 5000; ++i) same += e0.order()[i] == e1.order()[i];
  EXPECT_LT(same, 20u);
}

TEST(EpochPlan, NoShuffleIsIndexOrder) {
  EpochPlan plan(10, 4, 99, 5, DropLast::No, Shuffle::No);
  EXPECT_EQ(plan.batch(0), (std::vector<uint64_t>{0, 1, 2, 3}));
  EXPECT_EQ(plan.batch(2), (std::vector<uint64_t>{8, 9}));
}

TEST(EpochPlan, LastBatchKeptOrDropped) {
  EpochPlan keep(10, 4, 1, 0, DropLast::No, Shuffle::Yes);
  EXPECT_EQ(keep.num_steps(), 3u);
  EXPECT_EQ(keep.batch_size(0), 4u);
  EXPECT_EQ(keep.batch_size(2), 2u);
  EpochPlan drop(10, 4, 1, 0, DropLast::Yes, Shuffle::Yes);
  EXPECT_EQ(drop.num_steps(), 2u);
  EXPECT_EQ(drop.batch_size(1), 4u);
  EXPECT_THROW(drop.batch_size(2), Error);
  // The kept batches are the same samples either way.
  EXPECT_EQ(keep.batch(1), drop.batch(1));

  EpochPlan even(12, 4, 1, 0, DropLast::Yes, Shuffle::Yes);
  EXPECT_EQ(even.num_steps(), 3u);
  EpochPlan tiny(3, 4, 1, 0, DropLast::Yes, Shuffle::Yes);
  EXPECT_EQ(tiny.num_steps(), 0u);
  EpochPlan tiny_keep(3, 4, 1, 0, DropLast::No, Shuffle::Yes);
  EXPECT_EQ(tiny_keep.num_steps(), 1u);
  EXPECT_EQ(tiny_keep.batch_size(0), 3u);
  EpochPlan empty(0, 4, 1, 0, DropLast::No, Shuffle::Yes);
  EXPECT_EQ(empty.num_steps(), 0u);
}

TEST(EpochPlan, SlicesConcatenateToTheGlobalBatch) {
  EpochPlan plan(1003, 64, 11, 4, DropLast::No, Shuffle::Yes);  // last batch has 43
  for (size_t world : {1u, 2u, 3u, 5u}) {
    for (size_t step = 0; step < plan.num_steps(); ++step) {
      std::vector<uint64_t> joined;
      const size_t b = plan.batch_size(step);
      for (size_t rank = 0; rank < world; ++rank) {
        const std::vector<uint64_t> part = plan.slice(step, rank, world);
        EXPECT_EQ(part.size(), b * (rank + 1) / world - b * rank / world);
        // Uneven slices differ by at most one sample.
        EXPECT_LE(part.size(), (b + world - 1) / world);
        EXPECT_GE(part.size(), b / world);
        joined.insert(joined.end(), part.begin(), part.end());
      }
      ASSERT_EQ(joined, plan.batch(step)) << "world " << world << " step " << step;
    }
  }
}

TEST(EpochPlan, SlicesInUnitsHoldWholeRunsAndConcatenateToTheGlobalBatch) {
  // train.reproducible: runs of 8 positions (the last batch of 43 ends in a run of 3) go whole to
  // one worker, as evenly as whole runs allow.
  EpochPlan plan(1003, 64, 11, 4, DropLast::No, Shuffle::Yes);
  const size_t unit = 8;
  for (size_t world : {1u, 2u, 3u, 5u}) {
    for (size_t step = 0; step < plan.num_steps(); ++step) {
      std::vector<uint64_t> joined;
      const size_t b = plan.batch_size(step), runs = (b + unit - 1) / unit;
      for (size_t rank = 0; rank < world; ++rank) {
        const std::vector<uint64_t> part = plan.slice(step, rank, world, unit);
        if (joined.size() + part.size() < b) EXPECT_EQ(part.size() % unit, 0u) << "world " << world;
        EXPECT_EQ(joined.size() % unit, 0u) << "a slice starts inside a run";
        EXPECT_LE(part.size(), plan.largest_slice(world, unit));
        EXPECT_LE(part.size(), (runs + world - 1) / world * unit);
        joined.insert(joined.end(), part.begin(), part.end());
      }
      ASSERT_EQ(joined, plan.batch(step)) << "world " << world << " step " << step;
    }
  }
  EXPECT_EQ(plan.largest_slice(3, 8), 24u);  // 8 runs over 3 workers: 3 runs at most
  EXPECT_EQ(plan.largest_slice(3, 1), 22u);
}

TEST(EpochPlan, SlicesMayBeEmpty) {
  EpochPlan plan(2, 2, 0, 0, DropLast::No, Shuffle::No);
  size_t total = 0, empty = 0;
  for (size_t rank = 0; rank < 5; ++rank) {
    const auto part = plan.slice(0, rank, 5);
    total += part.size();
    empty += part.empty();
  }
  EXPECT_EQ(total, 2u);
  EXPECT_EQ(empty, 3u);
  EXPECT_THROW(plan.slice(0, 5, 5), Error);
  EXPECT_THROW(plan.slice(0, 0, 0), Error);
}

TEST(EpochPlan, ZeroBatchIsAnError) { EXPECT_THROW(EpochPlan(10, 0, 1, 0, DropLast::No, Shuffle::Yes), ConfigError); }

TEST(EpochPlan, ShuffleIsRoughlyUniform) {
  // Where index 0 lands over many epochs: each of 10 positions about 1/10 of the time.
  std::vector<size_t> counts(10);
  for (uint64_t epoch = 0; epoch < 5000; ++epoch) {
    EpochPlan plan(10, 10, 3, epoch, DropLast::No, Shuffle::Yes);
    const auto& o = plan.order();
    ++counts[static_cast<size_t>(std::find(o.begin(), o.end(), 0u) - o.begin())];
  }
  for (size_t c : counts) {
    EXPECT_GT(c, 400u);
    EXPECT_LT(c, 600u);
  }
}

}  // namespace
}  // namespace dptrain
