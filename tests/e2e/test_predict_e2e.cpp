// `dptrain predict` through the binary: a small CNN trained on a generated image folder predicts its
// test images exactly as the run's own evaluation classifies them (the same top-1 class per image, the
// same accuracy as `dptrain eval`), with the folder's class names; the table, JSON lines and CSV forms;
// under mpirun; a grey IDX model fed an RGB image of another size, with its data gone; an older
// checkpoint without class names; and every bad input as one message and exit code 1.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <hdf5.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "runtime/checkpoint/checkpoint.h"
#include "runtime/core/cpu_backend.h"
#include "runtime/core/run_config.h"
#include "runtime/data/dataset.h"
#include "runtime/data/image_io.h"
#include "runtime/train/model.h"
#include "runtime/train/model_state.h"
#include "tests/e2e/run_command.h"
#include "tests/json_value.h"
#include "tests/runtime/data/test_idx_files.h"
#include "tests/runtime/data/test_image_files.h"
#include "tests/test_util.h"

namespace dptrain {
namespace DPTRAIN_TEST_UNIT {

namespace fs = std::filesystem;
using e2e::CommandResult;
using e2e::run_command;
using testing::FolderRecipe;
using ::testing::HasSubstr;
using ::testing::Not;
using testing::write_image_folder;

const std::string kBinary = DPTRAIN_BINARY;

// The run: a CNN with batch norm and dropout on 12 x 12 RGB images of 4 classes; test images in their own folder.
std::string image_run(const std::string& dir) {
  return "name: predict_e2e\nseed: 7\nthreads: 2\ndevice: cpu\n"
         "data:\n  type: image_folder\n  dir: " +
         dir + "/train\n  test_dir: " + dir +
         "/test\n"
         "  shape: [3, 12, 12]\n  mean: [0.5, 0.4, 0.4]\n  std: [0.25, 0.25, 0.25]\n"
         "model:\n"
         "  - {type: conv2d, out_channels: 8, kernel: 3, padding: 1}\n"
         "  - {type: batchnorm2d}\n"
         "  - {type: relu}\n"
         "  - {type: max_pool2d, kernel: 2}\n"
         "  - {type: flatten}\n"
         "  - {type: dropout, rate: 0.2}\n"
         "  - {type: dense, units: 4}\n"
         "  - {type: softmax_cross_entropy}\n"
         "optimizer:\n  type: sgd\n  lr: 0.02\n  momentum: 0.9\n"
         "train:\n  batch_size: 16\n  epochs: 20\n  eval_batch_size: 7\n"
         "checkpoint:\n  dir: " +
         dir + "/ckpt\n";
}

void write_text(const std::string& path, const std::string& text) { std::ofstream(path) << text; }

// The lines of a file.
std::vector<std::string> lines_of(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

// The newest checkpoint in `dir`.
std::string newest(const std::string& dir) {
  const std::vector<CheckpointFile> files = list_checkpoints(dir);
  return files.empty() ? "" : files.front().path;
}

// Runs `args` of dptrain with stdout into `out` (stderr comes back in the result).
CommandResult dptrain_to(const std::string& args, const std::string& out) {
  return run_command("(" + kBinary + " " + args + " > " + out + ")");
}

// A trained image-folder run, shared by the tests of this file: trained once.
class Predict : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    scratch_ = std::make_unique<test_util::TempDir>("dptrain_predict");
    const std::string dir = scratch_->path();
    FolderRecipe recipe;
    recipe.classes = 4;
    recipe.per_class = 16;
    recipe.size = 12;
    recipe.jpeg_every = 5;
    recipe.grey_every = 7;
    recipe.resize_every = 6;
    write_image_folder(fs::path(dir) / "train", recipe);
    recipe.per_class = 6;
    recipe.seed = 2;
    test_images_ = write_image_folder(fs::path(dir) / "test", recipe);
    write_text(dir + "/run.yaml", image_run(dir));
    const CommandResult r = run_command(kBinary + " train " + dir + "/run.yaml --progress off");
    train_output_ = r.output;
    checkpoint_ = r.exit_code == 0 ? newest(dir + "/ckpt") : "";
  }
  static void TearDownTestSuite() { scratch_.reset(); }

  void SetUp() override { ASSERT_FALSE(checkpoint_.empty()) << train_output_; }
  static std::string file(const std::string& name) { return scratch_->file(name); }

