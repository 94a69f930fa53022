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

size_t aligned(size_t n) { return (n + kAlignFloats - 1) / kAlignFloats * kAlignFloats; }

bool is_loss(const Layer& layer) { return dynamic_cast<const LossLayer*>(&layer) != nullptr; }

}  // namespace

bool parameter_matches(const std::string& pattern, const std::string& name) {
  if (!pattern.empty() && pattern.back() == '*') return name.compare(0, pattern.size() - 1, pattern, 0, pattern.size() - 1) == 0;
  return name == pattern || (name.size() > pattern.size() && name.compare(0, pattern.size(), pattern) == 0 &&
                             name[pattern.size()] == '.');
}

Model::Model(std::vector<ConfigMap>& layer_configs, const Shape& input_shape, Backend& backend, uint64_t seed,
             const std::vector<std::string>& frozen, Fusion fusion)
    : input_shape_(input_shape), backend_(backend) {
  if (layer_configs.empty()) throw ConfigError("the model has no layers");
  std::map<std::string, size_t> by_name;
  for (ConfigMap& options : layer_configs) {
    const std::string type = options.get_string("type");
    const std::string name = options.get_string("name", std::to_string(layers_.size()) + "." + type);
    const std::vector<std::string> inputs =
        options.get_string_list("inputs", std::vector<std::string>{layers_.empty() ? kModelInputName : names_.back()});
    if (!is_block_type(type)) {
      LayerNode node{options, name, inputs};
      add_layer(node, by_name);
      options = node.options;  // keeps the keys the layer read, for finish() and errors
      continue;
    }
    if (inputs.size() != 1) options.fail("inputs", type + " reads one input, got " + std::to_string(inputs.size()));
    if (by_name.count(name)) options.fail("name", "layer name '" + name + "' is used twice");
    const auto from = by_name.find(inputs[0]);
    Shape in_shape = input_shape_;
    if (inputs[0] != kModelInputName) {
      if (from == by_name.end()) options.fail("inputs", "names no earlier layer: '" + inputs[0] + "'");
      in_shape = layers_[from->second]->output_shape();
    }
    for (LayerNode& node : expand_block(options, name, inputs[0], in_shape)) add_layer(node, by_name);
  }
  check_graph();
  lay_out(frozen);
  bind_and_init(seed);
  plan_activation_types();
  plan_fusion(fusion);
}

Model::~Model() = default;

void Model::add_layer(LayerNode& node, std::map<std::string, size_t>& by_name) {
  ConfigMap& options = node.options;
  if (node.name.empty() || node.name.find('/') != std::string::npos || node.name == kModelInputName) {
    options.fail("name", "'" + node.name + "' is not a usable layer name (not empty, no '/', not 'input')");
  }
  if (by_name.count(node.name)) options.fail("name", "layer name '" + node.name + "' is used twice");
  if (!layers_.empty() && is_loss(*layers_.back())) {
    options.fail("type", "a loss layer must be the last layer of the model");
  }
  std::vector<size_t> inputs;
  std::vector<Shape> shapes;
  for (const std::string& input : node.inputs) {
    if (input == kModelInputName) {
      inputs.push_back(kModelInput);
      shapes.push_back(input_shape_);
      continue;
    }
    const auto it = by_name.find(input);
    if (it == by_name.end()) {
      options.fail("inputs", "names no earlier layer: '" + input +
                                 "' (a layer reads only layers listed before it, so the graph has no cycle)");
    }
    inputs.push_back(it->second);
    shapes.push_back(layers_[it->second]->output_shape());
  }
  layers_.push_back(LayerRegistry::builtin().create_from_inputs(options, shapes, backend_));
  by_name.emplace(node.name, layers_.size() - 1);
  names_.push_back(node.name);
  inputs_.push_back(std::move(inputs));
  nodes_.push_back(node);
}

void Model::check_graph() {
  const size_t last = layers_.size() - 1;
  if (!is_loss(*layers_[last])) {
    nodes_[last].options.fail("type",
                              "the last layer of the model must be a loss layer (add {type: softmax_cross_entropy})");
  }
  const Shape& logits = layers_[last]->input_shape();
  if (logits.size() != 1) {
    nodes_[last].options.fail("type", "the loss layer needs (N, classes) logits, got per-sample shape " +
                                          to_string(logits) + " (add a flatten or dense layer before it)");
  }
  std::vector<size_t> consumers(layers_.size(), 0);
  for (const auto& inputs : inputs_) {
    for (size_t j : inputs) {
      if (j != kModelInput) ++consumers[j];
    }
  }
  for (size_t i = 0; i < last; ++i) {
    if (consumers[i] == 0) {
      nodes_[i].options.fail("name", "the output of layer '" + names_[i] +
                                         "' feeds no later layer (every branch must lead to the loss)");
    }
  }
}

