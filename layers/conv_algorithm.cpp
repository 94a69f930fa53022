#include "layers/conv_algorithm.h"

namespace dptrain {

namespace {

enum class Rejection { None, NotSupported, Workspace, NonDeterministic };

Rejection rejection(const ConvAlgorithmCandidate& candidate, const ConvAlgorithmRules& rules) {
  if (candidate.status != AlgorithmStatus::Supported) return Rejection::NotSupported;
  if (candidate.workspace_bytes > rules.max_workspace_bytes) return Rejection::Workspace;
  if (rules.determinism == Determinism::Required && candidate.reproducibility != Reproducibility::Deterministic) {
    return Rejection::NonDeterministic;
  }
  return Rejection::None;
}

// "no forward algorithm: 3 listed, 2 not supported, 1 nondeterministic (cudnn_deterministic: true)".
std::string explain(const char* direction, const std::vector<ConvAlgorithmCandidate>& candidates,
                    const ConvAlgorithmRules& rules) {
  size_t unsupported = 0, too_large = 0, nondeterministic = 0;
  for (const auto& candidate : candidates) {
    switch (rejection(candidate, rules)) {
      case Rejection::NotSupported:
        ++unsupported;
        break;
      case Rejection::Workspace:
        ++too_large;
        break;
      case Rejection::NonDeterministic:
        ++nondeterministic;
        break;
      case Rejection::None:
        break;
    }
  }
  std::string text = std::string("no ") + direction + " algorithm: " + std::to_string(candidates.size()) + " listed";
  if (unsupported) text += ", " + std::to_string(unsupported) + " not supported for this shape and data type";
  if (too_large) {
    text += ", " + std::to_string(too_large) + " over the " + std::to_string(rules.max_workspace_bytes >> 20) +
            " MiB workspace limit";
  }
  if (nondeterministic)
    text += ", " + std::to_string(nondeterministic) + " nondeterministic (cudnn_deterministic: true)";
  return text;
}

}  // namespace

std::optional<ConvAlgorithmCandidate> choose_conv_algorithm(const std::vector<ConvAlgorithmCandidate>& candidates,
                                                            const ConvAlgorithmRules& rules) {
  for (const auto& candidate : candidates) {
    if (rejection(candidate, rules) == Rejection::None) return candidate;
  }
  return std::nullopt;
}

ConvAlgorithmChoice choose_conv_algorithms(const ConvCandidates& candidates, const ConvAlgorithmRules& rules) {
  ConvAlgorithmChoice choice;
  const auto forward = choose_conv_algorithm(candidates.forward, rules);
  if (!forward) {
    choice.missing = explain("forward", candidates.forward, rules);
    return choice;
  }
  const auto data = choose_conv_algorithm(candidates.backward_data, rules);
  if (!data) {
    choice.missing = explain("backward-data", candidates.backward_data, rules);
    return choice;
  }
  const auto filter = choose_conv_algorithm(candidates.backward_filter, rules);
  if (!filter) {
    choice.missing = explain("backward-filter", candidates.backward_filter, rules);
    return choice;
  }
  choice.algorithms = ConvAlgorithms{*forward, *data, *filter};
  return choice;
}

void mark_not_supported(std::vector<ConvAlgorithmCandidate>& candidates, int algorithm) {
  for (auto& candidate : candidates) {
    if (candidate.algorithm == algorithm) candidate.status = AlgorithmStatus::NotSupported;
  }
}

std::optional<Precision> conv_fallback_precision(Precision requested) {
  if (requested == Precision::Bf16) return Precision::Float32;
  return std::nullopt;
}

}  // namespace dptrain
