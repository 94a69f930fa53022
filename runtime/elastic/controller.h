// ElasticController: who trains, decided at every epoch boundary — workers asked to leave (SIGUSR1
// or `dptrain ctl leave`) go, joiners waiting in the run directory (`dptrain join`) come in, and a
// job that falls below elastic.min_workers waits for joiners, then checkpoints and stops.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "comm/mpi/mpi_communicator.h"
#include "comm/mpi/world.h"
#include "runtime/core/run_config.h"
#include "runtime/elastic/mpi_membership.h"
#include "runtime/elastic/run_dir.h"
#include "runtime/train/epoch_boundary.h"

namespace dptrain::launcher {

// Decides at every epoch boundary who trains on, and lets a joining job in (join()).
class ElasticController final : public EpochBoundary {
 public:
  // `comm`: the communicator the trainer starts on (not owned); `leave_signal`: set by SIGUSR1.
  // Collective over `comm` (it gathers every worker's host and pid).
  ElasticController(const RunConfig& config, MpiCommunicator& comm, const std::atomic<int>* leave_signal);
  ~ElasticController() override;

  // The running job's side, before training: rank 0 publishes the config, the port (when
  // elastic.enabled) and the members in the run directory.
  void publish(const ElasticHost& host);
  // A joiner's side (runtime/elastic/joiner.cpp): asks the job in the run directory to let this
  // job's workers in, waits up to `wait` for the next epoch boundary, connects and receives the
  // training state into `host`. Returns the job's refusal ("" when accepted and joined).
  // Collective over the joiners.
  std::string join(ElasticHost& host, std::chrono::seconds wait);

  BoundaryDecision at_epoch_boundary(ElasticHost& host) override;

  // The communicator training runs on now.
  MpiCommunicator& comm() { return *current_; }
  // True once a peer was lost or a hand-over abandoned: MPI_Finalize could then wait for a dead
  // process, so the launcher ends the process without it.
  bool peer_lost() const { return peer_lost_; }
  // True once workers joined or left this worker's job (or it joined one).
  bool membership_changed() const { return membership_changed_; }
  // True when the run stopped because too few workers remained (and no joiner came in time).
  bool below_minimum() const { return below_minimum_; }
  // A joiner's timeline, once the hand-over said the job keeps one (its events go to rank 0's
  // merged file); null otherwise.
  Timeline* joined_timeline() const { return joined_timeline_.get(); }

 private:
  struct Decision;
  // Every worker's leave vote (SIGUSR1, and on rank 0 `dptrain ctl leave`): the ranks asked to leave.
  std::vector<size_t> vote_on_leavers(ElasticHost& host);
  // Rank 0 decides which joiners come in (and waits for joiners when fewer than
  // elastic.min_workers would remain); every worker learns the decision.
  Decision agree_on_joins(ElasticHost& host, size_t remaining);
  // Rank 0: the join requests to accept, or stop when too few workers remain.
  Decision decide(ElasticHost& host, size_t remaining);
  // The leavers split off; true on a worker that leaves.
  bool leave_step(ElasticHost& host, const std::vector<size_t>& leavers);
  void join_step(ElasticHost& host, const JoinRequest& request);
  // A joiner's rank 0 asks the job to let its workers in and waits up to `wait` for the answer,
  // which every joiner receives: "accepted", or why not.
  std::string ask_to_join(std::chrono::seconds wait);
  // Right after a hand-over, over the merged communicator (ranks from `first_joiner` on joined):
  // rank 0 tells the joiners whether the job keeps a timeline, how long it has run and each joiner's
  // track number; a joiner then records into a timeline of its own.
  void hand_over_timeline(ElasticHost& host, size_t first_joiner);
  // Before leavers split off: each sends its timeline to rank 0, which keeps it for the merged file.
  void collect_leavers_timelines(ElasticHost& host, const std::vector<size_t>& leavers, bool leaving);
  // Makes `next` (with `members`) the communicator trained on.
  void adopt(ElasticHost& host, std::unique_ptr<MpiCommunicator> next, std::vector<WorkerInfo> members);
  void record(ElasticHost& host, const std::string& change, const std::string& who, size_t before, double seconds);

  const RunConfig& config_;
  const std::atomic<int>* leave_signal_;
  ElasticDir dir_;
  Deadline deadline_;
  Deadline handover_limit_;  // elastic.handover_seconds: the longest a hand-over's connection may take
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
int finish_run(const RunOutcome& outcome, const ElasticController* elastic, const RunConfig& config);

}  // namespace dptrain::launcher
