// Choosing convolution algorithms from what cuDNN reports (the host side of the CUDA conv2d layer):
// first fit in the library's order, the workspace limit, deterministic-only runs, the math type
// carried to the descriptor, and bf16 falling back to float32 where cuDNN has no bf16 algorithm.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "layers/conv_algorithm.h"

namespace dptrain {
namespace DPTRAIN_TEST_UNIT {

constexpr size_t kMiB = size_t{1} << 20;

ConvAlgorithmCandidate candidate(int algorithm, AlgorithmStatus status, size_t workspace_bytes,
                                 Reproducibility reproducibility, int math_type = 0) {
  return ConvAlgorithmCandidate{algorithm, status, workspace_bytes, reproducibility, math_type};
}

const auto kOk = AlgorithmStatus::Supported;
const auto kNo = AlgorithmStatus::NotSupported;
const auto kDet = Reproducibility::Deterministic;
const auto kNonDet = Reproducibility::NonDeterministic;

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

TEST(ConvAlgorithm, TheFirstSupportedCandidateThatFitsIsChosen) {
  const std::vector<ConvAlgorithmCandidate> listed = {candidate(6, kNo, 0, kDet), candidate(7, kOk, 2048 * kMiB, kDet),
                                                      candidate(1, kOk, 4 * kMiB, kNonDet), candidate(0, kOk, 0, kDet)};
  const auto chosen = choose_conv_algorithm(listed, ConvAlgorithmRules{});
  ASSERT_TRUE(chosen.has_value());
  EXPECT_EQ(chosen->algorithm, 1);
}

TEST(ConvAlgorithm, DeterministicRunsPassOverNondeterministicAlgorithms) {
  const std::vector<ConvAlgorithmCandidate> listed = {candidate(0, kOk, 0, kNonDet), candidate(3, kOk, 0, kNonDet),
                                                      candidate(1, kOk, 8 * kMiB, kDet)};
  ConvAlgorithmRules rules;
  EXPECT_EQ(choose_conv_algorithm(listed, rules)->algorithm, 0);
  rules.determinism = Determinism::Required;
  EXPECT_EQ(choose_conv_algorithm(listed, rules)->algorithm, 1);
}

TEST(ConvAlgorithm, TheReportedMathTypeTravelsWithTheChoice) {
  const std::vector<ConvAlgorithmCandidate> listed = {candidate(1, kOk, 0, kDet, /*math_type=*/2),
                                                      candidate(0, kOk, 0, kDet, /*math_type=*/0)};
  const auto chosen = choose_conv_algorithm(listed, ConvAlgorithmRules{});
  ASSERT_TRUE(chosen.has_value());
  EXPECT_EQ(chosen->math_type, 2);
}

TEST(ConvAlgorithm, NoCandidateIsNoChoice) {
  EXPECT_FALSE(choose_conv_algorithm({}, ConvAlgorithmRules{}).has_value());
  EXPECT_FALSE(choose_conv_algorithm({candidate(0, kNo, 0, kDet)}, ConvAlgorithmRules{}).has_value());
}

TEST(ConvAlgorithm, AllThreeDirectionsAreChosenTogether) {
  ConvCandidates listed;
  listed.forward = {candidate(1, kOk, 0, kDet, 1)};
  listed.backward_data = {candidate(0, kOk, 0, kNonDet), candidate(1, kOk, 0, kDet, 2)};
  listed.backward_filter = {candidate(3, kOk, 0, kDet, 3)};
  const ConvAlgorithmChoice choice = choose_conv_algorithms(listed, ConvAlgorithmRules{0, Determinism::Required});
  ASSERT_TRUE(choice.algorithms.has_value()) << choice.missing;
  EXPECT_TRUE(choice.missing.empty());
  EXPECT_EQ(choice.algorithms->forward.algorithm, 1);
  EXPECT_EQ(choice.algorithms->backward_data.algorithm, 1);
  EXPECT_EQ(choice.algorithms->backward_data.math_type, 2);
  EXPECT_EQ(choice.algorithms->backward_filter.algorithm, 3);
}

// What cuDNN may answer for a bf16 convolution of one input channel: nothing it can run.
TEST(ConvAlgorithm, AMissingDirectionIsNamedWithTheReasons) {
  ConvCandidates listed;
  listed.forward = {candidate(1, kOk, 0, kDet)};
  listed.backward_data = {candidate(1, kOk, 0, kDet)};
  listed.backward_filter = {candidate(0, kNo, 0, kNonDet), candidate(1, kNo, 0, kDet),
                            candidate(3, kOk, 4096 * kMiB, kDet), candidate(5, kOk, 0, kNonDet)};
  const ConvAlgorithmChoice choice =
      choose_conv_algorithms(listed, ConvAlgorithmRules{kMiB << 10, Determinism::Required});
  EXPECT_FALSE(choice.algorithms.has_value());
  EXPECT_TRUE(contains(choice.missing, "no backward-filter algorithm: 4 listed")) << choice.missing;
  EXPECT_TRUE(contains(choice.missing, "2 not supported")) << choice.missing;
  EXPECT_TRUE(contains(choice.missing, "1 over the 1024 MiB workspace limit")) << choice.missing;
  EXPECT_TRUE(contains(choice.missing, "1 nondeterministic (cudnn_deterministic: true)")) << choice.missing;

  listed.forward.clear();
  EXPECT_TRUE(contains(choose_conv_algorithms(listed, ConvAlgorithmRules{}).missing, "no forward algorithm: 0 listed"));
}

// cuDNN may list an algorithm and then refuse it when asked for its workspace: the next one is chosen.
TEST(ConvAlgorithm, AnAlgorithmRefusedAfterBeingListedIsPassedOver) {
  std::vector<ConvAlgorithmCandidate> listed = {candidate(6, kOk, 0, kDet), candidate(1, kOk, 0, kDet)};
  EXPECT_EQ(choose_conv_algorithm(listed, ConvAlgorithmRules{})->algorithm, 6);
  mark_not_supported(listed, 6);
  EXPECT_EQ(listed[0].status, AlgorithmStatus::NotSupported);
  EXPECT_EQ(choose_conv_algorithm(listed, ConvAlgorithmRules{})->algorithm, 1);
  mark_not_supported(listed, 1);
  EXPECT_FALSE(choose_conv_algorithm(listed, ConvAlgorithmRules{}).has_value());
}

TEST(ConvAlgorithm, OnlyBf16FallsBackToFloat32) {
  EXPECT_EQ(conv_fallback_precision(Precision::Bf16), Precision::Float32);
  EXPECT_FALSE(conv_fallback_precision(Precision::Float32).has_value());
  EXPECT_FALSE(conv_fallback_precision(Precision::Tf32).has_value());
}

}  // namespace
}  // namespace dptrain
