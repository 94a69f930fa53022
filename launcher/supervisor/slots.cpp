// The supervisor's view of the world outside the job: how many workers can be placed now.
#include "launcher/supervisor/slots.h"

#include <signal.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>

#include "launcher/supervisor/launch_command.h"
#include "runtime/core/errors.h"
#include "runtime/core/parse_number.h"

namespace dptrain::launcher {

namespace {

// A non-negative count from `text` ("" or junk: nullopt-like 0 with ok = false).
bool parse_count(const std::string& text, size_t* value) {
  const std::optional<uint64_t> count = parse_decimal(text, SIZE_MAX);
  if (!count) return false;
  *value = static_cast<size_t>(*count);
  return true;
}

// SLURM_TASKS_PER_NODE, e.g. "2(x3),1": 7 tasks.
bool parse_tasks_per_node(const std::string& text, size_t* total) {
  std::stringstream items(text);
  std::string item;
  *total = 0;
  while (std::getline(items, item, ',')) {
    size_t tasks = 0, repeat = 1;
    const size_t paren = item.find("(x");
    if (!parse_count(item.substr(0, paren), &tasks)) return false;
    if (paren != std::string::npos) {
      const size_t close = item.find(')', paren);
      if (close == std::string::npos || !parse_count(item.substr(paren + 2, close - paren - 2), &repeat)) return false;
    }
    *total += tasks * repeat;
  }
  return true;
}

std::string env(const char* name) {
  const char* value = std::getenv(name);
  return value ? value : "";
}

}  // namespace

Slots hostfile_slots(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw UsageError("--hostfile " + path + ": cannot read it: " + std::strerror(errno));
  Slots slots{0, ""};
  size_t hosts = 0, line_number = 0;
  std::string line;
  while (std::getline(in, line)) {
    ++line_number;
    line = line.substr(0, line.find('#'));
    std::stringstream words(line);
    std::string host, word;
    if (!(words >> host)) continue;
    size_t count = 1;  // Open MPI's own default for a line without slots= is the host's core count
    while (words >> word) {
      if (word.rfind("slots=", 0) == 0 && !parse_count(word.substr(6), &count)) {
        throw UsageError("--hostfile " + path + ":" + std::to_string(line_number) + ": '" + word +
                         "' is not slots=<number>");
      }
    }
    ++hosts;
    slots.count += count;
  }
  slots.source =
      "hostfile " + path + ": " + std::to_string(hosts) + " host(s), " + std::to_string(slots.count) + " slot(s)";
  return slots;
}

Slots available_slots(const LaunchArgs& args) {
  if (!args.hostfile.empty()) return hostfile_slots(args.hostfile);
  if (!env("SLURM_JOB_ID").empty()) {
    size_t count = 0;
    if (parse_count(env("SLURM_NTASKS"), &count)) {
      return {count, "Slurm allocation " + env("SLURM_JOB_ID") + ": SLURM_NTASKS=" + std::to_string(count)};
    }
    if (parse_tasks_per_node(env("SLURM_TASKS_PER_NODE"), &count)) {
      return {count,
              "Slurm allocation " + env("SLURM_JOB_ID") + ": SLURM_TASKS_PER_NODE=" + env("SLURM_TASKS_PER_NODE")};
    }
  }
  return {args.np, "--np"};
}

}  // namespace dptrain::launcher
