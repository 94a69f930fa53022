#include <gtest/gtest.h>

#include <memory>
#include <thread>

#include "comm/reuse_pool.h"

namespace dptrain {
namespace DPTRAIN_TEST_UNIT {

TEST(ReusePool, ObjectsAreMadeOnlyWhenNoneIsFreeAndComeBackWhenTheirLastHandleGoes) {
  int made = 0;
  ReusePool<int> pool([&] { return std::make_unique<int>(++made); });
  // Two buckets a step, for many steps: two objects in all, not two per step.
  for (int step = 0; step < 100; ++step) {
    std::shared_ptr<int> a = pool.acquire();
    std::shared_ptr<int> b = pool.acquire();
    std::shared_ptr<int> watched = b;  // a second holder (a watchdog) keeps it out of the pool
    a.reset();
    b.reset();
    EXPECT_EQ(pool.free(), 1u);
  }
  EXPECT_EQ(made, 2);
  EXPECT_EQ(pool.made(), 2u);
  EXPECT_EQ(pool.free(), 2u);
}

TEST(ReusePool, AHandleMayOutliveThePoolAndBeReleasedOnAnotherThread) {
  std::shared_ptr<int> kept;
  {
    ReusePool<int> pool([] { return std::make_unique<int>(7); });
    kept = pool.acquire();
  }
  std::thread other([held = std::move(kept)]() mutable { held.reset(); });
  other.join();
  SUCCEED();
}

}  // namespace
}  // namespace dptrain
