#include "runtime/elastic/run_dir.h"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <optional>
#include <sstream>
#include <system_error>

#include "runtime/core/errors.h"
#include "runtime/core/parse_number.h"
#include "runtime/core/private_files.h"

namespace fs = std::filesystem;

namespace dptrain::launcher {

namespace {

// The longest request, answer, port or member list the job reads: far more than any it writes.
constexpr size_t kMaxRequestBytes = 64 * 1024;
constexpr size_t kMaxMembersBytes = 1024 * 1024;
// The most workers one join request may bring.
constexpr size_t kMaxJoiningWorkers = 65536;

constexpr const char* kJoinSuffix = ".join";
constexpr const char* kAnswerSuffix = ".answer";
constexpr const char* kLeavePrefix = "leave-";

bool ends_with(const std::string& text, const std::string& suffix) {
  return text.size() >= suffix.size() && text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
}

bool printable_word(const std::string& text) {
  if (text.empty()) return false;
  for (char c : text) {
    if (c <= ' ' || c > '~') return false;
  }
  return true;
}

// Moves `file` into requests/rejected/ (removes it where that fails) so it is read only once; says which.
std::string move_aside(const ElasticDir& dir, const fs::path& file) {
  const fs::path aside = dir.path("requests/rejected");
  std::error_code error;
  try {
    make_private_directories(aside.string());
    fs::rename(file, aside / file.filename(), error);
  } catch (const Error&) {
    error = std::make_error_code(std::errc::permission_denied);
  }
  if (!error) return "moved to " + (aside / file.filename()).string();
  fs::remove(file, error);
  return "removed";
}

}  // namespace

ElasticDir::ElasticDir(std::string run_dir) : run_dir_(std::move(run_dir)) {}

std::string ElasticDir::path(const std::string& name) const { return (fs::path(run_dir_) / "elastic" / name).string(); }

void ElasticDir::create() const {
  check_private_folder(run_dir_, "elastic.run_dir");
  try {
    make_private_directories(path("requests"));
  } catch (const Error& e) {
    throw ConfigError(std::string(e.what()) +
                      ": cannot create the elastic run directory; set elastic.run_dir to a writable folder on storage "
                      "every node can reach");
  }
  // Left by an earlier run, perhaps with other permissions.
  check_private_folder((fs::path(run_dir_) / "elastic").string(), "elastic.run_dir's");
  check_private_folder(path("requests"), "elastic.run_dir's");
}

void ElasticDir::publish(const std::string& config_text, const std::string& port) const {
  write_private_file(config_path(), config_text);
  write_private_file(path("port"), port + "\n");
}

std::optional<std::string> ElasticDir::port() const {
  std::optional<std::string> text = read_small_file(path("port"), kMaxRequestBytes);
  if (!text) return std::nullopt;
  while (!text->empty() && (text->back() == '\n' || text->back() == ' ')) text->pop_back();
  if (text->empty()) return std::nullopt;
  return text;
}

void ElasticDir::write_members(size_t epoch, const std::vector<WorkerInfo>& workers) const {
  std::ostringstream out;
  out << "epoch " << epoch << " workers " << workers.size() << "\n";
  for (size_t r = 0; r < workers.size(); ++r) out << r << " " << workers[r].host << " " << workers[r].pid << "\n";
  write_private_file(path("members"), out.str());
}

std::vector<WorkerInfo> ElasticDir::read_members() const {
  std::vector<WorkerInfo> workers;
  const std::optional<std::string> text = read_small_file(path("members"), kMaxMembersBytes);
  if (!text) return workers;
  std::istringstream in(*text);
  std::string header;
  std::getline(in, header);
  size_t rank = 0;
  std::string host;
  int pid = 0;
  while (in >> rank >> host >> pid) {
    WorkerInfo info;
    info.rank = static_cast<uint32_t>(rank);
    info.pid = pid;
    std::strncpy(info.host, host.c_str(), sizeof(info.host) - 1);
    workers.push_back(info);
  }
  return workers;
}

void ElasticDir::request_leave(size_t rank) const {
  write_private_file(path("requests/" + std::string(kLeavePrefix) + std::to_string(rank)), "leave\n");
}

std::vector<size_t> ElasticDir::take_leave_requests(std::vector<std::string>* rejected) const {
  std::vector<size_t> ranks;
  std::error_code error;
  for (const auto& entry : fs::directory_iterator(path("requests"), error)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind(kLeavePrefix, 0) != 0) continue;
    const std::optional<uint64_t> rank = parse_decimal(name.substr(std::strlen(kLeavePrefix)), SIZE_MAX);
    if (!rank) {
      const std::string where = move_aside(*this, entry.path());
      if (rejected) {
        rejected->push_back(entry.path().string() + ": not a rank number (expected " + kLeavePrefix +
                            "RANK, as `dptrain ctl leave --rank RANK` writes); " + where + ", ignored");
      }
      continue;
    }
    ranks.push_back(static_cast<size_t>(*rank));
    fs::remove(entry.path(), error);
  }
  std::sort(ranks.begin(), ranks.end());
  return ranks;
}

