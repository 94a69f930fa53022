// Test-only hooks, compiled in only with -DDPTRAIN_FAULT_INJECTION=ON (the test build): the
// environment variable DPTRAIN_FAULT names one, as NAME or NAME=VALUE. A release build has none of
// them and ignores the variable.
#pragma once

#include <cstdlib>
#include <cstring>
#include <optional>
#include <string_view>

#include "runtime/core/parse_number.h"

namespace dptrain::fault_hooks {

// Whether DPTRAIN_FAULT is exactly `name`.
inline bool armed(const char* name) {
#ifdef DPTRAIN_FAULT_INJECTION
  const char* value = std::getenv("DPTRAIN_FAULT");
  return value != nullptr && std::strcmp(value, name) == 0;
#else
  (void)name;
  return false;
#endif
}

// VALUE when DPTRAIN_FAULT is NAME=VALUE with a whole number VALUE; nullopt otherwise.
inline std::optional<uint64_t> value(std::string_view name) {
#ifdef DPTRAIN_FAULT_INJECTION
  const char* set = std::getenv("DPTRAIN_FAULT");
  if (set == nullptr) return std::nullopt;
  const std::string_view text(set);
  if (text.size() <= name.size() || text.substr(0, name.size()) != name || text[name.size()] != '=') {
    return std::nullopt;
  }
  return parse_decimal(text.substr(name.size() + 1));
#else
  (void)name;
  return std::nullopt;
#endif
}

}  // namespace dptrain::fault_hooks
