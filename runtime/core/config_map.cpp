#include "runtime/core/config_map.h"

#include <algorithm>
#include <cmath>
#include <sstream>

#include "runtime/core/errors.h"

namespace dptrain {

namespace {

std::string describe_node(const YAML::Node& node) {
  if (node.IsScalar()) return "'" + node.Scalar() + "'";
  if (node.IsSequence()) return "a list";
  if (node.IsMap()) return "a mapping";
  return "nothing";
}

// The first control character of `text` (a NUL byte, a newline, an escape), as "0x00 at
// character 4"; empty when there is none. Names and paths never hold one.
std::string control_character(const std::string& text) {
  for (size_t i = 0; i < text.size(); ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c >= 0x20 && c != 0x7f) continue;
    static const char* const hex = "0123456789abcdef";
    return std::string("0x") + hex[c >> 4] + hex[c & 15] + " at character " + std::to_string(i + 1);
  }
  return std::string();
}

}  // namespace

std::string format_number(double value) {
  std::ostringstream out;
  out << value;
  return out.str();
}

ConfigMap::ConfigMap(YAML::Node node, std::string path, std::shared_ptr<const ConfigSource> source)
    : node_(std::move(node)), path_(std::move(path)), source_(std::move(source)) {
  if (node_ && !node_.IsNull() && !node_.IsMap()) {
    std::ostringstream msg;
    const YAML::Mark mark = node_.Mark();
    msg << source_->file;
    if (!mark.is_null()) msg << ':' << mark.line + 1;
    msg << ": key '" << (path_.empty() ? "<top level>" : path_) << "': expected a mapping (key: value), got "
        << describe_node(node_);
    throw ConfigError(msg.str());
  }
}

ConfigMap ConfigMap::parse(const std::string& yaml, const std::string& file_name) {
  auto source = std::make_shared<ConfigSource>();
  source->file = file_name;
  YAML::Node node;
  try {
    node = YAML::Load(yaml);
  } catch (const YAML::Exception& e) {
    throw ConfigError(file_name + ":" + std::to_string(e.mark.line + 1) + ": invalid YAML: " + e.msg);
  }
  return ConfigMap(node, "", source);
}

std::string ConfigMap::full_key(const std::string& key) const { return path_.empty() ? key : path_ + "." + key; }

bool ConfigMap::has(const std::string& key) const {
  return node_ && node_.IsMap() && node_[key] && !node_[key].IsNull();
}

std::string ConfigMap::where(const std::string& key) const {
  const std::string full = full_key(key);
  if (source_->overridden.count(full)) return "--set " + full;
  std::ostringstream out;
  out << source_->file;
  YAML::Mark mark = YAML::Mark::null_mark();
  if (node_ && node_.IsMap()) {
    // The key's own line when present; otherwise the line of the mapping that lacks it.
    for (const auto& kv : node_) {
      if (kv.first.Scalar() == key) {
        mark = kv.first.Mark();
        break;
      }
    }
    if (mark.is_null()) mark = node_.Mark();
  }
  if (mark.is_null()) mark = line_of_;
  if (!mark.is_null()) out << ':' << mark.line + 1;
  out << ": key '" << full << "'";
  return out.str();
}

void ConfigMap::missing(const std::string& key, const std::string& expected) const {
  // Keys present but not yet read are likely misspellings of the missing one: name them.
  std::string strangers;
  if (node_ && node_.IsMap()) {
    for (const auto& kv : node_) {
      const std::string other = kv.first.Scalar();
      if (known_.count(other)) continue;
      strangers += (strangers.empty() ? "" : ", ") + ("'" + other + "'");
      if (!kv.first.Mark().is_null()) strangers += " on line " + std::to_string(kv.first.Mark().line + 1);
    }
  }
  fail(key, "required key is missing (expected " + expected + ")" +
                (strangers.empty() ? "" : "; unknown key(s) here: " + strangers));
}

void ConfigMap::fail(const std::string& key, const std::string& message) const {
  throw ConfigError(where(key) + ": " + message);
}