void ElasticDir::clear_leave_requests() const { take_leave_requests(); }

std::string join_request_text(const JoinRequest& request) {
  std::ostringstream out;
  for (const WorkerInfo& w : request.workers) out << w.host << " " << w.pid << "\n";
  return out.str();
}

ParsedJoinRequest parse_join_request_text(const std::string& text) {
  ParsedJoinRequest parsed;
  auto refuse = [&](const std::string& why) {
    parsed.workers.clear();
    parsed.problem = why;
    return parsed;
  };
  if (text.size() > kMaxRequestBytes) return refuse("longer than " + std::to_string(kMaxRequestBytes) + " bytes");
  if (text.empty()) return refuse("empty (expected one line \"HOST PID\" per joining worker)");
  if (text.back() != '\n') return refuse("its last line does not end in a newline");
  size_t line_number = 0;
  for (size_t at = 0; at < text.size();) {
    const size_t end = text.find('\n', at);
    const std::string line = text.substr(at, end - at);
    at = end + 1;
    ++line_number;
    const std::string where = "line " + std::to_string(line_number) + ": ";
    const size_t space = line.find(' ');
    if (space == std::string::npos) return refuse(where + "expected \"HOST PID\"");
    const std::string host = line.substr(0, space);
    if (!printable_word(host) || host.size() >= sizeof(WorkerInfo::host)) {
      return refuse(where + "the host name is not 1-" + std::to_string(sizeof(WorkerInfo::host) - 1) +
                    " printable characters without spaces");
    }
    const std::optional<uint64_t> pid = parse_decimal(line.substr(space + 1), INT32_MAX);
    if (!pid || *pid == 0) return refuse(where + "expected a process id after the host name");
    if (parsed.workers.size() == kMaxJoiningWorkers) {
      return refuse("more than " + std::to_string(kMaxJoiningWorkers) + " workers");
    }
    WorkerInfo info;
    info.rank = static_cast<uint32_t>(parsed.workers.size());
    info.pid = static_cast<int32_t>(*pid);
    std::memcpy(info.host, host.data(), host.size());
    parsed.workers.push_back(info);
  }
  return parsed;
}

JoinRequest parse_join_request(const std::string& name, const std::string& text) {
  return JoinRequest{name, parse_join_request_text(text).workers};
}

ParsedJoinAnswer parse_join_answer_text(const std::string& text) {
  ParsedJoinAnswer parsed;
  std::string line = text;
  if (!line.empty() && line.back() == '\n') line.pop_back();
  const bool one_line = text.size() <= kMaxRequestBytes && std::all_of(line.begin(), line.end(), [](char c) {
                          const auto byte = static_cast<unsigned char>(c);
                          return byte >= 0x20 && byte != 0x7f;  // no control characters: one line of text
                        });
  const std::string refused = "refused: ";
  if (one_line &&
      (line == "accepted" || line == "pending" || (line.rfind(refused, 0) == 0 && line.size() > refused.size()))) {
    parsed.answer = line;
  } else {
    parsed.problem = "not an answer (expected one line: accepted, pending or refused: REASON)";
  }
  return parsed;
}