  static std::unique_ptr<test_util::TempDir> scratch_;
  static std::vector<std::string> test_images_;  // class, then name order
  static std::string checkpoint_, train_output_;
};

std::unique_ptr<test_util::TempDir> Predict::scratch_;
std::vector<std::string> Predict::test_images_;
std::string Predict::checkpoint_, Predict::train_output_;

// The class each test image of the run of `checkpoint` gets from the run's own evaluation path: the test
// set as training reads it, through the model with the checkpoint's parameters in evaluation mode.
std::vector<size_t> evaluation_classes(const std::string& checkpoint, std::vector<int32_t>* labels) {
  const CheckpointState state = read_checkpoint(checkpoint);
  RunConfig config = RunConfig::parse(state.config_text, checkpoint);
  const DataSplits data = make_datasets(*config.data, config.seed);
  CpuBackend cpu;
  Model model(config.model, data.test->sample_shape(), cpu, config.seed);
  Tensor params = model.host_parameters(), buffers = model.host_buffers();
  tensors_to_flat(state.parameters, model.parameter_entries(), params, checkpoint);
  tensors_to_flat(state.buffers, model.buffer_entries(), buffers, checkpoint, "buffer");
  model.load_parameters(params);
  model.load_buffers(buffers);
  const size_t n = data.test->size(), per = num_elements(data.test->sample_shape());
  std::vector<float> x(n * per);
  labels->resize(n);
  for (size_t i = 0; i < n; ++i) data.test->get(i, x.data() + i * per, &(*labels)[i]);
  Shape shape = data.test->sample_shape();
  shape.insert(shape.begin(), n);
  std::vector<uint64_t> ids(n);
  StepInfo eval;
  eval.mode = Mode::Eval;
  eval.sample_ids = ids.data();
  model.step(Tensor::view(x.data(), shape), labels->data(), eval, 1.0f);
  const Tensor logits = model.logits(n).to_host();
  const size_t classes = model.num_classes();
  std::vector<size_t> top(n);
  for (size_t i = 0; i < n; ++i) {
    const float* z = logits.data() + i * classes;
    top[i] = static_cast<size_t>(std::max_element(z, z + classes) - z);
  }
  return top;
}

// The run exported to ONNX and run by OpenCV's DNN module gives the probabilities predict prints.
TEST_F(Predict, AnExportedModelInOpenCvAgreesWithPredict) {
  const std::string out = file("all_classes.jsonl"), onnx = file("model.onnx");
  const CommandResult exported =
      run_command(kBinary + " export --checkpoint " + checkpoint_ + " --onnx " + onnx);
  if (exported.output.find("built without ONNX") != std::string::npos) {
    GTEST_SKIP() << "this dptrain was built without ONNX (libonnx-dev): no export to compare";
  }
  ASSERT_EQ(exported.exit_code, 0) << exported.output;
  const CommandResult r =
      dptrain_to("predict --checkpoint " + checkpoint_ + " " + file("test") + " --format jsonl --top-k 4", out);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const CommandResult checked =
      run_command("/usr/bin/python3 " + std::string(DPTRAIN_SOURCE_DIR) + "/tests/e2e/onnx_predict_check.py " + onnx +
                  " " + out + " 0.5,0.4,0.4 0.25,0.25,0.25");
  EXPECT_EQ(checked.exit_code, 0) << checked.output;
  std::printf("%s", checked.output.c_str());
}

TEST_F(Predict, JsonLinesMatchTheRunsEvaluationImageByImage) {
  const std::string out = file("test.jsonl");
  const CommandResult r = dptrain_to(
      "predict --checkpoint " + checkpoint_ + " " + file("test") + " --format jsonl --top-k 4 --batch 5", out);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, Not(HasSubstr("note")));  // the checkpoint has its class names
  const std::vector<std::string> lines = lines_of(out);
  ASSERT_EQ(lines.size(), test_images_.size());

