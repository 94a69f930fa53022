#include "runtime/train/stop_vote.h"

#include <csignal>

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

bool StopVote::count(const double* votes, int own) {
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

bool StopVote::after_step(double (&metrics)[3], Communicator& comm, Timeline* timeline) {
  const int own = own_signal();
  double sums[6] = {metrics[0], metrics[1], metrics[2]};
  put_vote(own, sums + 3);
  if (comm.size() > 1) {
    TimelineSpan span(timeline, "metrics all-reduce", "comm");
    comm.all_reduce_sum(sums, 6, deadline_);
  }
  for (int i = 0; i < 3; ++i) metrics[i] = sums[i];
  return count(sums + 3, own);
}

bool StopVote::at_epoch_boundary(Communicator& comm) {
  const int own = own_signal();
  double votes[3];
  put_vote(own, votes);
  if (comm.size() > 1) comm.all_reduce_sum(votes, 3, deadline_);
  return count(votes, own);
}

}  // namespace dptrain
