#include "runtime/train/predictor.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "runtime/checkpoint/finite_values.h"
#include "runtime/train/model_state.h"
#include "runtime/train/quantizer.h"

namespace dptrain {

Predictor::Predictor(RunConfig& config, const Shape& input_shape, const CheckpointState& state,
                     const std::string& source, Backend& backend)
    : model_(std::make_unique<Model>(config.model, input_shape, backend, config.seed)) {
  refuse_non_finite(source, state);
  Tensor params = model_->host_parameters();
  tensors_to_flat(state.parameters, model_->parameter_entries(), params, source);
  model_->load_parameters(params);
  Tensor buffers = model_->host_buffers();
  tensors_to_flat(state.buffers, model_->buffer_entries(), buffers, source, "buffer");
  model_->load_buffers(buffers);
  if (!state.quantization.empty()) model_->use_int8(int8_weights(state.quantization));
}

Tensor Predictor::probabilities(const Tensor& x) {
  const size_t n = x.shape().empty() ? 0 : x.shape()[0];
  Tensor out(Shape{n, num_classes()});
  if (n == 0) return out;
  if (labels_.size() < n) {
    labels_.assign(n, 0);
    ids_.resize(n);
    std::iota(ids_.begin(), ids_.end(), uint64_t{0});
  }
  StepInfo info;
  info.mode = Mode::Eval;
  info.sample_ids = ids_.data();
  model_->step(x, labels_.data(), info, 1.0f);
  const Tensor logits = model_->logits(n).to_host();
  softmax_rows(logits.data(), n, num_classes(), out.data());
  return out;
}

void softmax_rows(const float* logits, size_t rows, size_t classes, float* out) {
  for (size_t r = 0; r < rows; ++r) {
    const float* z = logits + r * classes;
    float* p = out + r * classes;
    const double top = *std::max_element(z, z + classes);
    double sum = 0;
    for (size_t k = 0; k < classes; ++k) sum += std::exp(static_cast<double>(z[k]) - top);
    for (size_t k = 0; k < classes; ++k) p[k] = static_cast<float>(std::exp(static_cast<double>(z[k]) - top) / sum);
  }
}

}  // namespace dptrain
