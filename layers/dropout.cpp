#include "layers/dropout.h"

#include <cmath>
#include <string>

#include "layers/layer_util.h"
#include "runtime/core/errors.h"

namespace dptrain {

DropoutOptions DropoutOptions::read(ConfigMap& options) {
  DropoutOptions o;
  o.rate = options.get_double("rate");
  if (!(o.rate >= 0.0 && o.rate < 1.0)) {
    options.fail("rate", "must be in [0, 1), got " + std::to_string(o.rate));
  }
  return o;
}

DropoutLayer::DropoutLayer(const DropoutOptions& options, uint64_t salt, const Shape& input_shape, Backend& backend)
    : options_(options),
      layer_key_(hash_key(static_cast<uint64_t>(RngStream::Dropout), salt)),
      keep_scale_(static_cast<float>(1.0 / (1.0 - options.rate))),
      drop_threshold_(static_cast<uint32_t>(std::lround(options.rate * 16777216.0))),
      backend_(backend) {
  if (input_shape.empty()) throw ShapeError("dropout needs an input with at least one dimension");
  input_shape_ = input_shape;
  output_shape_ = input_shape;
}

void DropoutLayer::forward(const Tensor& x, Tensor& y, const StepInfo& step) {
  const size_t n = check_forward_shapes(*this, x, y);
  if (step.mode == Mode::Eval) {
    copy_unless_shared(backend_, x, y);
    return;
  }
  std::vector<uint64_t> keys(n);
  for (size_t s = 0; s < n; ++s) keys[s] = sample_key(step, s);
  forward_train(x, y, keys);
  train_batch_ = n;
}

void DropoutLayer::backward(const Tensor& x, const Tensor& y, const Tensor& dy, Tensor* dx, const StepInfo& step) {
  const size_t n = check_backward_shapes(*this, x, y, dy, dx);
  if (!dx) return;
  if (step.mode == Mode::Eval) {
    copy_unless_shared(backend_, dy, *dx);
    return;
  }
  if (n != train_batch_) {
    throw ShapeError("dropout: backward for a batch of " + std::to_string(n) + " after a training forward of " +
                     std::to_string(train_batch_));
  }
  backward_train(dy, *dx);
}

uint64_t DropoutLayer::sample_key(const StepInfo& step, size_t n) const {
  if (!step.sample_ids) throw Error("dropout: training step has no sample ids to key the dropout mask by");
  return hash_key(step.seed, step.epoch, step.sample_ids[n], layer_key_);
}

uint64_t dropout_salt(const std::string& text) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char c : text) h = (h ^ c) * 0x100000001b3ULL;
  return h;
}

}  // namespace dptrain
