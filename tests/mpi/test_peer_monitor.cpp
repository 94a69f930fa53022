// Heartbeats (PeerMonitor): a busy worker is never reported lost, a planned stop is never a loss,
// and a worker that goes silent is named, with its pid and host, by every other worker and by the
// communicator's waits.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "comm/mpi/mpi_communicator.h"
#include "comm/mpi/peer_monitor.h"
#include "comm/mpi/world.h"
#include "runtime/core/errors.h"
#include "tests/mpi/mpi_test_util.h"

namespace dptrain {
namespace DPTRAIN_TEST_UNIT {

using Clock = std::chrono::steady_clock;
const Deadline kDeadline = std::chrono::seconds(60);
constexpr double kSilence = 1.0;  // seconds

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

std::vector<WorkerInfo> workers_of(Communicator& comm) {
  WorkerInfo self;
  self.rank = static_cast<uint32_t>(comm.rank());
  self.pid = static_cast<int32_t>(getpid());
  std::snprintf(self.host, sizeof(self.host), "%s", host_name().c_str());
  return gather_workers(comm, self, kDeadline);
}

bool multithreaded() {
  int level = MPI_THREAD_SINGLE;
  MPI_Query_thread(&level);
  return level == MPI_THREAD_MULTIPLE;
}

// Waits until `monitor` knows of a lost worker, at most `seconds`; returns how long that took (or -1).
double wait_for_loss(const PeerMonitor& monitor, double seconds) {
  const auto start = Clock::now();
  while (seconds_since(start) < seconds) {
    if (monitor.any_lost()) return seconds_since(start);
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return -1;
}

TEST(PeerMonitor, ABusyWorkerIsNotReportedLost) {
  MpiCommunicator comm(MPI_COMM_WORLD);
  const std::vector<WorkerInfo> workers = workers_of(comm);
  if (!multithreaded()) GTEST_SKIP() << "this MPI library does not offer MPI_THREAD_MULTIPLE";
  ASSERT_TRUE(comm.monitor_peers(kSilence, workers, kDeadline));
  ASSERT_NE(comm.monitor(), nullptr);
  EXPECT_LT(comm.monitor()->period_seconds(), kSilence);
  const bool busy = comm.rank() == comm.size() - 1;
  // The last rank computes (makes no MPI call) three times longer than the silence, while the others
  // wait for it in a barrier, then in all-reduces on the collective thread.
  if (busy) std::this_thread::sleep_for(std::chrono::duration<double>(3 * kSilence));
  EXPECT_NO_THROW(comm.barrier(kDeadline));
  std::vector<float> data(1000, 1.0f);
  if (busy) std::this_thread::sleep_for(std::chrono::duration<double>(2.5 * kSilence));
  EXPECT_NO_THROW(comm.all_reduce_sum(data.data(), data.size(), kDeadline));
  EXPECT_EQ(data[999], static_cast<float>(comm.size()));
  EXPECT_FALSE(comm.monitor()->any_lost());
  EXPECT_TRUE(comm.monitor()->lost().empty());

  comm.barrier(kDeadline);
  const auto start = Clock::now();
  comm.stop_monitoring();
  EXPECT_LT(seconds_since(start), kSilence + 1.5);  // every rank stops at once: goodbyes cross quickly
  EXPECT_EQ(comm.monitor(), nullptr);
  comm.stop_monitoring();  // idempotent
  double one = 1;
  comm.all_reduce_sum(&one, 1, kDeadline);  // the communicator works on without heartbeats
  EXPECT_EQ(one, static_cast<double>(comm.size()));
}

TEST(PeerMonitor, AStopOnPurposeIsNotALossEvenWhenThePeersStopLater) {
  if (!multithreaded()) GTEST_SKIP() << "this MPI library does not offer MPI_THREAD_MULTIPLE";
  MpiCommunicator comm(MPI_COMM_WORLD);
  const std::vector<WorkerInfo> workers = workers_of(comm);
  // First rank 0 stops early, then every rank but rank 0 does.
  for (const bool root_first : {true, false}) {
    PeerMonitor monitor(comm.comm(), kSilence, workers, kDeadline);
    const bool early = (comm.rank() == 0) == root_first;
    if (early) {
      monitor.stop(std::chrono::seconds(20));  // waits for the late ones' goodbyes
    } else {
      std::this_thread::sleep_for(std::chrono::duration<double>(2 * kSilence));
      monitor.stop(std::chrono::seconds(20));
    }
    EXPECT_TRUE(monitor.lost().empty()) << (root_first ? "rank 0" : "the other ranks") << " stopped first";
    comm.barrier(kDeadline);
  }
}

// Every rank but `silent` monitors; `silent` takes part in the start (the duplicate) and then never
// answers. Each of the others must name it within a few seconds.
void expect_silent_rank_named(size_t silent) {
  MpiCommunicator comm(MPI_COMM_WORLD);
  const std::vector<WorkerInfo> workers = workers_of(comm);
  if (comm.rank() == silent) {
    MPI_Comm shadow = MPI_COMM_NULL;
    MPI_Request request;
    DPTRAIN_MPI_CHECK(MPI_Comm_idup(comm.comm(), &shadow, &request));
    wait_request(&request, kDeadline, comm.size(), "the monitor's duplicate");
    MPI_Barrier(MPI_COMM_WORLD);  // until the others have found this rank lost and stopped
    MPI_Comm_free(&shadow);
    return;
  }
  {
    PeerMonitor monitor(comm.comm(), kSilence, workers, kDeadline);
    const double waited = wait_for_loss(monitor, 10 * kSilence);
    EXPECT_GT(waited, 0.5 * kSilence) << "rank " << comm.rank();
    EXPECT_LT(waited, 3 * kSilence) << "rank " << comm.rank();
    try {
      monitor.check("a test wait");
      ADD_FAILURE() << "rank " << comm.rank() << ": no loss reported";
    } catch (const PeerLostError& e) {
      const std::string message = e.what();
      EXPECT_EQ(e.ranks(), std::vector<size_t>{silent}) << message;
      const std::string named = "worker rank " + std::to_string(silent) + " (pid " +
                                std::to_string(workers[silent].pid) + " on host " + host_name() +
                                ") stopped answering: ";
      EXPECT_NE(message.find(named), std::string::npos) << message;
      EXPECT_NE(message.find("(killed, or its node failed)"), std::string::npos) << message;
      EXPECT_NE(
          message.find("rank " + std::to_string(comm.rank()) + " on " + host_name() + " was waiting in a test wait"),
          std::string::npos)
          << message;
      // Rank 0 and a silent worker's direct partners hear the silence themselves; the others learn it
      // from rank 0.
      const bool direct = comm.rank() == 0 || silent == 0;
      EXPECT_NE(message.find(direct ? "no heartbeat for " : "rank 0 heard no heartbeat from it for "),
                std::string::npos)
          << message;
    }
    const auto start = Clock::now();
    monitor.stop(std::chrono::seconds(5));
    EXPECT_LT(seconds_since(start), 6.0);
  }
  MPI_Barrier(MPI_COMM_WORLD);
}

TEST(PeerMonitor, ASilentWorkerIsNamedByEveryOther) {
  if (!multithreaded()) GTEST_SKIP() << "this MPI library does not offer MPI_THREAD_MULTIPLE";
  expect_silent_rank_named(mpi_test::world_size() - 1);
}

TEST(PeerMonitor, ASilentRankZeroIsNamedByEveryOther) {
  if (!multithreaded()) GTEST_SKIP() << "this MPI library does not offer MPI_THREAD_MULTIPLE";
  expect_silent_rank_named(0);
}

TEST(PeerMonitor, AWaitOfTheCommunicatorEndsWithPeerLostError) {
  if (!multithreaded()) GTEST_SKIP() << "this MPI library does not offer MPI_THREAD_MULTIPLE";
  MpiCommunicator comm(MPI_COMM_WORLD);
  const std::vector<WorkerInfo> workers = workers_of(comm);
  const size_t silent = comm.size() - 1;
  if (comm.rank() == silent) {
    // Takes part in the monitor's start, then in nothing until the others have given up.
    MPI_Comm shadow = MPI_COMM_NULL;
    MPI_Request request;
    DPTRAIN_MPI_CHECK(MPI_Comm_idup(comm.comm(), &shadow, &request));
    wait_request(&request, kDeadline, comm.size(), "the monitor's duplicate");
    MPI_Barrier(MPI_COMM_WORLD);
    MPI_Request late;
    DPTRAIN_MPI_CHECK(MPI_Ibarrier(comm.comm(), &late));  // the barrier the others gave up on
    wait_request(&late, kDeadline, comm.size(), "the abandoned barrier");
    MPI_Comm_free(&shadow);
    return;
  }
  EXPECT_TRUE(comm.monitor_peers(kSilence, workers, kDeadline));
  const auto start = Clock::now();
  try {
    comm.barrier(std::chrono::seconds(10));
    ADD_FAILURE() << "the barrier completed without rank " << silent;
  } catch (const PeerLostError& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("worker rank " + std::to_string(silent) + " (pid "), std::string::npos) << message;
    EXPECT_NE(message.find("was waiting in barrier"), std::string::npos) << message;
  } catch (const CommError& e) {
    ADD_FAILURE() << "the deadline ended the wait, not the heartbeats: " << e.what();
  }
  EXPECT_LT(seconds_since(start), 3 * kSilence);  // not the 60 s deadline
  MPI_Barrier(MPI_COMM_WORLD);
}

}  // namespace
}  // namespace dptrain
