// ElasticController: who trains, decided at every epoch boundary — workers asked to leave (SIGUSR1
// or `dptrain ctl leave`) go, joiners waiting in the run directory (`dptrain join`) come in, and a
// job that falls below elastic.min_workers waits for joiners, then checkpoints and stops.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "runtime/elastic/mpi_membership.h"
#include "comm/mpi/mpi_communicator.h"
#include "comm/mpi/world.h"
#include "runtime/elastic/run_dir.h"
#include "runtime/core/run_config.h"
#include "runtime/train/trainer.h"

namespace dptrain::launcher {

class ElasticController final : public EpochBoundary {
 public:
  // `comm`: the communicator the trainer starts on (not owned); `leave_signal`: set by SIGUSR1.
  // Collective over `comm` (it gathers every worker's host and pid).
  ElasticController(const RunConfig& config, MpiCommunicator& comm, const std::atomic<int>* leave_signal);
  ~ElasticController() override;

  // The running job's side, before training: rank 0 publishes the config, the port (when
  // elastic.enabled) and the members in the run directory.
  void publish(const Trainer& trainer);
  // A joiner's side: asks the job in the run directory to let this job's workers in, waits up to
  // `wait` for the next epoch boundary, connects and receives the training state into `trainer`.
  // Returns the job's refusal ("" when accepted and joined). Collective over the joiners.
  std::string join(Trainer& trainer, std::chrono::seconds wait);

  BoundaryAction at_epoch_boundary(Trainer& trainer) override;

  // The communicator training runs on now.
  MpiCommunicator& comm() { return *current_; }
  // True once a peer was lost or a hand-over abandoned: MPI_Finalize could then wait for a dead
  // process, so the launcher ends the process without it.
  bool peer_lost() const { return peer_lost_; }
  // True once workers joined or left this worker's job (or it joined one).
  bool membership_changed() const { return membership_changed_; }
  // True when the run stopped because too few workers remained (and no joiner came in time).
  bool below_minimum() const { return below_minimum_; }

 private:
  struct Decision;
  // Rank 0: the leave votes it adds from `dptrain ctl leave`, and which joiners to accept.
  Decision decide(Trainer& trainer, size_t remaining);
  void leave_step(Trainer& trainer, const std::vector<size_t>& leavers, bool& leaving);
  void join_step(Trainer& trainer, const JoinRequest& request);
  // Right after a hand-over, over the merged communicator (ranks from `first_joiner` on joined):
  // rank 0 tells the joiners whether the job keeps a timeline, how long it has run and each joiner's
  // track number; a joiner then records into a timeline of its own.
  void hand_over_timeline(Trainer& trainer, size_t first_joiner);
  // Before leavers split off: each sends its timeline to rank 0, which keeps it for the merged file.
  void collect_leavers_timelines(Trainer& trainer, const std::vector<size_t>& leavers, bool leaving);
  // Makes `next` (with `members`) the communicator trained on.
  void adopt(Trainer& trainer, std::unique_ptr<MpiCommunicator> next, std::vector<WorkerInfo> members);
  void record(Trainer& trainer, const std::string& change, const std::string& who, size_t before, double seconds);

  const RunConfig& config_;
  const std::atomic<int>* leave_signal_;
  ElasticDir dir_;
  Deadline deadline_;
  MpiCommunicator* current_;
  std::vector<std::unique_ptr<MpiCommunicator>> owned_;  // communicators made here, current and abandoned
  std::vector<WorkerInfo> members_;                      // the current communicator's workers, in rank order
  std::unique_ptr<JoinPort> port_;                        // rank 0 of an elastic job
  std::unique_ptr<Timeline> joined_timeline_;             // a joiner's, when the job keeps a timeline
  size_t next_worker_ = 0;                                // rank 0: the next joiner's timeline track number
  bool refused_own_leave_ = false;
  bool peer_lost_ = false;
  bool membership_changed_ = false;
  bool below_minimum_ = false;
  size_t epoch_ = 0;
};

// Ends a worker's part in a run: a worker that left exits 0 at once (its GPU and memory go back;
// under mpirun without --enable-recovery it instead waits in MPI_Finalize for the job's end).
// Otherwise returns the exit code: 0, 75 (EX_TEMPFAIL) when too few workers remained, or
// 128+signal for a signal stop without checkpoints.
int finish_run(const Trainer& trainer, const ElasticController* elastic, const RunConfig& config);

}  // namespace dptrain::launcher