  std::vector<int32_t> labels;
  const std::vector<size_t> expected = evaluation_classes(checkpoint_, &labels);
  ASSERT_EQ(expected.size(), lines.size());
  size_t correct = 0;
  for (size_t i = 0; i < lines.size(); ++i) {
    const testing::JsonValue v = testing::JsonParser(lines[i]).parse_document();
    EXPECT_EQ(v["image"].string, test_images_[i]);
    const auto& top = v["top"].array;
    ASSERT_EQ(top.size(), 4u) << lines[i];
    double sum = 0;
    for (size_t k = 0; k < top.size(); ++k) {
      EXPECT_EQ(top[k]["name"].string, "class_" + std::to_string(static_cast<int>(top[k]["class"].number)));
      if (k > 0) EXPECT_LE(top[k]["probability"].number, top[k - 1]["probability"].number);
      sum += top[k]["probability"].number;
    }
    EXPECT_NEAR(sum, 1.0, 1e-4) << lines[i];
    EXPECT_EQ(static_cast<size_t>(top[0]["class"].number), expected[i]) << test_images_[i];
    correct += static_cast<int32_t>(top[0]["class"].number) == labels[i];
  }

  // `dptrain eval` counts the same images right.
  const CommandResult eval = run_command(kBinary + " eval --checkpoint " + checkpoint_ + " --json");
  ASSERT_EQ(eval.exit_code, 0) << eval.output;
  const testing::JsonValue record = testing::JsonParser(eval.output.substr(eval.output.find('{'))).parse_document();
  EXPECT_EQ(record["samples"].number, static_cast<double>(lines.size()));
  EXPECT_NEAR(record["test_accuracy"].number, static_cast<double>(correct) / lines.size(), 1e-6);  // %.6g
  EXPECT_GT(correct, lines.size() / 2) << "the well-separated classes were not learned:\n" << train_output_;
}

// The run quantized to int8 (dptrain quantize): predict runs it in int8 and counts the test images
// right as `dptrain eval` of the quantized file does, and agrees with the float model's top class.
TEST_F(Predict, AQuantizedModelPredictsAsItsEvaluationCounts) {
  const std::string quantized = file("int8.h5");
  const CommandResult made =
      run_command(kBinary + " quantize " + checkpoint_ + " --calibration-batches 2 --out " + quantized);
  ASSERT_EQ(made.exit_code, 0) << made.output;
  const std::string out = file("int8.jsonl"), float_out = file("float.jsonl");
  ASSERT_EQ(dptrain_to("predict --checkpoint " + quantized + " " + file("test") + " --format jsonl", out).exit_code, 0);
  ASSERT_EQ(dptrain_to("predict --checkpoint " + checkpoint_ + " " + file("test") + " --format jsonl", float_out)
                .exit_code,
            0);
  const std::vector<std::string> lines = lines_of(out), float_lines = lines_of(float_out);
  ASSERT_EQ(lines.size(), test_images_.size());
  ASSERT_EQ(float_lines.size(), lines.size());
  std::vector<int32_t> labels;
  evaluation_classes(checkpoint_, &labels);
  size_t correct = 0, agree = 0;
  for (size_t i = 0; i < lines.size(); ++i) {
    const auto top = testing::JsonParser(lines[i]).parse_document()["top"].array.at(0)["class"].number;
    const auto float_top = testing::JsonParser(float_lines[i]).parse_document()["top"].array.at(0)["class"].number;
    correct += static_cast<int32_t>(top) == labels[i];
    agree += top == float_top;
  }
  EXPECT_GE(agree + 1, lines.size()) << "int8 and float32 top classes differ on " << lines.size() - agree << " images";
  const CommandResult eval = run_command(kBinary + " eval --checkpoint " + quantized + " --json");
  ASSERT_EQ(eval.exit_code, 0) << eval.output;
  const testing::JsonValue record = testing::JsonParser(eval.output.substr(eval.output.find('{'))).parse_document();
  EXPECT_NE(record["int8_kernels"].string, "");
  EXPECT_NEAR(record["test_accuracy"].number, static_cast<double>(correct) / lines.size(), 1e-6);
}

