#include "layers/cpu/onednn_conv.h"

#include <array>
#include <map>
#include <unordered_map>

#include "runtime/core/errors.h"
#include "runtime/core/tensor.h"

#ifdef DPTRAIN_HAVE_ONEDNN
#include <omp.h>
#include <oneapi/dnnl/dnnl.hpp>

#include "layers/cpu/onednn_dims.h"
#endif

namespace dptrain {

#ifdef DPTRAIN_HAVE_ONEDNN

namespace {

using dnnl::memory;
using Tag = memory::format_tag;
using DataType = memory::data_type;

memory::dim dim(size_t v) { return static_cast<memory::dim>(v); }

// The blocked copies one call makes. Layers run one after another on a worker's thread, so every
// layer of that thread shares them: a model needs them once, sized for its largest activation.
enum Slot : size_t { kSrc, kDst, kDataDiffDst, kWeights, kDiffWeights, kSlots };

// Batch sizes whose primitives a layer keeps at a time.
constexpr size_t kMaxPlans = 8;

float* scratch(Slot slot, size_t bytes) {
  thread_local std::array<Tensor, kSlots> buffers;
  Tensor& buffer = buffers[slot];
  const size_t floats = (bytes + sizeof(float) - 1) / sizeof(float);
  if (buffer.num_elements() < floats) buffer = Tensor(Shape{floats});
  return buffer.data();
}

// Whether a kernel name is one of oneDNN's direct JIT convolutions, not its im2col + GEMM or its
// reference loops.
bool is_direct_kernel(const std::string& name) {
  return name.find("gemm") == std::string::npos && name.rfind("ref", 0) != 0;
}

}  // namespace

namespace {

// One CPU engine for every layer; each thread queues its work on a stream of its own, so that
// threads may run micro-shard kernels at once (train.reproducible).
dnnl::engine& cpu_engine() {
  static dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}

dnnl::stream& this_thread_stream() {
  thread_local dnnl::stream stream(cpu_engine());
  return stream;
}

}  // namespace

struct OneDnnConvolution::Kernels {
  // The three primitives for one batch size and the layouts they read and write.
  struct Plan {
    dnnl::convolution_forward forward;
    dnnl::convolution_backward_data backward_data;
    dnnl::convolution_backward_weights backward_weights;
    memory::desc user_src, user_dst, user_weights;  // NCHW, NCHW, (g)oihw: the layer's tensors
    memory::desc src, weights, dst;                 // forward's
    memory::desc data_diff_dst, data_weights, diff_src;
    memory::desc weights_src, weights_diff_dst, diff_weights;
    std::string names[3];  // forward, backward data, backward weights
  };

  std::map<size_t, Plan> plans;
  std::string name;  // forward's kernel at the first batch size planned
  // A training step's input in forward's layout, for backward: of x at `kept_from`, batch `kept_batch`.
  Tensor kept;
  const float* kept_from = nullptr;
  size_t kept_batch = 0;
  // prepare_shards' plans by micro-shard size, each made while OpenMP allowed one thread, with the
  // weights in its forward and backward-data layouts, reordered once per pass instead of once per call.
  struct ShardPlan {
    Plan plan;
    Tensor weights_copy, data_weights_copy;
    const float* weights = nullptr;
    const float* data_weights = nullptr;
  };
  std::map<size_t, ShardPlan> shards;

