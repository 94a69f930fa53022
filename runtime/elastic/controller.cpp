#include "runtime/elastic/controller.h"

#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <thread>

#include "runtime/core/errors.h"
#include "runtime/report/metrics.h"
#include "runtime/report/timeline.h"
#include "runtime/train/run_report.h"

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

// The decisions' join requests as text, in blocks of "name\nhost pid\n...\n\n", and back.
std::string join_requests_text(const std::vector<JoinRequest>& requests) {
  std::string text;
  for (const JoinRequest& request : requests) text += request.name + "\n" + join_request_text(request) + "\n";
  return text;
}

std::vector<JoinRequest> parse_join_requests(const std::string& text) {
  std::vector<JoinRequest> requests;
  size_t at = 0;
  while (at < text.size()) {
    const size_t name_end = text.find('\n', at);
    const size_t block_end = text.find("\n\n", name_end);
    requests.push_back(
        parse_join_request(text.substr(at, name_end - at), text.substr(name_end + 1, block_end - name_end)));
    at = block_end + 2;
  }
  return requests;
}

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
      handover_limit_(milliseconds(config.elastic.handover_seconds)),
      current_(&comm) {
  // The heartbeats on `comm` are the launcher's (Workers::monitor_peers); those of every later
  // communicator are started here.
  members_ = gather_workers(comm, this_worker(comm.rank()), deadline_);
  next_worker_ = comm.size();
}

ElasticController::~ElasticController() = default;

void ElasticController::publish(const ElasticHost& host) {
  if (current_->rank() != 0 || dir_.run_dir().empty()) return;
  dir_.create();
  dir_.clear_leave_requests();
  if (config_.elastic.enabled) {
    port_ = std::make_unique<JoinPort>();
    dir_.publish(config_.text, port_->name());
  }
  dir_.write_members(host.position().epoch, members_);
}

BoundaryDecision ElasticController::at_epoch_boundary(ElasticHost& host) {
  epoch_ = host.position().epoch;
  const size_t n = current_->size();
  std::vector<size_t> leavers = vote_on_leavers(host);
  if (leavers.size() == n && n > 0) return {BoundaryAction::Stop, "every worker was asked to leave"};
  if (!leavers.empty() && leavers.front() == 0) {
    leavers.erase(leavers.begin());
    refused_own_leave_ = true;
    host.report().log("rank 0 stays: it writes the checkpoints and the metrics (stop the whole job with SIGTERM or "
                      "SIGUSR2 to mpirun instead)\n");
  }
  const Decision decision = agree_on_joins(host, n - leavers.size());
  if (decision.stop) {
    char reason[200];
    std::snprintf(reason, sizeof(reason), "only %zu worker(s) remain, below elastic.min_workers %zu (waited %.0f s for joiners)",
                  n - leavers.size(), config_.elastic.min_workers, config_.elastic.wait_seconds);
    below_minimum_ = true;
    return {BoundaryAction::Stop, reason};
  }
  if (!leavers.empty() && leave_step(host, leavers)) return {BoundaryAction::Leave, ""};
  // The checkpoint of this boundary stands whatever a joiner does next.
  if (!decision.joins.empty()) host.save_checkpoint();
  for (const JoinRequest& request : decision.joins) join_step(host, request);
  return {};
}

std::vector<size_t> ElasticController::vote_on_leavers(ElasticHost& host) {
  const size_t n = current_->size(), me = current_->rank();
  std::vector<double> votes(n, 0.0);
  if (leave_signal_ && leave_signal_->load() && !(me == 0 && refused_own_leave_)) votes[me] = 1;
  if (me == 0 && !dir_.run_dir().empty()) {
    std::vector<std::string> rejected;
    const std::vector<size_t> requests = dir_.take_leave_requests(&rejected);
    for (const std::string& why : rejected) host.report().log("ignored a leave request: %s\n", why.c_str());
    for (size_t r : requests) {
      if (r < n && !(r == 0 && refused_own_leave_)) {
        votes[r] = 1;
      } else if (r >= n) {
        host.report().log("ignored `dptrain ctl leave --rank %zu`: the job has %zu workers (ranks 0-%zu)\n", r, n,
                          n - 1);
      }
    }
  }
  current_->all_reduce_sum(votes.data(), n, deadline_);
  std::vector<size_t> leavers;
  for (size_t r = 0; r < n; ++r) {
    if (votes[r] > 0) leavers.push_back(r);
  }
  return leavers;
}

