// StopVote: whether any worker was asked to stop (its SIGTERM/SIGINT handler set the flag), agreed
// by all workers, so that every worker stops after the same step.
#pragma once

#include <atomic>
#include <cstddef>

#include "comm/communicator.h"

namespace dptrain {

class Timeline;

// Collects every worker's stop flag: after each step, folded into the all-reduce of the step's
// metrics, and once more at each epoch boundary.
class StopVote {
 public:
  // `signal`: set to the signal number by this worker's handler; nullptr: never asked to stop.
  StopVote(const std::atomic<int>* signal, Deadline deadline);

  // After a training step: `metrics` holds `count` values of this worker's (the step's loss sums,
  // see StepMetrics), and afterwards their sums over all workers; the stop flags travel in the
  // same all-reduce. True when any worker was asked to stop. Collective with several workers.
  bool after_step(double* metrics, size_t count, Communicator& comm, Timeline* timeline);
  // At an epoch boundary: true when any worker was asked to stop. Collective with several workers.
  bool at_epoch_boundary(Communicator& comm);
  // The signal that stopped the run once a vote said stop: this worker's own; else the one its
  // peers were asked by when they all got the same (a signal forwarded to every worker may reach
  // a peer first); else SIGTERM. 0 before.
  int stopped_by() const { return stopped_by_; }

 private:
  // The signal this worker was asked to stop by; 0 when none.
  int own_signal() const { return signal_ ? signal_->load() : 0; }
  // Records the outcome of a vote whose sums are `votes` (workers asked to stop, sum of their
  // signals, sum of their squares), to which this worker gave `own` (its signal, read once);
  // returns whether it says stop.
  bool count_votes(const double* votes, int own);

  const std::atomic<int>* signal_;
  Deadline deadline_;
  int stopped_by_ = 0;
};

}  // namespace dptrain
