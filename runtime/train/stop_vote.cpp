#include "runtime/train/stop_vote.h"

#include <csignal>

#include "runtime/report/timeline.h"

namespace dptrain {

StopVote::StopVote(const std::atomic<int>* signal, Deadline deadline) : signal_(signal), deadline_(deadline) {}

bool StopVote::count(double flags, int own) {
  if (flags <= 0) return false;
  stopped_by_ = own ? own : SIGTERM;
  return true;
}

bool StopVote::after_step(double (&metrics)[3], Communicator& comm, Timeline* timeline) {
  const int own = own_signal();
  double sums[4] = {metrics[0], metrics[1], metrics[2], own ? 1.0 : 0.0};
  if (comm.size() > 1) {
    TimelineSpan span(timeline, "metrics all-reduce", "comm");
    comm.all_reduce_sum(sums, 4, deadline_);
  }
  for (int i = 0; i < 3; ++i) metrics[i] = sums[i];
  return count(sums[3], own);
}

bool StopVote::at_epoch_boundary(Communicator& comm) {
  const int own = own_signal();
  double flag = own ? 1.0 : 0.0;
  if (comm.size() > 1) comm.all_reduce_sum(&flag, 1, deadline_);
  return count(flag, own);
}

}  // namespace dptrain
