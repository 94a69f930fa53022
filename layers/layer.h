// Layer: the interface every layer implements, on every backend.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "runtime/core/backend.h"
#include "runtime/core/exact_sum.h"
#include "runtime/core/rng.h"
#include "runtime/core/tensor.h"

namespace dptrain {

// Whether a forward pass is for training (dropout active) or evaluation.
enum class Mode { Train, Eval };

// Where the values a CrossWorkerSum sums lie: host memory (the sum is complete when sum() returns),
// or device memory of the backend's compute stream (the sum is queued after the work queued there
// so far; later work on that stream sees it, and the host does not wait).
enum class SumMemory { Host, Device };

// Sums small vectors of batch statistics over every worker that shares the global batch, so that a
// layer such as batch normalisation sees the whole global batch whatever the number of workers.
// Collective: every worker calls sum() in the same order, the same number of times, per step.
class CrossWorkerSum {
 public:
  virtual ~CrossWorkerSum() = default;
  // Where sum() takes its values.
  virtual SumMemory memory() const { return SumMemory::Host; }
  // values[0, count) (in memory()) becomes the sum of every worker's values[0, count).
  virtual void sum(double* values, size_t count) = 0;
};

// When a loss layer's sums reach the host: returned by each step (Now; on a GPU the host waits for
// the device), or added to the loss layer's running sums until they are taken (Later; the device
// does not wait for the host in between).
enum class LossReadout { Now, Later };

// How a training step sums over samples (train.reproducible): in float, in whatever order the
// threads and workers take (Float), or exactly (runtime/core/exact_sum.h), so that the result does
// not depend on how the global batch is split (Exact).
enum class Summation { Float, Exact };

// What a forward pass may need beyond its input: the mode, and the keys of its random choices.
struct StepInfo {
  Mode mode = Mode::Train;
  uint64_t seed = 0;
  uint64_t epoch = 0;
  // Global data-set index of each sample in the batch (batch-size entries); random choices
  // such as dropout masks are keyed by (seed, epoch, sample id), never by position in the batch.
  const uint64_t* sample_ids = nullptr;
  // Where batch statistics are summed over workers; null: this worker holds the whole global batch.
  CrossWorkerSum* batch_stats = nullptr;
  // Whether the model's step returns the loss sums or adds them to the loss layer's running sums.
  LossReadout loss_readout = LossReadout::Now;
  // Exact: backward writes parameter gradients to the bound exact sums (Layer::bind_exact), not to
  // the float gradients, and batch statistics are summed exactly.
  Summation summation = Summation::Float;
  // With Exact: samples per micro-shard, the unit a layer that multiplies over the batch (dense)
  // sums in float before adding exactly. Local batches start on micro-shard boundaries.
  size_t micro_shard = 0;
};

// Which half of a training step a layer takes part in.
enum class Pass { Forward, Backward };

// The element types of a layer's activations: what forward reads (every input; backward writes dx
// in it) and what it writes (y; backward reads dy in it).
struct ActivationTypes {
  DType input = DType::Float32;
  DType output = DType::Float32;
  bool operator==(const ActivationTypes& other) const { return input == other.input && output == other.output; }
  bool operator!=(const ActivationTypes& other) const { return !(*this == other); }
};

// Whether a backward pass computes the gradient of the layer's input (dx), or only its parameters'
// gradients (a layer that reads only the model's input, such as the first convolution).
enum class InputGradient { Computed, Skipped };

// What bounds a layer's speed: its arithmetic (convolution, dense: read its rate in GFLOP/s) or
// the memory it streams through (element-wise layers, pooling, merges: read it in GB/s).
enum class WorkBound { Arithmetic, Memory };

// Bytes of one float32 activation element, as LayerWork counts them.
inline constexpr double kFloatBytes = 4;

// The work of one sample through one layer in a training step, counted from the layer's shapes.
// FLOPs count a multiply-add as 2; bytes count the float32 activations and activation gradients
// read and written (4 bytes an element; parameters, read once per batch, are left out).
struct LayerWork {
  WorkBound bound = WorkBound::Memory;
  double forward_flops = 0;
  double forward_bytes = 0;
  double backward_flops = 0;  // with InputGradient::Skipped, without the dx part
  double backward_bytes = 0;

