// BatchLoader: the decode pool gives the same batches for any thread count, errors surface from
// next(), misuse is reported, and a pending batch does not outlive the loader.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <iterator>
#include <stdexcept>
#include <thread>
#include <vector>

#include "runtime/core/errors.h"
#include "runtime/data/augment.h"
#include "runtime/data/batch_loader.h"
#include "runtime/data/synthetic_dataset.h"

namespace dptrain {
namespace DPTRAIN_TEST_UNIT {

using ::testing::HasSubstr;

// Sample i is filled with i + position / 1000; ids listed in `bad` throw DataError; every get() sleeps
// `delay` and records the thread it ran on.
class ProbeDataset : public Dataset {
 public:
  ProbeDataset(size_t n, std::vector<uint64_t> bad = {}, std::chrono::microseconds delay = {},
               LoadCost cost = LoadCost::Copy)
      : n_(n), bad_(std::move(bad)), delay_(delay), cost_(cost) {}
  size_t size() const override { return n_; }
  Shape sample_shape() const override { return {1, 2, 3}; }
  size_t num_classes() const override { return 5; }
  void get(size_t index, float* out, int32_t* label) const override {
    if (delay_.count() > 0) std::this_thread::sleep_for(delay_);
    calls_.fetch_add(1);
    for (uint64_t b : bad_) {
      if (b == index) throw DataError("sample " + std::to_string(index) + " is bad");
    }
    for (size_t j = 0; j < 6; ++j) out[j] = static_cast<float>(index) + static_cast<float>(j) / 1000.0f;
    *label = static_cast<int32_t>(index % 5);
  }
  std::string describe() const override { return "probe"; }
  LoadCost load_cost() const override { return cost_; }
  size_t calls() const { return calls_.load(); }

 private:
  size_t n_;
  std::vector<uint64_t> bad_;
  std::chrono::microseconds delay_;
  LoadCost cost_;
  mutable std::atomic<size_t> calls_{0};
};

std::vector<uint64_t> range(uint64_t first, uint64_t n) {
  std::vector<uint64_t> ids(n);
  for (uint64_t i = 0; i < n; ++i) ids[i] = first + (i * 7) % n;
  return ids;
}

TEST(BatchLoader, ExistingCallsStillWork) {
  const ProbeDataset data(50);
  BatchLoader loader(data, 8);
  EXPECT_EQ(loader.decode_threads(), 1u);
  loader.prefetch({4, 2, 9});
  Batch& b = loader.next();
  ASSERT_EQ(b.ids, (std::vector<uint64_t>{4, 2, 9}));
  EXPECT_EQ(b.inputs.shape(), (Shape{3, 1, 2, 3}));
  EXPECT_EQ(b.labels, (std::vector<int32_t>{4, 2, 4}));
  EXPECT_FLOAT_EQ(b.inputs.data()[6 + 5], 2.005f);
  EXPECT_GE(loader.wait_seconds(), 0.0);
}

TEST(BatchLoader, OneOrThreeThreadsGiveTheSameBatches) {
  SyntheticSpec spec;
  spec.num_samples = 200;
  spec.sample_shape = {3, 10, 10};
  spec.num_classes = 4;
  const SyntheticDataset data(spec, 3, SyntheticSplit::Train);
  const Augmentation augment(3, HorizontalFlip::Yes, {-0.5f});
  auto run = [&](size_t threads) {
    BatchLoader loader(data, 64, &augment, 21, threads);
    EXPECT_EQ(loader.decode_threads(), threads);
    std::vector<float> all;
    std::vector<int32_t> labels;
    const uint64_t starts[] = {0, 64, 128, 192, 200};
    loader.prefetch(range(0, 64), 4);
    for (size_t i = 0; i + 1 < std::size(starts); ++i) {
      Batch& b = loader.next();
      if (i + 2 < std::size(starts)) loader.prefetch(range(starts[i + 1], starts[i + 2] - starts[i + 1]), 4);
      all.insert(all.end(), b.inputs.data(), b.inputs.data() + b.inputs.num_elements());
      labels.insert(labels.end(), b.labels.begin(), b.labels.end());
    }
    EXPECT_EQ(labels.size(), 200u);
    return std::make_pair(all, labels);
  };
  const auto one = run(1);
  EXPECT_EQ(run(3), one);
  EXPECT_EQ(run(2), one);
  // The augmentation was applied: without it the batches differ.
  BatchLoader plain(data, 64, nullptr, 21, 3);
  plain.prefetch(range(0, 64), 4);
  Batch& b = plain.next();
  EXPECT_NE(std::vector<float>(b.inputs.data(), b.inputs.data() + b.inputs.num_elements()),
            std::vector<float>(one.first.begin(), one.first.begin() + b.inputs.num_elements()));
}

TEST(BatchLoader, PoolSharesTheWorkOfSlowSamples) {
  const ProbeDataset data(64, {}, std::chrono::microseconds(2000));
  auto seconds = [&](size_t threads) {
    BatchLoader loader(data, 32, nullptr, 0, threads);
    const auto start = std::chrono::steady_clock::now();
    loader.prefetch(range(0, 32));
    loader.next();
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  };
  const double one = seconds(1), four = seconds(4);  // sleeping threads: no CPU needed
  EXPECT_LT(four, one * 0.6) << "1 thread " << one << " s, 4 threads " << four << " s";
}

// A data set of the given sample shape whose get() throws something that is not a dptrain error, as a
// bug or an exhausted allocator would.
class ThrowingDataset : public Dataset {
 public:
  explicit ThrowingDataset(Shape shape = {1, 2, 3}) : shape_(std::move(shape)) {}
  size_t size() const override { return 8; }
  Shape sample_shape() const override { return shape_; }
  size_t num_classes() const override { return 2; }
  void get(size_t, float*, int32_t*) const override { throw std::logic_error("decoder state corrupted"); }
  std::string describe() const override { return "throwing"; }