std::optional<YAML::Node> ConfigMap::lookup(const std::string& key) {
  known_.insert(key);
  if (!has(key)) return std::nullopt;
  return node_[key];
}

std::string ConfigMap::scalar_text(const YAML::Node& node) const { return describe_node(node); }

int64_t ConfigMap::get_int(const std::string& key, std::optional<int64_t> fallback) {
  const std::optional<YAML::Node> found = lookup(key);
  if (!found) {
    if (fallback) return *fallback;
    missing(key, "an integer");
  }
  const YAML::Node& n = *found;
  int64_t value = 0;
  if (!n.IsScalar() || !YAML::convert<int64_t>::decode(n, value)) {
    fail(key, "expected an integer, got " + scalar_text(n));
  }
  return value;
}

size_t ConfigMap::get_size(const std::string& key, std::optional<size_t> fallback) {
  const std::optional<YAML::Node> found = lookup(key);
  if (!found) {
    if (fallback) return *fallback;
    missing(key, "a non-negative integer");
  }
  const YAML::Node& n = *found;
  int64_t value = 0;
  if (!n.IsScalar() || !YAML::convert<int64_t>::decode(n, value) || value < 0) {
    fail(key, "expected a non-negative integer, got " + scalar_text(n));
  }
  return static_cast<size_t>(value);
}

double ConfigMap::get_double(const std::string& key, std::optional<double> fallback) {
  const std::optional<YAML::Node> found = lookup(key);
  if (!found) {
    if (fallback) return *fallback;
    missing(key, "a number");
  }
  const YAML::Node& n = *found;
  double value = 0;
  if (!n.IsScalar() || !YAML::convert<double>::decode(n, value) || !std::isfinite(value)) {
    fail(key, "expected a number, got " + scalar_text(n));
  }
  return value;
}

double ConfigMap::get_double_checked(const std::string& key, std::optional<double> fallback,
                                     const std::function<bool(double)>& ok, const std::string& rule) {
  const double value = get_double(key, fallback);
  if (!ok(value)) fail(key, rule + ", got " + format_number(value));
  return value;
}

bool ConfigMap::get_bool(const std::string& key, std::optional<bool> fallback) {
  const std::optional<YAML::Node> found = lookup(key);
  if (!found) {
    if (fallback) return *fallback;
    missing(key, "true or false");
  }
  const YAML::Node& n = *found;
  bool value = false;
  if (!n.IsScalar() || !YAML::convert<bool>::decode(n, value)) {
    fail(key, "expected true or false, got " + scalar_text(n));
  }
  return value;
}

std::string ConfigMap::get_string(const std::string& key, std::optional<std::string> fallback) {
  const std::optional<YAML::Node> found = lookup(key);
  if (!found) {
    if (fallback) return *fallback;
    missing(key, "a string");
  }
  const YAML::Node& n = *found;
  if (!n.IsScalar()) fail(key, "expected a string, got " + scalar_text(n));
  const std::string control = control_character(n.Scalar());
  if (!control.empty()) fail(key, "holds a control character (" + control + "): write the value without it");
  return n.Scalar();
}

std::string ConfigMap::get_choice(const std::string& key, const std::vector<std::string>& choices,
                                  std::optional<std::string> fallback) {
  const std::string value = get_string(key, std::move(fallback));
  for (const auto& c : choices) {
    if (c == value) return value;
  }
  std::string known;
  for (const auto& c : choices) known += (known.empty() ? "" : ", ") + c;
  fail(key, "unknown value '" + value + "' (expected one of: " + known + ")");
}

std::vector<std::string> ConfigMap::get_choice_list(const std::string& key, const std::vector<std::string>& choices,
                                                    std::optional<std::vector<std::string>> fallback) {
  std::vector<std::string> out = get_string_list(key, std::move(fallback));
  for (const std::string& value : out) {
    if (std::find(choices.begin(), choices.end(), value) != choices.end()) continue;
    std::string known;
    for (const auto& c : choices) known += (known.empty() ? "" : ", ") + c;
    fail(key, "unknown entry '" + value + "' (expected each one of: " + known + ")");
  }
  return out;
}

