#include "runtime/train/quantizer.h"

#include <algorithm>
#include <cmath>

#include "runtime/core/errors.h"
#include "runtime/core/int8.h"

namespace dptrain {

Int8Calibration::Int8Calibration(const Model& model) {
  for (const ParamEntry& e : model.parameter_entries()) {
    if ((e.layer_type == "conv2d" || e.layer_type == "dense") && e.param == "weight") {
      Observed o;
      o.layer = e.layer;
      o.weight = &e;
      layers_.push_back(o);
    }
  }
}

void Int8Calibration::observe(const Model& model, const Tensor& x, size_t n) {
  for (Observed& o : layers_) {
    const size_t from = model.layer_inputs(o.layer).at(0);
    const Tensor input = from == kModelInput ? x.leading(n).to_host() : model.output(from, n).to_host();
    if (input.dtype() != DType::Float32) {
      throw ShapeError("int8 calibration reads float32 inputs; " + model.layer_name(o.layer) + " reads " +
                       to_string(input.dtype()));
    }
    if (input.num_elements() == 0) continue;
    const auto [low, high] = std::minmax_element(input.data(), input.data() + input.num_elements());
    o.min = batches_ == 0 ? *low : std::min(o.min, *low);
    o.max = batches_ == 0 ? *high : std::max(o.max, *high);
  }
  ++batches_;
}

std::vector<CheckpointQuantization> Int8Calibration::quantization(const Model& model,
                                                                  std::vector<Int8LeftOut>* left_out) const {
  if (batches_ == 0) throw ShapeError("int8 calibration saw no batch");
  const Tensor params = model.host_parameters();
  std::vector<CheckpointQuantization> out;
  for (const Observed& o : layers_) {
    const std::string& name = o.weight->name;
    if (o.min < 0) {
      if (left_out) {
        left_out->push_back({name, "its input goes down to " + std::to_string(o.min) + " (int8 inputs are unsigned)"});
      }
      continue;
    }
    if (!(o.max > 0) || !std::isfinite(o.max)) {
      if (left_out) left_out->push_back({name, "its input was 0 on every calibration batch"});
      continue;
    }
    CheckpointQuantization q;
    q.name = name;
    q.input_range = o.max;
    const size_t channels = o.weight->shape[0];
    q.scales = int8_weight_scales(params.data() + o.weight->offset, channels,
                                  num_elements(o.weight->shape) / channels);
    out.push_back(std::move(q));
  }
  return out;
}

std::vector<std::pair<std::string, Int8Weights>> int8_weights(const std::vector<CheckpointQuantization>& quantization) {
  std::vector<std::pair<std::string, Int8Weights>> weights;
  for (const CheckpointQuantization& q : quantization) weights.push_back({q.name, Int8Weights{q.scales, q.input_range}});
  return weights;
}

}  // namespace dptrain
