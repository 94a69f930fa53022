#include "runtime/train/stop_vote.h"

#include <algorithm>
#include <csignal>
#include <vector>

#include "runtime/report/timeline.h"

namespace dptrain {

namespace {

// What one worker adds to a vote: whether it was asked to stop, the signal, and its square (so
// that the sums tell whether every worker that was asked got the same signal).
void put_vote(int own, double* slots) {
  slots[0] = own ? 1.0 : 0.0;
  slots[1] = own;
  slots[2] = static_cast<double>(own) * own;
}

}  // namespace

StopVote::StopVote(const std::atomic<int>* signal, Deadline deadline) : signal_(signal), deadline_(deadline) {}

bool StopVote::count_votes(const double* votes, int own) {
  const double asked = votes[0];
  if (asked <= 0) return false;
  if (own) {
    stopped_by_ = own;
  } else if (votes[2] * asked == votes[1] * votes[1]) {
    // Every worker that was asked got the same signal (a launcher forwards one signal to all,
    // which reach them a little apart).
    stopped_by_ = static_cast<int>(votes[1] / asked);
  } else {
    stopped_by_ = SIGTERM;
  }
  return true;
}

bool StopVote::after_step(double* metrics, size_t count, Communicator& comm, Timeline* timeline) {
  const int own = own_signal();
  std::vector<double> sums(metrics, metrics + count);
  sums.resize(count + 3);
  put_vote(own, sums.data() + count);
  if (comm.size() > 1) {
    TimelineSpan span(timeline, "metrics all-reduce", "comm");
    comm.all_reduce_sum(sums.data(), sums.size(), deadline_);
  }
  std::copy(sums.begin(), sums.begin() + static_cast<std::ptrdiff_t>(count), metrics);
  return count_votes(sums.data() + count, own);
}

bool StopVote::at_epoch_boundary(Communicator& comm) {
  const int own = own_signal();
  double votes[3];
  put_vote(own, votes);
  if (comm.size() > 1) comm.all_reduce_sum(votes, 3, deadline_);
  return count_votes(votes, own);
}

}  // namespace dptrain
