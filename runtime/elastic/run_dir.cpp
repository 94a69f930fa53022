#include "runtime/elastic/run_dir.h"

#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <system_error>

#include "runtime/core/errors.h"
#include "runtime/core/parse_number.h"

namespace fs = std::filesystem;

namespace dptrain::launcher {

namespace {

// Writes `text` to ".NAME.tmp-PID" beside `path` and renames it over `path`.
void write_atomically(const std::string& path, const std::string& text) {
  const fs::path target(path);
  const fs::path temp = target.parent_path() / ("." + target.filename().string() + ".tmp-" + std::to_string(::getpid()));
  {
    std::ofstream out(temp, std::ios::trunc);
    out << text;
    out.flush();
    if (!out) throw Error(temp.string() + ": cannot write (check the run directory's space and permissions)");
  }
  std::error_code error;
  fs::rename(temp, target, error);
  if (error) throw Error(path + ": cannot rename " + temp.string() + " into place: " + error.message());
}

std::optional<std::string> read_text(const std::string& path) {
  std::ifstream in(path);
  if (!in) return std::nullopt;
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

constexpr const char* kJoinSuffix = ".join";
constexpr const char* kAnswerSuffix = ".answer";
constexpr const char* kLeavePrefix = "leave-";

bool ends_with(const std::string& text, const std::string& suffix) {
  return text.size() >= suffix.size() && text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace

ElasticDir::ElasticDir(std::string run_dir) : run_dir_(std::move(run_dir)) {}

std::string ElasticDir::path(const std::string& name) const { return (fs::path(run_dir_) / "elastic" / name).string(); }

void ElasticDir::create() const {
  std::error_code error;
  fs::create_directories(path("requests"), error);
  if (error) {
    throw ConfigError(path("requests") + ": cannot create the elastic run directory (" + error.message() +
                      "): set elastic.run_dir to a writable folder on storage every node can reach");
  }
}

void ElasticDir::publish(const std::string& config_text, const std::string& port) const {
  write_atomically(config_path(), config_text);
  write_atomically(path("port"), port + "\n");
}

std::optional<std::string> ElasticDir::port() const {
  std::optional<std::string> text = read_text(path("port"));
  if (!text) return std::nullopt;
  while (!text->empty() && (text->back() == '\n' || text->back() == ' ')) text->pop_back();
  if (text->empty()) return std::nullopt;
  return text;
}

void ElasticDir::write_members(size_t epoch, const std::vector<WorkerInfo>& workers) const {
  std::ostringstream out;
  out << "epoch " << epoch << " workers " << workers.size() << "\n";
  for (size_t r = 0; r < workers.size(); ++r) out << r << " " << workers[r].host << " " << workers[r].pid << "\n";
  write_atomically(path("members"), out.str());
}

std::vector<WorkerInfo> ElasticDir::read_members() const {
  std::vector<WorkerInfo> workers;
  const std::optional<std::string> text = read_text(path("members"));
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
  write_atomically(path("requests/" + std::string(kLeavePrefix) + std::to_string(rank)), "leave\n");
}

std::vector<size_t> ElasticDir::take_leave_requests(std::vector<std::string>* rejected) const {
  std::vector<size_t> ranks;
  std::error_code error;
  for (const auto& entry : fs::directory_iterator(path("requests"), error)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind(kLeavePrefix, 0) != 0) continue;
    const std::optional<uint64_t> rank = parse_decimal(name.substr(std::strlen(kLeavePrefix)), SIZE_MAX);
    if (!rank) {
      const fs::path aside = path("requests/rejected");
      fs::create_directories(aside, error);
      fs::rename(entry.path(), aside / name, error);
      const bool moved = !error;
      if (!moved) fs::remove(entry.path(), error);
      if (rejected) {
        rejected->push_back(entry.path().string() + ": not a rank number (expected " + kLeavePrefix +
                            "RANK, as `dptrain ctl leave --rank RANK` writes); " +
                            (moved ? "moved to " + (aside / name).string() : std::string("removed")) + ", ignored");
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

JoinRequest parse_join_request(const std::string& name, const std::string& text) {
  JoinRequest request;
  request.name = name;
  std::istringstream in(text);
  std::string host;
  int pid = 0;
  while (in >> host >> pid) {
    WorkerInfo info;
    info.rank = static_cast<uint32_t>(request.workers.size());
    info.pid = pid;
    std::strncpy(info.host, host.c_str(), sizeof(info.host) - 1);
    request.workers.push_back(info);
  }
  return request;
}

void write_join_request(const ElasticDir& dir, const JoinRequest& request) {
  write_atomically(dir.path("requests/" + request.name + kJoinSuffix), join_request_text(request));
}

std::vector<JoinRequest> read_join_requests(const ElasticDir& dir, std::chrono::seconds fresh) {
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
    const auto time = fs::last_write_time(entry.path(), error);
    if (error || now - time > fresh) continue;
    const std::optional<std::string> text = read_text(entry.path().string());
    if (!text) continue;
    JoinRequest request = parse_join_request(file.substr(0, file.size() - std::strlen(kJoinSuffix)), *text);
    if (!request.workers.empty()) found.push_back({time, std::move(request)});
  }
  std::sort(found.begin(), found.end(), [](const Found& a, const Found& b) { return a.time < b.time; });
  std::vector<JoinRequest> requests;
  for (auto& f : found) requests.push_back(std::move(f.request));
  return requests;
}

void answer_join_request(const ElasticDir& dir, const std::string& name, const std::string& answer) {
  write_atomically(dir.path("requests/" + name + kAnswerSuffix), answer + "\n");
  std::error_code error;
  fs::remove(dir.path("requests/" + name + kJoinSuffix), error);
}

std::optional<std::string> take_join_answer(const ElasticDir& dir, const std::string& name) {
  const std::string file = dir.path("requests/" + name + kAnswerSuffix);
  std::optional<std::string> text = read_text(file);
  if (!text) return std::nullopt;
  std::error_code error;
  fs::remove(file, error);
  while (!text->empty() && text->back() == '\n') text->pop_back();
  return text;
}

void touch_join_request(const ElasticDir& dir, const std::string& name) {
  std::error_code error;
  fs::last_write_time(dir.path("requests/" + name + kJoinSuffix), fs::file_time_type::clock::now(), error);
}

std::string describe_worker(size_t rank, const WorkerInfo& worker) {
  return "rank " + std::to_string(rank) + " (pid " + std::to_string(worker.pid) + " on " + worker.host + ")";
}

}  // namespace dptrain::launcher