 private:
  Shape shape_;
};

TEST(BatchLoader, AnyExceptionOnAWorkerThreadReachesTheCaller) {
  const ThrowingDataset data;
  BatchLoader loader(data, 4, nullptr, 0, 3);
  loader.prefetch({0, 1, 2, 3});
  try {
    loader.next();
    ADD_FAILURE() << "no error";
  } catch (const std::logic_error& e) {
    EXPECT_STREQ(e.what(), "decoder state corrupted");
  }
}

TEST(BatchLoader, BuffersBeyondTheMemoryBudgetNameTheKeyThatSetsThem) {
  const ThrowingDataset huge_sample({1, size_t{1} << 22, size_t{1} << 22});  // 64 TiB of floats
  try {
    BatchLoader loader(huge_sample, 1);
    ADD_FAILURE() << "no error";
  } catch (const AllocationError& e) {
    EXPECT_EQ(e.key(), "data.shape");
    EXPECT_THAT(e.what(), HasSubstr("one sample of (1, 4194304, 4194304)"));
    EXPECT_THAT(e.what(), HasSubstr("lower data.shape"));
  }
  const ThrowingDataset small_sample;
  try {
    BatchLoader loader(small_sample, size_t{1} << 50);
    ADD_FAILURE() << "no error";
  } catch (const AllocationError& e) {
    EXPECT_EQ(e.key(), "train.batch_size");
    EXPECT_THAT(e.what(), HasSubstr("lower train.batch_size"));
  }
}

TEST(BatchLoader, ErrorsSurfaceFromNextAndTheLoaderGoesOn) {
  const ProbeDataset data(40, {13, 7});
  BatchLoader loader(data, 16, nullptr, 0, 3);
  loader.prefetch({1, 2, 13, 3, 7, 4});
  try {
    loader.next();
    ADD_FAILURE() << "no error";
  } catch (const DataError& e) {
    EXPECT_STREQ(e.what(), "sample 13 is bad");  // the lowest failing position, whatever the threads
  }
  loader.prefetch({5, 6});
  Batch& b = loader.next();
  EXPECT_EQ(b.labels, (std::vector<int32_t>{0, 1}));
}

TEST(BatchLoader, MisuseIsReported) {
  const ProbeDataset data(10);
  BatchLoader loader(data, 4, nullptr, 0, 2);
  EXPECT_THROW(loader.next(), Error);
  EXPECT_THROW(loader.prefetch({1, 2, 3, 4, 5}), ShapeError);
  loader.prefetch({1});
  EXPECT_THROW(loader.prefetch({2}), Error);
  EXPECT_EQ(loader.next().ids, (std::vector<uint64_t>{1}));
  loader.prefetch({});
  EXPECT_TRUE(loader.next().ids.empty());
}

TEST(BatchLoader, DestroyingWithAPendingBatchWaitsForIt) {
  const ProbeDataset data(100, {}, std::chrono::microseconds(500));
  {
    BatchLoader loader(data, 50, nullptr, 0, 3);
    loader.prefetch(range(0, 50));
  }
  EXPECT_EQ(data.calls(), 50u);
}

TEST(BatchLoader, DefaultThreadsFollowTheCostOfASample) {
  EXPECT_EQ(BatchLoader::default_decode_threads(ProbeDataset(1)), 1u);
  const size_t decode = BatchLoader::default_decode_threads(ProbeDataset(1, {}, {}, LoadCost::Decode));
  EXPECT_GE(decode, 1u);
  EXPECT_LE(decode, 4u);
  EXPECT_EQ(decode, std::min<size_t>(4, std::max(1u, std::thread::hardware_concurrency())));
  const ProbeDataset expensive(1, {}, {}, LoadCost::Decode);
  BatchLoader loader(expensive, 1);
  EXPECT_EQ(loader.decode_threads(), decode);
}

TEST(BatchLoader, WaitSecondsCountsTimeSpentWaiting) {
  const ProbeDataset data(20, {}, std::chrono::microseconds(3000));
  BatchLoader loader(data, 10, nullptr, 0, 1);
  loader.prefetch(range(0, 10));
  loader.next();
  EXPECT_GT(loader.wait_seconds(), 0.01);
}

}  // namespace
}  // namespace dptrain
