// End to end: train small models and check that they learn; run the dptrain binary as a user would.
#include <gtest/gtest.h>

#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

#include "comm/communicator.h"
#include "layers/cpu/int8_conv.h"
#include "runtime/core/run_config.h"
#include "runtime/train/trainer.h"
#include "tests/e2e/run_command.h"

namespace dptrain {
namespace DPTRAIN_TEST_UNIT {

const std::string kSmoke = std::string(DPTRAIN_SOURCE_DIR) + "/configs/synthetic_smoke.yaml";

using e2e::CommandResult;
using e2e::run_command;

std::string temp_path(const std::string& name) {
  const auto dir = std::filesystem::temp_directory_path() / ("dptrain_e2e_" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  return (dir / name).string();
}

TEST(TrainEndToEnd, SmallModelLearnsSyntheticData) {
  RunConfig config = RunConfig::load(kSmoke, {"train.epochs=3", "threads=2"});
  SingleProcessCommunicator comm;
  TrainerOptions options;
  options.log = nullptr;
  Trainer trainer(config, comm, options);
  const EvalResult before = trainer.evaluate();
  const std::vector<EpochSummary> epochs = trainer.run();
  ASSERT_EQ(epochs.size(), 3u);
  EXPECT_LT(epochs.back().loss, epochs.front().loss);
  EXPECT_LT(epochs.back().test.loss, before.loss);
  EXPECT_GT(epochs.back().test.accuracy, before.accuracy + 0.2);
  EXPECT_GT(epochs.back().test.accuracy, 0.8);  // four classes: chance is 0.25
  EXPECT_EQ(epochs.back().test.samples, 512u);
  EXPECT_EQ(trainer.global_step(), 3u * 32u);
}

// The start-up line of the smoke run (with `sets`, on the CPU, one thread) that begins with `start`;
// empty when there is none.
std::string start_up_line(std::vector<std::string> sets, const std::string& start) {
  sets.insert(sets.end(), {"device=cpu", "threads=1"});
  RunConfig config = RunConfig::load(kSmoke, sets);
  SingleProcessCommunicator comm;
  TrainerOptions options;
  options.log = nullptr;
  const Trainer trainer(config, comm, options);
  const std::string text = "\n" + trainer.describe();
  const size_t at = text.find("\n" + start);
  return at == std::string::npos ? std::string() : text.substr(at + 1, text.find('\n', at + 1) - at - 1);
}

TEST(TrainEndToEnd, StartUpLinesNameTheConvolutionKernels) {
  // The smoke model with a second convolution on 8 channels, which oneDNN takes under auto.
  const std::vector<std::string> second_conv = {"model.2.type=conv2d", "model.2.out_channels=8", "model.2.kernel=3",
                                                "model.2.padding=1"};
  auto kernels_line = [&](std::vector<std::string> sets) {
    sets.insert(sets.end(), second_conv.begin(), second_conv.end());
    return start_up_line(sets, "convolution kernels: ");
  };
  EXPECT_EQ(kernels_line({"cpu_convolution=im2col", "train.reproducible=false"}),
            "convolution kernels: im2col + BLAS (2 layers) (cpu_convolution: im2col)");
  EXPECT_EQ(kernels_line({"train.reproducible=true", "cpu_convolution=im2col"}),
            "convolution kernels: im2col + BLAS (2 layers) (cpu_convolution: im2col; train.reproducible: one thread "
            "per micro-shard on oneDNN, per sample on im2col)");
  if (int8_has_onednn()) {
    const std::string line = kernels_line({"train.reproducible=false"});
    EXPECT_EQ(line.rfind("convolution kernels: im2col + BLAS (1 layer), oneDNN ", 0), 0u) << line;
    EXPECT_NE(line.find("(1 layer) (cpu_convolution: auto)"), std::string::npos) << line;
  }
}

TEST(TrainEndToEnd, ReproducibleAutoIsBitExactOnTheCpuAndSaysWhyWhereNot) {
  // The start-up line on train.reproducible, as the run resolved it.
  auto reproducible_line = [](const std::vector<std::string>& sets) { return start_up_line(sets, "reproducible: "); };
  // The default on the CPU: bit-exact, and the line says it was auto's choice.
  const std::string by_default = reproducible_line({});
  EXPECT_EQ(by_default.rfind("reproducible: bit-exact sums over samples", 0), 0u) << by_default;
  EXPECT_NE(by_default.find("(train.reproducible: auto)"), std::string::npos) << by_default;
  const std::string asked = reproducible_line({"train.reproducible=true"});
  EXPECT_EQ(asked.rfind("reproducible: bit-exact", 0), 0u) << asked;
  EXPECT_EQ(asked.find("auto"), std::string::npos) << asked;
  EXPECT_EQ(reproducible_line({"train.reproducible=false"}), "");
  // A layer that cannot sum exactly: auto falls back to float sums and names it; true refuses it.
  const std::vector<std::string> per_worker = {"model.1.type=batchnorm2d", "model.1.stats=per_worker"};
  EXPECT_EQ(reproducible_line(per_worker),
            "reproducible: float sums, the same across worker counts up to rounding (train.reproducible: auto; "
            "layer 1.batchnorm2d (batchnorm2d) cannot sum its gradients exactly)");
  std::vector<std::string> refused = per_worker;
  refused.push_back("train.reproducible=true");
  EXPECT_THROW(reproducible_line(refused), ConfigError);
}

TEST(TrainEndToEnd, SameSeedGivesSameParameters) {
  auto train_once = [] {
    RunConfig config = RunConfig::load(kSmoke, {"train.epochs=1", "threads=2"});
    SingleProcessCommunicator comm;
    TrainerOptions options;
    options.log = nullptr;
    Trainer trainer(config, comm, options);
    trainer.train_epoch(0);
    const Tensor& p = trainer.model().parameters();
    return std::vector<float>(p.data(), p.data() + p.num_elements());
  };
  EXPECT_EQ(train_once(), train_once());
}

TEST(TrainCommand, WritesMetricsAndReportsEpochs) {
  const std::string metrics = temp_path("metrics.jsonl");
  std::filesystem::remove(metrics);
  const CommandResult r = run_command(std::string(DPTRAIN_BINARY) + " train " + kSmoke +
                                      " --set train.epochs=2 --set threads=2 --metrics " + metrics);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("epoch 1/2"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("epoch 2/2"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("test_acc"), std::string::npos) << r.output;
  std::ifstream in(metrics);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  ASSERT_EQ(lines.size(), 4u);  // start, two epochs, end
  EXPECT_NE(lines[0].find("\"event\": \"start\""), std::string::npos) << lines[0];
  for (const char* key : {"\"event\": \"epoch\"", "\"epoch\": 2", "\"step\": 64", "\"world_size\": 1", "\"loss\": ",
                          "\"train_accuracy\": ", "\"test_accuracy\": ", "\"images_per_sec\": ", "\"seconds\": "}) {
    EXPECT_NE(lines[2].find(key), std::string::npos) << key << " in " << lines[2];
  }
  EXPECT_NE(lines[3].find("\"event\": \"end\""), std::string::npos) << lines[3];
}

TEST(TrainCommand, ConfigErrorExitsNonZeroWithMessage) {
  const std::string bad = temp_path("bad_layer.yaml");
  {
    std::ifstream in(kSmoke);
    std::stringstream text;
    text << in.rdbuf();
    std::string yaml = text.str();
    yaml.replace(yaml.find("type: relu"), 10, "type: reluu");
    std::ofstream(bad) << yaml;
  }
  const CommandResult r = run_command(std::string(DPTRAIN_BINARY) + " train " + bad);
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find(bad + ":"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("unknown layer type 'reluu'"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("known types:"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("conv2d"), std::string::npos) << r.output;
}

TEST(TrainCommand, BadOverrideAndMissingConfigFail) {
  CommandResult r = run_command(std::string(DPTRAIN_BINARY) + " train " + kSmoke + " --set train.epochs=abc");
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("--set train.epochs"), std::string::npos) << r.output;
  r = run_command(std::string(DPTRAIN_BINARY) + " train /nonexistent.yaml");
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("/nonexistent.yaml"), std::string::npos) << r.output;
}

TEST(ShippedConfigs, DryRunBuildsEveryShippedConfig) {
  if (!std::filesystem::exists("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz")) {
    GTEST_SKIP() << "Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist, or scripts/install-deps.sh)";
  }
  size_t checked = 0;
  for (const auto& entry : std::filesystem::directory_iterator(std::string(DPTRAIN_SOURCE_DIR) + "/configs")) {
    if (entry.path().extension() != ".yaml") continue;
    std::string extra;
    std::ifstream text(entry.path());
    const std::string yaml((std::istreambuf_iterator<char>(text)), std::istreambuf_iterator<char>());
    if (yaml.find("type: image_folder") != std::string::npos) {
      // Its data.dir is a placeholder for the user's images: give it a small generated folder.
      const std::string images = temp_path("shipped_images");
      const CommandResult made = run_command("python3 " + std::string(DPTRAIN_SOURCE_DIR) +
                                             "/scripts/make_image_folder.py " + images + " --per-class 5");
      ASSERT_EQ(made.exit_code, 0) << made.output;
      extra = " --set data.dir=" + images + " --set data.validation_fraction=0.2 --set device=cpu";
    }
    const CommandResult r =
        run_command(std::string(DPTRAIN_BINARY) + " train " + entry.path().string() + " --dry-run" + extra);
    EXPECT_EQ(r.exit_code, 0) << entry.path() << "\n" << r.output;
    EXPECT_NE(r.output.find("config OK"), std::string::npos) << r.output;
    EXPECT_NE(r.output.find("softmax_cross_entropy"), std::string::npos) << r.output;
    ++checked;
  }
  EXPECT_GE(checked, 3u);
}

TEST(TrainCommand, TruncatedDataFileFailsNamingIt) {
  const std::string dir = temp_path("idx");
  std::filesystem::create_directories(dir);
  {
    // An IDX image header promising 10 images of 12x12 followed by only 5 bytes.
    std::ofstream out(dir + "/images.idx", std::ios::binary);
    const unsigned char header[] = {0, 0, 8, 3, 0, 0, 0, 10, 0, 0, 0, 12, 0, 0, 0, 12, 1, 2, 3, 4, 5};
    out.write(reinterpret_cast<const char*>(header), sizeof header);
  }
  const CommandResult r = run_command(
      std::string(DPTRAIN_BINARY) + " train " + kSmoke + " --set 'data={type: idx, dir: " + dir +
      ", train_images: images.idx, train_labels: labels.idx, test_images: images.idx, test_labels: labels.idx}'");
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find(dir + "/images.idx"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("truncated"), std::string::npos) << r.output;
}

TEST(TrainCommand, VersionNamesBackends) {
  const CommandResult r = run_command(std::string(DPTRAIN_BINARY) + " --version");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("backends: cpu"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace dptrain
