// Duplicate keys in a YAML document: yaml-cpp keeps both and a lookup finds the first, so a
// config that sets a key twice would silently ignore the second. They are refused instead.
#pragma once

#include <yaml-cpp/yaml.h>

#include <string>

namespace dptrain {

// Throws ConfigError when a mapping anywhere in `node` holds the same key twice, naming the key's
// dotted path and both lines. `file` names the document in the message ("run.yaml", "--set data").
void refuse_duplicate_keys(const YAML::Node& node, const std::string& file, const std::string& path = "");

}  // namespace dptrain