TEST_F(Predict, TableAndCsvNameEachImagesClasses) {
  const std::string table = file("table.txt");
  CommandResult r = dptrain_to(
      "predict --checkpoint " + checkpoint_ + " " + test_images_[0] + " " + test_images_[23] + " --top-k 2", table);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  std::vector<std::string> lines = lines_of(table);
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_THAT(lines[0], ::testing::MatchesRegex("image +top1 +p1 +top2 +p2"));
  EXPECT_THAT(lines[1], ::testing::MatchesRegex(
                            ".*/class_0/img_0000.png +class_[0-3] +[01]\\.[0-9]{4} +class_[0-3] +[01]\\.[0-9]{4}"));
  EXPECT_EQ(lines[1].find("class_"), lines[2].find("class_"));  // aligned

  const std::string csv = file("out.csv");
  r = dptrain_to("predict --checkpoint " + checkpoint_ + " --format csv --top-k 1 " + file("test/class_3"), csv);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  lines = lines_of(csv);
  ASSERT_EQ(lines.size(), 7u);
  EXPECT_EQ(lines[0], "image,class_1,name_1,probability_1");
  EXPECT_THAT(lines[1], ::testing::MatchesRegex(".*/class_3/img_0000.png,[0-3],class_[0-3],[0-9.e-]+"));
}

TEST_F(Predict, UnderMpirunOneWorkerPrintsEachImageOnce) {
  const std::string out = file("mpi.jsonl");
  const CommandResult r = run_command("(" + test_util::kMpirun + "-np 2 " + kBinary + " predict --checkpoint " +
                                      checkpoint_ + " --format jsonl " + file("test") + " > " + out + ")");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(lines_of(out).size(), test_images_.size());
}

TEST_F(Predict, AnOlderCheckpointWithoutClassNamesShowsIndices) {
  const std::string old = file("old.h5");
  fs::copy_file(checkpoint_, old, fs::copy_options::overwrite_existing);
  const hid_t f = H5Fopen(old.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
  ASSERT_GE(f, 0);
  EXPECT_GE(H5Adelete(f, "class_names"), 0);
  EXPECT_GE(H5Adelete(f, "input_shape"), 0);  // the image folder's data.shape says it instead
  ASSERT_GE(H5Fclose(f), 0);
  const std::string a = file("new.csv"), b = file("old.csv");
  CommandResult r = dptrain_to("predict --checkpoint " + checkpoint_ + " --format csv " + file("test"), a);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  r = dptrain_to("predict --checkpoint " + old + " --format csv " + file("test"), b);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr(old + " stores no class names"));
  const std::vector<std::string> named = lines_of(a), plain = lines_of(b);
  ASSERT_EQ(named.size(), plain.size());
  for (size_t i = 1; i < named.size(); ++i) {
    std::string without = named[i];
    for (int k = 0; k < 4; ++k) {
      const std::string name = ",class_" + std::to_string(k) + ",";
      for (size_t at; (at = without.find(name)) != std::string::npos;) without.replace(at, name.size(), ",,");
    }
    EXPECT_EQ(plain[i], without);  // the same classes and probabilities, without names
  }
}

TEST_F(Predict, BadInputIsOneMessageAndExitCodeOne) {
  write_text(file("notes.txt"), "not an image\n");
  fs::create_directories(file("empty/sub"));
  const std::string ck = " --checkpoint " + checkpoint_ + " ";
  const std::pair<std::string, std::string> cases[] = {
      {"predict --checkpoint " + file("missing.h5") + " " + file("test"), file("missing.h5") + ": no such file"},
      {"predict" + ck + file("test") + " " + file("nowhere.png"), file("nowhere.png") + ": no such file or folder"},
      {"predict" + ck + test_images_[0] + " " + file("notes.txt"), file("notes.txt") + ": not a PNG or JPEG file"},
      {"predict" + ck + file("empty"), file("empty") + ": the folder holds no .png, .jpg or .jpeg files"},
  };
  for (const auto& [args, message] : cases) {
    const std::string out = file("bad.out");
    const CommandResult r = dptrain_to(args, out);
    EXPECT_EQ(r.exit_code, 1) << args << "\n" << r.output;
    EXPECT_THAT(r.output, HasSubstr("dptrain: error: " + message)) << args;
    EXPECT_THAT(r.output, Not(HasSubstr("terminate called")));
    EXPECT_TRUE(lines_of(out).empty()) << args;  // nothing half printed
  }
  const CommandResult usage = run_command(kBinary + " predict" + ck + " --top-k 0 " + file("test"));
  EXPECT_EQ(usage.exit_code, 2) << usage.output;
}

