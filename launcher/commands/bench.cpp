#include <CLI/CLI.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <sstream>
#include <string>

#include "comm/communicator.h"
#include "launcher/commands/bench_peak.h"
#include "launcher/commands/cli_checks.h"
#include "launcher/commands/commands.h"
#include "launcher/workers.h"
#include "runtime/core/backend.h"
#include "runtime/core/blas_kernels.h"
#include "runtime/core/context.h"
#include "runtime/core/errors.h"
#include "runtime/core/run_config.h"
#include "runtime/core/thread_limits.h"
#include "runtime/data/dataset.h"
#include "runtime/train/model.h"
#include "runtime/train/training_run.h"

namespace dptrain::launcher {

namespace {

using Clock = std::chrono::steady_clock;

// The --set that replaces a config's data with a synthetic set of the same sample shape and classes.
std::string synthetic_data_override(RunConfig& config, size_t train_samples) {
  const DataSplits data = make_datasets(*config.data, config.seed);
  const Shape shape = data.train->sample_shape();
  std::ostringstream out;
  out << "data={type: synthetic, train_samples: " << train_samples << ", test_samples: 1, shape: [";
  for (size_t i = 0; i < shape.size(); ++i) out << (i ? ", " : "") << shape[i];
  out << "], classes: " << data.train->num_classes() << "}";
  return out.str();
}

// Timed products of the GEMM peak that bench train measures.
constexpr size_t kPeakRepeats = 5;

// `value` printed with `format` when `known`, else JSON's null.
std::string json_number(bool known, double value, const char* format) {
  if (!known) return "null";
  char text[64];
  std::snprintf(text, sizeof(text), format, value);
  return text;
}

// A rate column of bench layers: `amount` (FLOPs or bytes) per `ms` milliseconds, in G per second;
// "-" where the column does not apply or there was nothing to do.
std::string rate_cell(bool applies, double amount, double ms) {
  if (!applies || amount <= 0 || ms <= 0) return "-";
  char text[32];
  std::snprintf(text, sizeof(text), "%.2f", amount / (ms * 1e-3) / 1e9);
  return text;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

}  // namespace

int run_bench_train(const BenchTrainArgs& args, Workers& workers) {
  RunConfig base = RunConfig::load(args.config, args.overrides);
  const size_t batch = base.train.batch_size;
  std::vector<std::string> overrides = args.overrides;
  if (args.data == "synthetic") overrides.push_back(synthetic_data_override(base, batch * args.steps));
  RunConfig config = RunConfig::load(args.config, overrides);
  if (config.threads == 0) config.threads = default_thread_count(workers.local().size);
  check_thread_limits(config.threads, config.file + ": threads");  // before any thread pool starts
  TrainerOptions options;
  options.progress = ProgressStyle::Off;
  options.log = nullptr;
  options.workers_on_node = workers.local().size;
  TrainingRun run(config, workers.comm(), options);
  const Context& context = run.context();
  const size_t threads = context.num_threads();
  const char* precision = to_string(context.precision());
  const size_t steps_per_repeat = run.train_samples() / batch;
  const size_t world = workers.size();
  // Only rank 0 prints; every rank trains.
  std::FILE* out = workers.rank() == 0 ? stdout : nullptr;
  auto print = [out](const char* format, auto... values) {
    if (!out) return;
    if constexpr (sizeof...(values) == 0) {
      std::fputs(format, out);  // a text without conversions, printed as it is
    } else {
      std::fprintf(out, format, values...);
    }
  };
  if (!args.json) {
    print("bench train: %s, global batch %zu, %zu worker(s) x %zu threads, device %s, precision %s, %s data, "
          "%zu steps per repeat\n",
          args.config.c_str(), batch, world, threads, context.describe_device().c_str(),
          context.describe_precision().c_str(), args.data.c_str(), steps_per_repeat);
    if (context.device() == DeviceKind::CPU) print("OpenBLAS core: %s\n", describe_this_blas_core().c_str());
    if (run.reproducibility() == Reproducibility::BitExact) {
      print("  train.reproducible: exact sums; %zu bytes of gradients per worker all-reduced per step\n",
            world > 1 ? run.gradient_bytes_per_step() : size_t{0});
    }
  }
  // Untimed epochs first: first touch of buffers, thread start-up.
  for (size_t w = 0; w < args.warmup; ++w) run.train_epoch(w);
  const double flops_per_image = run.training_work().flops();
  // The CPU workers' GEMM peak, measured now, between warm-up and the timed repeats.
  const bool peak_measured = args.peak_size > 0 && context.device() == DeviceKind::CPU;
  const double peak_gflops =
      peak_measured ? measure_job_gemm_peak(workers, args.peak_size, threads, kPeakRepeats).total_gflops : 0.0;
  std::vector<double> rates;
  for (size_t r = 0; r < args.repeats; ++r) {
    const EpochSummary s = run.train_epoch(args.warmup + r);
    const double steps = static_cast<double>(steps_per_repeat);
    rates.push_back(s.images_per_sec);
    const double achieved_gflops = s.images_per_sec * flops_per_image / 1e9;
    if (args.json) {
      const double rss_mib = static_cast<double>(job_peak_resident_bytes(workers)) / (1 << 20);
      // comm_wait_seconds: the gradient all-reduce left to wait for after the backward pass (not
      // hidden behind computation), mean over workers, whole repeat; also per step and as a share.
      print("{\"framework\": \"dptrain\", \"device\": \"%s\", \"precision\": \"%s\", \"batch\": %zu, "
            "\"workers\": %zu, \"threads\": %zu, \"steps\": %zu, "
            "\"images_per_sec\": %.1f, \"comm_wait_seconds\": %.4f, \"train_seconds\": %.4f, "
            "\"step_seconds\": %.6f, \"comm_exposed_seconds_per_step\": %.6f, \"comm_share\": %.5f, "
            "\"data_wait_seconds\": %.4f, \"mflop_per_image\": %.4f, \"gflops\": %.3f, \"peak_gflops\": %s, "
            "\"peak_share\": %s, \"peak_rss_mib\": %.1f, \"reproducible\": %s, \"allreduce_bytes_per_step\": %zu, %s}\n",
            to_string(context.device()), precision, batch, world, threads, steps_per_repeat, s.images_per_sec,
            s.comm_wait_seconds, s.train_seconds, s.train_seconds / steps, s.comm_wait_seconds / steps,
            s.train_seconds > 0 ? s.comm_wait_seconds / s.train_seconds : 0.0, s.data_wait_seconds,
            flops_per_image / 1e6, achieved_gflops, json_number(peak_measured, peak_gflops, "%.2f").c_str(),
            json_number(peak_measured, achieved_gflops / peak_gflops, "%.4f").c_str(), rss_mib,
            run.reproducibility() == Reproducibility::BitExact ? "true" : "false",
            world > 1 ? run.gradient_bytes_per_step() : size_t{0}, blas_core_json().c_str());
    } else {
      const double share = 100.0 / std::max(1e-9, s.train_seconds);
      print("  repeat %zu: %.0f images/s (%.2f ms/step, data wait %.1f%%, comm wait %.1f%%)\n", r + 1,
            s.images_per_sec, 1000.0 * s.train_seconds / steps, share * s.data_wait_seconds,
            share * s.comm_wait_seconds);
    }
    std::fflush(stdout);
  }
  if (args.json) return 0;
  const double median_rate = median(rates);
  const double achieved_gflops = median_rate * flops_per_image / 1e9;
  print("median: %.0f images/s\n", median_rate);
  print("model: %.2f MFLOP per training image (forward+backward), %.2f GFLOP/s achieved", flops_per_image / 1e6,
        achieved_gflops);
  if (peak_measured) {
    print(", %.1f%% of the GEMM peak %.1f GFLOP/s measured now", 100.0 * achieved_gflops / peak_gflops, peak_gflops);
    if (world > 1) print(" (%zu workers together)", world);
    print("\n");
  } else if (context.device() == DeviceKind::CPU) {
    print(" (GEMM peak not measured: --peak-size 0)\n");
  } else {
    print(" (the GEMM peak is the CPU's: not measured on a GPU)\n");
  }
  print("peak resident memory: %.1f MiB (the largest worker's)\n",
        static_cast<double>(job_peak_resident_bytes(workers)) / (1 << 20));
  return 0;
}

int run_bench_layers(const BenchLayersArgs& args) {
  RunConfig config = RunConfig::load(args.config, args.overrides);
  if (config.threads == 0) config.threads = default_thread_count();
  check_thread_limits(config.threads, config.file + ": threads");  // before any thread pool starts
  Context context(config.device, config.threads, 1, std::nullopt, config.precision, config.determinism,
                  config.cpu_convolution);
  const DataSplits data = make_datasets(*config.data, config.seed);
  Model model(config.model, data.train->sample_shape(), context.backend(), config.seed);
  const size_t n = args.batch ? args.batch : config.train.batch_size;
  Backend& device = context.backend();
  Tensor input(batch_shape(n, model.input_shape()));
  Rng rng(1);
  for (size_t i = 0; i < input.num_elements(); ++i) input.data()[i] = rng.normal();
  // acts[i] is layer i's output; the model's input is `x`.
  const Tensor x = input.to(device);
  // In the types the model planned (bf16 between layers that compute in it on a GPU).
  std::vector<Tensor> acts;
  for (size_t i = 0; i < model.layers().size(); ++i) {
    acts.emplace_back(batch_shape(n, model.layers()[i]->output_shape()), device, model.activation_types(i).output);
  }
  auto input_of = [&](size_t j) { return j == kModelInput ? &x : &acts[j]; };
  // GPU layers only queue work: wait for it before reading the clock.
  auto finish = [&device] { device.synchronize(); };
  std::vector<uint64_t> ids(n);
  for (size_t i = 0; i < n; ++i) ids[i] = i;
  StepInfo info{Mode::Train, config.seed, 0, ids.data()};
  std::string obstacle;  // what stands in the way of exact sums, if anything
  const bool exact = resolve_reproducible(config.train.reproducible, model, &obstacle) == Reproducibility::BitExact;
  // Float sums say why where auto chose them.
  const std::string float_sums = config.train.reproducible == Reproducibility::Auto && !obstacle.empty()
                                     ? "float sums (" + obstacle + ")"
                                     : "float sums";
  if (exact) {
    if (!obstacle.empty()) {
      throw UsageError(config.file + ": train.reproducible: " + obstacle + " (set reproducible: false" +
                       (context.device() != DeviceKind::CPU ? ", or device: cpu)" : ")"));
    }
    // As a train.reproducible step computes: exact sums over samples, micro-shard by micro-shard.
    model.use_exact_gradients();
    info.summation = Summation::Exact;
    info.micro_shard = config.train.micro_shard;
  }
  std::printf("bench layers: %s, batch %zu, %zu threads, device %s, precision %s, %s, mean of %zu iterations\n",
              args.config.c_str(), n, context.num_threads(), context.describe_device().c_str(),
              context.describe_precision().c_str(),
              exact ? "exact sums (train.reproducible)"
                    : float_sums.c_str(),
              args.iterations);
  if (context.device() == DeviceKind::CPU) std::printf("OpenBLAS core: %s\n", describe_this_blas_core().c_str());
  std::printf("  %-3s %-24s %-18s %-18s %12s %12s %9s %9s %9s %9s\n", "#", "layer", "type", "output", "forward ms",
              "backward ms", "fwd", "bwd", "fwd", "bwd");
  std::printf("  %-3s %-24s %-18s %-18s %12s %12s %9s %9s %9s %9s\n", "", "", "", "", "", "", "GFLOP/s", "GFLOP/s",
              "GB/s", "GB/s");
  double total_f = 0, total_b = 0, total_flops = 0;
  for (size_t i = 0; i + 1 < model.layers().size(); ++i) {
    Layer& layer = *model.layers()[i];
    if (model.absorbed(i)) {  // timed with the layer that absorbed it
      std::printf("  %-3zu %-24s %-18s %-18s %25s\n", i, model.layer_name(i).c_str(), layer.type(),
                  to_string(layer.output_shape()).c_str(), "in the next layer");
      continue;
    }
    const ActivationTypes types = model.activation_types(i);
    Tensor dy(acts[i].shape(), device, types.output);
    Tensor dy_float(acts[i].shape(), device);
    dy_float.fill(0.01f);
    device.convert(dy_float, dy, Accumulate::Overwrite);
    // Each input in the type the layer reads: the producer's output, or a converted copy of it.
    std::vector<Tensor> inputs;
    std::vector<Tensor> dx_tensors;
    for (size_t k = 0; k < model.layer_reads(i).size(); ++k) {
      const Tensor& produced = *input_of(model.layer_reads(i)[k]);
      if (model.converts_input(i, k)) {
        inputs.emplace_back(produced.shape(), device, types.input);
        device.convert(produced, inputs.back(), Accumulate::Overwrite);
      } else {
        inputs.push_back(produced);
      }
      dx_tensors.emplace_back(produced.shape(), device, types.input);
    }
    std::vector<const Tensor*> xs;
    for (const Tensor& in : inputs) xs.push_back(&in);
    std::vector<Tensor*> dxs;
    for (size_t k = 0; k < dx_tensors.size(); ++k) {
      dxs.push_back(model.layer_reads(i)[k] == kModelInput ? nullptr : &dx_tensors[k]);
    }
    layer.forward_inputs(xs, acts[i], info);
    layer.backward_inputs(xs, acts[i], dy, dxs, info);
    finish();
    auto t0 = Clock::now();
    for (size_t k = 0; k < args.iterations; ++k) layer.forward_inputs(xs, acts[i], info);
    finish();
    auto t1 = Clock::now();
    for (size_t k = 0; k < args.iterations; ++k) layer.backward_inputs(xs, acts[i], dy, dxs, info);
    finish();
    auto t2 = Clock::now();
    const double f = std::chrono::duration<double, std::milli>(t1 - t0).count() / args.iterations;
    const double b = std::chrono::duration<double, std::milli>(t2 - t1).count() / args.iterations;
    total_f += f;
    total_b += b;
    // Arithmetic-bound layers in GFLOP/s, memory-bound ones in GB/s, from the work of the batch.
    const bool computes_dx = std::any_of(dxs.begin(), dxs.end(), [](const Tensor* t) { return t != nullptr; });
    const LayerWork work = layer.work(computes_dx ? InputGradient::Computed : InputGradient::Skipped);
    const bool arithmetic = work.bound == WorkBound::Arithmetic;
    const double batch = static_cast<double>(n);
    total_flops += batch * work.flops();
    std::printf("  %-3zu %-24s %-18s %-18s %12.3f %12.3f %9s %9s %9s %9s\n", i, model.layer_name(i).c_str(),
                layer.type(), to_string(layer.output_shape()).c_str(), f, b,
                rate_cell(arithmetic, batch * work.forward_flops, f).c_str(),
                rate_cell(arithmetic, batch * work.backward_flops, b).c_str(),
                rate_cell(!arithmetic, batch * work.forward_bytes, f).c_str(),
                rate_cell(!arithmetic, batch * work.backward_bytes, b).c_str());
  }
  std::printf("  %-66s %12.3f %12.3f %9s\n", "total (excluding loss and optimizer); all FLOPs over all time", total_f,
              total_b, rate_cell(true, total_flops, total_f + total_b).c_str());
  const std::string kernels = model.kernels();
  if (!kernels.empty() && context.device() == DeviceKind::CPU) {
    std::printf("convolution kernels: %s (cpu_convolution: %s)\n", kernels.c_str(), to_string(config.cpu_convolution));
  }
  const std::string fusions = model.fusions();
  if (!fusions.empty()) std::printf("absorbed: %s\n", fusions.c_str());
  return 0;
}

BenchCommands add_bench_commands(CLI::App& app, BenchArgs& args) {
  auto* bench = app.add_subcommand("bench", "Measure speed");
  bench->require_subcommand(1);
  BenchCommands cmds;
  BenchTrainArgs& train = args.train;
  cmds.train = bench->add_subcommand("train", "Training throughput (images/s) of a config's model");
  cmds.train->add_option("config", train.config, "YAML run config")->required();
  cmds.train->add_option("--set", train.overrides, "Override a config key (repeatable)")->allow_extra_args(false);
  cmds.train->add_option("--steps", train.steps, "Timed steps per repeat")->check(in_range(1, kNoLimit));
  cmds.train->add_option("--warmup", train.warmup, "Untimed epochs of --steps steps before timing (default 1)");
  cmds.train->add_option("--repeats", train.repeats, "How many timed repeats")->check(in_range(1, kNoLimit));
  cmds.train->add_option("--data", train.data, "synthetic (default) or config (the config's own data)")
      ->check(CLI::IsMember({"synthetic", "config"}));
  cmds.train->add_flag("--json", train.json, "Print one JSON object per repeat");
  cmds.train->add_option("--peak-size", train.peak_size,
                         "S of the S x S GEMM peak measured before the repeats (default 2048; 0: not measured)")
      ->check(in_range(0, 16384));
  BenchLayersArgs& layers = args.layers;
  cmds.layers = bench->add_subcommand("layers", "Forward and backward time of every layer");
  cmds.layers->add_option("config", layers.config, "YAML run config")->required();
  cmds.layers->add_option("--set", layers.overrides, "Override a config key (repeatable)")->allow_extra_args(false);
  cmds.layers->add_option("--batch", layers.batch, "Batch size (default: train.batch_size)");
  cmds.layers->add_option("--iterations", layers.iterations, "Timed iterations")->check(in_range(1, kNoLimit));
  BenchAllreduceArgs& allreduce = args.allreduce;
  cmds.allreduce = bench->add_subcommand("allreduce", "Gradient all-reduce time and bandwidth, 4 KiB to 64 MiB");
  cmds.allreduce->add_option("--min-bytes", allreduce.min_bytes, "Smallest message (default 4096)")
      ->check(in_range(1, kNoLimit));
  cmds.allreduce->add_option("--max-bytes", allreduce.max_bytes, "Largest message (default 67108864)")
      ->check(in_range(1, kNoLimit));
  cmds.allreduce->add_option("--iterations", allreduce.iterations, "Timed repetitions per size")
      ->check(in_range(1, kNoLimit));
  cmds.allreduce->add_option("--bucket-mb", allreduce.bucket_mb, "Bucket size of the bucketed column, MiB (default 1)")
      ->check(above(0, 4096));
  BenchPeakArgs& peak = args.peak;
  cmds.peak = bench->add_subcommand("peak", "Single-precision GEMM rate (GFLOP/s) of this machine's BLAS");
  cmds.peak->add_option("--threads", peak.threads, "BLAS threads (default: as a run would use)")
      ->check(in_range(1, 4096));
  cmds.peak->add_option("--size", peak.size, "S of the S x S x S products (default 2048)")->check(in_range(1, 16384));
  cmds.peak->add_option("--repeats", peak.repeats, "Timed products; the median is reported (default 5)")
      ->check(in_range(1, 1000));
  cmds.peak->add_flag("--json", peak.json, "Print one JSON object");
  cmds.predict = add_bench_predict_command(*bench, args.predict);
  return cmds;
}

}  // namespace dptrain::launcher
