// Checkpoint folders (listing, choosing, pruning, stale temporary files) and the conversion between
// checkpoint tensors and the model's and optimizer's flat buffers.
#include "runtime/checkpoint.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <regex>
#include <sstream>

#include "runtime/errors.h"
#include "runtime/model.h"
#include "runtime/optimizer.h"

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
  *epoch = std::stoull(match[1].str());
  *global_step = std::stoull(match[2].str());
  return true;
}

// The pid in the name of a checkpoint writer's temporary file, ".ckpt-...h5.tmp-PID"; false for any other name.
bool parse_temp_name(const std::string& name, long* pid) {
  static const std::regex pattern(R"(\.ckpt-.*\.h5\.tmp-([0-9]{1,9}))");
  std::smatch match;
  if (!std::regex_match(name, match, pattern)) return false;
  *pid = std::stol(match[1].str());
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
    if (boot <= 0 || ticks <= 0) return 0.0;
    return boot + std::stod(fields[19]) / static_cast<double>(ticks);
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

// Checks that `tensors` hold exactly the parameters of `entries` (by name and shape, with values).
std::vector<const CheckpointTensor*> match_tensors(const std::vector<CheckpointTensor>& tensors,
                                                   const std::vector<ParamEntry>& entries, const Tensor& flat,
                                                   const std::string& what, const std::string& source) {
  const std::string fix =
      "; resume with the config the checkpoint was written with (`dptrain inspect " + source + "` prints it)";
  std::map<std::string, const CheckpointTensor*> by_name;
  for (const CheckpointTensor& t : tensors) {
    if (!by_name.emplace(t.name, &t).second) throw CheckpointError(source, what + " '" + t.name + "' appears twice");
  }
  std::vector<const CheckpointTensor*> matched;
  for (const ParamEntry& e : entries) {
    const auto it = by_name.find(e.name);
    if (it == by_name.end()) {
      throw CheckpointError(source, "has no " + what + " '" + e.name + "' " + to_string(e.shape) +
                                        ", which the model has: it was written for another model" + fix);
    }
    const CheckpointTensor& t = *it->second;
    if (t.shape != e.shape) {
      throw CheckpointError(source, what + " '" + e.name + "' has shape " + to_string(t.shape) +
                                        ", but the model's is " + to_string(e.shape) + fix);
    }
    if (t.values.size() != num_elements(e.shape)) {
      throw CheckpointError(source, what + " '" + e.name + "' holds " + std::to_string(t.values.size()) +
                                        " values for shape " + to_string(e.shape) +
                                        " (read it with CheckpointContents::Everything)");
    }
    if (e.offset + t.values.size() > flat.num_elements()) {
      throw ShapeError("parameter '" + e.name + "' at offset " + std::to_string(e.offset) +
                       " lies outside a flat buffer of " + std::to_string(flat.num_elements()) + " values");
    }
    matched.push_back(&t);
    by_name.erase(it);
  }
  if (!by_name.empty()) {
    throw CheckpointError(source, "has " + what + " '" + by_name.begin()->first +
                                      "', which the model lacks: it was written for another model" + fix);
  }
  return matched;
}

void check_host(const Tensor& flat) {
  if (flat.device() != DeviceKind::CPU) {
    throw Error(std::string("checkpoints copy host memory; this buffer is on ") + to_string(flat.device()) +
                ": copy it to the host first");
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

std::vector<CheckpointTensor> tensors_from_flat(const std::vector<ParamEntry>& entries, const Tensor& flat) {
  check_host(flat);
  std::vector<CheckpointTensor> tensors;
  tensors.reserve(entries.size());
  for (const ParamEntry& e : entries) {
    const size_t n = num_elements(e.shape);
    if (e.offset + n > flat.num_elements()) {
      throw ShapeError("parameter '" + e.name + "' " + to_string(e.shape) + " at offset " + std::to_string(e.offset) +
                       " lies outside a flat buffer of " + std::to_string(flat.num_elements()) + " values");
    }
    tensors.push_back({e.name, e.shape, std::vector<float>(flat.data() + e.offset, flat.data() + e.offset + n)});
  }
  return tensors;
}

void tensors_to_flat(const std::vector<CheckpointTensor>& tensors, const std::vector<ParamEntry>& entries, Tensor& flat,
                     const std::string& source) {
  check_host(flat);
  const std::vector<const CheckpointTensor*> matched = match_tensors(tensors, entries, flat, "parameter", source);
  for (size_t i = 0; i < entries.size(); ++i) {
    std::copy(matched[i]->values.begin(), matched[i]->values.end(), flat.data() + entries[i].offset);
  }
}

void capture_optimizer(Optimizer& optimizer, const std::vector<ParamEntry>& entries, CheckpointState& state) {
  state.optimizer_name = optimizer.name();
  state.optimizer_steps = optimizer.steps();
  state.optimizer_state.clear();
  for (const auto& [name, tensor] : optimizer.state()) {
    const Tensor host = tensor->device() == DeviceKind::CPU ? *tensor : tensor->to(DeviceKind::CPU);
    state.optimizer_state.push_back({name, tensors_from_flat(entries, host)});
  }
}

void restore_optimizer(const CheckpointState& state, const std::vector<ParamEntry>& entries, Optimizer& optimizer,
                       const std::string& source) {
  const std::string fix = "; resume with the optimizer settings the checkpoint was written with (`dptrain inspect " +
                          source + "` prints its config)";
  if (state.optimizer_name != optimizer.name()) {
    throw CheckpointError(source, "was written by optimizer '" + state.optimizer_name + "', but the config builds '" +
                                      optimizer.name() + "'" + fix);
  }
  const std::vector<std::pair<std::string, Tensor*>> targets = optimizer.state();
  auto names = [](auto& list) {
    std::string joined;
    for (const auto& item : list) joined += (joined.empty() ? "" : ", ") + item.first;
    return "[" + joined + "]";
  };
  std::vector<std::pair<std::string, const CheckpointOptimizerState*>> saved;
  for (const CheckpointOptimizerState& s : state.optimizer_state) saved.emplace_back(s.name, &s);
  bool same = targets.size() == saved.size();
  for (size_t i = 0; same && i < targets.size(); ++i) same = targets[i].first == saved[i].first;
  if (!same) {
    throw CheckpointError(source, "holds optimizer state " + names(saved) + ", but the configured " + optimizer.name() +
                                      " keeps " + names(targets) + fix);
  }
  // Everything is checked before anything is copied; device state goes through a host copy.
  std::vector<Tensor> hosts;
  std::vector<std::vector<const CheckpointTensor*>> matched;
  for (size_t i = 0; i < targets.size(); ++i) {
    const Tensor& target = *targets[i].second;
    hosts.push_back(target.device() == DeviceKind::CPU ? target : target.to(DeviceKind::CPU));
    matched.push_back(match_tensors(saved[i].second->tensors, entries, hosts[i],
                                    "optimizer state '" + targets[i].first + "' of parameter", source));
  }
  for (size_t i = 0; i < targets.size(); ++i) {
    for (size_t j = 0; j < entries.size(); ++j) {
      std::copy(matched[i][j]->values.begin(), matched[i][j]->values.end(), hosts[i].data() + entries[j].offset);
    }
    if (targets[i].second->device() != DeviceKind::CPU) targets[i].second->copy_from(hosts[i]);
  }
  optimizer.set_steps(state.optimizer_steps);
}

}  // namespace dptrain
