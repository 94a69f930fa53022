#include "layers/layer.h"

#include "layers/layer_util.h"
#include "runtime/core/errors.h"

namespace dptrain {

void Layer::bind(std::vector<Tensor> params, std::vector<Tensor> grads) {
  const auto specs = parameters();
  if (params.size() != specs.size() || grads.size() != specs.size()) {
    throw ShapeError(std::string(type()) + ": expected " + std::to_string(specs.size()) + " parameter tensors");
  }
  for (size_t i = 0; i < specs.size(); ++i) {
    if (params[i].shape() != specs[i].shape || grads[i].shape() != specs[i].shape) {
      throw ShapeError(std::string(type()) + ": parameter '" + specs[i].name + "' must have shape " +
                       to_string(specs[i].shape));
    }
  }
  params_ = std::move(params);
  grads_ = std::move(grads);
}

void Layer::use_int8(const Int8Weights&) {
  throw ShapeError(std::string(type()) + " has no int8 form here: int8 inference covers conv2d and dense on the cpu");
}

void Layer::bind_buffers(std::vector<Tensor> buffers) {
  const auto specs = this->buffers();
  if (buffers.size() != specs.size()) {
    throw ShapeError(std::string(type()) + ": expected " + std::to_string(specs.size()) + " buffer tensors");
  }
  for (size_t i = 0; i < specs.size(); ++i) {
    if (buffers[i].shape() != specs[i].shape) {
      throw ShapeError(std::string(type()) + ": buffer '" + specs[i].name + "' must have shape " +
                       to_string(specs[i].shape));
    }
  }
  buffers_ = std::move(buffers);
}

void Layer::forward_inputs(const std::vector<const Tensor*>& xs, Tensor& y, const StepInfo& step) {
  if (xs.size() != 1) throw ShapeError(std::string(type()) + " takes one input, got " + std::to_string(xs.size()));
  forward(*xs[0], y, step);
}

void Layer::backward_inputs(const std::vector<const Tensor*>& xs, const Tensor& y, const Tensor& dy,
                            const std::vector<Tensor*>& dxs, const StepInfo& step) {
  if (xs.size() != 1 || dxs.size() != 1) {
    throw ShapeError(std::string(type()) + " takes one input, got " + std::to_string(xs.size()));
  }
  backward(*xs[0], y, dy, dxs[0], step);
}

LayerWork Layer::work(InputGradient dx) const {
  const double in = kFloatBytes * static_cast<double>(num_elements(input_shape_));
  const double out = kFloatBytes * static_cast<double>(num_elements(output_shape_));
  LayerWork w;
  w.forward_bytes = in + out;
  w.backward_bytes = dx == InputGradient::Computed ? in + out + in : 0;
  return w;
}

MergeLayer::MergeLayer(std::vector<Shape> input_shapes) : input_shapes_(std::move(input_shapes)) {
  if (input_shapes_.empty()) throw ShapeError("a merge layer needs at least one input");
  input_shape_ = input_shapes_[0];
}

LayerWork MergeLayer::work(InputGradient dx) const {
  double in = 0;
  for (const Shape& shape : input_shapes_) in += kFloatBytes * static_cast<double>(num_elements(shape));
  LayerWork w;
  // Every input copied into its place in y, and dy's part of each copied back.
  w.forward_bytes = 2 * in;
  w.backward_bytes = dx == InputGradient::Computed ? 2 * in : 0;
  return w;
}

void MergeLayer::forward(const Tensor&, Tensor&, const StepInfo&) {
  throw ShapeError(std::string(type()) + " merges several inputs: call forward_inputs");
}

void MergeLayer::backward(const Tensor&, const Tensor&, const Tensor&, Tensor*, const StepInfo&) {
  throw ShapeError(std::string(type()) + " merges several inputs: call backward_inputs");
}

void LossLayer::forward(const Tensor& x, Tensor& y, const StepInfo&) { copy_unless_shared(backend_, x, y); }

void LossLayer::accumulate(const Tensor& logits, const int32_t* labels, Tensor* dlogits, float grad_scale) {
  running_ += loss(logits, labels, dlogits, grad_scale);
}

LossStats LossLayer::take_sums() {
  const LossStats taken = running_;
  running_ = {};
  return taken;
}

void LossLayer::backward(const Tensor&, const Tensor&, const Tensor& dy, Tensor* dx, const StepInfo&) {
  if (dx) copy_unless_shared(backend_, dy, *dx);
}

}  // namespace dptrain