// A grey 28 x 28 model of IDX files (as Fashion-MNIST's) predicts an RGB PNG of another size after its
// data is gone; a model of 2-channel inputs says that images cannot be made into them.
TEST(PredictShapes, GreyIdxModelTakesAnRgbImageOfAnySize) {
  test_util::TempDir dir("dptrain_predict_idx");
  const uint32_t n = 24;
  std::vector<uint8_t> pixels(n * 28 * 28), labels(n);
  for (size_t i = 0; i < n; ++i) {
    labels[i] = static_cast<uint8_t>(i % 3);
    for (size_t j = 0; j < 28 * 28; ++j)
      pixels[i * 784 + j] = static_cast<uint8_t>(j % 28 < 9 * (labels[i] + 1) ? 200 : 20);
  }
  for (const char* part : {"train", "test"}) {
    testing::write_file(dir.file(std::string(part) + "-images"), testing::idx_bytes({n, 28, 28}, pixels),
                        testing::Gzip::No);
    testing::write_file(dir.file(std::string(part) + "-labels"), testing::idx_bytes({n}, labels), testing::Gzip::No);
  }
  write_text(dir.file("idx.yaml"),
             "name: idx_e2e\nseed: 3\nthreads: 1\ndevice: cpu\n"
             "data:\n  type: idx\n  dir: " +
                 dir.path() +
                 "\n  classes: 3\n  train_images: train-images\n"
                 "  train_labels: train-labels\n  test_images: test-images\n  test_labels: test-labels\n"
                 "  mean: [0.3]\n  std: [0.4]\n"
                 "model:\n  - {type: flatten}\n  - {type: dense, units: 3}\n  - {type: softmax_cross_entropy}\n"
                 "optimizer:\n  type: sgd\n  lr: 0.1\ntrain:\n  batch_size: 8\n  epochs: 1\n"
                 "checkpoint:\n  dir: " +
                 dir.file("ckpt") + "\n");
  CommandResult r = run_command(kBinary + " train " + dir.file("idx.yaml") + " --progress off");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  for (const char* f : {"train-images", "train-labels", "test-images", "test-labels"}) fs::remove(dir.file(f));
  Image rgb{40, 30, 3, std::vector<uint8_t>(40 * 30 * 3, 90)};
  write_file_bytes(dir.file("photo.png"), encode_png(rgb));
  const std::string out = dir.file("out.jsonl");
  r = dptrain_to("predict --checkpoint " + newest(dir.file("ckpt")) + " --format jsonl " + dir.file("photo.png"), out);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("stores no class names"));
  const std::vector<std::string> lines = lines_of(out);
  ASSERT_EQ(lines.size(), 1u);
  const testing::JsonValue v = testing::JsonParser(lines[0]).parse_document();
  EXPECT_EQ(v["top"].array.size(), 3u);  // --top-k 5 of 3 classes
  EXPECT_FALSE(v["top"].array[0].has("name"));
}

TEST(PredictShapes, InputsOfOtherChannelsAreRefused) {
  test_util::TempDir dir("dptrain_predict_channels");
  write_text(dir.file("two.yaml"),
             "name: two_channels\nseed: 3\nthreads: 1\ndevice: cpu\n"
             "data:\n  type: synthetic\n  train_samples: 32\n  test_samples: 8\n  shape: [2, 6, 6]\n  classes: 2\n"
             "model:\n  - {type: flatten}\n  - {type: dense, units: 2}\n  - {type: softmax_cross_entropy}\n"
             "optimizer:\n  type: sgd\n  lr: 0.1\ntrain:\n  batch_size: 8\n  epochs: 1\n"
             "checkpoint:\n  dir: " +
                 dir.file("ckpt") + "\n");
  CommandResult r = run_command(kBinary + " train " + dir.file("two.yaml") + " --progress off");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  Image grey{6, 6, 1, std::vector<uint8_t>(36, 128)};
  write_file_bytes(dir.file("grey.png"), encode_png(grey));
  r = run_command(kBinary + " predict --checkpoint " + newest(dir.file("ckpt")) + " " + dir.file("grey.png"));
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_THAT(r.output, HasSubstr("dptrain: error: the model takes inputs of (2, 6, 6) (C, H, W): PNG and JPEG "
                                  "images give 1 (grey) or 3 (RGB) channels, and cannot be converted to 2"));
}

}  // namespace DPTRAIN_TEST_UNIT
}  // namespace dptrain
