#include "layers/batchnorm2d.h"

#include <cmath>

#include "runtime/core/errors.h"

namespace dptrain {

BatchNorm2dOptions BatchNorm2dOptions::read(ConfigMap& options) {
  BatchNorm2dOptions o;
  o.momentum = options.get_double_checked("momentum", 0.1, [](double v) { return v >= 0 && v <= 1; }, "must be in [0, 1]");
  o.eps = options.get_double_checked("eps", 1e-5, [](double v) { return v > 0; }, "must be > 0");
  o.affine = options.get_bool("affine", true);
  o.stats = options.get_choice("stats", {"global", "per_worker"}, "global") == "global" ? BatchStats::Global
                                                                                         : BatchStats::PerWorker;
  return o;
}

BatchNorm2dLayer::BatchNorm2dLayer(const BatchNorm2dOptions& options, const Shape& input_shape) : options_(options) {
  if (input_shape.empty()) throw ShapeError("batchnorm2d needs (C, H, W) or (C) input");
  input_shape_ = input_shape;
  output_shape_ = input_shape;
  channels_ = input_shape[0];
  spatial_ = num_elements(input_shape) / channels_;
  layout_ = BatchStatsLayout{channels_};
}

LayerWork BatchNorm2dLayer::work(InputGradient dx) const {
  const double elements = static_cast<double>(channels_ * spatial_);
  LayerWork w;
  w.forward_flops = 5 * elements;
  w.forward_bytes = 3 * kFloatBytes * elements;
  w.backward_flops = 5 * elements;
  w.backward_bytes = 2 * kFloatBytes * elements;
  if (dx == InputGradient::Computed) {
    w.backward_flops += 6 * elements;
    w.backward_bytes += 3 * kFloatBytes * elements;
  }
  return w;
}

std::vector<ParamSpec> BatchNorm2dLayer::parameters() const {
  if (!options_.affine) return {};
  return {{"weight", {channels_}}, {"bias", {channels_}}};
}

std::vector<ParamSpec> BatchNorm2dLayer::buffers() const {
  return {{"running_mean", {channels_}}, {"running_var", {channels_}}};
}

void BatchNorm2dLayer::init_parameters(Rng&) {
  if (!options_.affine) return;
  params_[0].fill(1.0f);
  params_[1].fill(0.0f);
}

void BatchNorm2dLayer::init_buffers() {
  buffers_[0].fill(0.0f);
  buffers_[1].fill(1.0f);
}

StatsPath BatchNorm2dLayer::stats_path(const StepInfo& step) const {
  if (!step.batch_stats || options_.stats != BatchStats::Global) return StatsPath::Local;
  return step.batch_stats->memory() == SumMemory::Device ? StatsPath::DeviceSum : StatsPath::HostSum;
}

void BatchNorm2dLayer::sum_over_workers(const StepInfo& step, std::vector<double>& values) const {
  switch (stats_path(step)) {
    case StatsPath::Local:
      return;
    case StatsPath::HostSum:
      step.batch_stats->sum(values.data(), values.size());
      return;
    case StatsPath::DeviceSum:
      throw UsageError("batchnorm2d: host statistics handed to a cross-worker sum of device memory");
  }
}

namespace {

// Summation::Exact: the 2C exact sums cross workers as doubles, each int64 as its high 32 bits (signed)
// and low 32 bits, which 8192 workers' doubles add without loss: [high (2C), low (2C), invalid(, count)].
// `invalid` counts the sums out of range, so that no sum of invalid ones can pass for a total.
size_t exact_wire_size(size_t channels, Pass pass) { return 4 * channels + (pass == Pass::Forward ? 2 : 1); }

std::vector<double> exact_to_wire(const ExactSums& local, Pass pass, double count) {
  const size_t m = local.size();
  std::vector<double> wire(2 * m + 1, 0.0);
  for (size_t i = 0; i < m; ++i) {
    const int64_t v = local.data()[i];
    if (v == exact::kInvalid) wire[2 * m] += 1.0;
    wire[i] = static_cast<double>(v >> 32);  // arithmetic shift: floor(v / 2^32)
    wire[m + i] = static_cast<double>(v & 0xffffffff);
  }
  if (pass == Pass::Forward) wire.push_back(count);
  return wire;
}

// The summed wire -> the 2C totals (and the count).
std::vector<double> exact_totals(const std::vector<double>& summed, size_t channels, Pass pass) {
  const size_t m = 2 * channels;
  const ExactScale scale = pass == Pass::Forward ? ExactScale::Statistic : ExactScale::Gradient;
  std::vector<double> totals(pass == Pass::Forward ? m + 1 : m);
  const bool invalid = summed[2 * m] > 0.0;
  for (size_t i = 0; i < m; ++i) {
    // total = high * 2^32 + low: the low words' carries moved up first, all exact in double.
    const double carries = std::floor(summed[m + i] / 4294967296.0);
    const double high = summed[i] + carries, low = summed[m + i] - carries * 4294967296.0;
    const bool in_range = !invalid && high >= -1073741824.0 && high < 1073741824.0;  // total in [-2^62, 2^62)
    const int64_t total = in_range ? static_cast<int64_t>(high) * 4294967296 + static_cast<int64_t>(low)
                                   : exact::kInvalid;
    totals[i] = exact::to_double(total, scale);
  }
  if (pass == Pass::Forward) totals[m] = summed[2 * m + 1];
  return totals;
}

}  // namespace

std::vector<double> BatchNorm2dLayer::exact_over_workers(const StepInfo& step, ExactSums& local, Pass pass,
                                                         double count) const {
  std::vector<double> values = exact_to_wire(local, pass, count);
  sum_over_workers(step, values);
  return exact_totals(values, channels_, pass);
}

void BatchNorm2dLayer::join_cross_worker_sums(Pass pass, const StepInfo& step) {
  if (step.mode != Mode::Train || stats_path(step) == StatsPath::Local) return;
  const bool exact = step.summation == Summation::Exact;
  std::vector<double> sums(exact ? exact_wire_size(channels_, pass) : layout_.values(pass), 0.0);
  sum_over_workers(step, sums);
  if (exact) sums = exact_totals(sums, channels_, pass);
  // The running statistics follow the global batch on every worker, this one included.
  if (pass == Pass::Forward) update_running_statistics(moments_from_sums(sums));
}

void BatchNorm2dLayer::update_running_statistics(const BatchMoments& moments) {
  const bool on_host = buffers_[0].device() == DeviceKind::CPU;
  Tensor mean = on_host ? buffers_[0] : buffers_[0].to_host();
  Tensor var = on_host ? buffers_[1] : buffers_[1].to_host();
  const auto m = static_cast<float>(options_.momentum);
  for (size_t c = 0; c < channels_; ++c) {
    mean.data()[c] = (1 - m) * mean.data()[c] + m * moments.mean[c];
    var.data()[c] = (1 - m) * var.data()[c] + m * moments.unbiased_var[c];
  }
  if (!on_host) {
    buffers_[0].copy_from(mean);
    buffers_[1].copy_from(var);
  }
}

BatchNorm2dLayer::BatchMoments BatchNorm2dLayer::moments_from_sums(const std::vector<double>& sums) const {
  BatchMoments m;
  m.count = sums[layout_.count()];
  if (m.count < 1) throw ShapeError("batchnorm2d: a training step with no values to normalise");
  m.mean.resize(channels_);
  m.inv_std.resize(channels_);
  m.unbiased_var.resize(channels_);
  for (size_t c = 0; c < channels_; ++c) {
    const double mean = sums[layout_.first(c)] / m.count;
    const double var = std::max(0.0, sums[layout_.second(c)] / m.count - mean * mean);
    m.mean[c] = static_cast<float>(mean);
    m.inv_std[c] = static_cast<float>(1.0 / std::sqrt(var + options_.eps));
    m.unbiased_var[c] = static_cast<float>(m.count > 1 ? var * m.count / (m.count - 1) : var);
  }
  return m;
}

}  // namespace dptrain
