#include "runtime/checkpoint/finite_values.h"

#include <cmath>
#include <vector>

#include "runtime/core/errors.h"

namespace dptrain {

namespace {

// "element 3 of 40: nan" for the first non-finite value of `values`; nullopt when there is none.
std::optional<std::string> first_bad(const std::vector<float>& values) {
  for (size_t i = 0; i < values.size(); ++i) {
    const float v = values[i];
    if (std::isfinite(v)) continue;
    const std::string what = std::isnan(v) ? "nan" : (v > 0 ? "inf" : "-inf");
    return "element " + std::to_string(i) + " of " + std::to_string(values.size()) + ": " + what;
  }
  return std::nullopt;
}

std::optional<std::string> first_in(const std::vector<CheckpointTensor>& tensors, const std::string& group) {
  for (const CheckpointTensor& tensor : tensors) {
    if (const auto bad = first_bad(tensor.values)) return "dataset " + group + "/" + tensor.name + " (" + *bad + ")";
  }
  return std::nullopt;
}

}  // namespace

std::optional<std::string> non_finite_dataset(const CheckpointState& state) {
  if (auto bad = first_in(state.parameters, "/parameters")) return bad;
  if (auto bad = first_in(state.buffers, "/buffers")) return bad;
  for (const CheckpointOptimizerState& optimizer : state.optimizer_state) {
    if (auto bad = first_in(optimizer.tensors, "/optimizer/" + optimizer.name)) return bad;
  }
  return std::nullopt;
}

void refuse_non_finite(const std::string& path, const CheckpointState& state) {
  const std::optional<std::string> bad = non_finite_dataset(state);
  if (!bad) return;
  throw CheckpointError(path, *bad + " holds a non-finite value: the run had diverged, or the file was edited; "
                                     "resume from an earlier checkpoint");
}

}  // namespace dptrain
