// The model's plan of activation types: float32 everywhere on the CPU (nothing converted, so the CPU
// path is unchanged), and, with layers that read or write bf16 (a test layer standing in for the
// GPU's bf16 convolution and dense layers), conversions exactly where a producer's type differs
// from what its consumer reads, in forward and backward, with gradients of shared outputs added
// across types. The CPU backend converts host tensors, so the whole plan runs here.
#include <gtest/gtest.h>

#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "layers/registry.h"
#include "runtime/core/cpu_backend.h"
#include "runtime/core/errors.h"
#include "runtime/core/precision.h"
#include "runtime/core/rng.h"
#include "runtime/train/model.h"

namespace dptrain {
namespace DPTRAIN_TEST_UNIT {

CpuBackend& cpu() {
  static CpuBackend backend;
  return backend;
}

// `test_cast`: the identity, reading `input` and writing `output` types (float32 or bf16), as a
// layer computing in bf16 would; forward and backward convert through the backend.
class CastLayer final : public Layer {
 public:
  CastLayer(const Shape& shape, ActivationTypes types, Backend& backend) : types_(types), backend_(backend) {
    input_shape_ = shape;
    output_shape_ = shape;
  }
  const char* type() const override { return "test_cast"; }
  ActivationTypes activation_types(DType) const override { return types_; }
  void forward(const Tensor& x, Tensor& y, const StepInfo&) override {
    EXPECT_EQ(x.dtype(), types_.input);
    EXPECT_EQ(y.dtype(), types_.output);
    backend_.convert(x, y, Accumulate::Overwrite);
  }
  void backward(const Tensor&, const Tensor&, const Tensor& dy, Tensor* dx, const StepInfo&) override {
    EXPECT_EQ(dy.dtype(), types_.output);
    if (!dx) return;
    EXPECT_EQ(dx->dtype(), types_.input);
    backend_.convert(dy, *dx, Accumulate::Overwrite);
  }