void write_join_request(const ElasticDir& dir, const JoinRequest& request) {
  write_private_file(dir.path("requests/" + request.name + kJoinSuffix), join_request_text(request));
}

std::vector<JoinRequest> read_join_requests(const ElasticDir& dir, std::chrono::seconds fresh,
                                            std::vector<std::string>* rejected) {
  struct Found {
    fs::file_time_type time;
    JoinRequest request;
  };
  std::vector<Found> found;
  std::error_code error;
  const auto now = fs::file_time_type::clock::now();
  for (const auto& entry : fs::directory_iterator(dir.path("requests"), error)) {
    const std::string file = entry.path().filename().string();
    if (!ends_with(file, kJoinSuffix) || file[0] == '.') continue;
    std::string problem;
    std::optional<std::string> text;
    fs::file_time_type time{};
    if (entry.symlink_status(error).type() == fs::file_type::regular) {
      time = fs::last_write_time(entry.path(), error);
      if (error || now - time > fresh) continue;
      text = read_small_file(entry.path().string(), kMaxRequestBytes, &problem);
    } else if (!error) {
      problem = "not a regular file";
    }
    if (!text && problem.empty()) continue;  // answered and removed meanwhile
    ParsedJoinRequest parsed;
    if (text) parsed = parse_join_request_text(*text);
    if (!text || !parsed.problem.empty()) {
      const std::string why = text ? parsed.problem : problem;
      const std::string where = move_aside(dir, entry.path());
      if (rejected) {
        rejected->push_back(entry.path().string() + ": not a join request (" + why + "); " + where + ", ignored");
      }
      continue;
    }
    found.push_back(
        {time, JoinRequest{file.substr(0, file.size() - std::strlen(kJoinSuffix)), std::move(parsed.workers)}});
  }
  std::sort(found.begin(), found.end(), [](const Found& a, const Found& b) { return a.time < b.time; });
  std::vector<JoinRequest> requests;
  for (auto& f : found) requests.push_back(std::move(f.request));
  return requests;
}

void answer_join_request(const ElasticDir& dir, const std::string& name, const std::string& answer) {
  write_private_file(dir.path("requests/" + name + kAnswerSuffix), answer + "\n");
  std::error_code error;
  fs::remove(dir.path("requests/" + name + kJoinSuffix), error);
}

std::optional<std::string> take_join_answer(const ElasticDir& dir, const std::string& name,
                                            std::vector<std::string>* rejected) {
  const std::string file = dir.path("requests/" + name + kAnswerSuffix);
  std::string problem;
  const std::optional<std::string> text = read_small_file(file, kMaxRequestBytes, &problem);
  if (!text && problem.empty()) return std::nullopt;
  const ParsedJoinAnswer parsed = text ? parse_join_answer_text(*text) : ParsedJoinAnswer{"", problem};
  if (!parsed.problem.empty()) {
    const std::string where = move_aside(dir, file);
    if (rejected) rejected->push_back(file + ": " + parsed.problem + "; " + where + ", ignored");
    return std::nullopt;
  }
  std::error_code error;
  fs::remove(file, error);
  return parsed.answer;
}

void touch_join_request(const ElasticDir& dir, const std::string& name) {
  std::error_code error;
  fs::last_write_time(dir.path("requests/" + name + kJoinSuffix), fs::file_time_type::clock::now(), error);
}

std::string describe_worker(size_t rank, const WorkerInfo& worker) {
  return "rank " + std::to_string(rank) + " (pid " + std::to_string(worker.pid) + " on " + worker.host + ")";
}

}  // namespace dptrain::launcher
