// Checkpoint folders: listing, choosing, pruning, stale temporary files.
#include "runtime/checkpoint/checkpoint.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <optional>
#include <regex>
#include <sstream>

#include "runtime/core/errors.h"
#include "runtime/core/parse_number.h"

namespace dptrain {

namespace fs = std::filesystem;

namespace {

// A temporary file may be removed as stale only if it was last written this long before this process started.
constexpr double kStaleMarginSeconds = 2.0;
// Where the process start time is unknown: the age at which a temporary file counts as stale.
constexpr double kStaleFallbackSeconds = 3600.0;

// (epoch, global step) from a checkpoint file name; false for any other name.
bool parse_checkpoint_name(const std::string& name, uint64_t* epoch, uint64_t* global_step) {
  static const std::regex pattern(R"(ckpt-e([0-9]{1,19})-s([0-9]{1,19})\.h5)");
  std::smatch match;
  if (!std::regex_match(name, match, pattern)) return false;
  const std::optional<uint64_t> e = parse_decimal(match[1].str()), s = parse_decimal(match[2].str());
  if (!e || !s) return false;
  *epoch = *e;
  *global_step = *s;
  return true;
}

// The pid in the name of a checkpoint writer's temporary file, ".ckpt-...h5.tmp-PID-RANDOM" (or ".ckpt-...h5.tmp-PID"
// from versions before the random part); false for any other name.
bool parse_temp_name(const std::string& name, long* pid) {
  static const std::regex pattern(R"(\.ckpt-.*\.h5\.tmp-([0-9]{1,9})(-[a-z0-9]{1,32})?)");
  std::smatch match;
  if (!std::regex_match(name, match, pattern)) return false;
  const std::optional<uint64_t> number = parse_decimal(match[1].str());
  if (!number) return false;
  *pid = static_cast<long>(*number);
  return true;
}

// When this process started, in seconds since 1970, from /proc; 0 when unknown.
double process_start_seconds() {
  static const double start = [] {
    std::ifstream stat_file("/proc/self/stat");
    std::string line;
    if (!std::getline(stat_file, line)) return 0.0;
    const size_t name_end = line.rfind(')');
    if (name_end == std::string::npos) return 0.0;
    std::istringstream rest(line.substr(name_end + 1));
    const std::vector<std::string> fields{std::istream_iterator<std::string>(rest), {}};
    if (fields.size() < 20) return 0.0;  // fields[0] is field 3 (state); field 22 is the start, in ticks after boot
    std::ifstream proc_stat("/proc/stat");
    std::string key;
    double boot = 0;
    while (proc_stat >> key) {
      if (key == "btime") {
        proc_stat >> boot;
        break;
      }
      std::getline(proc_stat, line);
    }
    const long ticks = ::sysconf(_SC_CLK_TCK);
    const std::optional<uint64_t> started = parse_decimal(fields[19]);
    if (boot <= 0 || ticks <= 0 || !started) return 0.0;
    return boot + static_cast<double>(*started) / static_cast<double>(ticks);
  }();
  return start;
}

double modified_seconds(const std::string& path) {
  struct stat info;
  if (::stat(path.c_str(), &info) != 0) return -1;
  return static_cast<double>(info.st_mtim.tv_sec) + 1e-9 * static_cast<double>(info.st_mtim.tv_nsec);
}

bool verifies(const std::string& path) {
  try {
    verify_checkpoint(path);
    return true;
  } catch (const std::exception&) {
    return false;
  }
}

}  // namespace

std::vector<CheckpointFile> list_checkpoints(const std::string& dir) {
  std::error_code ec;
  if (!fs::exists(dir, ec)) return {};
  if (!fs::is_directory(dir, ec)) {
    throw CheckpointError(dir, "is not a folder; give the folder that holds the checkpoints");
  }
  std::vector<CheckpointFile> files;
  fs::directory_iterator it(dir, ec);
  for (; !ec && it != fs::directory_iterator(); it.increment(ec)) {
    CheckpointFile file;
    std::error_code type_ec;
    if (!parse_checkpoint_name(it->path().filename().string(), &file.epoch, &file.global_step)) continue;
    if (!it->is_regular_file(type_ec)) continue;
    file.path = it->path().string();
    files.push_back(std::move(file));
  }
  if (ec) throw CheckpointError(dir, "cannot list the checkpoint folder (" + ec.message() + ")");
  std::sort(files.begin(), files.end(), [](const CheckpointFile& a, const CheckpointFile& b) {
    if (a.epoch != b.epoch) return a.epoch > b.epoch;
    if (a.global_step != b.global_step) return a.global_step > b.global_step;
    return a.path > b.path;
  });
  return files;
}

ResumeCheckpoint find_resume_checkpoint(const std::string& dir) {
  ResumeCheckpoint result;
  for (const CheckpointFile& file : list_checkpoints(dir)) {
    try {
      verify_checkpoint(file.path);
      result.state = read_checkpoint(file.path);
      result.path = file.path;
      return result;
    } catch (const CheckpointError& e) {
      result.skipped.push_back({file.path, e.reason()});
    } catch (const std::bad_alloc&) {
      result.skipped.push_back({file.path, "too large to load into memory"});
    }
  }
  return result;
}

PruneResult prune_checkpoints(const std::string& dir, size_t keep) {
  if (keep < 1) throw CheckpointError(dir, "cannot keep 0 checkpoints: keep at least 1");
  PruneResult result;
  result.removed_temp_files = remove_stale_temp_files(dir);
  const std::vector<CheckpointFile> files = list_checkpoints(dir);
  if (files.size() <= keep) return result;
  size_t newest_valid = files.size();
  for (size_t i = 0; i < files.size() && newest_valid == files.size(); ++i) {
    if (verifies(files[i].path)) newest_valid = i;
  }
  for (size_t i = keep; i < files.size(); ++i) {
    if (i == newest_valid) continue;
    std::error_code ec;
    if (fs::remove(files[i].path, ec)) {
      result.removed.push_back(files[i].path);
    } else if (ec) {
      result.not_removed.push_back({files[i].path, "cannot delete it (" + ec.message() + ")"});
    }
  }
  return result;
}

std::vector<std::string> remove_stale_temp_files(const std::string& dir) {
  std::vector<std::string> removed;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return removed;
  const double start = process_start_seconds();
  const double cutoff =
      start > 0 ? start - kStaleMarginSeconds : static_cast<double>(std::time(nullptr)) - kStaleFallbackSeconds;
  for (fs::directory_iterator it(dir, ec); !ec && it != fs::directory_iterator(); it.increment(ec)) {
    long pid = 0;
    std::error_code type_ec;
    if (!parse_temp_name(it->path().filename().string(), &pid) || pid == static_cast<long>(::getpid())) continue;
    if (!it->is_regular_file(type_ec)) continue;
    const std::string path = it->path().string();
    const double modified = modified_seconds(path);
    std::error_code remove_ec;
    if (modified >= 0 && modified < cutoff && fs::remove(path, remove_ec)) removed.push_back(path);
  }
  return removed;
}

}  // namespace dptrain
