// Numbers stay numbers: where a non-finite value (nan, inf) first shows in a flat buffer of
// parameters or gradients, and the error that stops a run whose loss or gradients diverged.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "runtime/core/errors.h"
#include "runtime/train/model.h"

namespace dptrain {

// Training produced a non-finite loss, gradient or parameter: the message names the step and, where
// it can tell, the parameter, and says that the last checkpoint was kept.
class DivergedError : public Error {
 public:
  using Error::Error;
};

// Whether every value of `values` [0, count) is finite (one pass, no branch per value).
bool all_finite(const float* values, size_t count);

// The first entry of `entries` with `use` whose values in the host buffer `flat` hold a non-finite
// value, as "fc.weight (element 3 of 40: nan)"; nullopt when every such value is finite.
std::optional<std::string> first_non_finite(const float* flat, const std::vector<ParamEntry>& entries, ParamUse use);

// "nan", "inf" or "-inf".
std::string describe_non_finite(float value);

}  // namespace dptrain
