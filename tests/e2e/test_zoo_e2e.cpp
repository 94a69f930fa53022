// End to end: the model zoo's image-folder configs build with the parameter counts of their
// torchvision counterparts, and a torchvision ResNet-18 converted by scripts/convert_torchvision.py
// fine-tunes on a small image folder with a new classifier and frozen early layers.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <map>
#include <string>

#include "runtime/checkpoint/checkpoint.h"
#include "runtime/train/model.h"
#include "tests/e2e/run_command.h"

namespace dptrain {
namespace DPTRAIN_TEST_UNIT {

namespace fs = std::filesystem;
using e2e::CommandResult;
using e2e::run_command;

const std::string kSource = DPTRAIN_SOURCE_DIR;

// A scratch folder for one test, removed afterwards.
class ZooTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("dptrain_zoo_" + std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()) + "_" +
            std::to_string(getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override {
    if (!HasFailure()) fs::remove_all(dir_);
  }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }

  // A generated image folder of `classes` classes of `per_class` `size`x`size` images.
  std::string make_images(int classes, int per_class, int size) {
    const std::string images = path("images");
    const CommandResult r = run_command("/usr/bin/python3 " + kSource + "/scripts/make_image_folder.py " + images +
                                        " --classes " + std::to_string(classes) + " --per-class " +
                                        std::to_string(per_class) + " --size " + std::to_string(size));
    EXPECT_EQ(r.exit_code, 0) << r.output;
    return images;
  }

  fs::path dir_;
};

std::string dptrain(const std::string& args) { return std::string(DPTRAIN_BINARY) + " " + args; }

// The number after "total parameters: " in a dry run's model summary, or 0.
size_t total_parameters(const std::string& output) {
  const std::string key = "total parameters: ";
  const size_t at = output.find(key);
  return at == std::string::npos ? 0 : std::stoul(output.substr(at + key.size()));
}

TEST_F(ZooTest, ImageFolderConfigsHaveTorchvisionParameterCounts) {
  const std::string images = make_images(2, 4, 32);
  const std::map<std::string, size_t> expected = {
      {"resnet18_imagefolder.yaml", 11689512}, {"resnet50_imagefolder.yaml", 25557032}, {"inception_small.yaml", 0}};
  for (const auto& [config, parameters] : expected) {
    const CommandResult r = run_command(dptrain("train " + kSource + "/configs/" + config + " --dry-run --set data.dir=" +
                                                images + " --set data.validation_fraction=0.5 --set device=cpu"));
    ASSERT_EQ(r.exit_code, 0) << config << ":\n" << r.output;
    EXPECT_NE(r.output.find("config OK"), std::string::npos) << r.output;
    if (parameters) {
      EXPECT_EQ(total_parameters(r.output), parameters) << config;
    } else {  // the Inception network: a stem and three modules of four concatenated branches
      EXPECT_GT(total_parameters(r.output), 1000000u) << r.output;
      EXPECT_NE(r.output.find("inception4a"), std::string::npos) << r.output;
    }
  }
}

class FineTuneTest : public ZooTest {
 protected:
  // A torchvision ResNet-18 with random weights, converted for the zoo config; returns the .h5 path.
  std::string converted_resnet18() {
    const std::string pth = path("resnet18.pth"), h5 = path("resnet18.h5");
    const CommandResult made = run_command(
        "/usr/bin/python3 -c \"import torch, torchvision; torch.manual_seed(3); "
        "torch.save(torchvision.models.resnet18().state_dict(), '" + pth + "')\"");
    EXPECT_EQ(made.exit_code, 0) << made.output << "\n(needs python3-torchvision: scripts/install-deps.sh)";
    const CommandResult converted = run_command("/usr/bin/python3 " + kSource + "/scripts/convert_torchvision.py " +
                                                pth + " " + kConfig + " " + h5);
    EXPECT_EQ(converted.exit_code, 0) << converted.output;
    return h5;
  }

  // `dptrain train` of the ResNet-18 config on `images` at 64x64 with 3 classes, plus `extra` arguments.
  CommandResult train(const std::string& images, const std::string& extra) {
    return run_command(dptrain("train " + kConfig + " --set data.dir=" + images +
                               " --set data.shape=[3,64,64] --set data.eval_resize=64 --set data.validation_fraction=0.25"
                               " --set model.10.units=3 --set train.batch_size=8 --set train.eval_batch_size=8"
                               " --set threads=2 --set device=cpu --set lr_schedule.warmup_epochs=0"
                               " --set optimizer.lr=0.05 --progress off " + extra));
  }