void Model::lay_out(const std::vector<std::string>& frozen) {
  auto is_frozen = [&frozen](const std::string& name) {
    return std::any_of(frozen.begin(), frozen.end(), [&](const std::string& p) { return parameter_matches(p, name); });
  };
  for (size_t i = 0; i < layers_.size(); ++i) {
    for (const auto& spec : layers_[i]->parameters()) {
      const std::string name = names_[i] + "." + spec.name;
      entries_.push_back({i, name, layers_[i]->type(), spec.name, spec.shape, 0,
                          is_frozen(name) ? ParamUse::Frozen : ParamUse::Trained});
      num_parameters_ += num_elements(spec.shape);
    }
    for (const auto& spec : layers_[i]->buffers()) {
      buffer_entries_.push_back({i, names_[i] + "." + spec.name, layers_[i]->type(), spec.name, spec.shape, 0,
                                 ParamUse::Frozen});
    }
  }
  // Frozen parameters first, then trained ones, each in model order.
  size_t offset = 0;
  for (ParamUse use : {ParamUse::Frozen, ParamUse::Trained}) {
    if (use == ParamUse::Trained) trained_range_.first = offset;
    for (ParamEntry& e : entries_) {
      if (e.use != use) continue;
      e.offset = offset;
      offset += aligned(num_elements(e.shape));
    }
  }
  trained_range_.second = offset;
  layer_ranges_.assign(layers_.size(), {0, 0});
  for (const ParamEntry& e : entries_) {
    if (e.use == ParamUse::Frozen) continue;
    auto& range = layer_ranges_[e.layer];
    const size_t end = e.offset + aligned(num_elements(e.shape));
    range = range.first == range.second ? std::make_pair(e.offset, end)
                                        : std::make_pair(std::min(range.first, e.offset), std::max(range.second, end));
  }
  params_ = Tensor({std::max<size_t>(offset, 1)}, backend_);
  grads_ = Tensor({std::max<size_t>(offset, 1)}, backend_);
  size_t buffer_offset = 0;
  for (ParamEntry& e : buffer_entries_) {
    e.offset = buffer_offset;
    buffer_offset += aligned(num_elements(e.shape));
  }
  buffers_ = Tensor({std::max<size_t>(buffer_offset, 1)}, backend_);
  // Whether dLoss/d(output of layer i) is needed: layer i trains, or something before it does.
  requires_grad_.assign(layers_.size(), 0);
  for (size_t i = 0; i < layers_.size(); ++i) {
    requires_grad_[i] = layer_ranges_[i].first != layer_ranges_[i].second;
    for (size_t j : inputs_[i]) {
      if (j != kModelInput && requires_grad_[j]) requires_grad_[i] = 1;
    }
  }
}

void Model::bind_and_init(uint64_t seed) {
  auto view = [](Tensor& flat, size_t offset, const Shape& shape) {
    float* at = flat.data() + offset;
    return flat.backend() ? Tensor::view(at, shape, *flat.backend()) : Tensor::view(at, shape);
  };
  // Views of the flat buffers `p`, `g` and `b` for every layer, in parameters() and buffers() order.
  auto bind_all = [&](Tensor& p, Tensor& g, Tensor& b) {
    size_t e = 0, k = 0;
    for (size_t i = 0; i < layers_.size(); ++i) {
      std::vector<Tensor> pv, gv, bv;
      for (const auto& spec : layers_[i]->parameters()) {
        pv.push_back(view(p, entries_[e].offset, spec.shape));
        gv.push_back(view(g, entries_[e].offset, spec.shape));
        ++e;
      }
      for (const auto& spec : layers_[i]->buffers()) bv.push_back(view(b, buffer_entries_[k++].offset, spec.shape));
      layers_[i]->bind(std::move(pv), std::move(gv));
      layers_[i]->bind_buffers(std::move(bv));
    }
  };
  // Initial values are drawn on the host (into host buffers for a device model), then moved.
  const bool on_host = device() == DeviceKind::CPU;
  Tensor init_params = on_host ? params_ : Tensor({params_.num_elements()});
  Tensor init_grads = on_host ? grads_ : Tensor({grads_.num_elements()});
  Tensor init_buffers = on_host ? buffers_ : Tensor({buffers_.num_elements()});
  bind_all(init_params, init_grads, init_buffers);
  for (size_t i = 0; i < layers_.size(); ++i) {
    Rng rng(hash_key(seed, static_cast<uint64_t>(RngStream::Init), i));
    layers_[i]->init_parameters(rng);
    layers_[i]->init_buffers();
  }
  if (!on_host) {
    params_.copy_from(init_params);
    buffers_.copy_from(init_buffers);
    bind_all(params_, grads_, buffers_);
  }
}

