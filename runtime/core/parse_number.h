// Whole numbers read from text that came from outside (file names, environment variables, status
// files, command-line keys): every character checked and every overflow caught, so that no such
// text reaches std::stoul and friends, which throw std::out_of_range past their type.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace dptrain {

// The value of `text` when it is one or more decimal digits (no sign, no spaces) and at most
// `max`; nullopt otherwise, overflow included.
std::optional<uint64_t> parse_decimal(std::string_view text, uint64_t max = UINT64_MAX);

}  // namespace dptrain