  const std::string kConfig = kSource + "/configs/resnet18_imagefolder.yaml";
};

bool same_values(const CheckpointTensor& a, const CheckpointTensor& b) {
  return a.shape == b.shape && std::memcmp(a.values.data(), b.values.data(), a.values.size() * sizeof(float)) == 0;
}

TEST_F(FineTuneTest, ResNet18FromTorchvisionTrainsNewHeadWithFrozenStem) {
  const std::string images = make_images(3, 8, 64);
  const std::string h5 = converted_resnet18();
  const std::string init = " --set init.from=" + h5 + " --set init.skip=[fc] --set init.freeze=[conv1,bn1,layer1]";
  const std::string ckpt = path("ckpt");
  CommandResult r = train(images, "--set train.epochs=1 --set checkpoint.dir=" + ckpt + init);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("init: loaded 100 tensors from " + h5 + "; left as initialised: fc.weight, fc.bias"),
            std::string::npos)
      << r.output;

  const std::vector<CheckpointFile> saved = list_checkpoints(ckpt);
  ASSERT_EQ(saved.size(), 1u);
  const CheckpointState before = read_checkpoint(h5), after = read_checkpoint(saved[0].path);
  std::map<std::string, const CheckpointTensor*> original;
  for (const CheckpointTensor& t : before.parameters) original[t.name] = &t;
  size_t frozen = 0, changed = 0;
  for (const CheckpointTensor& t : after.parameters) {
    if (t.name.rfind("fc.", 0) == 0) {
      EXPECT_EQ(t.shape, (t.name == "fc.weight" ? Shape{3, 512} : Shape{3}));
      continue;
    }
    ASSERT_TRUE(original.count(t.name)) << t.name;
    const bool is_frozen = parameter_matches("conv1", t.name) || parameter_matches("bn1", t.name) ||
                           parameter_matches("layer1", t.name);
    if (is_frozen) {
      EXPECT_TRUE(same_values(t, *original[t.name])) << t.name << " is frozen but changed";
      ++frozen;
    } else {
      EXPECT_FALSE(same_values(t, *original[t.name])) << t.name << " is trained but did not change";
      ++changed;
    }
  }
  EXPECT_EQ(frozen, 15u);   // conv1, bn1 (2), layer1: 2 blocks of conv1, bn1 (2), conv2, bn2 (2)
  EXPECT_EQ(changed, 45u);  // layer2..layer4 (3 stages of 15, with their downsample convolutions and norms)

  // Resuming continues from the run's own checkpoint, not from init.from.
  r = train(images, "--set train.epochs=2 --resume auto --set checkpoint.dir=" + ckpt + init);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const std::vector<CheckpointFile> resumed = list_checkpoints(ckpt);
  ASSERT_EQ(resumed.size(), 2u);
  EXPECT_EQ(resumed[0].epoch, 2u);
  EXPECT_EQ(resumed[0].global_step, 2 * saved[0].global_step);
  const CheckpointState second = read_checkpoint(resumed[0].path);
  for (size_t i = 0; i < second.parameters.size(); ++i) {
    const CheckpointTensor& t = second.parameters[i];
    if (parameter_matches("layer1", t.name)) EXPECT_TRUE(same_values(t, *original[t.name])) << t.name;
    if (t.name == "fc.weight") EXPECT_FALSE(same_values(t, after.parameters[i]));
  }
}

TEST_F(FineTuneTest, MistakesInInitNameTheKeyAndTheFix) {
  const std::string images = make_images(3, 4, 64);
  const std::string h5 = converted_resnet18();
  // A new classifier of another shape that is not skipped.
  CommandResult r = train(images, "--dry-run --set init.from=" + h5);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("'fc.weight' has shape (1000, 512) in the checkpoint, but (3, 512) in the model"),
            std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("init.skip"), std::string::npos) << r.output;
  // Entries that match nothing.
  r = train(images, "--dry-run --set init.from=" + h5 + " --set init.skip=[fc] --set init.freeze=[layer9]");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("init.freeze"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("'layer9' matches no parameter"), std::string::npos) << r.output;
  r = train(images, "--dry-run --set init.from=" + h5 + " --set init.skip=[head]");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("init.skip"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("'head' matches no parameter"), std::string::npos) << r.output;
  r = train(images, "--dry-run --set init.from=" + path("missing.h5"));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("init.from"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace dptrain
