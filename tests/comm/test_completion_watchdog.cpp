#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <stdexcept>
#include <string>
#include <thread>

#include "comm/completion_watchdog.h"
#include "runtime/core/errors.h"

namespace dptrain {
namespace DPTRAIN_TEST_UNIT {

using Clock = CompletionWatchdog::Clock;
using std::chrono::seconds;

// A transport as the watchdog sees it: a fake clock, an asynchronous error to report, and the
// aborts it was asked for.
struct FakeTransport {
  Clock::time_point now{};
  std::string error;
  std::vector<std::string> aborts;
  CompletionWatchdog::Hooks hooks() {
    CompletionWatchdog::Hooks h;
    h.abort = [this](const std::string& failure) { aborts.push_back(failure); };
    h.health = [this] { return error; };
    h.now = [this] { return now; };
    return h;
  }
};

TEST(CompletionWatchdog, CompletedOperationsAreDroppedWithoutAnAbort) {
  FakeTransport transport;
  CompletionWatchdog watchdog(transport.hooks(), WatchdogThread::None);
  bool first = false, second = false;
  watchdog.watch([&] { return first; }, transport.now + seconds(10), "all-reduce 1 (8 floats)");
  watchdog.watch([&] { return second; }, transport.now + seconds(10), "all-reduce 2 (8 floats)");
  watchdog.poll();
  EXPECT_EQ(watchdog.pending(), 2u);
  first = true;
  transport.now += seconds(5);
  watchdog.poll();
  EXPECT_EQ(watchdog.pending(), 1u);
  second = true;
  watchdog.poll();
  EXPECT_EQ(watchdog.pending(), 0u);
  EXPECT_TRUE(transport.aborts.empty());
  EXPECT_NO_THROW(watchdog.check());
}

TEST(CompletionWatchdog, AMissedDeadlineAbortsOnceAndNamesTheOperationWaitedOn) {
  FakeTransport transport;
  CompletionWatchdog watchdog(transport.hooks(), WatchdogThread::None);
  watchdog.watch([] { return true; }, transport.now + seconds(1), "all-reduce 6 (100 floats)");
  watchdog.watch([] { return false; }, transport.now + seconds(30), "all-reduce 7 (1048576 floats)");
  watchdog.watch([] { return false; }, transport.now + seconds(31), "all-reduce 8 (1048576 floats)");
  transport.now += seconds(29);
  watchdog.poll();
  EXPECT_TRUE(transport.aborts.empty()) << "before the deadline nothing is aborted";
  transport.now += seconds(5);
  watchdog.poll();
  watchdog.poll();
  ASSERT_EQ(transport.aborts.size(), 1u);
  EXPECT_NE(transport.aborts[0].find("all-reduce 7 (1048576 floats)"), std::string::npos) << transport.aborts[0];
  EXPECT_NE(watchdog.failure().find("did not complete"), std::string::npos);
  EXPECT_THROW(watchdog.check(), CommError);
  EXPECT_THROW(watchdog.watch([] { return true; }, transport.now, "all-reduce 9"), CommError)
      << "nothing new is started on an aborted transport";
}

TEST(CompletionWatchdog, AnAsynchronousTransportErrorAbortsBeforeTheDeadline) {
  FakeTransport transport;
  CompletionWatchdog watchdog(transport.hooks(), WatchdogThread::None);
  watchdog.watch([] { return false; }, transport.now + seconds(300), "all-reduce 1 (8 floats)");
  transport.error = "unhandled system error: peer closed the connection";
  watchdog.poll();
  ASSERT_EQ(transport.aborts.size(), 1u);
  EXPECT_NE(transport.aborts[0].find("peer closed the connection"), std::string::npos) << transport.aborts[0];
  EXPECT_THROW(watchdog.check(), CommError);
}

TEST(CompletionWatchdog, AFailingPollIsAFailureAndKeepsTheOtherOperations) {
  FakeTransport transport;
  CompletionWatchdog watchdog(transport.hooks(), WatchdogThread::None);
  watchdog.watch([]() -> bool { throw Error("an illegal memory access was encountered"); },
                 transport.now + seconds(300), "all-reduce 1 (8 floats)");
  watchdog.watch([] { return false; }, transport.now + seconds(300), "all-reduce 2 (8 floats)");
  watchdog.poll();
  ASSERT_EQ(transport.aborts.size(), 1u);
  EXPECT_NE(transport.aborts[0].find("illegal memory access"), std::string::npos) << transport.aborts[0];
  EXPECT_EQ(watchdog.pending(), 2u);
}

TEST(CompletionWatchdog, ItsThreadFindsAMissedDeadlineWithoutTheCallerWaiting) {
  std::atomic<int> aborts{0};
  CompletionWatchdog::Hooks hooks;
  hooks.abort = [&](const std::string&) { ++aborts; };
  CompletionWatchdog watchdog(std::move(hooks), WatchdogThread::Run, std::chrono::microseconds(200));
  std::atomic<bool> done{false};
  watchdog.watch([&] { return done.load(); }, Clock::now() + seconds(60), "all-reduce 1 (8 floats)");
  watchdog.watch([] { return false; }, Clock::now() + std::chrono::milliseconds(20), "all-reduce 2 (8 floats)");
  done = true;
  const auto limit = Clock::now() + seconds(10);
  while (aborts.load() == 0 && Clock::now() < limit) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  EXPECT_EQ(aborts.load(), 1);
  EXPECT_NE(watchdog.failure().find("all-reduce 2"), std::string::npos) << watchdog.failure();
}

TEST(CompletionWatchdog, StopsItsThreadWhenDestroyedWithOperationsPending) {
  const auto start = Clock::now();
  {
    CompletionWatchdog watchdog(CompletionWatchdog::Hooks{}, WatchdogThread::Run);
    watchdog.watch([] { return false; }, Clock::now() + seconds(600), "all-reduce 1 (8 floats)");
  }
  EXPECT_LT(Clock::now() - start, seconds(5));
}

TEST(CompletionWatchdog, AnExceptionOnItsThreadReachesTheCallerAndAbortsTheTransport) {
  std::atomic<int> aborts{0};
  CompletionWatchdog::Hooks hooks;
  hooks.abort = [&](const std::string&) { ++aborts; };
  hooks.on_thread_start = [] { throw std::runtime_error("no device for the watchdog"); };
  CompletionWatchdog watchdog(std::move(hooks), WatchdogThread::Run);
  const auto limit = Clock::now() + seconds(10);
  while (aborts.load() == 0 && Clock::now() < limit) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  EXPECT_NE(watchdog.failure().find("no device for the watchdog"), std::string::npos) << watchdog.failure();
  EXPECT_EQ(aborts.load(), 1);
  try {
    watchdog.check();
    ADD_FAILURE() << "check() did not rethrow the thread's exception";
  } catch (const std::runtime_error& e) {
    EXPECT_STREQ(e.what(), "no device for the watchdog");
  }
  EXPECT_THROW(watchdog.watch([] { return true; }, Clock::now() + seconds(1), "all-reduce 1 (8 floats)"),
               std::runtime_error);
}

}  // namespace
}  // namespace dptrain
