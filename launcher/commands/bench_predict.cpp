// `dptrain bench predict`: inference throughput (images/s) of checkpoints' models, side by side (a
// float32 model and its int8 quantization, say), on random images of the stored input shape.
#include <CLI/CLI.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>
#include <optional>
#include <vector>

#include "launcher/commands/cli_checks.h"
#include "launcher/commands/commands.h"
#include "runtime/checkpoint/checkpoint.h"
#include "runtime/core/context.h"
#include "runtime/core/errors.h"
#include "runtime/core/rng.h"
#include "runtime/core/run_config.h"
#include "runtime/core/thread_limits.h"
#include "runtime/train/predictor.h"

namespace dptrain::launcher {

namespace {

// One checkpoint's model, ready to run.
struct Contender {
  std::string path;
  RunConfig config;
  std::unique_ptr<Context> context;
  std::unique_ptr<Predictor> predictor;
  std::vector<double> rates;  // images/s per repeat
};

}  // namespace

int run_bench_predict(const BenchPredictArgs& args) {
  if (args.checkpoints.empty()) throw UsageError("dptrain bench predict: give at least one --checkpoint FILE.h5");
  const size_t threads = args.threads ? args.threads : default_thread_count();
  check_thread_limits(threads, "--threads");
  std::vector<Contender> contenders;
  Shape input_shape;
  for (const std::string& path : args.checkpoints) {
    const CheckpointState state = read_checkpoint(path);
    if (state.input_shape.empty()) {
      throw CheckpointError(path, "stores no input shape (an older dptrain wrote it); bench predict needs one");
    }
    if (!input_shape.empty() && state.input_shape != input_shape) {
      throw UsageError("dptrain bench predict: " + path + " takes " + to_string(state.input_shape) + ", " +
                       args.checkpoints.front() + " takes " + to_string(input_shape) + "; compare models of one shape");
    }
    input_shape = state.input_shape;
    Contender c;
    c.path = path;
    c.config = RunConfig::parse(state.config_text, path + ":/config");
    if (!state.quantization.empty()) c.config.device = DeviceKind::CPU;  // int8 arithmetic runs on the CPU
    c.context = std::make_unique<Context>(c.config.device, threads, 1, std::nullopt, c.config.precision,
                                          c.config.determinism, c.config.cpu_convolution);
    c.predictor = std::make_unique<Predictor>(c.config, input_shape, state, path, c.context->backend());
    contenders.push_back(std::move(c));
  }
  Shape shape = input_shape;
  shape.insert(shape.begin(), args.batch);
  Tensor images(shape);
  Rng rng(1);
  for (size_t i = 0; i < images.num_elements(); ++i) images.data()[i] = rng.normal();
  std::printf("bench predict: batch %zu, %zu threads, %zu timed passes per repeat, median of %zu repeats\n",
              args.batch, threads, args.iterations, args.repeats);
  for (Contender& c : contenders) c.predictor->probabilities(images);  // warm-up: kernels chosen, memory touched
  for (size_t r = 0; r < args.repeats; ++r) {
    for (Contender& c : contenders) {  // interleaved, so that a slow moment of the machine hits all alike
      const auto start = std::chrono::steady_clock::now();
      for (size_t i = 0; i < args.iterations; ++i) c.predictor->probabilities(images);
      const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      c.rates.push_back(static_cast<double>(args.batch * args.iterations) / seconds);
    }
  }
  double baseline = 0;  // the first checkpoint's rate
  for (Contender& c : contenders) {
    std::sort(c.rates.begin(), c.rates.end());
    const double median = c.rates[c.rates.size() / 2];
    if (baseline == 0) baseline = median;
    const std::string int8 = c.predictor->model().int8_kernels();
    std::printf("  %-48s %9.0f images/s  %5.2fx  %s\n", c.path.c_str(), median, median / baseline,
                int8.empty() ? c.context->describe_device().c_str() : ("int8: " + int8).c_str());
  }
  return 0;
}

CLI::App* add_bench_predict_command(CLI::App& bench, BenchPredictArgs& args) {
  auto* cmd = bench.add_subcommand("predict", "Inference throughput (images/s) of checkpoints' models, side by side");
  cmd->add_option("--checkpoint", args.checkpoints, "Checkpoint file (.h5); repeat it to compare models")->required();
  cmd->add_option("--batch", args.batch, "Images per forward pass (default 256)")->check(in_range(1, 65536));
  cmd->add_option("--iterations", args.iterations, "Timed forward passes per repeat (default 10)")
      ->check(in_range(1, kNoLimit));
  cmd->add_option("--repeats", args.repeats, "Timed repeats; the median is reported (default 5)")
      ->check(in_range(1, 1000));
  cmd->add_option("--threads", args.threads, "Threads (default: as a run would use)")->check(in_range(1, 4096));
  return cmd;
}

}  // namespace dptrain::launcher