  double flops() const { return forward_flops + backward_flops; }
  LayerWork& operator+=(const LayerWork& other) {
    forward_flops += other.forward_flops;
    forward_bytes += other.forward_bytes;
    backward_flops += other.backward_flops;
    backward_bytes += other.backward_bytes;
    return *this;
  }
};

// Name and per-layer shape of one parameter tensor, e.g. {"weight", (32, 1, 3, 3)}.
struct ParamSpec {
  std::string name;
  Shape shape;
};

// A layer's weight quantized after training (dptrain quantize): each output channel c (weight
// dimension 0) is held as the rounded values quantize_weight(weight, scales[c]) in [-127, 127]
// (layers/cpu/int8_conv.h), and the layer's input was seen in [0, input_range] on the calibration batches.
struct Int8Weights {
  std::vector<float> scales;  // per output channel, each > 0
  float input_range = 0;      // > 0
};

// A layer maps a batch (N, ...input_shape) to (N, ...output_shape). Shapes exclude the batch
// dimension. Parameters and their gradients are views into the model's flat buffers.
class Layer {
 public:
  virtual ~Layer() = default;

  // The YAML `type` this layer was built from, e.g. "conv2d".
  virtual const char* type() const = 0;
  const Shape& input_shape() const { return input_shape_; }
  const Shape& output_shape() const { return output_shape_; }

  // Parameter tensors this layer owns, in a fixed order (empty for parameter-free layers).
  virtual std::vector<ParamSpec> parameters() const { return {}; }
  // Attaches views into the flat parameter and gradient buffers, in `parameters()` order.
  void bind(std::vector<Tensor> params, std::vector<Tensor> grads);
  // Whether backward can write exact gradient sums (Summation::Exact); layers without parameters can.
  virtual bool exact_gradients() const { return parameters().empty(); }
  // Attaches the exact sums that an Exact backward overwrites (ready for an all-reduce)
  // instead of the float gradients, in `parameters()` order.
  void bind_exact(std::vector<ExactSpan> sums) { exact_grads_ = std::move(sums); }
  // Fills the bound parameters with their initial values, drawing only from `rng`.
  virtual void init_parameters(Rng& rng) {}

  // Non-trained state this layer keeps and checkpoints beside its parameters (batch norm's running
  // mean and variance), in a fixed order; empty for most layers.
  virtual std::vector<ParamSpec> buffers() const { return {}; }
  // Attaches views into the model's flat buffer of non-trained state, in `buffers()` order.
  void bind_buffers(std::vector<Tensor> buffers);
  // Sets the bound buffers to their initial values (host memory during model construction).
  virtual void init_buffers() {}

  // The types this layer reads and writes when its (first) input arrives as `offered`: float32 by
  // default; layers that compute in bf16 on a GPU read (and may write) bf16 whatever is offered, and
  // element-wise layers with bf16 kernels follow what is offered. Asked once, when the model is
  // built: the model converts wherever a producer's output type differs from what its consumer
  // reads, so the layer's forward and backward get exactly these types.
  virtual ActivationTypes activation_types(DType offered) const { return {}; }

  // Per-sample work of a training step's forward and backward pass. This default is an element-wise
  // layer (memory-bound, no FLOPs counted): forward reads x and writes y; backward reads x and dy
  // and writes dx, or does nothing when `dx` is Skipped.
  virtual LayerWork work(InputGradient dx) const;

  // From now on forward computes in int8 arithmetic (Mode::Eval only: training steps are refused),
  // from the bound weight rounded as `weights` says: conv2d and dense on the CPU. Other layers throw
  // ShapeError.
  virtual void use_int8(const Int8Weights& weights);
  // The kernel of the int8 forward, e.g. "oneDNN jit_int8:avx2"; empty when the layer is not int8.
  virtual std::string int8_implementation() const { return ""; }
  // The kernel a float32 training step runs where a layer has a choice (conv2d on the CPU:
  // "oneDNN jit:avx2" or "im2col + BLAS"); empty for the others.
  virtual std::string kernel() const { return ""; }

  // Asks the layer to apply relu to its input as it reads it (forward computes f(relu(x)), and
  // backward's dx is the gradient with respect to relu's input), so that a relu whose output only
  // this layer reads need not run on its own: the model then hands this layer the relu's input
  // (Model, "relu absorbed"). Results are bit for bit those of the relu and this layer run one after
  // the other. Returns whether the layer does so from now on; the default cannot (CPU max_pool2d can).
  virtual bool absorb_input_relu() { return false; }
  // Whether absorb_input_relu() was accepted.
  virtual bool absorbs_input_relu() const { return false; }

