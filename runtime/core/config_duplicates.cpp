#include "runtime/core/config_duplicates.h"

#include <map>
#include <set>

#include "runtime/core/errors.h"

namespace dptrain {

namespace {

// Deeper than any config: a document nested further is refused rather than walked.
constexpr size_t kMaxDepth = 64;

// "line 3", or "" for a node without a position (one made by the program).
std::string line_of(const YAML::Node& node) {
  const YAML::Mark mark = node.Mark();
  return mark.is_null() ? std::string() : std::to_string(mark.line + 1);
}

class DuplicateWalk {
 public:
  explicit DuplicateWalk(const std::string& file) : file_(file) {}

  void walk(const YAML::Node& node, const std::string& path, size_t depth) {
    if (!node || node.IsScalar() || node.IsNull()) return;
    if (depth > kMaxDepth) {
      throw ConfigError(file_ + ":" + line_of(node) + ": key '" + path + "': nested deeper than " +
                        std::to_string(kMaxDepth) + " levels");
    }
    // An alias shares its anchor's node (and position): walk each positioned node once.
    const YAML::Mark mark = node.Mark();
    if (!mark.is_null() && !seen_.insert(mark.pos).second) return;
    if (node.IsSequence()) {
      size_t i = 0;
      for (const auto& item : node) walk(item, path + "[" + std::to_string(i++) + "]", depth + 1);
      return;
    }
    if (!node.IsMap()) return;
    std::map<std::string, YAML::Node> keys;
    for (const auto& kv : node) {
      if (!kv.first.IsScalar()) continue;  // the config reader refuses non-text keys by name
      const std::string key = kv.first.Scalar();
      const std::string full = path.empty() ? key : path + "." + key;
      const auto [first, inserted] = keys.emplace(key, kv.first);
      if (!inserted) refuse(full, first->second, kv.first);
      walk(kv.second, full, depth + 1);
    }
  }

 private:
  [[noreturn]] void refuse(const std::string& full, const YAML::Node& first, const YAML::Node& second) const {
    const std::string a = line_of(first), b = line_of(second);
    std::string message = file_ + (b.empty() ? "" : ":" + b) + ": key '" + full + "' is given twice";
    if (!a.empty() && !b.empty()) message += " (lines " + a + " and " + b + ")";
    throw ConfigError(message + ": a YAML mapping holds each key once; keep one of them");
  }

  const std::string& file_;
  std::set<int> seen_;
};

}  // namespace

void refuse_duplicate_keys(const YAML::Node& node, const std::string& file, const std::string& path) {
  DuplicateWalk(file).walk(node, path, 0);
}

}  // namespace dptrain