ElasticController::Decision ElasticController::agree_on_joins(ElasticHost& host, size_t remaining) {
  Decision decision;
  if (current_->rank() == 0) decision = decide(host, remaining);
  const Deadline wait_deadline = deadline_ + milliseconds(config_.elastic.wait_seconds);
  current_->broadcast(&decision.stop, sizeof(decision.stop), 0, wait_deadline);
  const std::string joins_text = broadcast_text(*current_, join_requests_text(decision.joins), deadline_);
  if (current_->rank() != 0) decision.joins = parse_join_requests(joins_text);
  return decision;
}

ElasticController::Decision ElasticController::decide(ElasticHost& host, size_t remaining) {
  Decision decision;
  if (!config_.elastic.enabled && remaining >= config_.elastic.min_workers) return decision;
  const ElasticSettings& e = config_.elastic;
  const auto start = Clock::now();
  bool announced = false;
  size_t total = remaining;
  while (true) {
    if (e.enabled) {
      std::vector<std::string> rejected;
      std::vector<JoinRequest> requests = read_join_requests(dir_, std::chrono::seconds(15), &rejected);
      for (const std::string& why : rejected) host.report().log("ignored a join request: %s\n", why.c_str());
      for (JoinRequest& request : requests) {
        const size_t k = request.workers.size();
        if (e.max_workers != 0 && total + k > e.max_workers) {
          const std::string reason = "refused: the job has " + std::to_string(total) + " worker(s) and elastic.max_workers is " +
                                     std::to_string(e.max_workers) + "; " + std::to_string(k) + " more would exceed it";
          answer_join_request(dir_, request.name, reason);
          host.report().log("join request %s (%zu worker(s)) %s\n", request.name.c_str(), k, reason.c_str());
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
      host.report().log("%zu worker(s) left, below elastic.min_workers %zu: waiting up to %.0f s for joiners "
                        "(mpirun -np K dptrain join --run-dir %s)\n",
                        total, e.min_workers, e.wait_seconds, dir_.run_dir().c_str());
      announced = true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  return decision;
}

bool ElasticController::leave_step(ElasticHost& host, const std::vector<size_t>& leavers) {
  const auto start = Clock::now();
  const size_t before = current_->size(), me = current_->rank();
  const bool leaving = std::find(leavers.begin(), leavers.end(), me) != leavers.end();
  std::vector<WorkerInfo> gone, staying;
  for (size_t r = 0; r < members_.size(); ++r) {
    (std::find(leavers.begin(), leavers.end(), r) != leavers.end() ? gone : staying).push_back(members_[r]);
  }
  std::string who;
  for (size_t i = 0; i < leavers.size(); ++i) who += (i ? ", " : "") + describe_worker(leavers[i], gone[i]);
  collect_leavers_timelines(host, leavers, leaving);
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
    return true;
  }
  auto next = std::make_unique<MpiCommunicator>(rest);
  MPI_Comm_free(&rest);
  adopt(host, std::move(next), std::move(staying));
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  host.report().log("%s left after epoch %zu: %zu worker(s) now (reconfigured in %.2f s)\n", who.c_str(), epoch_,
                    current_->size(), seconds);
  record(host, "leave", who, before, seconds);
  return false;
}

void ElasticController::adopt(ElasticHost& host, std::unique_ptr<MpiCommunicator> next,
                              std::vector<WorkerInfo> members) {
  members_ = std::move(members);
  for (size_t r = 0; r < members_.size(); ++r) members_[r].rank = static_cast<uint32_t>(r);
  if (config_.comm.heartbeat_seconds > 0) next->monitor_peers(config_.comm.heartbeat_seconds, members_);
  host.replace_communicator(*next);
  current_ = next.get();
  owned_.push_back(std::move(next));
  if (current_->rank() == 0 && !dir_.run_dir().empty()) dir_.write_members(epoch_, members_);
}

void ElasticController::join_step(ElasticHost& host, const JoinRequest& request) {
  const auto start = Clock::now();
  const size_t before = current_->size();
  const std::string who = describe_workers(request.workers, before);
  if (current_->rank() == 0) answer_join_request(dir_, request.name, "accepted");
  MPI_Comm merged = MPI_COMM_NULL;
  std::unique_ptr<MpiCommunicator> next;
  {
    Watchdog watchdog(handover_limit_,
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
    adopt(host, std::move(next), std::move(members));
    problem = host.hand_over();
    if (problem.empty()) hand_over_timeline(host, before);
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
    host.replace_communicator(*previous);
    current_ = previous;
    if (current_->rank() == 0) dir_.write_members(epoch_, members_);
    host.report().log("joiner %s (%s) failed during the hand-over after epoch %zu: %s; going on with %zu worker(s)\n",
                      request.name.c_str(), who.c_str(), epoch_,
                      problem.empty() ? "another worker saw it fail" : problem.c_str(), current_->size());
    record(host, "join_failed", who, before, seconds);
    return;
  }
  host.report().log("%s joined after epoch %zu: %zu worker(s) now (hand-over %.2f s)\n", who.c_str(), epoch_,
                    current_->size(), seconds);
  record(host, "join", who, before, seconds);
}

void ElasticController::hand_over_timeline(ElasticHost& host, size_t first_joiner) {
  struct {
    int64_t elapsed_ns;  // since rank 0's timeline origin; -1: the job keeps no timeline
    uint64_t first_worker;
  } header{-1, 0};
  const size_t me = current_->rank();
  if (me == 0 && host.timeline()) {
    header.elapsed_ns =
        std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - host.timeline()->origin()).count();
    header.first_worker = next_worker_;
  }
  current_->broadcast(&header, sizeof(header), 0, deadline_);
  if (header.elapsed_ns < 0) return;
  if (me == 0) next_worker_ += current_->size() - first_joiner;
  if (me < first_joiner || host.timeline()) return;
  joined_timeline_ = std::make_unique<Timeline>();
  joined_timeline_->start_joined(std::chrono::nanoseconds(header.elapsed_ns), header.first_worker + me - first_joiner,
                                 "joined after epoch " + std::to_string(epoch_));
  host.set_timeline(joined_timeline_.get());
}

void ElasticController::collect_leavers_timelines(ElasticHost& host, const std::vector<size_t>& leavers,
                                                  bool leaving) {
  Timeline* timeline = host.timeline();
  if (!timeline) return;
  const size_t me = current_->rank();
  if (leaving) timeline->add_note("left after epoch " + std::to_string(epoch_));
  std::vector<std::string> payloads =
      current_->gather_bytes(leaving ? timeline->merge_payload(me) : std::string(), 0, deadline_);
  if (me != 0) return;
  for (size_t r : leavers) timeline->keep_departed(std::move(payloads[r]));
}

void ElasticController::record(ElasticHost& host, const std::string& change, const std::string& who, size_t before,
                               double seconds) {
  membership_changed_ = true;
  host.report().metrics().write(MetricsRecord("membership")
                                    .add("change", change)
                                    .add("workers", who)
                                    .add("epoch", static_cast<double>(epoch_))
                                    .add("step", static_cast<double>(host.position().global_step))
                                    .add("world_size_before", static_cast<double>(before))
                                    .add("world_size", static_cast<double>(current_->size()))
                                    .add("seconds", seconds));
}

int finish_run(const RunOutcome& outcome, const ElasticController* elastic, const RunConfig& config) {
  if (outcome.end == RunEnd::Left) {
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
  } else if (outcome.signal != 0 && config.checkpoint.dir.empty()) {
    // Stopped without a checkpoint: the conventional status of a process ended by that signal.
    code = 128 + outcome.signal;
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
