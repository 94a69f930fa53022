#include "layers/dropout.h"

#include <cmath>
#include <string>

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

DropoutLayer::DropoutLayer(const DropoutOptions& options, uint64_t salt, const Shape& input_shape)
    : options_(options),
      layer_key_(hash_key(static_cast<uint64_t>(RngStream::Dropout), salt)),
      keep_scale_(static_cast<float>(1.0 / (1.0 - options.rate))),
      drop_threshold_(static_cast<uint32_t>(std::lround(options.rate * 16777216.0))) {
  if (input_shape.empty()) throw ShapeError("dropout needs an input with at least one dimension");
  input_shape_ = input_shape;
  output_shape_ = input_shape;
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