  const ShardPlan& shard_plan(size_t n) const;
  Plan& plan(const ConvShape& s, bool bias, size_t n);
  static Plan make_plan(const ConvShape& s, bool bias, size_t n);
  // `user` (desc, ptr) as `want`: the user's memory where the layouts agree, else a reordered copy
  // in `destination`, or in `slot` when that is null.
  static memory bring_in(const memory::desc& want, const memory::desc& user, const float* ptr, Slot slot,
                         float* destination = nullptr);
  // Where a primitive writes an output the layer wants in (`user`, ptr): there when the layouts
  // agree, else in `slot` (then send_out copies it over).
  static memory output(const memory::desc& produced, const memory::desc& user, float* ptr, Slot slot);
  static void send_out(const memory& produced, const memory::desc& user, float* ptr);
  // One pass of `p` on the calling thread's stream. run_forward keeps the blocked input in `keep`
  // where it is not null; run_backward reads it from `kept` where that is not null.
  // `blocked_weights` (null: reorder `weight` here) holds the weights in the layout of p.weights
  // (run_forward) or p.data_weights (run_backward).
  static void run_forward(const Plan& p, const ConvShape& s, bool bias_term, const float* x, const float* weight,
                          const float* bias, float* y, float* keep, const float* blocked_weights = nullptr);
  static void run_backward(const Plan& p, const ConvShape& s, bool bias_term, const float* x, const float* dy,
                           const float* weight, float* dx, float* dweight, float* dbias, const float* kept,
                           const float* blocked_weights = nullptr);
  // The weights in `want`'s layout: `weight` itself where that is the user's layout, else a reordered
  // copy in `into`.
  static const float* reorder_weights(const memory::desc& want, const memory::desc& user, const float* weight,
                                      Tensor& into);
};

OneDnnConvolution::Kernels::Plan& OneDnnConvolution::Kernels::plan(const ConvShape& s, bool bias, size_t n) {
  auto found = plans.find(n);
  if (found != plans.end()) return found->second;
  // Training meets two or three batch sizes; predictions on batches of every size do not pile up.
  if (plans.size() >= kMaxPlans) plans.clear();
  Plan p = make_plan(s, bias, n);
  if (name.empty()) name = p.names[0];
  return plans.emplace(n, std::move(p)).first->second;
}

OneDnnConvolution::Kernels::Plan OneDnnConvolution::Kernels::make_plan(const ConvShape& s, bool bias, size_t n) {
  dnnl::engine& engine = cpu_engine();
  const OneDnnConvDims d = onednn_conv_dims(s, n);
  const memory::dims &strides = d.strides, &padding = d.padding, &dilation = d.dilation;
  const memory::desc any_src(d.src, DataType::f32, Tag::any), any_dst(d.dst, DataType::f32, Tag::any);
  const memory::desc any_weights(d.weights, DataType::f32, Tag::any);
  const memory::desc bias_desc({dim(s.out_channels)}, DataType::f32, Tag::x);
  const auto direct = dnnl::algorithm::convolution_direct;

  const auto forward_desc =
      bias ? dnnl::convolution_forward::desc(dnnl::prop_kind::forward_training, direct, any_src, any_weights, bias_desc,
                                             any_dst, strides, dilation, padding, padding)
           : dnnl::convolution_forward::desc(dnnl::prop_kind::forward_training, direct, any_src, any_weights, any_dst,
                                             strides, dilation, padding, padding);
  const dnnl::convolution_forward::primitive_desc forward_pd(forward_desc, engine);
  const dnnl::convolution_backward_data::primitive_desc data_pd(
      dnnl::convolution_backward_data::desc(direct, any_src, any_weights, any_dst, strides, dilation, padding, padding),
      engine, forward_pd);
  const auto weights_desc =
      bias ? dnnl::convolution_backward_weights::desc(direct, any_src, any_weights, bias_desc, any_dst, strides,
                                                      dilation, padding, padding)
           : dnnl::convolution_backward_weights::desc(direct, any_src, any_weights, any_dst, strides, dilation, padding,
                                                      padding);
  const dnnl::convolution_backward_weights::primitive_desc weights_pd(weights_desc, engine, forward_pd);

  Plan p;
  p.forward = dnnl::convolution_forward(forward_pd);
  p.backward_data = dnnl::convolution_backward_data(data_pd);
  p.backward_weights = dnnl::convolution_backward_weights(weights_pd);
  p.user_src = memory::desc(d.src, DataType::f32, Tag::nchw);
  p.user_dst = memory::desc(d.dst, DataType::f32, Tag::nchw);
  p.user_weights = memory::desc(d.weights, DataType::f32, d.grouped ? Tag::goihw : Tag::oihw);
  p.src = forward_pd.src_desc();
  p.weights = forward_pd.weights_desc();
  p.dst = forward_pd.dst_desc();
  p.data_diff_dst = data_pd.diff_dst_desc();
  p.data_weights = data_pd.weights_desc();
  p.diff_src = data_pd.diff_src_desc();
  p.weights_src = weights_pd.src_desc();
  p.weights_diff_dst = weights_pd.diff_dst_desc();
  p.diff_weights = weights_pd.diff_weights_desc();
  p.names[0] = forward_pd.impl_info_str();
  p.names[1] = data_pd.impl_info_str();
  p.names[2] = weights_pd.impl_info_str();
  return p;
}

memory OneDnnConvolution::Kernels::bring_in(const memory::desc& want, const memory::desc& user, const float* ptr,
                                            Slot slot, float* destination) {
  memory user_memory(user, cpu_engine(), const_cast<float*>(ptr));  // read only
  if (want == user) return user_memory;
  memory copy(want, cpu_engine(), destination ? destination : scratch(slot, want.get_size()));
  dnnl::reorder(user_memory, copy).execute(this_thread_stream(), user_memory, copy);
  return copy;
}

memory OneDnnConvolution::Kernels::output(const memory::desc& produced, const memory::desc& user, float* ptr,
                                          Slot slot) {
  if (produced == user) return memory(user, cpu_engine(), ptr);
  return memory(produced, cpu_engine(), scratch(slot, produced.get_size()));
}

void OneDnnConvolution::Kernels::send_out(const memory& produced, const memory::desc& user, float* ptr) {
  if (produced.get_desc() == user) return;  // written in place
  memory user_memory(user, cpu_engine(), ptr);
  dnnl::reorder(produced, user_memory).execute(this_thread_stream(), const_cast<memory&>(produced), user_memory);
}

const float* OneDnnConvolution::Kernels::reorder_weights(const memory::desc& want, const memory::desc& user,
                                                         const float* weight, Tensor& into) {
  if (want == user) return weight;
  const size_t floats = want.get_size() / sizeof(float);
  if (into.num_elements() < floats) into = Tensor(Shape{floats});
  bring_in(want, user, weight, kWeights, into.data());
  this_thread_stream().wait();
  return into.data();
}

void OneDnnConvolution::Kernels::run_forward(const Plan& p, const ConvShape& s, bool bias_term, const float* x,
                                             const float* weight, const float* bias, float* y, float* keep,
                                             const float* blocked_weights) {
  dnnl::stream& stream = this_thread_stream();
  const memory src = bring_in(p.src, p.user_src, x, kSrc, keep);
  const memory weights = blocked_weights ? memory(p.weights, cpu_engine(), const_cast<float*>(blocked_weights))
                                         : bring_in(p.weights, p.user_weights, weight, kWeights);
  const memory dst = output(p.dst, p.user_dst, y, kDst);
  std::unordered_map<int, memory> args{{DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, weights}, {DNNL_ARG_DST, dst}};
  if (bias_term) {
    args.emplace(DNNL_ARG_BIAS, memory({{dim(s.out_channels)}, DataType::f32, Tag::x}, cpu_engine(),
                                       const_cast<float*>(bias)));
  }
  p.forward.execute(stream, args);
  send_out(dst, p.user_dst, y);
  stream.wait();
}

void OneDnnConvolution::Kernels::run_backward(const Plan& p, const ConvShape& s, bool bias_term, const float* x,
                                              const float* dy, const float* weight, float* dx, float* dweight,
                                              float* dbias, const float* kept, const float* blocked_weights) {
  dnnl::stream& stream = this_thread_stream();
  const memory diff_dst = bring_in(p.weights_diff_dst, p.user_dst, dy, kDst);
  {
    const memory src = kept ? memory(p.src, cpu_engine(), const_cast<float*>(kept))
                            : bring_in(p.weights_src, p.user_src, x, kSrc);
    const memory diff_weights = output(p.diff_weights, p.user_weights, dweight, kDiffWeights);
    std::unordered_map<int, memory> args{
        {DNNL_ARG_SRC, src}, {DNNL_ARG_DIFF_DST, diff_dst}, {DNNL_ARG_DIFF_WEIGHTS, diff_weights}};
    if (bias_term) {
      args.emplace(DNNL_ARG_DIFF_BIAS, memory({{dim(s.out_channels)}, DataType::f32, Tag::x}, cpu_engine(), dbias));
    }
    p.backward_weights.execute(stream, args);
    send_out(diff_weights, p.user_weights, dweight);
  }
  if (dx) {
    const memory data_diff_dst =
        p.data_diff_dst == p.weights_diff_dst ? diff_dst : bring_in(p.data_diff_dst, p.user_dst, dy, kDataDiffDst);
    const memory weights = blocked_weights
                               ? memory(p.data_weights, cpu_engine(), const_cast<float*>(blocked_weights))
                               : bring_in(p.data_weights, p.user_weights, weight, kWeights);
    const memory diff_src = output(p.diff_src, p.user_src, dx, kSrc);  // the source copy is no longer needed
    p.backward_data.execute(stream,
                            {{DNNL_ARG_DIFF_DST, data_diff_dst}, {DNNL_ARG_WEIGHTS, weights}, {DNNL_ARG_DIFF_SRC, diff_src}});
    send_out(diff_src, p.user_src, dx);
  }
  stream.wait();
}

std::unique_ptr<OneDnnConvolution> OneDnnConvolution::make(const ConvShape& shape, bool bias, std::string* why) {
  std::unique_ptr<OneDnnConvolution> conv(new OneDnnConvolution(shape, bias));
  try {
    // A batch of 32 stands for every batch size: the kernel choice follows the channels and image.
    const Kernels::Plan& p = conv->kernels_->plan(shape, bias, 32);
    for (const std::string& name : p.names) {
      if (!is_direct_kernel(name)) {
        if (why) *why = "oneDNN has only its " + name + " kernel for this shape";
        return nullptr;
      }
    }
  } catch (const dnnl::error& e) {
    if (why) *why = std::string("oneDNN refused the shape: ") + e.what();
    return nullptr;
  }
  return conv;
}

void OneDnnConvolution::forward(const float* x, size_t n, const float* weight, const float* bias, float* y,
                                bool keep_input) {
  Kernels& k = *kernels_;
  const Kernels::Plan& p = k.plan(shape_, bias_, n);
  k.kept_from = nullptr;
  float* keep = nullptr;
  if (keep_input && p.src != p.user_src) {
    const size_t floats = p.src.get_size() / sizeof(float);
    if (k.kept.num_elements() < floats) k.kept = Tensor(Shape{floats});
    keep = k.kept.data();
    k.kept_from = x;
    k.kept_batch = n;
  }
  Kernels::run_forward(p, shape_, bias_, x, weight, bias, y, keep);
}

void OneDnnConvolution::backward(const float* x, const float* dy, size_t n, const float* weight, float* dx,
                                 float* dweight, float* dbias) {
  Kernels& k = *kernels_;
  const Kernels::Plan& p = k.plan(shape_, bias_, n);
  const bool kept = k.kept_from == x && k.kept_batch == n && p.weights_src == p.src;
  Kernels::run_backward(p, shape_, bias_, x, dy, weight, dx, dweight, dbias, kept ? k.kept.data() : nullptr);
}

void OneDnnConvolution::prepare_shards(const float* weight, size_t size, size_t last) {
  Kernels& k = *kernels_;
  // Training meets one or two micro-shard sizes; evaluation one more (single samples).
  if (k.shards.size() + 2 > kMaxPlans) k.shards.clear();
  for (const size_t n : {size, last}) {
    if (n == 0) continue;
    auto found = k.shards.find(n);
    if (found == k.shards.end()) {
      // Made while OpenMP offers one thread, oneDNN plans the work for one thread.
      const int threads = omp_get_max_threads();
      omp_set_num_threads(1);
      try {
        Kernels::ShardPlan made;
        made.plan = Kernels::make_plan(shape_, bias_, n);
        found = k.shards.emplace(n, std::move(made)).first;
      } catch (...) {
        omp_set_num_threads(threads);
        throw;
      }
      omp_set_num_threads(threads);
    }
    Kernels::ShardPlan& sp = found->second;
    sp.weights = Kernels::reorder_weights(sp.plan.weights, sp.plan.user_weights, weight, sp.weights_copy);
    sp.data_weights =
        Kernels::reorder_weights(sp.plan.data_weights, sp.plan.user_weights, weight, sp.data_weights_copy);
  }
}

const OneDnnConvolution::Kernels::ShardPlan& OneDnnConvolution::Kernels::shard_plan(size_t n) const {
  const auto found = shards.find(n);
  if (found == shards.end() || !found->second.weights) {
    throw ShapeError("oneDNN convolution: no micro-shard kernels for " + std::to_string(n) +
                     " samples (prepare_shards did not plan that size)");
  }
  return found->second;
}

void OneDnnConvolution::forward_shard(const float* x, size_t n, const float* bias, float* y) const {
  const Kernels::ShardPlan& sp = kernels_->shard_plan(n);
  Kernels::run_forward(sp.plan, shape_, bias_, x, sp.weights, bias, y, nullptr, sp.weights);
}

void OneDnnConvolution::backward_shard(const float* x, const float* dy, size_t n, float* dx, float* dweight,
                                       float* dbias) const {
  const Kernels::ShardPlan& sp = kernels_->shard_plan(n);
  Kernels::run_backward(sp.plan, shape_, bias_, x, dy, sp.data_weights, dx, dweight, dbias, nullptr,
                        sp.data_weights);
}

std::string OneDnnConvolution::implementation() const { return "oneDNN " + kernels_->name; }

#else  // no oneDNN in this build

struct OneDnnConvolution::Kernels {};

std::unique_ptr<OneDnnConvolution> OneDnnConvolution::make(const ConvShape&, bool, std::string* why) {
  if (why) *why = "this build has no oneDNN";
  return nullptr;
}

void OneDnnConvolution::forward(const float*, size_t, const float*, const float*, float*, bool) {
  throw ShapeError("oneDNN convolution: this build has no oneDNN");
}

void OneDnnConvolution::backward(const float*, const float*, size_t, const float*, float*, float*, float*) {
  throw ShapeError("oneDNN convolution: this build has no oneDNN");
}

void OneDnnConvolution::prepare_shards(const float*, size_t, size_t) {
  throw ShapeError("oneDNN convolution: this build has no oneDNN");
}

void OneDnnConvolution::forward_shard(const float*, size_t, const float*, float*) const {
  throw ShapeError("oneDNN convolution: this build has no oneDNN");
}

void OneDnnConvolution::backward_shard(const float*, const float*, size_t, float*, float*, float*) const {
  throw ShapeError("oneDNN convolution: this build has no oneDNN");
}

std::string OneDnnConvolution::implementation() const { return "none"; }

#endif

OneDnnConvolution::OneDnnConvolution(const ConvShape& shape, bool bias)
    : shape_(shape), bias_(bias), kernels_(std::make_unique<Kernels>()) {}

OneDnnConvolution::~OneDnnConvolution() = default;

}  // namespace dptrain
