#include <gtest/gtest.h>

#include <atomic>
#include <csignal>

#include "comm/communicator.h"
#include "runtime/train/stop_vote.h"

namespace dptrain {
namespace DPTRAIN_TEST_UNIT {

const Deadline kDeadline = std::chrono::seconds(10);

// Two workers as one process sees them: every sum adds a peer's values, `peer` (loss sum, correct,
// samples, then the peer's vote: stop flag, signal, signal squared).
class PeerCommunicator final : public Communicator {
 public:
  using Communicator::all_reduce_sum;
  explicit PeerCommunicator(std::vector<double> peer) : peer_(std::move(peer)) {}
  const char* backend() const override { return "peer"; }
  size_t rank() const override { return 0; }
  size_t size() const override { return 2; }
  std::unique_ptr<CommRequest> all_reduce_sum_async(float*, size_t) override { return nullptr; }
  void all_reduce_sum(double* data, size_t count, Deadline) override {
    ++sums;
    // At an epoch boundary the vote travels alone.
    const size_t first = count == 3 ? 3 : 0;
    for (size_t i = 0; i < count; ++i) data[i] += peer_[first + i];
  }
  void broadcast(void*, size_t, size_t, Deadline) override {}
  void barrier(Deadline) override {}
  void all_gather(const void*, size_t, void*, Deadline) override {}
  size_t sums = 0;

 private:
  std::vector<double> peer_;
};

TEST(StopVote, NobodyAskedMeansTrainOn) {
  SingleProcessCommunicator comm;
  std::atomic<int> signal{0};
  StopVote vote(&signal, kDeadline);
  double metrics[3] = {2.5, 3, 4};
  EXPECT_FALSE(vote.after_step(metrics, 3, comm, nullptr));
  EXPECT_EQ(metrics[0], 2.5);
  EXPECT_EQ(metrics[2], 4);
  EXPECT_FALSE(vote.at_epoch_boundary(comm));
  EXPECT_EQ(vote.stopped_by(), 0);
  StopVote never(nullptr, kDeadline);  // no signal handler at all
  EXPECT_FALSE(never.after_step(metrics, 3, comm, nullptr));
  EXPECT_FALSE(never.at_epoch_boundary(comm));
}

TEST(StopVote, OwnSignalStopsAndIsNamed) {
  SingleProcessCommunicator comm;
  std::atomic<int> signal{SIGINT};
  StopVote vote(&signal, kDeadline);
  double metrics[3] = {1, 1, 1};
  EXPECT_TRUE(vote.after_step(metrics, 3, comm, nullptr));
  EXPECT_EQ(vote.stopped_by(), SIGINT);
  StopVote at_boundary(&signal, kDeadline);
  EXPECT_TRUE(at_boundary.at_epoch_boundary(comm));
  EXPECT_EQ(at_boundary.stopped_by(), SIGINT);
}

TEST(StopVote, APeersRequestStopsThisWorkerTooAndIsNamedAsThePeersSignal) {
  PeerCommunicator comm({1.5, 2, 8, 1, SIGUSR2, SIGUSR2 * SIGUSR2});
  std::atomic<int> signal{0};
  StopVote vote(&signal, kDeadline);
  double metrics[3] = {0.5, 1, 8};
  EXPECT_TRUE(vote.after_step(metrics, 3, comm, nullptr));
  EXPECT_EQ(comm.sums, 1u);  // the flag travels with the step's metrics
  EXPECT_EQ(metrics[0], 2.0);
  EXPECT_EQ(metrics[1], 3.0);
  EXPECT_EQ(metrics[2], 16.0);
  EXPECT_EQ(vote.stopped_by(), SIGUSR2);
  StopVote at_boundary(&signal, kDeadline);
  EXPECT_TRUE(at_boundary.at_epoch_boundary(comm));
  EXPECT_EQ(at_boundary.stopped_by(), SIGUSR2);
}

TEST(StopVote, OwnSignalWinsOverAPeersOne) {
  PeerCommunicator comm({0, 0, 0, 1, SIGUSR2, SIGUSR2 * SIGUSR2});
  std::atomic<int> signal{SIGINT};
  StopVote vote(&signal, kDeadline);
  EXPECT_TRUE(vote.at_epoch_boundary(comm));
  EXPECT_EQ(vote.stopped_by(), SIGINT);
}

TEST(StopVote, PeersAskedByDifferentSignalsAreNamedAsSigterm) {
  // Three workers' votes summed: two peers, one asked by SIGINT and one by SIGUSR2.
  PeerCommunicator comm({0, 0, 0, 2, SIGINT + SIGUSR2, SIGINT * SIGINT + SIGUSR2 * SIGUSR2});
  std::atomic<int> signal{0};
  StopVote vote(&signal, kDeadline);
  EXPECT_TRUE(vote.at_epoch_boundary(comm));
  EXPECT_EQ(vote.stopped_by(), SIGTERM);
}

TEST(StopVote, MetricsAreSummedWhenNobodyStops) {
  PeerCommunicator comm({1, 2, 3, 0, 0, 0});
  StopVote vote(nullptr, kDeadline);
  double metrics[3] = {1, 1, 1};
  EXPECT_FALSE(vote.after_step(metrics, 3, comm, nullptr));
  EXPECT_EQ(metrics[2], 4.0);
  EXPECT_FALSE(vote.at_epoch_boundary(comm));
  EXPECT_EQ(vote.stopped_by(), 0);
}

}  // namespace
}  // namespace dptrain
