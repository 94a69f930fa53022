// ElasticController's joining side (`dptrain join`): the request to the running job, the connection
// and the hand-over that makes this job's workers part of it.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <thread>

#include "runtime/core/errors.h"
#include "runtime/core/fault_hooks.h"
#include "runtime/elastic/controller.h"

namespace dptrain::launcher {

namespace {

using Clock = std::chrono::steady_clock;

}  // namespace

std::string ElasticController::ask_to_join(std::chrono::seconds wait) {
  const std::string name = std::string(host_name()) + "-" + std::to_string(::getpid());
  std::string answer;
  if (current_->rank() == 0) {
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
        std::vector<std::string> rejected;
        std::optional<std::string> got = take_join_answer(dir_, name, &rejected);
        for (const std::string& why : rejected) std::fprintf(stderr, "dptrain join: ignored an answer: %s\n", why.c_str());
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
  return broadcast_text(*current_, answer, std::chrono::duration_cast<Deadline>(wait) + deadline_);
}

std::string ElasticController::join(ElasticHost& host, std::chrono::seconds wait) {
  const std::string answer = ask_to_join(wait);
  if (answer != "accepted") return answer.empty() ? "refused" : answer;

  MPI_Comm merged = MPI_COMM_NULL;
  std::unique_ptr<MpiCommunicator> next;
  {
    Watchdog watchdog(handover_limit_, "could not join the job in " + dir_.run_dir() + " within " +
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
  adopt(host, std::move(next), std::move(members));
  if (fault_hooks::armed("exit-in-handover")) std::_Exit(9);  // a test hook: die in the hand-over
  const std::string problem = host.hand_over();
  if (!problem.empty()) throw ConfigError("the job in " + dir_.run_dir() + " did not take this worker: " + problem);
  epoch_ = host.position().epoch;
  hand_over_timeline(host, job_size);
  membership_changed_ = true;
  if (current_->rank() == job_size) {
    std::printf("dptrain join: joined the job in %s as ranks %zu-%zu of %zu, training from epoch %zu\n",
                dir_.run_dir().c_str(), job_size, current_->size() - 1, current_->size(), epoch_ + 1);
    std::fflush(stdout);
  }
  return "";
}

}  // namespace dptrain::launcher
