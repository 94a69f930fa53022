// Model: the layer stack built from the config, with one flat buffer for all parameters and
// one for all gradients, and the activations of one batch.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "layers/layer.h"
#include "runtime/core/backend.h"
#include "runtime/core/config_map.h"
#include "runtime/core/tensor.h"

namespace dptrain {

class Timeline;

// Whether the optimizer updates a parameter (Trained) or leaves it as loaded (Frozen: no gradient
// is all-reduced for it and no update, weight decay included, touches it).
enum class ParamUse { Trained, Frozen };

// Where one parameter tensor lives in the flat buffers.
struct ParamEntry {
  size_t layer;            // index into Model::layers()
  std::string name;        // "<layer name>.<param>", e.g. "conv1.weight", or "0.conv2d.weight" unnamed
  std::string layer_type;  // the layer's type, e.g. "conv2d", "batchnorm2d"
  std::string param;       // the parameter's name within its layer, e.g. "weight", "bias"
  Shape shape;
  size_t offset;           // in floats, from the start of the flat buffer
  ParamUse use = ParamUse::Trained;
};

// Called during backward when gradients [begin, end) of the flat buffer are final.
using GradsReady = std::function<void(size_t begin, size_t end)>;

// A sequential stack of layers ending in a loss layer.
class Model {
 public:
  // Builds every layer from its config (each checked with finish()) for `backend`, lays the
  // parameters out in one flat buffer, and initialises them from `seed`. The last layer must be a
  // loss layer. The buffers and activations are `backend`'s memory (device memory on a GPU); the
  // initial values are drawn on the host, so they are the same on every backend. The model must
  // not outlive `backend`.
  Model(std::vector<ConfigMap>& layer_configs, const Shape& input_shape, Backend& backend, uint64_t seed);
  ~Model();

  const std::vector<std::unique_ptr<Layer>>& layers() const { return layers_; }
  const std::vector<ParamEntry>& parameter_entries() const { return entries_; }
  const Shape& input_shape() const { return input_shape_; }
  size_t num_classes() const;
  // Parameter count, excluding alignment padding in the flat buffer.
  size_t num_parameters() const { return num_parameters_; }

  // The backend the layers run on, and where parameters(), gradients() and the activations live.
  Backend& backend() const { return backend_; }
  DeviceKind device() const { return backend_.device(); }
  Tensor& parameters() { return params_; }   // (flat), on device()
  Tensor& gradients() { return grads_; }     // (flat), same layout, on device()
  // A host copy of parameters(), for checkpoints and broadcasts.
  Tensor host_parameters() const { return params_.to_host(); }
  // Replaces parameters() with `flat` (any device, parameters().num_elements() floats).
  void load_parameters(const Tensor& flat) { params_.copy_from(flat); }

  // Forward pass over x (N, ...input_shape); then the loss against `labels` (N, host memory). The
  // backend's stager brings x and the labels where the layers compute: on a GPU a host x is staged
  // through pinned memory and copied on the copy stream (a device x is used in place); layer work
  // is queued on the compute stream, and step returns once the loss is known, with the backward
  // pass possibly still running on the device. In
  // Mode::Train also the backward pass, leaving gradient of grad_scale * (sum of losses) in
  // gradients(), calling `ready` as each layer's gradients are final (last layer first).
  LossStats step(const Tensor& x, const int32_t* labels, const StepInfo& info, float grad_scale,
                 const GradsReady& ready = nullptr);

  // A table of layers, output shapes and parameter counts.
  std::string summary() const;

  // Records forward, backward and per-layer spans of every step; null: off.
  void set_timeline(Timeline* timeline) { timeline_ = timeline; }

 private:
  void reserve(size_t batch);

  Shape input_shape_;
  std::vector<std::unique_ptr<Layer>> layers_;
  std::vector<ParamEntry> entries_;
  std::vector<std::pair<size_t, size_t>> layer_ranges_;  // flat [begin, end) per layer
  size_t num_parameters_ = 0;
  Tensor params_, grads_;

  Backend& backend_;
  std::unique_ptr<BatchStager> stager_;  // host batches to where the layers compute
  size_t capacity_ = 0;
  std::vector<Tensor> activations_;  // activations_[i] is the input of layer i; the last is the logits
  Tensor grad_a_, grad_b_;           // backward ping-pong buffers, each the largest activation
  Timeline* timeline_ = nullptr;
};

}  // namespace dptrain
