// The thread-count check against ulimit -v and ulimit -u: a pure function over limits and costs, and
// the OpenMP stack sizes it reads.
#include <gtest/gtest.h>

#include "runtime/core/thread_limits.h"

namespace dptrain {
namespace DPTRAIN_TEST_UNIT {

constexpr size_t kMiB = size_t{1} << 20;

// 128 MiB OpenBLAS buffers, two a thread, 8 MiB stacks, 5 loader threads: 264 MiB a compute thread.
ThreadCosts debian_costs() {
  ThreadCosts costs;
  costs.stack_bytes = 8 * kMiB;
  costs.blas_buffer_bytes = 128 * kMiB;
  costs.blas_buffers = 2;
  costs.loader_threads = 5;
  return costs;
}

TEST(ThreadLimits, BytesCountTwoBuffersAStackPerThreadAndTheLoaderStacks) {
  const ThreadCosts costs = debian_costs();
  EXPECT_EQ(costs.per_thread(), 264 * kMiB);
  EXPECT_EQ(thread_bytes(1, costs), 256 * kMiB + 5 * 8 * kMiB);  // the main thread's stack exists already
  EXPECT_EQ(thread_bytes(8, costs), 8 * 256 * kMiB + (7 + 5) * 8 * kMiB);
}

TEST(ThreadLimits, NoLimitsFitAnyCount) {
  const ThreadFit fit = fit_threads(64, ProcessRoom{}, debian_costs());
  EXPECT_EQ(fit.limit, ThreadLimit::None);
  EXPECT_EQ(fit.largest, 64u);
  EXPECT_EQ(fit.bytes_left, ProcessRoom::kNoLimit);
}

TEST(ThreadLimits, AddressSpaceGivesTheLargestCountThatFits) {
  ProcessRoom room;
  room.address_space_limit = 2000000 * size_t{1024};  // ulimit -v 2000000
  room.address_space_used = 1100 * kMiB;
  const ThreadCosts costs = debian_costs();
  const ThreadFit fit = fit_threads(8, room, costs);
  EXPECT_EQ(fit.limit, ThreadLimit::AddressSpace);
  EXPECT_EQ(fit.bytes_left, room.address_space_limit - room.address_space_used);
  EXPECT_EQ(fit.bytes_needed, thread_bytes(8, costs));
  ASSERT_GT(fit.largest, 0u);
  EXPECT_LE(thread_bytes(fit.largest, costs), fit.bytes_left);
  EXPECT_GT(thread_bytes(fit.largest + 1, costs), fit.bytes_left);
  EXPECT_EQ(fit_threads(fit.largest, room, costs).limit, ThreadLimit::None);
}

TEST(ThreadLimits, NotEvenOneThreadFitsWhenTheSpaceIsUsedUp) {
  ProcessRoom room;
  room.address_space_limit = 1000 * kMiB;
  room.address_space_used = 1200 * kMiB;  // over the limit already
  const ThreadFit fit = fit_threads(4, room, debian_costs());
  EXPECT_EQ(fit.limit, ThreadLimit::AddressSpace);
  EXPECT_EQ(fit.largest, 0u);
  EXPECT_EQ(fit.bytes_left, 0u);
}

TEST(ThreadLimits, ProcessLimitCountsTheThreadsTheRunAdds) {
  ProcessRoom room;
  room.process_limit = 20;
  room.threads_running = 10;  // 10 more allowed: 5 for the loader, so 6 compute threads (5 added)
  const ThreadFit fit = fit_threads(8, room, debian_costs());
  EXPECT_EQ(fit.limit, ThreadLimit::Processes);
  EXPECT_EQ(fit.largest, 6u);
  EXPECT_EQ(fit_threads(6, room, debian_costs()).limit, ThreadLimit::None);
  room.threads_running = 18;  // not even the loader's threads fit
  EXPECT_EQ(fit_threads(1, room, debian_costs()).largest, 0u);
  EXPECT_EQ(fit_threads(1, room, debian_costs()).limit, ThreadLimit::Processes);
}

TEST(ThreadLimits, OpenMpStackSizesParseLikeLibgomp) {
  EXPECT_EQ(parse_omp_stack_size("16M"), 16 * kMiB);
  EXPECT_EQ(parse_omp_stack_size("512k"), 512u * 1024);
  EXPECT_EQ(parse_omp_stack_size("1 G"), size_t{1} << 30);
  EXPECT_EQ(parse_omp_stack_size("100B"), 100u);
  EXPECT_EQ(parse_omp_stack_size("4096"), 4096u * 1024);  // no unit: KiB
  EXPECT_EQ(parse_omp_stack_size("lots"), 0u);
  EXPECT_EQ(parse_omp_stack_size("12MB"), 0u);
  EXPECT_EQ(parse_omp_stack_size(""), 0u);
}

TEST(ThreadLimits, CostsComeFromTheStackLimitOrOmpStackSize) {
  const ThreadCosts costs = thread_costs();
  EXPECT_GT(costs.stack_bytes, 0u);
  EXPECT_GE(costs.blas_buffer_bytes, 128 * kMiB);
  const ProcessRoom room = process_room();
  EXPECT_GT(room.address_space_used, 0u);
  EXPECT_GE(room.threads_running, 1u);
}

}  // namespace
}  // namespace dptrain
