#include "runtime/train/model.h"

#include <algorithm>
#include <iomanip>
#include <sstream>

#include "layers/registry.h"
#include "runtime/core/errors.h"
#include "runtime/report/timeline.h"

namespace dptrain {

namespace {

constexpr size_t kAlignFloats = 16;  // each parameter starts on a 64-byte boundary

}  // namespace

Model::Model(std::vector<ConfigMap>& layer_configs, const Shape& input_shape, Backend& backend, uint64_t seed)
    : input_shape_(input_shape), backend_(backend) {
  const LayerRegistry& registry = LayerRegistry::builtin();
  Shape shape = input_shape;
  for (size_t i = 0; i < layer_configs.size(); ++i) {
    ConfigMap& options = layer_configs[i];
    layers_.push_back(registry.create(options, shape, backend_));
    const bool is_loss = dynamic_cast<LossLayer*>(layers_.back().get()) != nullptr;
    const bool is_last = i + 1 == layer_configs.size();
    if (is_loss && !is_last) options.fail("type", "a loss layer must be the last layer of the model");
    if (!is_loss && is_last) {
      options.fail("type", "the last layer of the model must be a loss layer (add {type: softmax_cross_entropy})");
    }
    shape = layers_.back()->output_shape();
  }
  if (shape.size() != 1) {
    layer_configs.back().fail("type", "the loss layer needs (N, classes) logits, got per-sample shape " +
                                          to_string(shape) + " (add a flatten or dense layer before it)");
  }

  size_t offset = 0;
  for (size_t i = 0; i < layers_.size(); ++i) {
    const size_t begin = offset;
    for (const auto& spec : layers_[i]->parameters()) {
      entries_.push_back({i, std::to_string(i) + "." + layers_[i]->type() + "." + spec.name, layers_[i]->type(),
                          spec.name, spec.shape, offset});
      const size_t n = num_elements(spec.shape);
      num_parameters_ += n;
      offset += (n + kAlignFloats - 1) / kAlignFloats * kAlignFloats;
    }
    layer_ranges_.emplace_back(begin, offset);
  }
  params_ = Tensor({std::max<size_t>(offset, 1)}, backend_);
  grads_ = Tensor({std::max<size_t>(offset, 1)}, backend_);

  // Views of the flat buffers `p` and `g` for every layer, in parameters() order.
  auto bind_all = [this](Tensor& p, Tensor& g) {
    auto view = [](Tensor& flat, size_t offset, const Shape& shape) {
      float* at = flat.data() + offset;
      return flat.backend() ? Tensor::view(at, shape, *flat.backend()) : Tensor::view(at, shape);
    };
    size_t e = 0;
    for (size_t i = 0; i < layers_.size(); ++i) {
      std::vector<Tensor> pv, gv;
      for (const auto& spec : layers_[i]->parameters()) {
        pv.push_back(view(p, entries_[e].offset, spec.shape));
        gv.push_back(view(g, entries_[e].offset, spec.shape));
        ++e;
      }
      layers_[i]->bind(std::move(pv), std::move(gv));
    }
  };
  // Initial values are drawn on the host (into host buffers for a device model), then moved.
  const bool on_host = device() == DeviceKind::CPU;
  Tensor init_params = on_host ? params_ : Tensor({params_.num_elements()});
  Tensor init_grads = on_host ? grads_ : Tensor({grads_.num_elements()});
  bind_all(init_params, init_grads);
  for (size_t i = 0; i < layers_.size(); ++i) {
    Rng rng(hash_key(seed, static_cast<uint64_t>(RngStream::Init), i));
    layers_[i]->init_parameters(rng);
  }
  if (!on_host) {
    params_.copy_from(init_params);
    bind_all(params_, grads_);
  }
}

Model::~Model() = default;

size_t Model::num_classes() const { return layers_.back()->output_shape()[0]; }

void Model::reserve(size_t batch) {
  if (batch <= capacity_) return;
  activations_.clear();
  stager_.reset();
  size_t largest = 0;
  // activations_[0] stands for the model input, which is used in place: it only needs a buffer
  // to have the right size for the gradient buffers below.
  const Shape input = batch_shape(batch, input_shape_);
  activations_.emplace_back();
  for (const auto& layer : layers_) {
    activations_.emplace_back(batch_shape(batch, layer->output_shape()), backend_);
    largest = std::max(largest, activations_.back().num_elements());
  }
  largest = std::max(largest, num_elements(input));
  grad_a_ = Tensor({largest}, backend_);
  grad_b_ = Tensor({largest}, backend_);
  stager_ = backend_.make_stager(num_elements(input), batch);
  capacity_ = batch;
}

LossStats Model::step(const Tensor& x, const int32_t* labels, const StepInfo& info, float grad_scale,
                      const GradsReady& ready) {
  if (x.rank() != input_shape_.size() + 1 || Shape(x.shape().begin() + 1, x.shape().end()) != input_shape_) {
    throw ShapeError("model expects input (N, " + to_string(input_shape_).substr(1) + ", got " + to_string(x.shape()));
  }
  const bool input_in_place = x.device() == device();
  if (!input_in_place && device() == DeviceKind::CPU) {
    throw ShapeError(std::string("a cpu model cannot take input on ") + to_string(x.device()) +
                     " (copy it to the host with Tensor::to_host)");
  }
  const size_t n = x.dim(0);
  reserve(n);
  // Layer i reads acts[i] and writes acts[i + 1]. An input where the layers compute is used in
  // place; the stager brings the labels (and a host input for a GPU model) there.
  const DeviceBatch batch = stager_->upload(x.data(), input_in_place ? 0 : x.num_elements(), labels, n);
  labels = batch.labels;
  std::vector<Tensor> acts;
  acts.reserve(activations_.size());
  acts.push_back(input_in_place ? x : Tensor::view(const_cast<float*>(batch.inputs), x.shape(), backend_));
  for (size_t i = 1; i < activations_.size(); ++i) acts.push_back(activations_[i].leading(n));

  const size_t last = layers_.size() - 1;
  TimelineSpan forward(timeline_, "forward", "compute");
  for (size_t i = 0; i < last; ++i) {
    TimelineSpan span(timeline_, layers_[i]->type(), "layer");
    span.arg("layer", static_cast<double>(i));
    layers_[i]->forward(acts[i], acts[i + 1], info);
  }

  auto& loss_layer = static_cast<LossLayer&>(*layers_[last]);
  if (info.mode == Mode::Eval) return loss_layer.loss(acts[last], labels, nullptr, grad_scale);

  Tensor dy = Tensor::view(grad_a_.data(), acts[last].shape(), backend_);
  LossStats stats = loss_layer.loss(acts[last], labels, &dy, grad_scale);
  forward.end();
  TimelineSpan backward(timeline_, "backward", "compute");
  if (ready && layer_ranges_[last].first != layer_ranges_[last].second) {
    ready(layer_ranges_[last].first, layer_ranges_[last].second);
  }
  Tensor* spare = &grad_b_;
  for (size_t i = last; i-- > 0;) {
    Tensor dx;
    if (i > 0) dx = Tensor::view(spare->data(), acts[i].shape(), backend_);
    {
      TimelineSpan span(timeline_, layers_[i]->type(), "layer");
      span.arg("layer", static_cast<double>(i));
      layers_[i]->backward(acts[i], acts[i + 1], dy, i > 0 ? &dx : nullptr, info);
    }
    if (ready && layer_ranges_[i].first != layer_ranges_[i].second) {
      ready(layer_ranges_[i].first, layer_ranges_[i].second);
    }
    if (i > 0) {
      spare = dy.data() == grad_a_.data() ? &grad_a_ : &grad_b_;
      dy = dx;
    }
  }
  return stats;
}

std::string Model::summary() const {
  std::ostringstream out;
  out << "  " << std::left << std::setw(4) << "#" << std::setw(24) << "layer" << std::setw(20) << "output"
      << "params\n";
  out << "  " << std::setw(4) << "-" << std::setw(24) << "input" << to_string(input_shape_) << "\n";
  size_t e = 0;
  for (size_t i = 0; i < layers_.size(); ++i) {
    size_t count = 0;
    for (; e < entries_.size() && entries_[e].layer == i; ++e) count += num_elements(entries_[e].shape);
    out << "  " << std::setw(4) << i << std::setw(24) << layers_[i]->type() << std::setw(20)
        << to_string(layers_[i]->output_shape()) << count << "\n";
  }
  out << "  total parameters: " << num_parameters_;
  return out.str();
}

}  // namespace dptrain
