// Choosing a convolution's algorithms from what the GPU library reports about them. Pure host
// logic, free of cuDNN types, so that the choice is tested on machines without a GPU; the CUDA
// conv2d layer translates cuDNN's cudnnConvolution*AlgoPerf_t answers into these structs.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "runtime/core/determinism.h"
#include "runtime/core/precision.h"

namespace dptrain {

// Whether the library can run an algorithm for the shape and data type it was asked about.
enum class AlgorithmStatus { Supported, NotSupported };

// Whether an algorithm gives bit-identical results run after run.
enum class Reproducibility { Deterministic, NonDeterministic };

// One algorithm as the library describes it, in the library's order (fastest expected first).
struct ConvAlgorithmCandidate {
  int algorithm = 0;  // the library's enum value, passed through
  AlgorithmStatus status = AlgorithmStatus::NotSupported;
  size_t workspace_bytes = 0;
  Reproducibility reproducibility = Reproducibility::NonDeterministic;
  int math_type = 0;  // the library's math type the algorithm runs with; set on the descriptor before use
};

// What a usable algorithm must satisfy.
struct ConvAlgorithmRules {
  size_t max_workspace_bytes = size_t{1} << 30;
  Determinism determinism = Determinism::Fastest;
};

// The candidates the library listed for each of a convolution's three directions, in one precision.
struct ConvCandidates {
  std::vector<ConvAlgorithmCandidate> forward, backward_data, backward_filter;
};

// One chosen algorithm per direction.
struct ConvAlgorithms {
  ConvAlgorithmCandidate forward, backward_data, backward_filter;
};

// The outcome of a choice: the algorithms, or (when some direction has none) why not.
struct ConvAlgorithmChoice {
  std::optional<ConvAlgorithms> algorithms;
  std::string missing;  // "no backward-filter algorithm: 4 listed, 3 not supported, 1 over ..."; empty when chosen
};

// The first candidate that is supported, fits the workspace limit and, where the rules require it,
// is deterministic; nullopt when there is none.
std::optional<ConvAlgorithmCandidate> choose_conv_algorithm(const std::vector<ConvAlgorithmCandidate>& candidates,
                                                            const ConvAlgorithmRules& rules);

// An algorithm for every direction, or `missing` naming the first direction without one and why.
ConvAlgorithmChoice choose_conv_algorithms(const ConvCandidates& candidates, const ConvAlgorithmRules& rules);

// Marks `algorithm` NotSupported among `candidates`: the library listed it, then refused it when
// asked for its workspace (a heuristic answer is not a promise), so the next choice passes it over.
void mark_not_supported(std::vector<ConvAlgorithmCandidate>& candidates, int algorithm);

// The precision a convolution is planned in when the library has no algorithm for it in
// `requested`: float32 for bf16 (cuDNN has no bf16 kernels for some shapes, such as one input
// channel); nullopt for float32 and tf32, whose missing algorithm is an error.
std::optional<Precision> conv_fallback_precision(Precision requested);

}  // namespace dptrain
