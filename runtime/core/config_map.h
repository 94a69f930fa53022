// ConfigMap: one YAML mapping read strictly, so every mistake names its file, line and key.
#pragma once

#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace dptrain {

// A number as people write it in configs: 0.05, 1e-08, 3.
std::string format_number(double value);

// Whether the lower end of a NumberRange is itself allowed.
enum class LowerBound { Inclusive, Exclusive };
// Whether 0 is accepted besides the range, meaning "off" (checkpoint.every_minutes: 0).
enum class ZeroIs { Refused, Off };

// The values a number from a config may take, and its unit as messages name it.
struct NumberRange {
  double min = 0;
  double max = 0;
  std::string unit;                          // "seconds", "MiB"; empty: a plain number
  LowerBound lower = LowerBound::Inclusive;
  ZeroIs zero = ZeroIs::Refused;
};

// The values a count (threads, samples, epochs) from a config may take.
struct CountRange {
  size_t min = 0;
  size_t max = 0;
  std::string unit;  // "threads", "samples"; empty: a plain count
  ZeroIs zero = ZeroIs::Refused;
};

// The longest duration a config may give: 7 days. Longer waits are mistakes, and they would
// overflow the clocks they are converted to.
constexpr double kMaxConfigSeconds = 7 * 24 * 3600.0;
// A duration in seconds: greater than 0 (or 0 meaning off) and at most kMaxConfigSeconds.
NumberRange seconds_range(ZeroIs zero = ZeroIs::Refused);
// What `range` accepts, as a message says it: "must be greater than 0 and at most 604800 seconds (7 days)".
std::string describe(const NumberRange& range);
// The bound of `range` that `value` misses: "must be at least 1 samples", "must be at most 1024 threads".
std::string describe(const CountRange& range, size_t value);

// Where a config came from: the file name, and which dotted keys were replaced by --set.
struct ConfigSource {
  std::string file;
  std::set<std::string> overridden;  // dotted keys set on the command line
};

// A YAML mapping with typed getters. Each getter records the key as known; `finish()` then
// rejects any key nobody asked for. Errors are ConfigError with "FILE:LINE: key 'a.b': ...".
class ConfigMap {
 public:
  ConfigMap(YAML::Node node, std::string path, std::shared_ptr<const ConfigSource> source);
  // Parses `yaml` text whose top level must be a mapping (used by tests and layer factories).
  static ConfigMap parse(const std::string& yaml, const std::string& file_name = "<string>");

  bool has(const std::string& key) const;
  const std::string& path() const { return path_; }
  const std::string& file() const { return source_->file; }

  int64_t get_int(const std::string& key, std::optional<int64_t> fallback = std::nullopt);
  size_t get_size(const std::string& key, std::optional<size_t> fallback = std::nullopt);
  double get_double(const std::string& key, std::optional<double> fallback = std::nullopt);
  // A number that must satisfy `ok`; otherwise fails with `rule` (e.g. "must be in [0, 1)") and the value.
  double get_double_checked(const std::string& key, std::optional<double> fallback,
                            const std::function<bool(double)>& ok, const std::string& rule);
  // A finite number within `range`; otherwise fails naming the key, the range and the value.
  double get_number(const std::string& key, std::optional<double> fallback, const NumberRange& range);
  // A non-negative integer within `range`; otherwise fails naming the key, the range and the value.
  size_t get_count(const std::string& key, std::optional<size_t> fallback, const CountRange& range);
  bool get_bool(const std::string& key, std::optional<bool> fallback = std::nullopt);
  std::string get_string(const std::string& key, std::optional<std::string> fallback = std::nullopt);
  // A string that must be one of `choices`.
  std::string get_choice(const std::string& key, const std::vector<std::string>& choices,
                         std::optional<std::string> fallback = std::nullopt);
  // A list of strings, each one of `choices`; a single string is read as a list of one. An entry
  // outside `choices` fails naming it and listing the choices.
  std::vector<std::string> get_choice_list(const std::string& key, const std::vector<std::string>& choices,
                                           std::optional<std::vector<std::string>> fallback = std::nullopt);
  // A list of numbers; a single number is read as a list of one.
  std::vector<double> get_double_list(const std::string& key,
                                      std::optional<std::vector<double>> fallback = std::nullopt);
  std::vector<size_t> get_size_list(const std::string& key, std::optional<std::vector<size_t>> fallback = std::nullopt);
  // A list of strings; a single string is read as a list of one.
  std::vector<std::string> get_string_list(const std::string& key,
                                           std::optional<std::vector<std::string>> fallback = std::nullopt);
  // A nested mapping (an absent key gives an empty one).
  ConfigMap get_map(const std::string& key);
  // A sequence of mappings, such as the model's layer list.
  std::vector<ConfigMap> get_map_list(const std::string& key);

  // A mapping made by the program (such as a layer a block expands into) that reports errors as
  // part of this one: same file, path `path() + suffix`, and this mapping's line.
  ConfigMap derived(YAML::Node node, const std::string& suffix) const;
  // The YAML mapping itself.
  const YAML::Node& node() const { return node_; }

  // Throws for every key present but never asked for, listing the known ones.
  void finish() const;
  // Throws ConfigError about `key` (which may be absent) with `message`.
  [[noreturn]] void fail(const std::string& key, const std::string& message) const;
  // "FILE:LINE: key 'a.b'" for a key of this map, or "--set a.b" when it came from the command line.
  std::string where(const std::string& key) const;

 private:
  std::optional<YAML::Node> lookup(const std::string& key);
  std::string full_key(const std::string& key) const;
  [[noreturn]] void missing(const std::string& key, const std::string& expected) const;
  std::string scalar_text(const YAML::Node& node) const;

  YAML::Node node_;
  std::string path_;
  std::shared_ptr<const ConfigSource> source_;
  std::set<std::string> known_;
  YAML::Mark line_of_ = YAML::Mark::null_mark();  // for a derived mapping: where its origin is
};

}  // namespace dptrain
