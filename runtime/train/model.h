// Model: the layer graph built from the config, with one flat buffer for all parameters, one for
// all gradients and one for non-trained state, and the activations of one batch.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "layers/layer.h"
#include "runtime/core/backend.h"
#include "runtime/core/config_map.h"
#include "runtime/core/run_config.h"
#include "runtime/core/tensor.h"
#include "runtime/train/blocks.h"

namespace dptrain {

class Timeline;

// Whether the model lets layers absorb the relu before them (see Model), or runs every layer apart.
enum class Fusion { On, Off };

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

// Whether a frozen-parameter entry `pattern` (see Model) matches the parameter named `name`.
bool parameter_matches(const std::string& pattern, const std::string& name);

// What a layer reads: the model's input, or the output of an earlier layer.
inline constexpr size_t kModelInput = static_cast<size_t>(-1);

// A directed acyclic graph of layers ending in a loss layer, with one flat buffer for all
// parameters, one for all gradients and one for the non-trained state (batch-norm running
// statistics), and the activations of one batch.
//
// The config is a list of layers in order; each may have a `name` (default "<index>.<type>", the
// index counting layers after blocks are expanded) and `inputs`, a list of earlier layers' names
// ("input" for the model's input; default: the layer before it). Block types (runtime/train/blocks.h)
// expand into named layers. Every output must feed some later layer. Parameters are named
// "<layer name>.<parameter>"; their order in the checkpoint and in parameter_entries() is model order.
// In the flat buffers, frozen parameters come first and trained ones after them, each in model
// order, so the trained gradients are one contiguous range (trained_range()) and backward finishes
// them from its end to its beginning.
//
// A relu whose output only a layer able to absorb it reads (Layer::absorb_input_relu: max_pool2d on
// the CPU) does not run on its own: that layer reads the relu's input and applies relu as it reads,
// and its backward writes the gradient of the relu's input. The results are the same bits; the relu's
// output is computed only when output() asks for it, and its gradient never (Fusion::Off keeps every
// layer apart).
class Model {
 public:
  // Builds every layer from its config (each checked with finish()) for `backend`, lays the
  // parameters out in the flat buffers, and initialises them from `seed`. The last layer must be a
  // loss layer. `frozen` lists layer or parameter names whose parameters are not trained: an entry
  // matches a parameter named like it or starting with it and a dot ("layer1" freezes
  // "layer1.0.conv1.weight"), or, ending in '*', any parameter starting with what comes before.
  // The buffers and activations are `backend`'s memory (device memory on a GPU); the initial values
  // are drawn on the host, so they are the same on every backend. The model must not outlive
  // `backend`. Config errors (an unknown input, a cycle, shapes that do not merge, an output that
  // feeds nothing, a duplicate name) name the file, line and key. A `frozen` entry that matches
  // nothing is ignored here: the caller checks its own entries (runtime/train/fine_tune.h).
  Model(std::vector<ConfigMap>& layer_configs, const Shape& input_shape, Backend& backend, uint64_t seed,
        const std::vector<std::string>& frozen = {}, Fusion fusion = Fusion::On);
  ~Model();

  const std::vector<std::unique_ptr<Layer>>& layers() const { return layers_; }
  // Layer i's name, and what it reads (indices of earlier layers, or kModelInput).
  const std::string& layer_name(size_t i) const { return names_[i]; }
  const std::vector<size_t>& layer_inputs(size_t i) const { return inputs_[i]; }
  // Whether layer i is a relu that its consumer absorbed: a step does not run it (output() still can).
  bool absorbed(size_t i) const { return absorbed_[i] != 0; }
  // What layer i reads as a step runs it: layer_inputs(i), with each absorbed relu replaced by its input.
  const std::vector<size_t>& layer_reads(size_t i) const { return reads_[i]; }
  // The absorbed relus, e.g. "relu into max_pool2d (2 layers)"; empty where there are none.
  std::string fusions() const;
  const std::vector<ParamEntry>& parameter_entries() const { return entries_; }
  // The non-trained state tensors (named like parameters), in model order.
  const std::vector<ParamEntry>& buffer_entries() const { return buffer_entries_; }
  const Shape& input_shape() const { return input_shape_; }
  size_t num_classes() const;
  // Parameter count, excluding alignment padding in the flat buffer.
  size_t num_parameters() const { return num_parameters_; }
  // The flat range [first, second) holding every trained parameter (all of them unless frozen).
  std::pair<size_t, size_t> trained_range() const { return trained_range_; }