 private:
  ActivationTypes types_;
  Backend& backend_;
};

DType read_type(ConfigMap& options, const std::string& key) {
  return options.get_choice(key, {"float32", "bf16"}, "float32") == "bf16" ? DType::BFloat16 : DType::Float32;
}

// Adds `test_cast` to the built-in registry for one test, and takes it out again so that no other
// test (the registry's own among them) sees it.
class ModelActivationTypes : public ::testing::Test {
 protected:
  void SetUp() override {
    LayerRegistry::builtin().add("test_cast", "cpu", [](ConfigMap& options, const Shape& shape, Backend& backend) {
      const DType in = read_type(options, "in"), out = read_type(options, "out");
      return std::make_unique<CastLayer>(shape, ActivationTypes{in, out}, backend);
    });
  }
  void TearDown() override { LayerRegistry::builtin().remove("test_cast", "cpu"); }
};

std::unique_ptr<Model> build(const std::string& yaml, const Shape& input) {
  ConfigMap root = ConfigMap::parse("model:\n" + yaml, "types.yaml");
  std::vector<ConfigMap> layers = root.get_map_list("model");
  return std::make_unique<Model>(layers, input, cpu(), 9);
}

// A model whose `a` output feeds two layers (gradients add up), with casts that the `cast_*`
// options make float32 (an exact identity) or bf16.
std::string branching_model(const std::string& cast_in, const std::string& cast_out) {
  return "  - {type: dense, name: a, units: 6}\n"
         "  - {type: test_cast, name: b, in: " + cast_in + ", out: " + cast_out + ", inputs: [a]}\n"
         "  - {type: relu, name: c, inputs: [a]}\n"
         "  - {type: add, name: d, inputs: [b, c]}\n"
         "  - {type: dense, name: e, units: 3}\n"
         "  - {type: softmax_cross_entropy}\n";
}

// One training step: the loss sum, and the gradients (host copy).
struct StepResult {
  double loss = 0;
  std::vector<float> grads;
};

StepResult train_step(Model& model) {
  Tensor x({4, 5});
  Rng rng(3);
  for (size_t i = 0; i < x.num_elements(); ++i) x.data()[i] = rng.normal();
  const int32_t labels[4] = {0, 1, 2, 1};
  StepInfo info{Mode::Train};
  StepResult r;
  r.loss = model.step(x, labels, info, 0.25f).loss_sum;
  const Tensor& g = model.gradients();
  r.grads.assign(g.data(), g.data() + g.num_elements());
  return r;
}

TEST_F(ModelActivationTypes, TheCpuPlansFloat32EverywhereAndConvertsNothing) {
  auto model = build(branching_model("float32", "float32"), {5});
  for (size_t i = 0; i < model->layers().size(); ++i) {
    EXPECT_EQ(model->activation_types(i), ActivationTypes{}) << model->layer_name(i);
  }
  EXPECT_EQ(model->num_conversions(), 0u);
  EXPECT_EQ(model->describe_activation_types(), "activations float32");
}

TEST_F(ModelActivationTypes, ConversionsGoWhereAProducerWritesAnotherTypeThanItsConsumerReads) {
  auto model = build(branching_model("bf16", "bf16"), {5});
  // b reads bf16 from a (float32): converted. add d follows b (bf16): c's float32 output converted.
  // dense e reads float32 from d (bf16): converted. relu c reads a's float32: not converted.
  EXPECT_EQ(model->activation_types(1), (ActivationTypes{DType::BFloat16, DType::BFloat16}));
  EXPECT_EQ(model->activation_types(3), (ActivationTypes{DType::BFloat16, DType::BFloat16}));
  EXPECT_EQ(model->activation_types(4), ActivationTypes{});
  EXPECT_TRUE(model->converts_input(1, 0));
  EXPECT_FALSE(model->converts_input(2, 0));
  EXPECT_FALSE(model->converts_input(3, 0));
  EXPECT_TRUE(model->converts_input(3, 1));
  EXPECT_TRUE(model->converts_input(4, 0));
  EXPECT_FALSE(model->converts_input(5, 0));
  EXPECT_EQ(model->num_conversions(), 3u);
  EXPECT_EQ(model->describe_activation_types(),
            "activations: 2 of 5 layers write bf16; inputs converted for b (to bf16), d (to bf16), e (to float32)");
}

TEST_F(ModelActivationTypes, AStepThroughBf16ActivationsStaysWithinBf16OfTheFloat32Step) {
  auto reference = build(branching_model("float32", "float32"), {5});
  auto mixed = build(branching_model("bf16", "bf16"), {5});
  const StepResult want = train_step(*reference);
  const StepResult got = train_step(*mixed);
  // Three roundings to bf16 (8 bits of mantissa, relative error at most 2^-9 each) on the way from
  // a to e, and two on the way back: well within 2e-2 of the loss and of the gradients' norm.
  EXPECT_NEAR(got.loss, want.loss, 2e-2 * std::fabs(want.loss));
  ASSERT_EQ(got.grads.size(), want.grads.size());
  double diff = 0, norm = 0;
  for (size_t i = 0; i < want.grads.size(); ++i) {
    diff += (got.grads[i] - want.grads[i]) * double{got.grads[i] - want.grads[i]};
    norm += want.grads[i] * double{want.grads[i]};
  }
  EXPECT_LE(std::sqrt(diff), 2e-2 * std::sqrt(norm));
  // And bf16 did round something: the two differ.
  EXPECT_GT(diff, 0.0);
}

TEST_F(ModelActivationTypes, Float32CastsLeaveAStepBitForBit) {
  // The same model with a float32 cast and with a plain copy (flatten) in its place: the same bits.
  auto with = build(branching_model("float32", "float32"), {5});
  auto without = build("  - {type: dense, name: a, units: 6}\n"
                       "  - {type: flatten, name: b, inputs: [a]}\n"
                       "  - {type: relu, name: c, inputs: [a]}\n"
                       "  - {type: add, name: d, inputs: [b, c]}\n"
                       "  - {type: dense, name: e, units: 3}\n"
                       "  - {type: softmax_cross_entropy}\n",
                       {5});
  const StepResult a = train_step(*with), b = train_step(*without);
  EXPECT_EQ(a.loss, b.loss);
  EXPECT_EQ(a.grads, b.grads);
}

TEST_F(ModelActivationTypes, LogitsAreReadInFloat32WhereTheLastLayerWritesBf16) {
  auto model = build("  - {type: dense, units: 3}\n"
                     "  - {type: test_cast, in: float32, out: bf16}\n"
                     "  - {type: softmax_cross_entropy}\n",
                     {5});
  EXPECT_TRUE(model->converts_input(2, 0));
  train_step(*model);
  const Tensor logits = model->logits(4);
  EXPECT_EQ(logits.dtype(), DType::Float32);
  for (size_t i = 0; i < logits.num_elements(); ++i) {
    const float v = logits.data()[i];
    EXPECT_EQ(v, bf16_bits_to_float(float_to_bf16_bits(v))) << "logit " << i << " is not a bf16 value";
  }
}

TEST(Bf16Bits, RoundToNearestEvenAndBack) {
  EXPECT_EQ(float_to_bf16_bits(1.0f), 0x3f80);
  EXPECT_EQ(bf16_bits_to_float(0x3f80), 1.0f);
  // 1 + 2^-8 lies halfway between 1 and 1 + 2^-7: ties go to the even one, 1.
  EXPECT_EQ(bf16_bits_to_float(float_to_bf16_bits(1.0f + std::ldexp(1.0f, -8))), 1.0f);
  // 1 + 3 * 2^-8 lies halfway between 1 + 2^-7 and 1 + 2^-6: to the even one, 1 + 2^-6.
  EXPECT_EQ(bf16_bits_to_float(float_to_bf16_bits(1.0f + 3 * std::ldexp(1.0f, -8))), 1.0f + std::ldexp(1.0f, -6));
  EXPECT_TRUE(std::isnan(bf16_bits_to_float(float_to_bf16_bits(std::nanf("")))));
  EXPECT_EQ(bf16_bits_to_float(float_to_bf16_bits(-2.5f)), -2.5f);
}

TEST(Bf16Tensors, HoldHalfTheBytesAndRefuseFloatAccess) {
  Tensor t({3, 5}, cpu(), DType::BFloat16);
  EXPECT_EQ(t.size_bytes(), 30u);
  EXPECT_EQ(t.leading(2).size_bytes(), 20u);
  EXPECT_THROW(t.data(), UsageError);
  EXPECT_THROW(t.fill(1.0f), UsageError);
  Tensor f({3, 5}, cpu());
  EXPECT_THROW(f.copy_from(t), UsageError);
  f.fill(1.5f);
  cpu().convert(f, t, Accumulate::Overwrite);
  cpu().convert(f, t, Accumulate::Add);
  Tensor back({3, 5}, cpu());
  cpu().convert(t, back, Accumulate::Overwrite);
  for (size_t i = 0; i < back.num_elements(); ++i) EXPECT_EQ(back.data()[i], 3.0f);
  t.zero();
  cpu().convert(t, back, Accumulate::Overwrite);
  for (size_t i = 0; i < back.num_elements(); ++i) EXPECT_EQ(back.data()[i], 0.0f);
}

}  // namespace
}  // namespace dptrain
