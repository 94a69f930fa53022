// ConfigMap's range-checked getters: every number a config gives is finite and within its range,
// and a message says the range in words with its unit.
#include <cmath>
#include <string>

#include "runtime/core/config_map.h"

namespace dptrain {

namespace {

// " seconds (7 days)", " MiB", or nothing.
std::string unit_suffix(const std::string& unit, double max) {
  if (unit.empty()) return "";
  std::string text = " " + unit;
  if (unit == "seconds" && max == kMaxConfigSeconds) text += " (7 days)";
  return text;
}

// "must be 0 (off) or ..." when zero means off.
std::string with_zero(ZeroIs zero, std::string rule) {
  if (zero == ZeroIs::Refused) return rule;
  return "must be 0 (off) or " + rule.substr(std::string("must be ").size());
}

}  // namespace

NumberRange seconds_range(ZeroIs zero) {
  return NumberRange{0, kMaxConfigSeconds, "seconds", LowerBound::Exclusive, zero};
}

std::string describe(const NumberRange& range) {
  const std::string unit = unit_suffix(range.unit, range.max);
  const bool open_top = std::isinf(range.max);
  std::string rule;
  if (range.lower == LowerBound::Exclusive) {
    rule = "must be greater than " + format_number(range.min) +
           (open_top ? unit : " and at most " + format_number(range.max) + unit);
  } else {
    rule = open_top ? "must be at least " + format_number(range.min) + unit
                    : "must be between " + format_number(range.min) + " and " + format_number(range.max) + unit;
  }
  return with_zero(range.zero, rule);
}

std::string describe(const CountRange& range, size_t value) {
  const std::string unit = range.unit.empty() ? "" : " " + range.unit;
  if (value > range.max) return "must be at most " + std::to_string(range.max) + unit;
  return with_zero(range.zero, "must be at least " + std::to_string(range.min) + unit);
}

double ConfigMap::get_number(const std::string& key, std::optional<double> fallback, const NumberRange& range) {
  const double value = get_double(key, fallback);
  if (range.zero == ZeroIs::Off && value == 0) return value;
  const bool above_min = range.lower == LowerBound::Exclusive ? value > range.min : value >= range.min;
  if (!above_min || !(value <= range.max)) fail(key, describe(range) + ", got " + format_number(value));
  return value;
}

size_t ConfigMap::get_count(const std::string& key, std::optional<size_t> fallback, const CountRange& range) {
  const size_t value = get_size(key, fallback);
  if (range.zero == ZeroIs::Off && value == 0) return value;
  if (value < range.min || value > range.max) fail(key, describe(range, value) + ", got " + std::to_string(value));
  return value;
}

}  // namespace dptrain
