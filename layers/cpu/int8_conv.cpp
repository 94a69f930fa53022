#include "layers/cpu/int8_conv.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <map>

#include "runtime/core/errors.h"

#ifdef DPTRAIN_HAVE_ONEDNN
#include <oneapi/dnnl/dnnl.hpp>
#include <oneapi/dnnl/dnnl_version.h>

#include "layers/cpu/onednn_dims.h"
#endif

namespace dptrain {

namespace {

#ifdef DPTRAIN_HAVE_ONEDNN
// Whether oneDNN multiplies int8 with VNNI (AVX-512 VNNI or AVX-VNNI) on this CPU.
bool onednn_has_vnni() {
  const auto isa = static_cast<unsigned>(dnnl::get_effective_cpu_isa());
  return (isa & static_cast<unsigned>(dnnl_cpu_isa_avx512_core_vnni) & ~static_cast<unsigned>(dnnl_cpu_isa_avx512_core)) ||
         (isa & static_cast<unsigned>(dnnl_cpu_isa_avx2_vnni) & ~static_cast<unsigned>(dnnl_cpu_isa_avx2));
}

const char* onednn_isa_name() {
  switch (dnnl::get_effective_cpu_isa()) {
    case dnnl::cpu_isa::sse41: return "sse4.1";
    case dnnl::cpu_isa::avx: return "avx";
    case dnnl::cpu_isa::avx2: return "avx2";
    case dnnl::cpu_isa::avx2_vnni: return "avx2_vnni";
    case dnnl::cpu_isa::avx512_core: return "avx512_core";
    case dnnl::cpu_isa::avx512_core_vnni: return "avx512_core_vnni";
    case dnnl::cpu_isa::avx512_core_bf16: return "avx512_core_bf16";
    case dnnl::cpu_isa::avx512_core_amx: return "avx512_core_amx";
    default: return "other";
  }
}
#endif

// v rounded to the nearest integer, ties to even, as nearbyint does in the default rounding mode, for
// 0 <= v < 2^22, in a form the compiler vectorizes: adding 1.5 * 2^23 leaves no bits for a fraction.
inline float round_small(float v) {
  constexpr float kShift = 12582912.0f;
  return (v + kShift) - kShift;
}

}  // namespace

int int8_input_levels(Int8Engine engine) {
#ifdef DPTRAIN_HAVE_ONEDNN
  if (engine == Int8Engine::Best) return onednn_has_vnni() ? 255 : 127;
#endif
  return 255;
}

bool int8_has_onednn() {
#ifdef DPTRAIN_HAVE_ONEDNN
  return true;
#else
  return false;
#endif
}

std::string int8_arithmetic() {
#ifdef DPTRAIN_HAVE_ONEDNN
  const dnnl_version_t* v = dnnl_version();
  std::string text = "oneDNN " + std::to_string(v->major) + "." + std::to_string(v->minor) + "." +
                     std::to_string(v->patch) + ", " + onednn_isa_name() + " kernels";
  if (!onednn_has_vnni()) text += " (no VNNI: inputs in 127 steps)";
  return text;
#else
  return "the portable int8 reference (this build has no oneDNN: slow)";
#endif
}

#ifdef DPTRAIN_HAVE_ONEDNN
// oneDNN's convolution for one batch size, with the weights in the layout it chose.
struct Int8Convolution::Kernels {
  struct ForBatch {
    dnnl::convolution_forward conv;
    dnnl::memory::desc user_src, user_dst;  // our NCHW u8 input and NCHW f32 output
    dnnl::memory src, weights, dst;         // in the primitive's layouts
    dnnl::reorder src_in, dst_out;   // from our NCHW u8 input, to our NCHW f32 output (when layouts differ)
    bool reorder_src = false, reorder_dst = false;
    std::string name;
  };
  dnnl::engine engine{dnnl::engine::kind::cpu, 0};
  dnnl::stream stream{engine};
  std::map<size_t, ForBatch> by_batch;
  std::string last_name;
};
#else
struct Int8Convolution::Kernels {};
#endif

Int8Convolution::Int8Convolution(const ConvShape& shape, const float* weight, std::vector<float> weight_scales,
                                 float input_range, Int8Engine engine, int levels)
    : shape_(shape) {
  const size_t per_channel = shape.in_channels / shape.groups * shape.kernel * shape.kernel;
  if (weight_scales.size() != shape.out_channels) {
    throw ShapeError("int8 convolution: " + std::to_string(weight_scales.size()) + " weight scales for " +
                     std::to_string(shape.out_channels) + " output channels");
  }
  if (!(input_range > 0)) throw ShapeError("int8 convolution: the input range must be positive");
  levels_ = levels > 0 ? levels : int8_input_levels(engine);
  if (levels_ > 255) throw ShapeError("int8 convolution: at most 255 input steps");
  input_step_ = input_range / static_cast<float>(levels_);
  weight_.resize(shape.out_channels * per_channel);
  output_scales_.resize(shape.out_channels);
  for (size_t c = 0; c < shape.out_channels; ++c) {
    if (!(weight_scales[c] > 0)) throw ShapeError("int8 convolution: weight scales must be positive");
    for (size_t k = 0; k < per_channel; ++k) {
      weight_[c * per_channel + k] = quantize_weight(weight[c * per_channel + k], weight_scales[c]);
    }
    output_scales_[c] = input_step_ * weight_scales[c];
  }
#ifdef DPTRAIN_HAVE_ONEDNN
  if (engine == Int8Engine::Best) kernels_ = std::make_unique<Kernels>();
#endif
}

Int8Convolution::~Int8Convolution() = default;

std::string Int8Convolution::implementation() const {
#ifdef DPTRAIN_HAVE_ONEDNN
  if (kernels_) return "oneDNN " + (kernels_->last_name.empty() ? std::string("(not run yet)") : kernels_->last_name);
#endif
  return "reference";
}

void Int8Convolution::forward(const float* x, size_t n, const float* bias, float* y) {
  const ConvShape& s = shape_;
  const size_t in_size = s.in_channels * s.height * s.width, out_plane = s.out_height * s.out_width;
  input_.resize(n * in_size);
  const float inverse_step = 1.0f / input_step_, top = static_cast<float>(levels_);
  unsigned char* q = input_.data();
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < static_cast<int64_t>(n * in_size); ++i) {
    float v = x[i] * inverse_step;
    v = v > 0.0f ? v : 0.0f;  // NaN too
    v = v < top ? v : top;
    q[i] = static_cast<unsigned char>(static_cast<int>(round_small(v)));
  }

#ifdef DPTRAIN_HAVE_ONEDNN
  if (kernels_) {
    using dnnl::memory;
    using tag = memory::format_tag;
    using dt = memory::data_type;
    auto found = kernels_->by_batch.find(n);
    if (found == kernels_->by_batch.end()) {
      const OneDnnConvDims d = onednn_conv_dims(s, n);
      const memory::dims &src_dims = d.src, &dst_dims = d.dst, &wei_dims = d.weights;
      const memory::dims &strides = d.strides, &padding = d.padding, &dilation = d.dilation;
      const dnnl::convolution_forward::desc desc(
          dnnl::prop_kind::forward_inference, dnnl::algorithm::convolution_direct, memory::desc(src_dims, dt::u8, tag::any),
          memory::desc(wei_dims, dt::s8, tag::any), memory::desc({static_cast<memory::dim>(s.out_channels)}, dt::f32, tag::x),
          memory::desc(dst_dims, dt::f32, tag::any), strides, dilation, padding, padding);
      dnnl::primitive_attr attr;
      attr.set_output_scales(1 << 1, output_scales_);  // per output channel (dimension 1 of dst)
      const dnnl::convolution_forward::primitive_desc pd(desc, attr, kernels_->engine);
      Kernels::ForBatch k;
      k.conv = dnnl::convolution_forward(pd);
      k.name = pd.impl_info_str();
      k.user_src = memory::desc(src_dims, dt::u8, tag::nchw);
      k.user_dst = memory::desc(dst_dims, dt::f32, tag::nchw);
      const memory::desc user_wei(wei_dims, dt::s8, s.groups == 1 ? tag::oihw : tag::goihw);
      k.reorder_src = pd.src_desc() != k.user_src;
      k.reorder_dst = pd.dst_desc() != k.user_dst;
      k.src = memory(pd.src_desc(), kernels_->engine);
      k.dst = memory(pd.dst_desc(), kernels_->engine);
      k.weights = memory(pd.weights_desc(), kernels_->engine);
      memory user_weights(user_wei, kernels_->engine, weight_.data());
      dnnl::reorder(user_weights, k.weights).execute(kernels_->stream, user_weights, k.weights);
      if (k.reorder_src) k.src_in = dnnl::reorder(memory(k.user_src, kernels_->engine, nullptr), k.src);
      if (k.reorder_dst) k.dst_out = dnnl::reorder(k.dst, memory(k.user_dst, kernels_->engine, nullptr));
      found = kernels_->by_batch.emplace(n, std::move(k)).first;
    }
    Kernels::ForBatch& k = found->second;
    dnnl::stream& stream = kernels_->stream;
    memory user_src(k.user_src, kernels_->engine, q);
    memory user_dst(k.user_dst, kernels_->engine, y);
    const memory& src = k.reorder_src ? k.src : user_src;
    const memory& dst = k.reorder_dst ? k.dst : user_dst;
    if (k.reorder_src) k.src_in.execute(stream, user_src, k.src);
    // oneDNN 2.x adds an int8 convolution's bias before the output scales: in units of the int32 sums.
    scaled_bias_.assign(s.out_channels, 0.0f);
    if (bias) {
      for (size_t c = 0; c < s.out_channels; ++c) scaled_bias_[c] = bias[c] / output_scales_[c];
    }
    memory bias_memory(memory::desc({static_cast<memory::dim>(s.out_channels)}, dt::f32, tag::x), kernels_->engine,
                       scaled_bias_.data());
    k.conv.execute(stream,
                   {{DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, k.weights}, {DNNL_ARG_BIAS, bias_memory}, {DNNL_ARG_DST, dst}});
    if (k.reorder_dst) k.dst_out.execute(stream, k.dst, user_dst);
    stream.wait();
    kernels_->last_name = k.name;
    return;
  }
#endif