size_t Model::num_classes() const { return layers_.back()->input_shape()[0]; }

void Model::reserve(size_t batch) {
  if (batch <= capacity_) return;
  activations_.clear();
  output_grads_.clear();
  scratch_.clear();
  stager_.reset();
  conversions_.clear();
  const Shape input = batch_shape(batch, input_shape_);
  size_t largest = num_elements(input), widest = 1;
  for (size_t i = 0; i < layers_.size(); ++i) {
    const bool loss = i + 1 == layers_.size();
    const Shape shape = batch_shape(batch, layers_[i]->output_shape());
    const DType type = types_[i].output;
    activations_.push_back(loss ? Tensor() : Tensor(shape, backend_, type));
    largest = std::max(largest, num_elements(shape));
    widest = std::max(widest, inputs_[i].size());
    conversions_.emplace_back(inputs_[i].size());
    for (size_t k = 0; k < inputs_[i].size(); ++k) {
      const size_t j = inputs_[i][k];
      const Shape from = batch_shape(batch, j == kModelInput ? input_shape_ : layers_[j]->output_shape());
      if (converted_inputs_[i][k]) conversions_[i][k] = Tensor(from, backend_, types_[i].input);
    }
  }
  for (size_t k = 0; k < widest; ++k) scratch_.emplace_back(Shape{largest}, backend_);
  stager_ = backend_.make_stager(num_elements(input), batch);
  capacity_ = batch;
  gradients_capacity_ = 0;
}

void Model::reserve_gradients() {
  if (gradients_capacity_ == capacity_) return;
  output_grads_.clear();
  for (size_t i = 0; i < layers_.size(); ++i) {
    const bool loss = i + 1 == layers_.size();
    const Shape shape = batch_shape(capacity_, layers_[i]->output_shape());
    const bool needed = !loss && !absorbed_[i] && requires_grad_[i];
    output_grads_.push_back(needed ? Tensor(shape, backend_, types_[i].output) : Tensor());
  }
  gradients_capacity_ = capacity_;
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
  if (info.mode == Mode::Train) reserve_gradients();  // evaluation alone never needs them
  // An input where the layers compute is used in place; the stager brings the labels (and a host
  // input for a GPU model) there.
  const DeviceBatch batch = stager_->upload(x.data(), input_in_place ? 0 : x.num_elements(), labels, n);
  const Tensor input = input_in_place ? x : Tensor::view(const_cast<float*>(batch.inputs), x.shape(), backend_);
  std::vector<Tensor> acts(layers_.size());
  for (size_t i = 0; i + 1 < layers_.size(); ++i) acts[i] = activations_[i].leading(n);

  const size_t last = layers_.size() - 1;
  TimelineSpan forward(timeline_, "forward", "compute");
  for (size_t i = 0; i < last; ++i) {
    if (absorbed_[i]) continue;
    TimelineSpan span(timeline_, layers_[i]->type(), "layer");
    span.arg("layer", static_cast<double>(i));
    const std::vector<Tensor> inputs = layer_inputs_for(i, n, acts, input, true);
    std::vector<const Tensor*> xs;
    for (const Tensor& x : inputs) xs.push_back(&x);
    layers_[i]->forward_inputs(xs, acts[i], info);
  }
  auto& loss_layer = static_cast<LossLayer&>(*layers_[last]);
  const size_t logits_from = inputs_[last][0];
  const Tensor logits = layer_inputs_for(last, n, acts, input, true)[0];
  const bool any_grad = info.mode == Mode::Train && logits_from != kModelInput && requires_grad_[logits_from];
  // The loss writes float32 gradients: into the logits' gradient, or beside it to be converted.
  const bool convert_dlogits = any_grad && converts_input(last, 0);
  Tensor dlogits = !any_grad ? Tensor()
                   : convert_dlogits ? scratch_view(0, logits.shape(), types_[last].input)
                                     : output_grads_[logits_from].leading(n);
  LossStats stats;
  if (info.loss_readout == LossReadout::Now) {
    stats = loss_layer.loss(logits, batch.labels, any_grad ? &dlogits : nullptr, grad_scale);
  } else {
    loss_layer.accumulate(logits, batch.labels, any_grad ? &dlogits : nullptr, grad_scale);
  }
  if (info.mode == Mode::Eval) return stats;
  forward.end();
  if (convert_dlogits) {
    Tensor to = output_grads_[logits_from].leading(n);
    backend_.convert(dlogits, to, Accumulate::Overwrite);
  }
  if (any_grad) backward(acts, input, info, ready);
  return stats;
}