  // The backend the layers run on, and where parameters(), gradients() and the activations live.
  Backend& backend() const { return backend_; }
  DeviceKind device() const { return backend_.device(); }
  Tensor& parameters() { return params_; }   // (flat), on device()
  Tensor& gradients() { return grads_; }     // (flat), same layout, on device()
  Tensor& buffers() { return buffers_; }     // (flat) non-trained state, on device()
  // Host copies of parameters() and buffers(), for checkpoints and broadcasts.
  Tensor host_parameters() const { return params_.to_host(); }
  Tensor host_buffers() const { return buffers_.to_host(); }
  // Replaces parameters() (or buffers()) with `flat` (any device, the same number of floats).
  void load_parameters(const Tensor& flat) { params_.copy_from(flat); }
  void load_buffers(const Tensor& flat) { buffers_.copy_from(flat); }

  // Forward pass over x (N, ...input_shape); then the loss against `labels` (N, host memory). The
  // backend's stager brings x and the labels where the layers compute: on a GPU a host x is staged
  // through pinned memory and copied on the copy stream (a device x is used in place); layer work
  // is queued on the compute stream, and step returns once the loss is known, with the backward
  // pass possibly still running on the device. In Mode::Train also the backward pass, leaving the
  // gradient of grad_scale * (sum of losses) in gradients() (frozen parameters' gradients are not
  // computed where nothing before them is trained), calling `ready` as each layer's trained
  // gradients are final (last layer first). Layers with cross-worker statistics call
  // info.batch_stats. With info.loss_readout Later the loss sums are not returned (zeros) but
  // added to the loss layer's running sums, and step does not wait for the device.
  LossStats step(const Tensor& x, const int32_t* labels, const StepInfo& info, float grad_scale,
                 const GradsReady& ready = nullptr);
  // The loss sums of the LossReadout::Later steps since the last take; waits for the device.
  LossStats take_loss_sums();
  // The logits (N, classes) of the last step's first `n` samples: a view of the activation buffer
  // on device(), valid until the next step.
  Tensor logits(size_t n) const;
  // Evaluation in int8 arithmetic from now on (a quantized model, dptrain quantize): the layer of each
  // named weight (a conv2d or dense weight, e.g. "layer1.0.conv1.weight") rounds its current weight as
  // Layer::use_int8 says; training steps are then refused. Throws ShapeError naming a weight that is
  // not one of this model's conv2d or dense weights, or a layer that has no int8 form on this device.
  void use_int8(const std::vector<std::pair<std::string, Int8Weights>>& weights);
  // The int8 kernels in use and how many layers each computes, e.g. "oneDNN jit_int8:avx2 (7 layers)";
  // empty when no layer computes in int8. Known once a step has run.
  std::string int8_kernels() const;
  // The float32 kernels of the layers that have a choice (Layer::kernel) and how many layers run
  // each, e.g. "im2col + BLAS (1 layer), oneDNN jit:avx2 (1 layer)"; empty when none has a choice.
  std::string kernels() const;
  // Layer i's output (N, ...) for the last step's first `n` samples, in the layer's output type: a
  // view of its activation buffer on device(), valid until the next step. Not for the loss layer.
  // An absorbed relu's output is computed when asked for (not for a relu of the model's input).
  Tensor output(size_t i, size_t n) const;
  // A training step for a worker with no sample in it: takes part in the layers' cross-worker sums
  // (as step would, contributing nothing) and leaves gradients() zero, calling `ready` for the same
  // ranges at the same points between those sums as step's backward pass does, so that collectives
  // started from `ready` (gradient buckets) and the sums come in the same order on every worker.
  void idle_step(const StepInfo& info, const GradsReady& ready = nullptr);

  // Summation::Exact steps (train.reproducible): the first layer whose backward cannot write exact
  // gradient sums, described ("name (type)"); empty when every layer can.
  std::string layer_without_exact_gradients() const;
  // Binds exact gradient sums, in gradients()'s flat layout, to every layer; an Exact step's
  // backward then leaves each worker's exact gradients there instead of in gradients().
  void use_exact_gradients();
  ExactSums& exact_gradients() { return exact_grads_; }

