// The seam between the training loop and elastic membership (runtime/elastic/controller.h): what
// the trainer asks at each epoch boundary (EpochBoundary), and the little of the trainer that a
// membership change may use (ElasticHost).
#pragma once

#include <string>

#include "runtime/train/run_summary.h"

namespace dptrain {

class Communicator;
class RunReport;
class Timeline;

// The trainer as the elastic controller sees it, at an epoch boundary and in a joiner's hand-over:
// where the run stands, the communicator it trains on (replaced when workers join or leave), the
// state hand-over to joiners, the boundary's checkpoint, rank 0's log and metrics, and the timeline.
class ElasticHost {
 public:
  virtual const TrainingPosition& position() const = 0;
  // Trains on `comm` from now on (after workers joined or left): the gradient reducer and the
  // device communicator are rebuilt; rank 0 must stay rank 0. `comm` must outlive its use.
  virtual void replace_communicator(Communicator& comm) = 0;
  // Collective over the current communicator, right after workers joined: checks that every worker
  // has the same model, data and config ("" when they do, else what differs — then nothing else is
  // sent), then copies rank 0's parameters, optimizer state and position to every worker.
  virtual std::string hand_over() = 0;
  // Rank 0 writes a checkpoint of the current position (once per position); returns its path, ""
  // on other ranks and without checkpoint.dir. Not collective.
  virtual std::string save_checkpoint() = 0;
  // Rank 0's console and metrics file.
  virtual RunReport& report() = 0;
  // The timeline this worker records into (null: none), and one to record into from now on (a
  // joiner's, once it knows the job keeps one).
  virtual Timeline* timeline() const = 0;
  virtual void set_timeline(Timeline* timeline) = 0;

 protected:
  ~ElasticHost() = default;
};

// What the workers decided at an epoch boundary.
enum class BoundaryAction {
  Continue,  // train the next epoch (perhaps with other workers: the communicator may have changed)
  Leave,     // this worker leaves the job; the others go on without it
  Stop,      // every worker stops (after saving a checkpoint), for `stop_reason`
};

// An epoch boundary's decision, with the reason when it stops the run.
struct BoundaryDecision {
  BoundaryAction action = BoundaryAction::Continue;
  std::string stop_reason;  // BoundaryAction::Stop only
};

// Changes who trains between epochs. Called on every worker at every epoch boundary but the last,
// after that boundary's checkpoint; collective.
class EpochBoundary {
 public:
  virtual ~EpochBoundary() = default;
  virtual BoundaryDecision at_epoch_boundary(ElasticHost& host) = 0;
};

}  // namespace dptrain