LossStats Model::take_loss_sums() { return static_cast<LossLayer&>(*layers_.back()).take_sums(); }

void Model::backward(const std::vector<Tensor>& acts, const Tensor& input, const StepInfo& info,
                     const GradsReady& ready) {
  TimelineSpan span_all(timeline_, "backward", "compute");
  const size_t last = layers_.size() - 1;
  const size_t n = input.dim(0);
  std::vector<char> written(layers_.size(), 0);  // whether output_grads_[j] holds this step's first term
  written[inputs_[last][0]] = 1;
  for (size_t i = last; i-- > 0;) {
    if (!requires_grad_[i] || absorbed_[i]) continue;
    const std::vector<Tensor> inputs = layer_inputs_for(i, n, acts, input, false);
    std::vector<const Tensor*> xs;
    for (const Tensor& x : inputs) xs.push_back(&x);
    std::vector<Tensor> dx_views(reads_[i].size());
    std::vector<Tensor*> dxs(reads_[i].size(), nullptr);
    // (scratch slot, layer, how) after backward: a float32 gradient added (axpy), or one of another
    // type, or of bf16, converted into (or added to) the producer's gradient.
    struct Pending {
      size_t k, j;
      Accumulate mode;
    };
    std::vector<Pending> pending;
    for (size_t k = 0; k < reads_[i].size(); ++k) {
      const size_t j = reads_[i][k];
      if (j == kModelInput || !requires_grad_[j]) continue;
      if (!written[j] && !converts_input(i, k)) {
        dx_views[k] = output_grads_[j].leading(n);
      } else {
        dx_views[k] = scratch_view(k, acts[j].shape(), types_[i].input);
        pending.push_back({k, j, written[j] ? Accumulate::Add : Accumulate::Overwrite});
      }
      written[j] = 1;
      dxs[k] = &dx_views[k];
    }
    {
      TimelineSpan span(timeline_, layers_[i]->type(), "layer");
      span.arg("layer", static_cast<double>(i));
      layers_[i]->backward_inputs(xs, acts[i], output_grads_[i].leading(n), dxs, info);
      for (const Pending& p : pending) {
        Tensor to = output_grads_[p.j].leading(n);
        if (p.mode == Accumulate::Add && dx_views[p.k].dtype() == DType::Float32 && to.dtype() == DType::Float32) {
          backend_.axpy(1.0f, dx_views[p.k].data(), to.data(), to.num_elements());
        } else {
          backend_.convert(dx_views[p.k], to, p.mode);
        }
      }
    }
    if (ready && layer_ranges_[i].first != layer_ranges_[i].second) {
      ready(layer_ranges_[i].first, layer_ranges_[i].second);
    }
  }
}

Tensor Model::logits(size_t n) const {
  const size_t from = inputs_.back()[0];
  if (from == kModelInput || n > capacity_) throw ShapeError("no logits of " + std::to_string(n) + " samples to read");
  // In the loss layer's type (float32), converted where the layer before it writes another.
  if (converts_input(layers_.size() - 1, 0)) return conversions_.back()[0].leading(n);
  return activations_[from].leading(n);
}

void Model::use_int8(const std::vector<std::pair<std::string, Int8Weights>>& weights) {
  for (const auto& weight : weights) {
    const std::string& name = weight.first;
    const Int8Weights& int8 = weight.second;
    const auto entry = std::find_if(entries_.begin(), entries_.end(), [&](const ParamEntry& e) { return e.name == name; });
    if (entry == entries_.end()) throw ShapeError("the model has no parameter " + name + " to compute in int8");
    if ((entry->layer_type != "conv2d" && entry->layer_type != "dense") || entry->param != "weight") {
      throw ShapeError(name + " is not the weight of a conv2d or dense layer: only those compute in int8");
    }
    if (int8.scales.size() != entry->shape[0]) {
      throw ShapeError(name + ": " + std::to_string(int8.scales.size()) + " int8 scales for " +
                       std::to_string(entry->shape[0]) + " output channels");
    }
    layers_[entry->layer]->use_int8(int8);
  }
}