  // The element types layer i reads and writes (planned when the model is built: each layer's
  // answer to the type its first input arrives in, Layer::activation_types).
  const ActivationTypes& activation_types(size_t i) const { return types_[i]; }
  // Whether input k of layer i arrives in another type than its producer writes, so that the model
  // converts it (forward) and the gradient back (backward); and how many such inputs there are.
  bool converts_input(size_t i, size_t k) const { return converted_inputs_[i][k] != 0; }
  size_t num_conversions() const;
  // One line on the activations' types: "activations float32" where nothing converts, else how many
  // layers write bf16 and which inputs the model converts.
  std::string describe_activation_types() const;

  // Per-sample work of one training step, Layer::work summed over the layers as step() runs them:
  // no backward for a layer whose output needs no gradient, and no dx for a layer whose inputs need
  // none (one reading only the model's input, or frozen layers before it).
  LayerWork training_work() const;

  // A table of layers, output shapes and parameter counts.
  std::string summary() const;

  // Records forward, backward and per-layer spans of every step; null: off.
  void set_timeline(Timeline* timeline) { timeline_ = timeline; }

 private:
  void add_layer(LayerNode& node, std::map<std::string, size_t>& by_name);
  void check_graph();
  void lay_out(const std::vector<std::string>& frozen);
  void bind_and_init(uint64_t seed);
  // Asks every layer its activation types, in order, and marks the inputs to convert.
  void plan_activation_types();
  // Lets layers absorb the relus before them (Fusion::On), and sets reads_ either way.
  void plan_fusion(Fusion fusion);
  // The type layer j writes (float32 for the model's input).
  DType output_type(size_t j) const { return j == kModelInput ? DType::Float32 : types_[j].output; }
  void reserve(size_t batch);
  // The activation gradients for reserve's capacity, allocated by the first training step after it.
  void reserve_gradients();
  // A view of scratch slot k as `shape` elements of `dtype`.
  Tensor scratch_view(size_t k, const Shape& shape, DType dtype);
  // The inputs of layer i for a batch of n: the producers' outputs, or their converted copies
  // (converted now when `convert`, else as forward left them).
  std::vector<Tensor> layer_inputs_for(size_t i, size_t n, const std::vector<Tensor>& acts, const Tensor& input,
                                       bool convert);
  void backward(const std::vector<Tensor>& acts, const Tensor& input, const StepInfo& info, const GradsReady& ready);

  Shape input_shape_;
  std::vector<std::unique_ptr<Layer>> layers_;
  std::vector<std::string> names_;
  std::vector<std::vector<size_t>> inputs_;
  std::vector<std::vector<size_t>> reads_;  // inputs_ as a step reads them (absorbed relus skipped)
  std::vector<char> absorbed_;              // per layer: a relu computed by its consumer
  std::vector<LayerNode> nodes_;           // each layer's options, kept for config errors
  std::vector<char> requires_grad_;        // whether dLoss/d(layer i's output) is needed
  std::vector<ParamEntry> entries_, buffer_entries_;
  std::vector<std::pair<size_t, size_t>> layer_ranges_;  // trained flat [begin, end) per layer
  std::pair<size_t, size_t> trained_range_{0, 0};
  size_t num_parameters_ = 0;
  Tensor params_, grads_, buffers_;
  ExactSums exact_grads_;  // with use_exact_gradients(): (flat) on the host

  Backend& backend_;
  std::unique_ptr<BatchStager> stager_;  // host batches to where the layers compute
  size_t capacity_ = 0;
  size_t gradients_capacity_ = 0;  // the batch output_grads_ holds (0: none since the last reserve)
  std::vector<Tensor> activations_;  // activations_[i] is layer i's output (empty for the loss layer)
  std::vector<Tensor> output_grads_; // dLoss/d(layer i's output) where requires_grad_[i]; after a training step
  std::vector<Tensor> scratch_;      // one per input of the widest merge, for gradients to accumulate or convert
  std::vector<ActivationTypes> types_;                // per layer
  std::vector<std::vector<char>> converted_inputs_;  // per layer, per input: converted (1) or not
  std::vector<std::vector<Tensor>> conversions_;     // per layer, per converted input: its copy in the layer's type
  Timeline* timeline_ = nullptr;
};

// train.reproducible for a run of `model`: BitExact and Approximate as asked; Auto becomes BitExact
// where the model can sum exactly (the CPU backend, every layer able to), else Approximate. `why`
// receives what stands in the way of exact sums, whatever was asked (left as it is where nothing does),
// so that a caller asked for BitExact can refuse with it.
Reproducibility resolve_reproducible(Reproducibility asked, const Model& model, std::string* why = nullptr);

}  // namespace dptrain
