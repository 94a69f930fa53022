#include "layers/add.h"

#include <memory>

#include "layers/registry.h"
#include "runtime/core/errors.h"

namespace dptrain {

namespace {

// Checks that every tensor of `xs` is (N, ...shape).
void check_inputs(const MergeLayer& layer, const std::vector<const Tensor*>& xs, const Tensor& y) {
  if (xs.size() != layer.num_inputs()) {
    throw ShapeError(std::string(layer.type()) + ": expected " + std::to_string(layer.num_inputs()) + " inputs, got " +
                     std::to_string(xs.size()));
  }
  const size_t n = y.dim(0);
  for (size_t i = 0; i < xs.size(); ++i) {
    if (xs[i]->shape() != batch_shape(n, layer.input_shapes()[i])) {
      throw ShapeError(std::string(layer.type()) + ": input " + std::to_string(i) + " is " + to_string(xs[i]->shape()) +
                       ", expected " + to_string(batch_shape(n, layer.input_shapes()[i])));
    }
  }
}

}  // namespace

AddLayer::AddLayer(std::vector<Shape> input_shapes, Backend& backend)
    : MergeLayer(std::move(input_shapes)), backend_(backend) {
  if (input_shapes_.size() < 2) throw ShapeError("add needs at least two inputs (list them under `inputs`)");
  for (size_t i = 1; i < input_shapes_.size(); ++i) {
    if (input_shapes_[i] != input_shapes_[0]) {
      throw ShapeError("add needs inputs of one shape; input 0 is " + to_string(input_shapes_[0]) + ", input " +
                       std::to_string(i) + " is " + to_string(input_shapes_[i]));
    }
  }
  output_shape_ = input_shapes_[0];
}

LayerWork AddLayer::work(InputGradient dx) const {
  const double elements = static_cast<double>(num_elements(output_shape_));
  const double further = static_cast<double>(input_shapes_.size() - 1);
  LayerWork w;
  w.forward_flops = further * elements;
  // The first two in one pass (read both, write y); each further input: read it and y, write y.
  w.forward_bytes = kFloatBytes * elements * 3 * further;
  w.backward_bytes = dx == InputGradient::Computed ? 2 * kFloatBytes * elements * (further + 1) : 0;
  return w;
}

void AddLayer::forward_inputs(const std::vector<const Tensor*>& xs, Tensor& y, const StepInfo&) {
  check_inputs(*this, xs, y);
  const size_t count = y.num_elements();
  size_t next = 1;
  if (y.dtype() == DType::Float32 && xs[0]->dtype() == DType::Float32 && xs[1]->dtype() == DType::Float32) {
    backend_.add(xs[0]->data(), xs[1]->data(), y.data(), count);  // one pass over the first two
    next = 2;
  } else {
    backend_.copy_on_device(y.raw(), xs[0]->raw(), y.size_bytes());
  }
  for (size_t i = next; i < xs.size(); ++i) {
    if (y.dtype() == DType::Float32 && xs[i]->dtype() == DType::Float32) {
      backend_.axpy(1.0f, xs[i]->data(), y.data(), count);
    } else {
      backend_.convert(*xs[i], y, Accumulate::Add);
    }
  }
}

void AddLayer::backward_inputs(const std::vector<const Tensor*>& xs, const Tensor& y, const Tensor& dy,
                               const std::vector<Tensor*>& dxs, const StepInfo&) {
  check_inputs(*this, xs, y);
  for (Tensor* dx : dxs) {
    if (dx && dx->raw() != dy.raw()) backend_.copy_on_device(dx->raw(), dy.raw(), dy.size_bytes());
  }
}

namespace {

std::unique_ptr<Layer> make_add(ConfigMap&, const std::vector<Shape>& input_shapes, Backend& backend) {
  return std::make_unique<AddLayer>(input_shapes, backend);
}

}  // namespace

DPTRAIN_REGISTER_MERGE_LAYER(add, any, make_add);

}  // namespace dptrain