namespace {

// "K1 (2 layers), K2 (1 layer)": the non-empty names `kernel_of` gives the layers, counted.
template <typename KernelOf>
std::string count_kernels(const std::vector<std::unique_ptr<Layer>>& layers, KernelOf kernel_of) {
  std::map<std::string, size_t> count;
  for (const auto& layer : layers) {
    const std::string kernel = kernel_of(*layer);
    if (!kernel.empty()) ++count[kernel];
  }
  std::string text;
  for (const auto& [kernel, n] : count) {
    text += (text.empty() ? "" : ", ") + kernel + " (" + std::to_string(n) + (n == 1 ? " layer)" : " layers)");
  }
  return text;
}

}  // namespace

std::string Model::int8_kernels() const {
  return count_kernels(layers_, [](const Layer& layer) { return layer.int8_implementation(); });
}

std::string Model::kernels() const {
  return count_kernels(layers_, [](const Layer& layer) { return layer.kernel(); });
}

std::string Model::layer_without_exact_gradients() const {
  for (size_t i = 0; i < layers_.size(); ++i) {
    if (!layers_[i]->exact_gradients()) return names_[i] + " (" + layers_[i]->type() + ")";
  }
  return "";
}

Reproducibility resolve_reproducible(Reproducibility asked, const Model& model, std::string* why) {
  std::string reason;
  if (model.device() != DeviceKind::CPU) {
    reason = "bit-exact sums run on the CPU backend only, and this run's device is " +
             std::string(to_string(model.device()));
  } else {
    const std::string layer = model.layer_without_exact_gradients();
    if (!layer.empty()) reason = "layer " + layer + " cannot sum its gradients exactly";
  }
  if (why && !reason.empty()) *why = reason;
  if (asked != Reproducibility::Auto) return asked;
  return reason.empty() ? Reproducibility::BitExact : Reproducibility::Approximate;
}

void Model::use_exact_gradients() {
  exact_grads_ = ExactSums(params_.num_elements());
  const ExactSpan all = exact_grads_.span();
  size_t e = 0;
  for (size_t i = 0; i < layers_.size(); ++i) {
    std::vector<ExactSpan> views;
    for (const auto& spec : layers_[i]->parameters()) {
      const size_t at = entries_[e++].offset;
      views.push_back({all.sums + at, num_elements(spec.shape)});
    }
    layers_[i]->bind_exact(std::move(views));
  }
}

void Model::idle_step(const StepInfo& info, const GradsReady& ready) {
  grads_.zero();  // before any range is handed to `ready`
  if (info.summation == Summation::Exact) exact_grads_.zero();
  const size_t last = layers_.size() - 1;
  for (size_t i = 0; i < last; ++i) layers_[i]->join_cross_worker_sums(Pass::Forward, info);
  const size_t logits_from = inputs_[last][0];
  if (logits_from == kModelInput || !requires_grad_[logits_from]) return;
  // As backward(): each layer's sums, then its trained range.
  for (size_t i = last; i-- > 0;) {
    if (!requires_grad_[i]) continue;
    layers_[i]->join_cross_worker_sums(Pass::Backward, info);
    if (ready && layer_ranges_[i].first != layer_ranges_[i].second) ready(layer_ranges_[i].first, layer_ranges_[i].second);
  }
}

std::string Model::summary() const {
  std::ostringstream out;
  out << "  " << std::left << std::setw(4) << "#" << std::setw(28) << "layer" << std::setw(20) << "type"
      << std::setw(20) << "output" << "params\n";
  out << "  " << std::setw(4) << "-" << std::setw(28) << "input" << std::setw(20) << "" << to_string(input_shape_)
      << "\n";
  std::vector<size_t> counts(layers_.size(), 0);
  for (const ParamEntry& e : entries_) counts[e.layer] += num_elements(e.shape);
  for (size_t i = 0; i < layers_.size(); ++i) {
    out << "  " << std::setw(4) << i << std::setw(28) << names_[i] << std::setw(20) << layers_[i]->type()
        << std::setw(20) << to_string(i + 1 == layers_.size() ? layers_[i]->input_shape() : layers_[i]->output_shape())
        << counts[i];
    const bool sequential = inputs_[i].size() == 1 && inputs_[i][0] == (i == 0 ? kModelInput : i - 1);
    if (!sequential) {
      out << "  <- ";
      for (size_t k = 0; k < inputs_[i].size(); ++k) {
        out << (k ? ", " : "") << (inputs_[i][k] == kModelInput ? std::string(kModelInputName) : names_[inputs_[i][k]]);
      }
    }
    out << "\n";
  }
  size_t frozen = 0;
  for (const ParamEntry& e : entries_) frozen += e.use == ParamUse::Frozen ? num_elements(e.shape) : 0;
  out << "  total parameters: " << num_parameters_;
  if (frozen) out << " (" << frozen << " frozen, " << num_parameters_ - frozen << " trained)";
  return out.str();
}

}  // namespace dptrain
