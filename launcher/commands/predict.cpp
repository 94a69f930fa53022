// dptrain predict: a checkpoint's model on image files, printing each image's most probable classes.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <optional>

#include "launcher/commands/cli_checks.h"
#include "launcher/commands/commands.h"
#include "launcher/commands/predict_output.h"
#include "launcher/workers.h"
#include "runtime/checkpoint/checkpoint.h"
#include "runtime/core/context.h"
#include "runtime/core/errors.h"
#include "runtime/core/run_config.h"
#include "runtime/core/thread_limits.h"
#include "runtime/data/batch_loader.h"
#include "runtime/data/image_files_dataset.h"
#include "runtime/train/predictor.h"

namespace dptrain::launcher {

namespace {

bool is_config_file(const std::string& path) {
  for (const char* ext : {".yaml", ".yml"}) {
    const std::string e(ext);
    if (path.size() > e.size() && path.compare(path.size() - e.size(), e.size(), e) == 0) return true;
  }
  return false;
}

PredictFormat format_of(const std::string& name) {
  if (name == "jsonl") return PredictFormat::Jsonl;
  if (name == "csv") return PredictFormat::Csv;
  return PredictFormat::Table;
}

// Predicts `images` in batches of `batch`, decoding the next batch while the model runs on this one, and
// prints each image's line as its batch is done.
void predict_all(const ImageFilesDataset& images, Predictor& predictor, size_t batch, size_t decode_threads, size_t k,
                 const PredictionFormatter& formatter) {
  BatchLoader loader(images, batch, nullptr, 0, decode_threads);
  const size_t n = images.size(), classes = predictor.num_classes();
  auto ids_from = [&](size_t first) {
    std::vector<uint64_t> ids;
    for (size_t i = first; i < std::min(n, first + batch); ++i) ids.push_back(i);
    return ids;
  };
  loader.prefetch(ids_from(0));
  for (size_t first = 0; first < n; first += batch) {
    Batch& b = loader.next();
    if (first + batch < n) loader.prefetch(ids_from(first + batch));
    const Tensor probabilities = predictor.probabilities(b.inputs);
    std::string lines;
    for (size_t i = 0; i < b.ids.size(); ++i) {
      lines += formatter.row(images.path(b.ids[i]), top_k(probabilities.data() + i * classes, classes, k));
    }
    std::fputs(lines.c_str(), stdout);
    std::fflush(stdout);
  }
}

}  // namespace

int run_predict(const PredictArgs& args, Workers& workers) {
  // One worker predicts and prints; under mpirun the others have nothing to do.
  if (workers.rank() != 0) return 0;
  std::vector<std::string> inputs = args.inputs;
  std::string config_file;
  if (!inputs.empty() && is_config_file(inputs.front())) {
    config_file = inputs.front();
    inputs.erase(inputs.begin());
  }
  if (inputs.empty()) {
    throw UsageError(
        "dptrain predict: name the image files or folders to predict, e.g. dptrain predict "
        "--checkpoint FILE.h5 images/");
  }
  const CheckpointState state = read_checkpoint(args.checkpoint);
  // Without a config file, the run's own config as the checkpoint stores it.
  RunConfig config = config_file.empty()
                         ? RunConfig::parse(state.config_text, args.checkpoint + ":/config", args.overrides)
                         : RunConfig::load(config_file, args.overrides);
  const std::vector<std::string> files = list_image_files(inputs);
  const ImageFilesDataset images(files, eval_image_preparation(*config.data, config.seed, state.input_shape));

  if (!state.quantization.empty()) config.device = DeviceKind::CPU;  // int8 arithmetic runs on the CPU
  // This worker alone computes: every core of its node is its own unless the config says otherwise.
  if (config.threads == 0) config.threads = default_thread_count(1);
  check_thread_limits(config.threads, config.file + ": threads");
  Context context(config.device, config.threads, 1, std::nullopt, config.precision, config.determinism,
                  config.cpu_convolution);
  Predictor predictor(config, images.sample_shape(), state, args.checkpoint, context.backend());

  const size_t classes = predictor.num_classes();
  if (state.class_names.empty()) {
    std::fprintf(stderr,
                 "dptrain predict: note: %s stores no class names (its data set has none, or an older dptrain "
                 "wrote it): classes are shown by their index\n",
                 args.checkpoint.c_str());
  }
  size_t image_width = 0;
  for (const std::string& f : files) image_width = std::max(image_width, f.size());
  const PredictionFormatter formatter(format_of(args.format), args.top_k, classes, state.class_names, image_width);
  std::fputs(formatter.header().c_str(), stdout);
  const size_t batch = std::min(args.batch > 0 ? args.batch : config.train.eval_batch_size, files.size());
  predict_all(images, predictor, batch, context.num_threads(), args.top_k, formatter);
  return 0;
}

CLI::App* add_predict_command(CLI::App& app, PredictArgs& args) {
  auto* cmd = app.add_subcommand("predict", "Classify image files with a checkpoint's model: top classes per image");
  cmd->add_option("--checkpoint", args.checkpoint, "Checkpoint file (.h5)")->required();
  cmd->add_option("images", args.inputs,
                  "[CONFIG.yaml] then PNG/JPEG files and folders (searched recursively); without a config, the "
                  "one stored in the checkpoint")
      ->required();
  cmd->add_option("--set", args.overrides, "Override a config key (repeatable)")->allow_extra_args(false);
  cmd->add_option("--top-k", args.top_k, "Classes shown per image (default 5)")->check(in_range(1, kNoLimit));
  cmd->add_option("--format", args.format, "table (default), jsonl or csv")
      ->check(CLI::IsMember({"table", "jsonl", "csv"}));
  cmd->add_option("--batch", args.batch, "Images per forward pass (default: the config's train.eval_batch_size)")
      ->check(in_range(1, kNoLimit));
  return cmd;
}

}  // namespace dptrain::launcher
