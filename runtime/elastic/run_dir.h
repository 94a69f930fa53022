// The files through which a running elastic job talks to joiners and to `dptrain ctl`, all under
// RUN_DIR/elastic/: the job's config and port, its members, and the requests it answers at epoch
// boundaries. Every file is written owner-only to an exclusively created temporary name and renamed, so a
// reader never sees half and a planted symlink is never followed; a request or answer that does not parse
// is moved into requests/rejected/ and reported, never acted on.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "comm/mpi/world.h"

namespace dptrain::launcher {

// RUN_DIR/elastic, with the names of the files in it.
class ElasticDir {
 public:
  explicit ElasticDir(std::string run_dir);

  const std::string& run_dir() const { return run_dir_; }
  std::string path(const std::string& name) const;  // RUN_DIR/elastic/NAME
  // Creates RUN_DIR/elastic/requests owner-only (0700); ConfigError naming the folder and the fix when that
  // fails or when other users can write RUN_DIR, RUN_DIR/elastic or its requests/ (check_private_folder).
  void create() const;

  // The running job's config text and port, written by its rank 0 when it starts.
  void publish(const std::string& config_text, const std::string& port) const;
  std::string config_path() const { return path("config.yaml"); }
  // The port, or nullopt while the job has not published one (not started, or not elastic).
  std::optional<std::string> port() const;

  // One line per worker: "rank host pid", after a header line "epoch E workers N".
  void write_members(size_t epoch, const std::vector<WorkerInfo>& workers) const;
  std::vector<WorkerInfo> read_members() const;

  // `dptrain ctl leave`: ask worker `rank` to leave at the next epoch boundary.
  void request_leave(size_t rank) const;
  // The ranks asked to leave (the requests are removed as they are read). A request file whose
  // name holds no rank number (junk, or a number too large for one) is moved into
  // requests/rejected/ and, with `rejected`, described there, so that it cannot stop the job again.
  std::vector<size_t> take_leave_requests(std::vector<std::string>* rejected = nullptr) const;
  // Leave requests left over from an earlier run of the job are void.
  void clear_leave_requests() const;

 private:
  std::string run_dir_;
};

// One `dptrain join` job waiting to be let in.
struct JoinRequest {
  std::string name;                 // file name stem, unique per joining job
  std::vector<WorkerInfo> workers;  // the joining workers, in their own rank order
};

// Written by the joiners' rank 0; refreshed while it waits, so the job can tell a live joiner from
// one that died waiting.
void write_join_request(const ElasticDir& dir, const JoinRequest& request);
// Requests refreshed within `fresh`, oldest first. A file that is not a join request is moved into
// requests/rejected/ and, with `rejected`, described there.
std::vector<JoinRequest> read_join_requests(const ElasticDir& dir, std::chrono::seconds fresh,
                                            std::vector<std::string>* rejected = nullptr);
// The job's answer: "accepted", or "refused: <reason>". The request file is removed.
void answer_join_request(const ElasticDir& dir, const std::string& name, const std::string& answer);
// The answer to request `name`, once there is one (then removed). An answer file that is not one is moved
// into requests/rejected/, described in `rejected` and ignored.
std::optional<std::string> take_join_answer(const ElasticDir& dir, const std::string& name,
                                            std::vector<std::string>* rejected = nullptr);
// Keeps request `name` fresh (updates its time stamp).
void touch_join_request(const ElasticDir& dir, const std::string& name);
// Text of a JoinRequest file (one worker per line: "HOST PID").
std::string join_request_text(const JoinRequest& request);

// What a join request file's text holds: the joining workers, or why it holds none.
struct ParsedJoinRequest {
  std::vector<WorkerInfo> workers;  // in the joiners' rank order; empty when `problem` is set
  std::string problem;              // "line 2: expected a process id after the host name"; empty when it parsed
};
// The pure parser of a join request's text (any bytes in, never throws).
ParsedJoinRequest parse_join_request_text(const std::string& text);
// A request from text this program wrote itself (no workers when it does not parse).
JoinRequest parse_join_request(const std::string& name, const std::string& text);

// What an answer file's text holds: "accepted", "pending" or "refused: REASON", or why it is none of them.
struct ParsedJoinAnswer {
  std::string answer;   // without the newline; empty when `problem` is set
  std::string problem;  // empty when it parsed
};
// The pure parser of a join answer's text (any bytes in, never throws).
ParsedJoinAnswer parse_join_answer_text(const std::string& text);

// "rank 2 (pid 4242 on node7)".
std::string describe_worker(size_t rank, const WorkerInfo& worker);

}  // namespace dptrain::launcher
