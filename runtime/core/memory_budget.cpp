#include "runtime/core/memory_budget.h"

#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <limits>
#include <sstream>

#include "runtime/core/errors.h"

namespace dptrain {

namespace {

constexpr size_t kUnlimited = std::numeric_limits<size_t>::max();

// A "Key:   N kB" line of a /proc file, in bytes; kUnlimited when absent.
size_t proc_kb(const char* file, const std::string& key) {
  std::ifstream in(file);
  std::string line;
  while (std::getline(in, line)) {
    if (line.compare(0, key.size() + 1, key + ":") != 0) continue;
    std::istringstream fields(line.substr(key.size() + 1));
    unsigned long long kb = 0;
    if (fields >> kb) return static_cast<size_t>(kb) * 1024;
  }
  return kUnlimited;
}

// One number from a cgroup file ("max" and anything unreadable: kUnlimited).
size_t cgroup_value(const std::string& file) {
  std::ifstream in(file);
  std::string text;
  if (!(in >> text) || text == "max") return kUnlimited;
  char* end = nullptr;
  errno = 0;
  const unsigned long long v = std::strtoull(text.c_str(), &end, 10);
  if (errno != 0 || end == text.c_str() || *end != '\0') return kUnlimited;
  return static_cast<size_t>(v);
}

// This process's cgroup v2 folder ("/sys/fs/cgroup/..."), or empty.
std::string cgroup_dir() {
  std::ifstream in("/proc/self/cgroup");
  std::string line;
  while (std::getline(in, line)) {
    if (line.compare(0, 3, "0::") == 0) return "/sys/fs/cgroup" + line.substr(3);
  }
  return "";
}

void take_smaller(MemoryBudget* budget, size_t limit, size_t used, const char* source) {
  if (limit == kUnlimited) return;
  const size_t left = limit > used ? limit - used : 0;
  if (left < budget->bytes) {
    budget->bytes = left;
    budget->source = source;
  }
}

size_t rlimit_of(int resource) {
  rlimit limit{};
  if (getrlimit(resource, &limit) != 0 || limit.rlim_cur == RLIM_INFINITY) return kUnlimited;
  return static_cast<size_t>(limit.rlim_cur);
}

size_t zero_if_unknown(size_t v) { return v == kUnlimited ? 0 : v; }

std::atomic<size_t> g_address_space_reserved{0};

}  // namespace

void set_address_space_reserved(size_t bytes) { g_address_space_reserved.store(bytes); }

MemoryBudget memory_budget() {
  MemoryBudget budget{kUnlimited, "no known limit"};
  size_t available = proc_kb("/proc/meminfo", "MemAvailable");
  if (available == kUnlimited) {
    const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    if (pages > 0 && page > 0) available = static_cast<size_t>(pages) * static_cast<size_t>(page);
  }
  take_smaller(&budget, available, 0, "available physical memory");
  const std::string cgroup = cgroup_dir();
  if (!cgroup.empty()) {
    take_smaller(&budget, cgroup_value(cgroup + "/memory.max"),
                 zero_if_unknown(cgroup_value(cgroup + "/memory.current")), "the cgroup's memory.max");
  }
  const size_t mapped = zero_if_unknown(proc_kb("/proc/self/status", "VmSize"));
  const size_t reserved = g_address_space_reserved.load();
  take_smaller(&budget, rlimit_of(RLIMIT_AS), mapped > kUnlimited - reserved ? kUnlimited : mapped + reserved,
               "ulimit -v");
  take_smaller(&budget, rlimit_of(RLIMIT_DATA), zero_if_unknown(proc_kb("/proc/self/status", "VmData")), "ulimit -d");
  return budget;
}

std::string byte_size_text(size_t bytes) {
  static const char* const kUnits[] = {"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  if (bytes < 1024) return std::to_string(bytes) + " B";
  double v = static_cast<double>(bytes) / 1024.0;
  size_t unit = 0;
  while (v >= 1024.0 && unit + 1 < sizeof kUnits / sizeof kUnits[0]) {
    v /= 1024.0;
    ++unit;
  }
  char text[48];
  std::snprintf(text, sizeof text, "%.1f %s", v, kUnits[unit]);
  return text;
}

void reserve(size_t bytes, const std::string& what, const std::string& key) {
  const MemoryBudget budget = memory_budget();
  if (bytes <= budget.bytes) return;
  throw AllocationError("cannot allocate " + byte_size_text(bytes) + " for " + what + ": only " +
                            byte_size_text(budget.bytes) + " is left under " + budget.source +
                            (key.empty() ? std::string() : "; lower " + key + " (it sets this size)"),
                        key);
}

size_t checked_bytes(std::initializer_list<size_t> factors, const std::string& what, const std::string& key) {
  size_t product = 1;
  bool zero = false;
  bool overflow = false;
  for (size_t f : factors) {
    if (f == 0) zero = true;
    if (f != 0 && product > kUnlimited / f) overflow = true;
    if (!overflow) product *= f;
  }
  if (zero) return 0;
  if (overflow) {
    throw AllocationError("cannot allocate " + what + ": its size overflows 64 bits" +
                              (key.empty() ? std::string() : "; lower " + key + " (it sets this size)"),
                          key);
  }
  return product;
}

bool regular_file_size(const std::string& path, size_t* size, std::string* why) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    why->clear();  // missing or unreadable: the caller's own open reports it
    return false;
  }
  if (S_ISDIR(st.st_mode)) {
    *why = "is a directory, not a file";
  } else if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)) {
    *why = "is a device, not a regular file";
  } else if (S_ISFIFO(st.st_mode)) {
    *why = "is a pipe (FIFO), not a regular file";
  } else if (S_ISSOCK(st.st_mode)) {
    *why = "is a socket, not a regular file";
  } else if (!S_ISREG(st.st_mode)) {
    *why = "is not a regular file";
  } else {
    *size = static_cast<size_t>(st.st_size);
    return true;
  }
  return false;
}

}  // namespace dptrain
