// Bucket layout of the gradient all-reduce, and the reducer on a single worker and over a bare
// AllReducer.
#include <gtest/gtest.h>

#include <memory>
#include <utility>
#include <vector>

#include "comm/all_reducer.h"
#include "comm/communicator.h"
#include "comm/reducer.h"

namespace dptrain {
namespace DPTRAIN_TEST_UNIT {

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

// An AllReducer of `workers` identical workers: a sum multiplies by the worker count once the
// request is waited for; it records every bucket it was asked to sum.
class ScalingAllReducer final : public AllReducer {
 public:
  explicit ScalingAllReducer(size_t workers) : workers_(workers) {}
  size_t size() const override { return workers_; }
  std::unique_ptr<CommRequest> all_reduce_sum_async(float* data, size_t count) override {
    started.emplace_back(data, count);
    return std::make_unique<Request>(data, count, static_cast<float>(workers_));
  }

  std::vector<std::pair<float*, size_t>> started;  // (data, count) of each sum, in order

 private:
  // Scales its buffer when waited for (or tested) the first time.
  class Request final : public CommRequest {
   public:
    Request(float* data, size_t count, float factor) : data_(data), count_(count), factor_(factor) {}
    bool test() override {
      if (!done_) {
        for (size_t i = 0; i < count_; ++i) data_[i] *= factor_;
        done_ = true;
      }
      return true;
    }
    void wait(Deadline) override { test(); }

   private:
    float* data_;
    size_t count_;
    float factor_;
    bool done_ = false;
  };

  size_t workers_;
};

TEST(GradientReducer, NeedsOnlyAnAllReducerAndSumsEveryBucketOnce) {
  ScalingAllReducer sums(3);
  std::vector<float> grads(100, 1.0f);
  GradientReducer reducer(sums, grads.data(), grads.size(), 32 * sizeof(float), std::chrono::seconds(1));
  reducer.begin_step();
  reducer.ready(60, 100);  // the last bucket, [80, 100), is complete; [48, 80) not yet
  ASSERT_EQ(sums.started.size(), 1u);
  EXPECT_EQ(sums.started[0].first, grads.data() + 80);
  EXPECT_EQ(sums.started[0].second, 20u);
  reducer.finish();
  ASSERT_EQ(sums.started.size(), reducer.buckets().size());
  for (size_t i = 0; i < grads.size(); ++i) ASSERT_EQ(grads[i], 3.0f) << i;
}

}  // namespace
}  // namespace dptrain