  // How many inputs the layer takes: 1, except for merge layers (add, concat).
  virtual size_t num_inputs() const { return 1; }
  // Forward and backward over all inputs: xs[i] is input i (N, ...input i's shape); dxs[i] (each
  // may be null) receives dLoss/d input i, overwritten. Single-input layers call forward/backward.
  virtual void forward_inputs(const std::vector<const Tensor*>& xs, Tensor& y, const StepInfo& step);
  virtual void backward_inputs(const std::vector<const Tensor*>& xs, const Tensor& y, const Tensor& dy,
                               const std::vector<Tensor*>& dxs, const StepInfo& step);
  // Takes part in the CrossWorkerSum calls that one pass of a training step makes, for a worker
  // that has no sample in this step (more workers than samples): it contributes zeros. Layers that
  // sum nothing across workers do nothing.
  virtual void join_cross_worker_sums(Pass pass, const StepInfo& step) {}

  // y = f(x). x is (N, ...input_shape), y is preallocated (N, ...output_shape).
  virtual void forward(const Tensor& x, Tensor& y, const StepInfo& step) = 0;
  // Given x, y from the forward pass and dy = dLoss/dy: writes (overwrites, does not add) the
  // parameter gradients and, unless `dx` is null (first layer), dx = dLoss/dx.
  virtual void backward(const Tensor& x, const Tensor& y, const Tensor& dy, Tensor* dx, const StepInfo& step) = 0;

 protected:
  Shape input_shape_;
  Shape output_shape_;
  std::vector<Tensor> params_;
  std::vector<Tensor> grads_;
  std::vector<ExactSpan> exact_grads_;
  std::vector<Tensor> buffers_;
};

// A layer that merges several inputs into one output (add, concat). It implements forward_inputs
// and backward_inputs; its single-input forward and backward are refused.
class MergeLayer : public Layer {
 public:
  size_t num_inputs() const override { return input_shapes_.size(); }
  // Copies (as concat): forward writes every input into y, backward dy's parts into every dx.
  // Computed: every input gets its dx.
  LayerWork work(InputGradient dx) const override;
  // Per-sample shape of each input.
  const std::vector<Shape>& input_shapes() const { return input_shapes_; }

  void forward(const Tensor& x, Tensor& y, const StepInfo& step) final;
  void backward(const Tensor& x, const Tensor& y, const Tensor& dy, Tensor* dx, const StepInfo& step) final;

 protected:
  // Keeps the input shapes; input_shape() is the first one's.
  explicit MergeLayer(std::vector<Shape> input_shapes);

  std::vector<Shape> input_shapes_;
};

// Sums of a loss over a batch: what metrics are made of.
struct LossStats {
  double loss_sum = 0;      // sum of per-sample losses
  size_t correct = 0;       // samples whose arg-max prediction equals the label
  size_t count = 0;         // samples

  LossStats& operator+=(const LossStats& other) {
    loss_sum += other.loss_sum;
    correct += other.correct;
    count += other.count;
    return *this;
  }
};

// A layer that ends the model: it turns logits and labels into a loss and its gradient.
class LossLayer : public Layer {
 public:
  // `backend`: where the logits live, for the pass-through copies.
  explicit LossLayer(Backend& backend) : backend_(backend) {}

  // logits (N, classes), labels N class indices. Writes dlogits = grad_scale * dSumLoss/dlogits
  // unless `dlogits` is null (evaluation).
  virtual LossStats loss(const Tensor& logits, const int32_t* labels, Tensor* dlogits, float grad_scale) = 0;
  // As loss(), but the batch's sums are added to the running sums instead of being returned. Here
  // (host sums) that is loss() added up; a GPU layer keeps them on the device, without waiting.
  virtual void accumulate(const Tensor& logits, const int32_t* labels, Tensor* dlogits, float grad_scale);
  // The running sums of accumulate() since the last take, which zeroes them; on a GPU this waits
  // for the device. A bad label met on the way is reported here (Error).
  virtual LossStats take_sums();

  // A loss layer passes logits through unchanged in forward (a copy through the backend unless y
  // is x), and dy to dx in backward; the gradient itself comes from `loss`.
  void forward(const Tensor& x, Tensor& y, const StepInfo& step) override;
  void backward(const Tensor& x, const Tensor& y, const Tensor& dy, Tensor* dx, const StepInfo& step) override;

 private:
  Backend& backend_;
  LossStats running_;  // accumulate() since the last take_sums()
};

}  // namespace dptrain
