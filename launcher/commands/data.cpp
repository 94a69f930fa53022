// dptrain data convert: a run config's data (IDX files, an image folder) or four IDX files written as one
// chunked, checksummed HDF5 file that `data.type: hdf5` reads.
#include <yaml-cpp/yaml.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <filesystem>

#include "launcher/commands/data_command.h"
#include "runtime/core/config_map.h"
#include "runtime/core/errors.h"
#include "runtime/core/run_config.h"
#include "runtime/data/dataset.h"
#include "runtime/data/hdf5_writer.h"

namespace dptrain::launcher {

CLI::App* add_data_commands(CLI::App& app, DataConvertArgs& args) {
  auto* data = app.add_subcommand("data", "Prepare data sets");
  data->require_subcommand(1);
  auto* convert = data->add_subcommand(
      "convert",
      "Write a run config's training and test sets (IDX files, an image folder and its validation split), or "
      "four IDX files, as one HDF5 file for data.type: hdf5");
  convert->add_option("config", args.config, "YAML run config whose data section is converted");
  convert->add_option("--set", args.overrides, "Override a config key: --set data.dir=/path (repeatable)")
      ->allow_extra_args(false);
  convert->add_option("--from-idx", args.from_idx, "Convert IDX files instead of a config")
      ->expected(4)
      ->type_name("TRAIN_IMAGES TRAIN_LABELS TEST_IMAGES TEST_LABELS");
  convert->add_option("--out", args.out, "The HDF5 file to write")->required();
  convert->add_flag("--force", args.force, "Replace --out if it exists (only once the new file is complete)");
  convert->add_option("--chunk", args.chunk, "Samples per HDF5 chunk (default: about 128 KiB of images)");
  return convert;
}

namespace {

// The data sets of the config, normalised with mean 0 and std 1 so that they deliver pixel / 255.
DataSplits load_config_data(const DataConvertArgs& args, std::string* source) {
  std::vector<std::string> overrides = args.overrides;
  overrides.push_back("data.mean=0");
  overrides.push_back("data.std=1");
  RunConfig config = RunConfig::load(args.config, overrides);
  DataSplits data = make_datasets(*config.data, config.seed);
  config.data->finish();
  *source = "dptrain data convert " + args.config;
  for (const auto& o : args.overrides) *source += " --set " + o;
  *source += " (seed " + std::to_string(config.seed) + ")";
  return data;
}

DataSplits load_idx_files(const std::vector<std::string>& files, std::string* source) {
  for (const auto& f : files) {
    std::error_code ec;
    if (!std::filesystem::exists(f, ec)) throw DataError(f + ": no such file (given to --from-idx)");
  }
  YAML::Node root;
  YAML::Node data = root["data"];
  data["type"] = "idx";
  data["dir"] = ".";
  data["train_images"] = files[0];
  data["train_labels"] = files[1];
  data["test_images"] = files[2];
  data["test_labels"] = files[3];
  data["classes"] = 0;
  YAML::Emitter yaml;
  yaml << root;
  ConfigMap top = ConfigMap::parse(yaml.c_str(), "--from-idx");
  ConfigMap section = top.get_map("data");
  DataSplits splits = make_datasets(section, 0);
  section.finish();
  *source = "dptrain data convert --from-idx " + files[0] + " " + files[1] + " " + files[2] + " " + files[3];
  return splits;
}

}  // namespace

int run_data_convert(const DataConvertArgs& args) {
  if (args.config.empty() == args.from_idx.empty()) {
    throw UsageError(
        "data convert: give either a run config (dptrain data convert CONFIG.yaml --out FILE.h5) or "
        "--from-idx TRAIN_IMAGES TRAIN_LABELS TEST_IMAGES TEST_LABELS, not both or neither");
  }
  if (!args.from_idx.empty() && !args.overrides.empty()) {
    throw UsageError("data convert: --set applies to a config; it cannot be combined with --from-idx");
  }
  std::error_code ec;
  if (std::filesystem::exists(args.out, ec) && !args.force) {
    throw UsageError(args.out +
                     ": already exists and was left as it is; choose another --out, or pass --force to "
                     "replace it (it is replaced only once the new file is complete)");
  }
  const auto start = std::chrono::steady_clock::now();
  std::string source;
  const DataSplits data =
      args.config.empty() ? load_idx_files(args.from_idx, &source) : load_config_data(args, &source);
  std::printf("train: %s\ntest:  %s\n", data.train->describe().c_str(), data.test->describe().c_str());
  std::fflush(stdout);

  Hdf5WriteOptions options;
  options.chunk_samples = args.chunk;
  options.overwrite = args.force ? Overwrite::Yes : Overwrite::No;
  options.source = source;
  const Hdf5WriteSummary s = write_hdf5_splits(args.out, *data.train, *data.test, options);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf(
      "wrote %s: %zu training and %zu test samples of %s (uint8), %zu classes, chunks of %zu samples with "
      "Fletcher-32 checksums, %.1f MB in %.1f s\n",
      args.out.c_str(), s.train, s.test, to_string(data.train->sample_shape()).c_str(), data.train->num_classes(),
      s.chunk_samples, static_cast<double>(s.file_bytes) / 1e6, seconds);
  std::printf("use it with:  data: {type: hdf5, file: %s}  (plus the same mean and std)\n", args.out.c_str());
  return 0;
}

}  // namespace dptrain::launcher