std::vector<double> ConfigMap::get_double_list(const std::string& key, std::optional<std::vector<double>> fallback) {
  const std::optional<YAML::Node> found = lookup(key);
  if (!found) {
    if (fallback) return *fallback;
    missing(key, "a number or a list of numbers");
  }
  const YAML::Node& n = *found;
  std::vector<double> out;
  auto read = [&](const YAML::Node& item) {
    double v = 0;
    if (!item.IsScalar() || !YAML::convert<double>::decode(item, v) || !std::isfinite(v)) {
      fail(key, "expected a number or a list of numbers, got " + scalar_text(item));
    }
    out.push_back(v);
  };
  if (n.IsSequence()) {
    for (const auto& item : n) read(item);
  } else {
    read(n);
  }
  return out;
}

std::vector<size_t> ConfigMap::get_size_list(const std::string& key, std::optional<std::vector<size_t>> fallback) {
  const std::optional<YAML::Node> found = lookup(key);
  if (!found) {
    if (fallback) return *fallback;
    missing(key, "a list of non-negative integers");
  }
  const YAML::Node& n = *found;
  std::vector<size_t> out;
  auto read = [&](const YAML::Node& item) {
    int64_t v = 0;
    if (!item.IsScalar() || !YAML::convert<int64_t>::decode(item, v) || v < 0) {
      fail(key, "expected a list of non-negative integers, got " + scalar_text(item));
    }
    out.push_back(static_cast<size_t>(v));
  };
  if (n.IsSequence()) {
    for (const auto& item : n) read(item);
  } else {
    read(n);
  }
  return out;
}

std::vector<std::string> ConfigMap::get_string_list(const std::string& key,
                                                    std::optional<std::vector<std::string>> fallback) {
  const std::optional<YAML::Node> found = lookup(key);
  if (!found) {
    if (fallback) return *fallback;
    missing(key, "a list of strings");
  }
  const YAML::Node& n = *found;
  std::vector<std::string> out;
  auto read = [&](const YAML::Node& item) {
    if (!item.IsScalar() || item.Scalar().empty()) fail(key, "expected a list of strings, got " + scalar_text(item));
    const std::string control = control_character(item.Scalar());
    if (!control.empty()) fail(key, "an entry holds a control character (" + control + "): write it without");
    out.push_back(item.Scalar());
  };
  if (n.IsSequence()) {
    for (const auto& item : n) read(item);
  } else {
    read(n);
  }
  return out;
}

ConfigMap ConfigMap::get_map(const std::string& key) {
  const std::optional<YAML::Node> found = lookup(key);
  if (found && !found->IsMap()) fail(key, "expected a mapping (key: value), got " + scalar_text(*found));
  return ConfigMap(found ? *found : YAML::Node(YAML::NodeType::Map), full_key(key), source_);
}

std::vector<ConfigMap> ConfigMap::get_map_list(const std::string& key) {
  const std::optional<YAML::Node> found = lookup(key);
  if (!found) missing(key, "a list");
  const YAML::Node& n = *found;
  if (!n.IsSequence()) fail(key, "expected a list, got " + scalar_text(n));
  std::vector<ConfigMap> out;
  size_t i = 0;
  for (const auto& item : n) {
    const std::string item_path = full_key(key) + "[" + std::to_string(i++) + "]";
    out.emplace_back(item, item_path, source_);
  }
  return out;
}

ConfigMap ConfigMap::derived(YAML::Node node, const std::string& suffix) const {
  ConfigMap out(std::move(node), path_ + suffix, source_);
  out.line_of_ = node_.Mark().is_null() ? line_of_ : node_.Mark();
  return out;
}

void ConfigMap::finish() const {
  if (!node_ || !node_.IsMap()) return;
  for (const auto& kv : node_) {
    const std::string key = kv.first.Scalar();
    if (known_.count(key)) continue;
    std::string known;
    for (const auto& k : known_) known += (known.empty() ? "" : ", ") + k;
    fail(key, "unknown key (known keys here: " + (known.empty() ? std::string("none") : known) + ")");
  }
}

}  // namespace dptrain
