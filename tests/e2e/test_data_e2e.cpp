// End to end through the dptrain binary: `dptrain data convert` from IDX files and from an image folder
// (read back, and by h5dump/h5ls), its guarantees for existing output files, and the image-folder CNN
// config learning a generated image folder, and a data.shape too large to decode refused with one message.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "runtime/core/config_map.h"
#include "runtime/data/dataset.h"
#include "runtime/data/hdf5_dataset.h"
#include "runtime/data/idx_dataset.h"
#include "tests/e2e/run_command.h"
#include "tests/runtime/data/test_idx_files.h"
#include "tests/runtime/data/test_image_files.h"
#include "tests/test_util.h"

namespace dptrain {
namespace DPTRAIN_TEST_UNIT {

using testing::FolderRecipe;
using testing::Gzip;
using ::testing::HasSubstr;
using testing::ScratchDir;

const std::string kBinary = DPTRAIN_BINARY;
const std::string kTutorial = std::string(DPTRAIN_SOURCE_DIR) + "/configs/cifar_tutorial.yaml";

using e2e::CommandResult;
using e2e::run_command;

using test_util::expect_same_samples;

Hdf5Source part(const std::string& file, const std::string& group) {
  return Hdf5Source{file, group + "/images", group + "/labels"};
}

bool has_temporary_files(const std::filesystem::path& dir) {
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (entry.path().filename().string().find(".tmp-") != std::string::npos) return true;
  }
  return false;
}

TEST(DataConvert, IdxRoundTripReadableByTheHdf5Tools) {
  ScratchDir dir;
  testing::write_pair(dir, "train", 120, 7, 5, 4, Gzip::Yes);
  testing::write_pair(dir, "test", 30, 7, 5, 4, Gzip::No);
  const std::string out = dir.file("idx.h5");
  const CommandResult r =
      run_command(kBinary + " data convert --from-idx " + dir.file("train-images") + " " + dir.file("train-labels") +
                  " " + dir.file("test-images") + " " + dir.file("test-labels") + " --out " + out + " --chunk 16");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output,
              HasSubstr("wrote " + out + ": 120 training and 30 test samples of (1, 7, 5) (uint8), 4 classes"));
  EXPECT_THAT(r.output, HasSubstr("chunks of 16 samples with Fletcher-32 checksums"));

  const auto idx_train = IdxDataset::load(dir.file("train-images"), dir.file("train-labels"), 0.2f, 0.3f, 4);
  const auto idx_test = IdxDataset::load(dir.file("test-images"), dir.file("test-labels"), 0.2f, 0.3f, 4);
  expect_same_samples(Hdf5Dataset(part(out, "/train"), {0.2f}, {0.3f}, 0, 16), *idx_train);
  expect_same_samples(Hdf5Dataset(part(out, "/test"), {0.2f}, {0.3f}, 0, 16), *idx_test);

  const CommandResult ls = run_command("h5ls -r " + out);
  ASSERT_EQ(ls.exit_code, 0) << ls.output;
  EXPECT_THAT(ls.output, HasSubstr("/train/images            Dataset {120/Inf, 1, 7, 5}"));
  EXPECT_THAT(ls.output, HasSubstr("/test/labels             Dataset {30/Inf}"));
  const CommandResult header = run_command("h5dump -p -H " + out);
  ASSERT_EQ(header.exit_code, 0) << header.output;
  EXPECT_THAT(header.output, HasSubstr("CHECKSUM FLETCHER32"));
  EXPECT_THAT(header.output, HasSubstr("CHUNKED ( 16, 1, 7, 5 )"));
  const CommandResult labels = run_command("h5dump -d /test/labels " + out);
  ASSERT_EQ(labels.exit_code, 0) << labels.output;
  EXPECT_THAT(labels.output, HasSubstr("(0): 0, 1, 2, 3, 0, 1, 2, 3,"));
}

TEST(DataConvert, ImageFolderConfigWithItsSplit) {
  ScratchDir dir;
  FolderRecipe recipe;
  recipe.per_class = 8;
  recipe.size = 16;
  recipe.jpeg_every = 3;
  recipe.resize_every = 4;
  write_image_folder(dir.path() / "images", recipe);
  const std::string out = dir.file("folder.h5");
  const std::string sets = " --set data.dir=" + (dir.path() / "images").string() + " --set 'data.shape=[3, 16, 16]'";
  const CommandResult r = run_command(kBinary + " data convert " + kTutorial + sets + " --out " + out);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("24 training and 8 test samples of (3, 16, 16)"));

  // The file holds the folder's training and validation parts exactly, with the class names.
  ConfigMap top = ConfigMap::parse("data:\n  type: image_folder\n  dir: " + (dir.path() / "images").string() +
                                       "\n  shape: [3, 16, 16]\n  mean: [0.4914, 0.4822, 0.4465]\n  std: 0.25\n",
                                   "expected.yaml");
  ConfigMap data = top.get_map("data");
  const DataSplits expected = make_datasets(data, 42);  // the tutorial config's seed
  const Hdf5Dataset train(part(out, "/train"), {0.4914f, 0.4822f, 0.4465f}, {0.25f}, 0, 16);
  expect_same_samples(train, *expected.train);
  expect_same_samples(Hdf5Dataset(part(out, "/test"), {0.4914f, 0.4822f, 0.4465f}, {0.25f}, 0, 16), *expected.test);
  EXPECT_EQ(train.class_names(), expected.train->class_names());

  // dptrain trains on the converted file (one short epoch of a narrow model).
  const CommandResult t =
      run_command(kBinary + " train " + kTutorial + " --set 'data={type: hdf5, file: " + out +
                  ", augment: {crop_padding: 2, horizontal_flip: true}}' --set train.epochs=1 --set train.batch_size=8"
                  " --set model.0.out_channels=4 --set model.3.out_channels=4 --set model.6.out_channels=4"
                  " --set model.9.units=8 --set threads=2 --progress off");
  ASSERT_EQ(t.exit_code, 0) << t.output;
  EXPECT_THAT(t.output, HasSubstr("hdf5 " + out + ":/train/images: 24 x (3, 16, 16) uint8, 4 classes (class_0, "));
  EXPECT_THAT(t.output, HasSubstr("epoch 1/1"));
}