  // The reference: direct loops, int32 sums, the same scaling.
  const size_t group_in = s.in_channels / s.groups, group_out = s.out_channels / s.groups;
  const size_t per_channel = group_in * s.kernel * s.kernel;
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t b = 0; b < static_cast<int64_t>(n); ++b) {
    for (int64_t c = 0; c < static_cast<int64_t>(s.out_channels); ++c) {
      const size_t oc = static_cast<size_t>(c), g = oc / group_out;
      const unsigned char* image = q + static_cast<size_t>(b) * in_size + g * group_in * s.height * s.width;
      const signed char* w = weight_.data() + oc * per_channel;
      float* out = y + (static_cast<size_t>(b) * s.out_channels + oc) * out_plane;
      for (size_t oh = 0; oh < s.out_height; ++oh) {
        for (size_t ow = 0; ow < s.out_width; ++ow) {
          int32_t sum = 0;
          for (size_t ic = 0; ic < group_in; ++ic) {
            for (size_t kh = 0; kh < s.kernel; ++kh) {
              const int64_t ih = static_cast<int64_t>(oh * s.stride + kh * s.dilation) - static_cast<int64_t>(s.padding);
              if (ih < 0 || ih >= static_cast<int64_t>(s.height)) continue;
              for (size_t kw = 0; kw < s.kernel; ++kw) {
                const int64_t iw =
                    static_cast<int64_t>(ow * s.stride + kw * s.dilation) - static_cast<int64_t>(s.padding);
                if (iw < 0 || iw >= static_cast<int64_t>(s.width)) continue;
                sum += static_cast<int32_t>(image[(ic * s.height + static_cast<size_t>(ih)) * s.width +
                                                  static_cast<size_t>(iw)]) *
                       static_cast<int32_t>(w[(ic * s.kernel + kh) * s.kernel + kw]);
              }
            }
          }
          out[oh * s.out_width + ow] = static_cast<float>(sum) * output_scales_[oc] + (bias ? bias[oc] : 0.0f);
        }
      }
    }
  }
}

void int8_layer_forward(Int8Convolution& conv, const Layer& layer, const Tensor& x, Tensor& y, const StepInfo& step,
                        const float* bias) {
  if (step.mode != Mode::Eval) {
    throw ShapeError(std::string(layer.type()) + " computes in int8 (a quantized model) and cannot train");
  }
  conv.forward(x.data(), x.shape()[0], bias, y.data());
}

}  // namespace dptrain
