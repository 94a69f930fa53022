// DropoutLayer: inverted dropout with masks keyed by (seed, epoch, sample id), never batch position.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "layers/layer.h"
#include "runtime/core/backend.h"
#include "runtime/core/config_map.h"
#include "runtime/core/rng.h"

namespace dptrain {

// YAML options of `dropout`.
struct DropoutOptions {
  double rate = 0;  // `rate`, required, in [0, 1): probability that an element is zeroed

  static DropoutOptions read(ConfigMap& options);
};

// Backend-independent part of dropout: output shape = input shape. In Mode::Train each element is
// zeroed with probability `rate` and the rest are scaled by 1 / (1 - rate); Mode::Eval is the
// identity, a copy through the backend (the same on every backend, so done here). A backend's
// dropout implements the masked forward and backward of training.
//
// The mask is counter-based, so it is the same whichever worker and batch position a sample gets:
// element e of sample id i is dropped iff draw(sample_key, e) < drop_threshold, where
// sample_key = hash_key(seed, epoch, i, layer_key), draw is the e-th value of Rng(sample_key)
// (SplitMix64 of sample_key + e) keeping its top 24 bits, and layer_key = hash_key(RngStream::Dropout,
// salt). The salt tells dropout layers of one model apart; the factory derives it from the layer's
// config path (such as "model.layers[4]"), so every worker of a run uses the same one.
class DropoutLayer : public Layer {
 public:
  DropoutLayer(const DropoutOptions& options, uint64_t salt, const Shape& input_shape, Backend& backend);
  const char* type() const override { return "dropout"; }

  // Checks the shapes; Mode::Eval copies x to y, Mode::Train calls forward_train with the batch's
  // mask keys (Error when step has no sample ids).
  void forward(const Tensor& x, Tensor& y, const StepInfo& step) final;
  // Checks the shapes; Mode::Eval copies dy to dx, Mode::Train calls backward_train, which needs
  // the training forward of the same batch size before it (ShapeError otherwise).
  void backward(const Tensor& x, const Tensor& y, const Tensor& dy, Tensor* dx, const StepInfo& step) final;

  const DropoutOptions& options() const { return options_; }
  // 1 / (1 - rate): the factor applied to kept elements.
  float keep_scale() const { return keep_scale_; }
  // Elements whose draw is below this (out of 2^24) are dropped: round(rate * 2^24).
  uint32_t drop_threshold() const { return drop_threshold_; }
  // The mask key of the sample at batch position n; throws Error when step has no sample ids.
  uint64_t sample_key(const StepInfo& step, size_t n) const;
  // 24 uniform random bits for element `element` of the sample with key `key`.
  static constexpr uint32_t draw(uint64_t key, uint64_t element) {
    return static_cast<uint32_t>(mix64(key + element) >> 40);
  }

 protected:
  // y = x * mask for a training batch whose samples have the mask keys `keys` (one per sample);
  // keeps what backward_train needs.
  virtual void forward_train(const Tensor& x, Tensor& y, const std::vector<uint64_t>& keys) = 0;
  // dx = dy * the mask of the last forward_train (same batch size).
  virtual void backward_train(const Tensor& dy, Tensor& dx) = 0;

  DropoutOptions options_;
  uint64_t layer_key_ = 0;
  float keep_scale_ = 1.0f;
  uint32_t drop_threshold_ = 0;

 private:
  Backend& backend_;
  size_t train_batch_ = 0;  // N of the last training forward
};

// A stable 64-bit salt from text (FNV-1a), used to tell dropout layers apart by config path.
uint64_t dropout_salt(const std::string& text);

}  // namespace dptrain