TEST(DataConvert, ExistingOutputIsNeverDamaged) {
  ScratchDir dir;
  testing::write_pair(dir, "train", 3000, 28, 28, 10, Gzip::No);
  testing::write_pair(dir, "test", 100, 28, 28, 10, Gzip::No);
  const std::string idx = " --from-idx " + dir.file("train-images") + " " + dir.file("train-labels") + " " +
                          dir.file("test-images") + " " + dir.file("test-labels");
  const std::string out = dir.file("existing.h5");
  testing::write_file(out, {'k', 'e', 'e', 'p'}, Gzip::No);
  const std::vector<uint8_t> before = testing::read_bytes(out);

  CommandResult r = run_command(kBinary + " data convert" + idx + " --out " + out);
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_THAT(r.output, HasSubstr(out + ": already exists"));
  EXPECT_THAT(r.output, HasSubstr("--force"));
  EXPECT_EQ(testing::read_bytes(out), before);

  // A missing input fails before anything is written.
  r = run_command(kBinary + " data convert --from-idx " + dir.file("nope") + " a b c --out " + out + " --force");
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_THAT(r.output, HasSubstr(dir.file("nope") + ": no such file"));
  EXPECT_EQ(testing::read_bytes(out), before);

  // The disk "fills up" half way through writing (a file size limit, its signal ignored so that writes
  // fail with EFBIG): the conversion fails cleanly, the old file is intact and no temporary file is left.
  r = run_command("trap '' XFSZ; ulimit -f 256; exec " + kBinary + " data convert" + idx + " --out " + out +
                  " --force");
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_THAT(r.output, HasSubstr("nothing was written to " + out));
  EXPECT_EQ(testing::read_bytes(out), before);
  EXPECT_FALSE(has_temporary_files(dir.path()));

  // Without the limit, --force replaces it.
  r = run_command(kBinary + " data convert" + idx + " --out " + out + " --force");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_GT(testing::read_bytes(out).size(), 3000u * 784u);
  EXPECT_FALSE(has_temporary_files(dir.path()));

  r = run_command(kBinary + " data convert " + kTutorial + idx + " --out " + dir.file("x.h5"));
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_THAT(r.output, HasSubstr("not both or neither"));
}

// The metrics file's last test_accuracy.
double final_test_accuracy(const std::string& metrics) {
  std::ifstream in(metrics);
  double accuracy = -1;
  for (std::string line; std::getline(in, line);) {
    const size_t at = line.find("\"test_accuracy\": ");
    if (line.find("\"event\": \"end\"") != std::string::npos && at != std::string::npos) {
      accuracy = std::stod(line.substr(at + 17));
    }
  }
  return accuracy;
}

TEST(ImageFolderTraining, TutorialCnnLearnsAGeneratedImageFolder) {
  ScratchDir dir;
  FolderRecipe recipe;
  recipe.classes = 4;
  recipe.per_class = 100;
  recipe.size = 32;
  recipe.jpeg_every = 5;
  recipe.grey_every = 7;
  recipe.resize_every = 6;
  write_image_folder(dir.path() / "images", recipe);
  const std::string sets = " --set data.dir=" + (dir.path() / "images").string() +
                           " --set model.0.out_channels=16 --set model.3.out_channels=16"
                           " --set model.6.out_channels=32 --set model.9.units=64 --set threads=2";

  CommandResult r = run_command(kBinary + " train " + kTutorial + sets + " --dry-run");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("config OK"));
  EXPECT_THAT(r.output, HasSubstr("4 classes (class_0, class_1, class_2, class_3), 320 train / 80 validation of "
                                  "(3, 32, 32), training part"));

  // From PyTorch's default initialisation (the default `init`) this narrowed CNN learns more slowly
  // than from He-uniform weights: 5 epochs reached only 0.5 here, 10 leave room.
  const std::string metrics = dir.file("metrics.jsonl");
  r = run_command(kBinary + " train " + kTutorial + sets +
                  " --set train.epochs=10 --set train.batch_size=16 --progress off --metrics " + metrics);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const double accuracy = final_test_accuracy(metrics);
  EXPECT_GT(accuracy, 0.6) << r.output;  // four classes: chance is 0.25
}

TEST(ImageFolderTraining, AHugeDataShapeIsOneMessageNamingItNotACrash) {
  ScratchDir dir;
  FolderRecipe recipe;
  recipe.classes = 2;
  recipe.per_class = 3;
  recipe.size = 8;
  write_image_folder(dir.path() / "images", recipe);
  const CommandResult r =
      run_command(kBinary + " train " + kTutorial + " --set data.dir=" + (dir.path() / "images").string() +
                  " --set 'data.shape=[3,100000,100000]'");
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_THAT(r.output, HasSubstr("data.shape"));
  EXPECT_THAT(r.output, HasSubstr("asks for images of 100000 x 100000 pixels, more than dptrain decodes"));
  EXPECT_THAT(r.output, ::testing::Not(HasSubstr("terminate called")));
}

}  // namespace
}  // namespace dptrain
