// Bucket layout of the gradient all-reduce, and the reducer on a single worker.
#include <gtest/gtest.h>

#include <vector>

#include "comm/communicator.h"
#include "comm/reducer.h"

namespace dptrain {
namespace {

TEST(MakeBuckets, CoverTheBufferFromTheEndInAlignedPiecesNoLargerThanAsked) {
  for (size_t count : {1ul, 15ul, 16ul, 17ul, 1000ul, 421642ul}) {
    for (size_t cap : {1ul, 16ul, 100ul, 4096ul, 262144ul, 1ul << 24}) {
      const std::vector<Bucket> buckets = make_buckets(count, cap);
      ASSERT_FALSE(buckets.empty());
      EXPECT_EQ(buckets.front().end, count) << count << " / " << cap;
      EXPECT_EQ(buckets.back().begin, 0u) << count << " / " << cap;
      const size_t limit = std::max<size_t>(16, cap / 16 * 16);
      for (size_t i = 0; i < buckets.size(); ++i) {
        EXPECT_LT(buckets[i].begin, buckets[i].end);
        EXPECT_LE(buckets[i].end - buckets[i].begin, limit);
        EXPECT_EQ(buckets[i].begin % 16, 0u);
        if (i > 0) EXPECT_EQ(buckets[i].end, buckets[i - 1].begin) << "gap or overlap";
      }
    }
  }
}

TEST(MakeBuckets, OneMiBBucketsSplitTheDemoModelInTwo) {
  // 421,642 parameters plus padding: 1 MiB holds 262,144 floats.
  const std::vector<Bucket> buckets = make_buckets(421648, (1 << 20) / sizeof(float));
  ASSERT_EQ(buckets.size(), 2u);
  EXPECT_EQ(buckets[0].end - buckets[0].begin, 262144u);
}

TEST(GradientReducer, OneWorkerLeavesGradientsAsTheyAre) {
  SingleProcessCommunicator comm;
  std::vector<float> grads = {1, 2, 3, 4};
  GradientReducer reducer(comm, grads.data(), grads.size(), 64, std::chrono::seconds(1));
  reducer.begin_step();
  reducer.ready(0, 4);
  reducer.finish();
  EXPECT_EQ(grads, (std::vector<float>{1, 2, 3, 4}));
  EXPECT_EQ(reducer.exposed_seconds(), 0.0);
}

}  // namespace
}  // namespace dptrain
