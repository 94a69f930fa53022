// `dptrain export` as a user meets it: a trained checkpoint written as an ONNX file that onnx.checker
// and OpenCV accept, and one clear message with exit 1 for a missing checkpoint or output folder.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "tests/e2e/run_command.h"
#include "tests/runtime/data/test_image_files.h"
#include "tests/test_util.h"

namespace dptrain {
namespace DPTRAIN_TEST_UNIT {

namespace fs = std::filesystem;
using e2e::run_command;

const std::string kBinary = DPTRAIN_BINARY;
const std::string kSource = DPTRAIN_SOURCE_DIR;

// A checkpoint of ResNet-20 after one short epoch on synthetic Fashion-MNIST-shaped data.
std::string train_resnet20(const fs::path& dir) {
  const e2e::CommandResult trained = run_command(
      kBinary + " train " + kSource + "/configs/resnet20_fashion_mnist.yaml --progress off --set device=cpu" +
      " --set 'data={type: synthetic, train_samples: 256, test_samples: 32, shape: [1, 28, 28], classes: 10}'" +
      " --set train.epochs=1 --set train.batch_size=64 --set threads=2 --set checkpoint.dir=" + (dir / "ckpt").string());
  EXPECT_EQ(trained.exit_code, 0) << trained.output;
  for (const auto& entry : fs::directory_iterator(dir / "ckpt")) {
    if (entry.path().extension() == ".h5") return entry.path().string();
  }
  ADD_FAILURE() << "no checkpoint in " << dir / "ckpt";
  return "";
}

TEST(ExportCommand, WritesAnOnnxFileThatOnnxAndOpenCvAccept) {
  test_util::TempDir dir("export");
  const std::string checkpoint = train_resnet20(fs::path(dir.path()));
  const fs::path onnx = fs::path(dir.path()) / "resnet20.onnx";
  const e2e::CommandResult exported =
      run_command(kBinary + " export --checkpoint " + checkpoint + " --onnx " + onnx.string());
  ASSERT_EQ(exported.exit_code, 0) << exported.output;
  EXPECT_NE(exported.output.find("outputs logits and probabilities"), std::string::npos) << exported.output;
  ASSERT_TRUE(fs::exists(onnx));
  {
    std::ofstream zeros(fs::path(dir.path()) / "inputs.f32", std::ios::binary);
    const std::string bytes(2 * 28 * 28 * sizeof(float), '\0');
    zeros << bytes;
  }
  const e2e::CommandResult checked =
      run_command("/usr/bin/python3 " + kSource + "/tests/runtime/export/onnx_reference.py " + onnx.string() + " " +
                  (fs::path(dir.path()) / "inputs.f32").string() + " 2 " + dir.path());
  EXPECT_EQ(checked.exit_code, 0) << checked.output;
  EXPECT_NE(checked.output.find("checker passed"), std::string::npos) << checked.output;
}

// A checkpoint holds its model's input shape, so exporting it needs no data set: the image folder the
// run trained on is gone.
TEST(ExportCommand, ExportsWithoutTheDataTheRunTrainedOn) {
  test_util::TempDir dir("export_no_data");
  const fs::path images = fs::path(dir.path()) / "images";
  testing::FolderRecipe recipe;
  recipe.classes = 2;
  recipe.per_class = 8;
  recipe.size = 10;
  testing::write_image_folder(images, recipe);
  const e2e::CommandResult trained = run_command(
      kBinary + " train " + kSource + "/configs/synthetic_smoke.yaml --progress off --set device=cpu --set threads=1" +
      " --set 'data={type: image_folder, dir: " + images.string() + ", shape: [3, 10, 10], validation_fraction: 0.25}'" +
      " --set model.6.units=2 --set train.epochs=1 --set train.batch_size=4 --set checkpoint.dir=" + dir.file("ckpt"));
  ASSERT_EQ(trained.exit_code, 0) << trained.output;
  fs::remove_all(images);
  std::string checkpoint;
  for (const auto& entry : fs::directory_iterator(dir.file("ckpt"))) checkpoint = entry.path().string();
  const fs::path onnx = fs::path(dir.path()) / "model.onnx";
  const e2e::CommandResult exported =
      run_command(kBinary + " export --checkpoint " + checkpoint + " --onnx " + onnx.string());
  ASSERT_EQ(exported.exit_code, 0) << exported.output;
  EXPECT_NE(exported.output.find("outputs logits and probabilities"), std::string::npos) << exported.output;
  EXPECT_GT(fs::file_size(onnx), 1000u);
}

TEST(ExportCommand, AMissingCheckpointOrFolderIsOneClearError) {
  test_util::TempDir dir("export_errors");
  const e2e::CommandResult missing = run_command(kBinary + " export --checkpoint " + (fs::path(dir.path()) / "none.h5").string() +
                                                 " --onnx " + (fs::path(dir.path()) / "out.onnx").string());
  EXPECT_EQ(missing.exit_code, 1) << missing.output;
  EXPECT_NE(missing.output.find("none.h5"), std::string::npos) << missing.output;
  EXPECT_FALSE(fs::exists(fs::path(dir.path()) / "out.onnx"));

  const std::string checkpoint = train_resnet20(fs::path(dir.path()));
  const fs::path nowhere = fs::path(dir.path()) / "no_such_folder" / "out.onnx";
  const e2e::CommandResult unwritable =
      run_command(kBinary + " export --checkpoint " + checkpoint + " --onnx " + nowhere.string());
  EXPECT_EQ(unwritable.exit_code, 1) << unwritable.output;
  EXPECT_NE(unwritable.output.find("cannot write the ONNX file"), std::string::npos) << unwritable.output;
}

}  // namespace
}  // namespace dptrain
