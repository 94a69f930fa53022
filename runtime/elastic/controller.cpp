#include "runtime/elastic/controller.h"

#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <thread>

#include "runtime/core/errors.h"
#include "runtime/report/metrics.h"
#include "runtime/report/timeline.h"

namespace dptrain::launcher {

namespace {

using Clock = std::chrono::steady_clock;

std::chrono::milliseconds milliseconds(double seconds) {
  return std::chrono::milliseconds(static_cast<int64_t>(seconds * 1000));
}

WorkerInfo this_worker(size_t rank) {
  WorkerInfo self;
  self.rank = static_cast<uint32_t>(rank);
  self.pid = static_cast<int32_t>(::getpid());
  std::strncpy(self.host, host_name().c_str(), sizeof(self.host) - 1);
  return self;
}

std::string describe_workers(const std::vector<WorkerInfo>& workers, size_t first_rank) {
  std::string text;
  for (size_t i = 0; i < workers.size(); ++i) {
    text += (i ? ", " : "") + describe_worker(first_rank + i, workers[i]);
  }
  return text;
}

// Copies `text` from rank 0 of `comm` to every worker.
std::string broadcast_text(Communicator& comm, const std::string& text, Deadline deadline) {
  uint64_t size = text.size();
  comm.broadcast(&size, sizeof(size), 0, deadline);
  std::string result = comm.rank() == 0 ? text : std::string(size, '\0');
  if (size > 0) comm.broadcast(result.data(), size, 0, deadline);
  return result;
}

#ifdef DPTRAIN_FAULT_INJECTION
// A test hook, built only with -DDPTRAIN_FAULT_INJECTION=ON: DPTRAIN_FAULT=NAME makes this worker
// die at the point called NAME.
bool fault(const char* name) {
  const char* value = std::getenv("DPTRAIN_FAULT");
  return value != nullptr && std::strcmp(value, name) == 0;
}
#endif

}  // namespace

// What rank 0 decided at a boundary, as every worker receives it.
struct ElasticController::Decision {
  uint64_t stop = 0;
  std::vector<JoinRequest> joins;
};

ElasticController::ElasticController(const RunConfig& config, MpiCommunicator& comm,
                                     const std::atomic<int>* leave_signal)
    : config_(config),
      leave_signal_(leave_signal),
      dir_(config.elastic.run_dir),
      deadline_(milliseconds(config.comm.timeout_seconds)),
      current_(&comm) {
  // The heartbeats on `comm` are the launcher's (Workers::monitor_peers); those of every later
  // communicator are started here.
  members_ = gather_workers(comm, this_worker(comm.rank()), deadline_);
  next_worker_ = comm.size();
}

ElasticController::~ElasticController() = default;

void ElasticController::publish(const Trainer& trainer) {
  if (current_->rank() != 0 || dir_.run_dir().empty()) return;
  dir_.create();
  dir_.clear_leave_requests();
  if (config_.elastic.enabled) {
    port_ = std::make_unique<JoinPort>();
    dir_.publish(config_.text, port_->name());
  }
  dir_.write_members(trainer.position().epoch, members_);
}

ElasticController::Decision ElasticController::decide(Trainer& trainer, size_t remaining) {
  Decision decision;
  if (!config_.elastic.enabled && remaining >= config_.elastic.min_workers) return decision;
  const ElasticSettings& e = config_.elastic;
  const auto start = Clock::now();
  bool announced = false;
  size_t total = remaining;
  while (true) {
    if (e.enabled) {
      for (JoinRequest& request : read_join_requests(dir_, std::chrono::seconds(15))) {
        const size_t k = request.workers.size();
        if (e.max_workers != 0 && total + k > e.max_workers) {
          const std::string reason = "refused: the job has " + std::to_string(total) + " worker(s) and elastic.max_workers is " +
                                     std::to_string(e.max_workers) + "; " + std::to_string(k) + " more would exceed it";
          answer_join_request(dir_, request.name, reason);
          trainer.log("join request %s (%zu worker(s)) %s\n", request.name.c_str(), k, reason.c_str());
          continue;
        }
        total += k;
        decision.joins.push_back(std::move(request));
        answer_join_request(dir_, decision.joins.back().name, "pending");
      }
    }
    if (total >= e.min_workers) break;
    const double waited = std::chrono::duration<double>(Clock::now() - start).count();
    if (waited >= e.wait_seconds) {
      decision.stop = 1;
      break;
    }
    if (!announced) {
      trainer.log("%zu worker(s) left, below elastic.min_workers %zu: waiting up to %.0f s for joiners "
                  "(mpirun -np K dptrain join --run-dir %s)\n",
                  total, e.min_workers, e.wait_seconds, dir_.run_dir().c_str());
      announced = true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  return decision;
}

BoundaryAction ElasticController::at_epoch_boundary(Trainer& trainer) {
  epoch_ = trainer.position().epoch;
  const size_t n = current_->size(), me = current_->rank();
  std::vector<double> votes(n, 0.0);
  if (leave_signal_ && leave_signal_->load() && !(me == 0 && refused_own_leave_)) votes[me] = 1;
  if (me == 0 && !dir_.run_dir().empty()) {
    for (size_t r : dir_.take_leave_requests()) {
      if (r < n && !(r == 0 && refused_own_leave_)) {
        votes[r] = 1;
      } else if (r >= n) {
        trainer.log("ignored `dptrain ctl leave --rank %zu`: the job has %zu workers (ranks 0-%zu)\n", r, n, n - 1);
      }
    }
  }
  current_->all_reduce_sum(votes.data(), n, deadline_);
  std::vector<size_t> leavers;
  for (size_t r = 0; r < n; ++r) {
    if (votes[r] > 0) leavers.push_back(r);
  }
  if (leavers.size() == n && n > 0) {
    trainer.set_stop_reason("every worker was asked to leave");
    return BoundaryAction::Stop;
  }
  if (!leavers.empty() && leavers.front() == 0) {
    leavers.erase(leavers.begin());
    refused_own_leave_ = true;
    trainer.log("rank 0 stays: it writes the checkpoints and the metrics (stop the whole job with SIGTERM or "
                "SIGUSR2 to mpirun instead)\n");
  }

  // Rank 0 decides who comes in (and waits for joiners if too few remain); everyone learns it.
  Decision decision;
  if (me == 0) decision = decide(trainer, n - leavers.size());
  std::string joins_text;
  for (const JoinRequest& request : decision.joins) joins_text += request.name + "\n" + join_request_text(request) + "\n";
  const Deadline wait_deadline = deadline_ + milliseconds(config_.elastic.wait_seconds);
  current_->broadcast(&decision.stop, sizeof(decision.stop), 0, wait_deadline);
  joins_text = broadcast_text(*current_, joins_text, deadline_);
  if (me != 0) {
    // Blocks of "name\nhost pid\n...\n\n".
    size_t at = 0;
    while (at < joins_text.size()) {
      const size_t name_end = joins_text.find('\n', at);
      const size_t block_end = joins_text.find("\n\n", name_end);
      decision.joins.push_back(parse_join_request(joins_text.substr(at, name_end - at),
                                                  joins_text.substr(name_end + 1, block_end - name_end)));
      at = block_end + 2;
    }
  }
  if (decision.stop) {
    char reason[200];
    std::snprintf(reason, sizeof(reason), "only %zu worker(s) remain, below elastic.min_workers %zu (waited %.0f s for joiners)",
                  n - leavers.size(), config_.elastic.min_workers, config_.elastic.wait_seconds);
    trainer.set_stop_reason(reason);
    below_minimum_ = true;
    return BoundaryAction::Stop;
  }

  bool leaving = false;
  if (!leavers.empty()) leave_step(trainer, leavers, leaving);
  if (leaving) return BoundaryAction::Leave;
  // The checkpoint of this boundary stands whatever a joiner does next.
  if (!decision.joins.empty()) trainer.save_checkpoint();
  for (const JoinRequest& request : decision.joins) join_step(trainer, request);
  return BoundaryAction::Continue;
}

void ElasticController::leave_step(Trainer& trainer, const std::vector<size_t>& leavers, bool& leaving) {
  const auto start = Clock::now();
  const size_t before = current_->size(), me = current_->rank();
  leaving = std::find(leavers.begin(), leavers.end(), me) != leavers.end();
  std::vector<WorkerInfo> gone, staying;
  for (size_t r = 0; r < members_.size(); ++r) {
    (std::find(leavers.begin(), leavers.end(), r) != leavers.end() ? gone : staying).push_back(members_[r]);
  }
  std::string who;
  for (size_t i = 0; i < leavers.size(); ++i) who += (i ? ", " : "") + describe_worker(leavers[i], gone[i]);
  collect_leavers_timelines(trainer, leavers, leaving);
  // Leaving on purpose: no peer may report the leavers lost.
  current_->stop_monitoring();
  MPI_Comm rest = MPI_COMM_NULL;
  {
    Watchdog watchdog(deadline_, "a worker did not take part in the membership change after epoch " +
                                     std::to_string(epoch_) + " (leaving: " + who + ")");
    rest = split_off_leavers(current_->comm(), leaving);
  }
  if (leaving) {
    std::printf("dptrain: %s leaves the job after epoch %zu\n", describe_worker(me, members_[me]).c_str(), epoch_);
    std::fflush(stdout);
    return;
  }
  auto next = std::make_unique<MpiCommunicator>(rest);
  MPI_Comm_free(&rest);
  adopt(trainer, std::move(next), std::move(staying));
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  trainer.log("%s left after epoch %zu: %zu worker(s) now (reconfigured in %.2f s)\n", who.c_str(), epoch_,
              current_->size(), seconds);
  record(trainer, "leave", who, before, seconds);
}

void ElasticController::adopt(Trainer& trainer, std::unique_ptr<MpiCommunicator> next,
                              std::vector<WorkerInfo> members) {
  members_ = std::move(members);
  for (size_t r = 0; r < members_.size(); ++r) members_[r].rank = static_cast<uint32_t>(r);
  if (config_.comm.heartbeat_seconds > 0) next->monitor_peers(config_.comm.heartbeat_seconds, members_);
  trainer.replace_communicator(*next);
  current_ = next.get();
  owned_.push_back(std::move(next));
  if (current_->rank() == 0 && !dir_.run_dir().empty()) dir_.write_members(epoch_, members_);
}

void ElasticController::join_step(Trainer& trainer, const JoinRequest& request) {
  const auto start = Clock::now();
  const size_t before = current_->size();
  const std::string who = describe_workers(request.workers, before);
  if (current_->rank() == 0) answer_join_request(dir_, request.name, "accepted");
  MPI_Comm merged = MPI_COMM_NULL;
  std::unique_ptr<MpiCommunicator> next;
  {
    Watchdog watchdog(milliseconds(config_.elastic.handover_seconds),
                      "joiner " + request.name + " (" + who + ") did not connect within " +
                          std::to_string(static_cast<int>(config_.elastic.handover_seconds)) +
                          " s (elastic.handover_seconds); ending the job: the checkpoint of epoch " +
                          std::to_string(epoch_) + " stands, continue with --resume auto");
    merged = accept_and_merge(current_->comm(), port_ ? port_->name() : std::string());
    next = std::make_unique<MpiCommunicator>(merged);
  }
  MPI_Comm_free(&merged);
  std::vector<WorkerInfo> members = members_;
  members.insert(members.end(), request.workers.begin(), request.workers.end());
  MpiCommunicator* previous = current_;
  std::vector<WorkerInfo> previous_members = members_;
  std::string problem;
  try {
    adopt(trainer, std::move(next), std::move(members));
    problem = trainer.share_state_with_joiners();
    if (problem.empty()) hand_over_timeline(trainer, before);
  } catch (const CommError& e) {
    problem = e.what();
  }
  // The workers that were here before agree, among themselves, whether the hand-over worked.
  double failed = problem.empty() ? 0.0 : 1.0;
  previous->all_reduce_sum(&failed, 1, deadline_);
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  if (failed > 0) {
    // Give the joiners up; train on as before. Their communicator is left alone (never freed):
    // a dead process is in it.
    current_->stop_monitoring();
    peer_lost_ = true;
    members_ = std::move(previous_members);
    trainer.replace_communicator(*previous);
    current_ = previous;
    if (current_->rank() == 0) dir_.write_members(epoch_, members_);
    trainer.log("joiner %s (%s) failed during the hand-over after epoch %zu: %s; going on with %zu worker(s)\n",
                request.name.c_str(), who.c_str(), epoch_, problem.empty() ? "another worker saw it fail" : problem.c_str(),
                current_->size());
    record(trainer, "join_failed", who, before, seconds);
    return;
  }
  trainer.log("%s joined after epoch %zu: %zu worker(s) now (hand-over %.2f s)\n", who.c_str(), epoch_,
              current_->size(), seconds);
  record(trainer, "join", who, before, seconds);
}

std::string ElasticController::join(Trainer& trainer, std::chrono::seconds wait) {
  const size_t me = current_->rank();
  const std::string name = std::string(host_name()) + "-" + std::to_string(::getpid());
  std::string answer;
  if (me == 0) {
    const auto give_up = Clock::now() + wait;
    if (!dir_.port()) {
      answer = "refused: " + dir_.run_dir() + " has no running elastic job (no " + dir_.path("port") +
               "): start the job with elastic.enabled: true and this run directory";
    } else {
      write_join_request(dir_, JoinRequest{name, members_});
      std::printf("dptrain join: %zu worker(s) waiting for the job in %s to reach an epoch boundary\n", members_.size(),
                  dir_.run_dir().c_str());
      std::fflush(stdout);
      auto touched = Clock::now();
      while (true) {
        std::optional<std::string> got = take_join_answer(dir_, name);
        if (got && *got != "pending") {
          answer = *got;
          break;
        }
        if (Clock::now() > give_up) {
          answer = "refused: no answer from the job in " + std::to_string(wait.count()) + " s (--wait)";
          break;
        }
        if (Clock::now() - touched > std::chrono::seconds(2)) {
          touch_join_request(dir_, name);
          touched = Clock::now();
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
      }
    }
  }
  answer = broadcast_text(*current_, answer, std::chrono::duration_cast<Deadline>(wait) + deadline_);
  if (answer != "accepted") return answer.empty() ? "refused" : answer;

  MPI_Comm merged = MPI_COMM_NULL;
  std::unique_ptr<MpiCommunicator> next;
  {
    Watchdog watchdog(milliseconds(config_.elastic.handover_seconds),
                      "could not join the job in " + dir_.run_dir() + " within " +
                          std::to_string(static_cast<int>(config_.elastic.handover_seconds)) + " s");
    merged = connect_and_merge(current_->comm(), *dir_.port());
    next = std::make_unique<MpiCommunicator>(merged);
  }
  MPI_Comm_free(&merged);
  std::vector<WorkerInfo> members = dir_.read_members();
  const size_t job_size = next->size() - current_->size();
  members.resize(job_size);
  const std::vector<WorkerInfo> own = members_;
  members.insert(members.end(), own.begin(), own.end());
  current_->stop_monitoring();
  adopt(trainer, std::move(next), std::move(members));
#ifdef DPTRAIN_FAULT_INJECTION
  if (fault("exit-in-handover")) std::_Exit(9);
#endif
  const std::string problem = trainer.share_state_with_joiners();
  if (!problem.empty()) throw ConfigError("the job in " + dir_.run_dir() + " did not take this worker: " + problem);
  epoch_ = trainer.position().epoch;
  hand_over_timeline(trainer, job_size);
  membership_changed_ = true;
  if (current_->rank() == job_size) {
    std::printf("dptrain join: joined the job in %s as ranks %zu-%zu of %zu, training from epoch %zu\n",
                dir_.run_dir().c_str(), job_size, current_->size() - 1, current_->size(), epoch_ + 1);
    std::fflush(stdout);
  }
  return "";
}

void ElasticController::hand_over_timeline(Trainer& trainer, size_t first_joiner) {
  struct {
    int64_t elapsed_ns;  // since rank 0's timeline origin; -1: the job keeps no timeline
    uint64_t first_worker;
  } header{-1, 0};
  const size_t me = current_->rank();
  if (me == 0 && trainer.timeline()) {
    header.elapsed_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - trainer.timeline()->origin())
                            .count();
    header.first_worker = next_worker_;
  }
  current_->broadcast(&header, sizeof(header), 0, deadline_);
  if (header.elapsed_ns < 0) return;
  if (me == 0) next_worker_ += current_->size() - first_joiner;
  if (me < first_joiner || trainer.timeline()) return;
  joined_timeline_ = std::make_unique<Timeline>();
  joined_timeline_->start_joined(std::chrono::nanoseconds(header.elapsed_ns), header.first_worker + me - first_joiner,
                                 "joined after epoch " + std::to_string(epoch_));
  trainer.set_timeline(joined_timeline_.get());
}

void ElasticController::collect_leavers_timelines(Trainer& trainer, const std::vector<size_t>& leavers,
                                                  bool leaving) {
  Timeline* timeline = trainer.timeline();
  if (!timeline) return;
  const size_t me = current_->rank();
  if (leaving) timeline->add_note("left after epoch " + std::to_string(epoch_));
  std::vector<std::string> payloads =
      current_->gather_bytes(leaving ? timeline->merge_payload(me) : std::string(), 0, deadline_);
  if (me != 0) return;
  for (size_t r : leavers) timeline->keep_departed(std::move(payloads[r]));
}

void ElasticController::record(Trainer& trainer, const std::string& change, const std::string& who, size_t before,
                               double seconds) {
  membership_changed_ = true;
  trainer.metrics().write(MetricsRecord("membership")
                              .add("change", change)
                              .add("workers", who)
                              .add("epoch", static_cast<double>(epoch_))
                              .add("step", static_cast<double>(trainer.position().global_step))
                              .add("world_size_before", static_cast<double>(before))
                              .add("world_size", static_cast<double>(current_->size()))
                              .add("seconds", seconds));
}

int finish_run(const Trainer& trainer, const ElasticController* elastic, const RunConfig& config) {
  if (trainer.run_end() == RunEnd::Left) {
    if (early_exit_keeps_job()) {
      std::fflush(nullptr);
      std::_Exit(0);
    }
    std::fprintf(stderr,
                 "dptrain: mpirun runs without --enable-recovery, so this worker cannot exit before the others: it "
                 "waits, idle, for the job's end (start mpirun with --enable-recovery, or use dptrain launch)\n");
    return 0;
  }
  int code = 0;
  if (elastic && elastic->below_minimum()) {
    code = 75;
  } else if (trainer.stopped_by() != 0 && config.checkpoint.dir.empty()) {
    // Stopped without a checkpoint: the conventional status of a process ended by that signal.
    code = 128 + trainer.stopped_by();
  }
  // MPI_Finalize could wait for a lost process, and (Open MPI 4.1 under --enable-recovery) at times
  // for one that left without it: a worker whose job changed ends without it (mpirun, with recovery,
  // ends the job once every process has exited).
  if (elastic && (elastic->peer_lost() || (elastic->membership_changed() && early_exit_keeps_job()))) {
    std::fflush(nullptr);
    std::_Exit(code);
  }
  return code;
}

}  // namespace dptrain::launcher
