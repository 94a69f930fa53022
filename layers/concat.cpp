#include "layers/concat.h"

#include <algorithm>
#include <memory>

#include "layers/registry.h"
#include "runtime/core/errors.h"

namespace dptrain {

ConcatLayer::ConcatLayer(std::vector<Shape> input_shapes, Backend& backend)
    : MergeLayer(std::move(input_shapes)), backend_(backend) {
  if (input_shapes_.size() < 2) throw ShapeError("concat needs at least two inputs (list them under `inputs`)");
  const Shape& first = input_shapes_[0];
  if (first.empty()) throw ShapeError("concat joins along the channel axis: inputs need at least one dimension");
  size_t channels = 0;
  size_t offset = 0;
  for (size_t i = 0; i < input_shapes_.size(); ++i) {
    const Shape& s = input_shapes_[i];
    if (s.size() != first.size() || !std::equal(s.begin() + 1, s.end(), first.begin() + 1)) {
      throw ShapeError("concat joins along channels, so all other dimensions must agree; input 0 is " +
                       to_string(first) + ", input " + std::to_string(i) + " is " + to_string(s));
    }
    channels += s[0];
    offsets_.push_back(offset);
    offset += num_elements(s);
  }
  output_shape_ = first;
  output_shape_[0] = channels;
}

void ConcatLayer::forward_inputs(const std::vector<const Tensor*>& xs, Tensor& y, const StepInfo&) {
  if (xs.size() != input_shapes_.size()) throw ShapeError("concat: expected " + std::to_string(num_inputs()) + " inputs");
  const size_t n = y.dim(0), out_stride = num_elements(output_shape_);
  for (size_t i = 0; i < xs.size(); ++i) {
    const size_t in_stride = num_elements(input_shapes_[i]);
    if (xs[i]->num_elements() != n * in_stride) throw ShapeError("concat: input " + std::to_string(i) + " has the wrong size");
    backend_.copy_rows(y.data() + offsets_[i], out_stride, xs[i]->data(), in_stride, in_stride, n);
  }
}

void ConcatLayer::backward_inputs(const std::vector<const Tensor*>& xs, const Tensor& y, const Tensor& dy,
                                  const std::vector<Tensor*>& dxs, const StepInfo&) {
  const size_t n = y.dim(0), out_stride = num_elements(output_shape_);
  for (size_t i = 0; i < dxs.size(); ++i) {
    if (!dxs[i]) continue;
    const size_t in_stride = num_elements(input_shapes_[i]);
    if (dxs[i]->num_elements() != n * in_stride) throw ShapeError("concat: dx " + std::to_string(i) + " has the wrong size");
    backend_.copy_rows(dxs[i]->data(), in_stride, dy.data() + offsets_[i], out_stride, in_stride, n);
  }
}

namespace {

std::unique_ptr<Layer> make_concat(ConfigMap&, const std::vector<Shape>& input_shapes, Backend& backend) {
  return std::make_unique<ConcatLayer>(input_shapes, backend);
}

}  // namespace

DPTRAIN_REGISTER_MERGE_LAYER(concat, any, make_concat);

}  // namespace dptrain
