// ONNX export checked against software nobody here wrote: the demo CNN and ResNet-20 (batch norm with
// running statistics, residual adds), exported, pass onnx.checker and run in OpenCV's DNN module
// (onnx_reference.py, Debian's python3-onnx and python3-opencv), which must compute the logits and
// probabilities dptrain's own evaluation forward computes on the same inputs.
#include <gtest/gtest.h>
#include <onnx/onnx_pb.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <cstring>
#include <fstream>
#include <iterator>
#include <set>

#include "runtime/core/context.h"
#include "runtime/core/errors.h"
#include "runtime/core/rng.h"
#include "runtime/core/run_config.h"
#include "runtime/export/onnx_export.h"
#include "runtime/train/model.h"
#include "tests/e2e/run_command.h"

namespace dptrain {
namespace DPTRAIN_TEST_UNIT {

namespace fs = std::filesystem;

std::vector<float> read_floats(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in) << "cannot read " << path;
  std::vector<float> values(fs::exists(path) ? fs::file_size(path) / sizeof(float) : 0);
  in.read(reinterpret_cast<char*>(values.data()), static_cast<std::streamsize>(values.size() * sizeof(float)));
  return values;
}

void write_floats(const fs::path& path, const std::vector<float>& values) {
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(values.data()), static_cast<std::streamsize>(values.size() * sizeof(float)));
}

// max |a - b| / max |b|.
double relative_difference(const std::vector<float>& a, const std::vector<float>& b) {
  double diff = 0, scale = 0;
  for (size_t i = 0; i < b.size(); ++i) {
    diff = std::max(diff, std::fabs(static_cast<double>(a[i]) - b[i]));
    scale = std::max(scale, std::fabs(static_cast<double>(b[i])));
  }
  return scale > 0 ? diff / scale : diff;
}

// A fresh folder for one test's files.
fs::path scratch(const std::string& name) {
  const fs::path dir = fs::temp_directory_path() / ("dptrain_onnx_" + name + "_" + std::to_string(getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

std::vector<std::string> with_cpu(std::vector<std::string> overrides) {
  overrides.push_back("device=cpu");
  return overrides;
}

// The model of a shipped config on the CPU, its batch-norm running statistics set away from their
// initial (0, 1) so that the export must carry them.
struct ConfigModel {
  Context context{DeviceKind::CPU, 2};
  RunConfig config;
  std::unique_ptr<Model> model;

  explicit ConfigModel(const std::string& name, const std::vector<std::string>& overrides = {})
      : config(RunConfig::load(std::string(DPTRAIN_SOURCE_DIR) + "/configs/" + name, with_cpu(overrides))) {
    model = std::make_unique<Model>(config.model, Shape{1, 28, 28}, context.backend(), 7);
    Tensor buffers = model->host_buffers();
    Rng rng(11);
    for (const ParamEntry& e : model->buffer_entries()) {
      const bool variance = e.param == "running_var";
      for (size_t i = 0; i < num_elements(e.shape); ++i) {
        buffers.data()[e.offset + i] = variance ? 0.5f + rng.uniform() : 0.2f * (rng.uniform() - 0.5f);
      }
    }
    model->load_buffers(buffers);
  }

  // The evaluation logits of `x` (n, 1, 28, 28).
  std::vector<float> logits(std::vector<float>& x, size_t n) {
    const std::vector<int32_t> labels(n, 0);
    std::vector<uint64_t> ids(n);
    for (size_t i = 0; i < n; ++i) ids[i] = i;
    StepInfo eval;
    eval.mode = Mode::Eval;
    eval.sample_ids = ids.data();
    model->step(Tensor::view(x.data(), {n, 1, 28, 28}), labels.data(), eval, 1.0f);
    const Tensor host = model->logits(n).to_host();
    return {host.data(), host.data() + host.num_elements()};
  }

  onnx::ModelProto exported() const {
    return to_onnx(*model, model->host_parameters(), model->host_buffers(), OnnxExportOptions{});
  }
};

void check_against_opencv(const std::string& config_name, const std::set<std::string>& expected_ops,
                          const std::vector<std::string>& overrides = {}, const std::string& label = "") {
  ConfigModel m(config_name, overrides);
  const fs::path dir = scratch(label.empty() ? config_name.substr(0, config_name.find('.')) : label);
  const fs::path onnx_path = dir / "model.onnx";
  const onnx::ModelProto proto = m.exported();
  write_onnx(proto, onnx_path.string());

  std::set<std::string> ops;
  for (const auto& node : proto.graph().node()) ops.insert(node.op_type());
  for (const auto& op : expected_ops) EXPECT_TRUE(ops.count(op)) << config_name << " has no " << op << " node";
  EXPECT_EQ(proto.graph().input(0).type().tensor_type().shape().dim(0).dim_param(), "batch");

  constexpr size_t n = 5;
  std::vector<float> x(n * 28 * 28);
  Rng rng(3);
  for (float& v : x) v = 2.0f * rng.uniform() - 1.0f;
  write_floats(dir / "inputs.f32", x);
  const std::vector<float> logits = m.logits(x, n);

  const e2e::CommandResult ran = e2e::run_command("/usr/bin/python3 " + std::string(DPTRAIN_SOURCE_DIR) +
                                                  "/tests/runtime/export/onnx_reference.py " + onnx_path.string() +
                                                  " " + (dir / "inputs.f32").string() + " " + std::to_string(n) +
                                                  " " + dir.string());
  ASSERT_EQ(ran.exit_code, 0) << ran.output << "\n(needs Debian's python3-onnx and python3-opencv: "
                                               "scripts/install-deps.sh)";
  std::printf("%s", ran.output.c_str());
  const std::vector<float> opencv_logits = read_floats(dir / "opencv_logits.f32");
  ASSERT_EQ(opencv_logits.size(), logits.size());
  const double difference = relative_difference(opencv_logits, logits);
  std::printf("%s: OpenCV's logits against dptrain's: max relative difference %.3g\n", config_name.c_str(),
              difference);
  EXPECT_LT(difference, 1e-4);

  // The probabilities output is the softmax of dptrain's logits.
  const std::vector<float> probabilities = read_floats(dir / "opencv_probabilities.f32");
  ASSERT_EQ(probabilities.size(), logits.size());
  const size_t classes = logits.size() / n;
  std::vector<float> softmax(logits.size());
  for (size_t s = 0; s < n; ++s) {
    const float* z = logits.data() + s * classes;
    const double top = *std::max_element(z, z + classes);
    double total = 0;
    for (size_t c = 0; c < classes; ++c) total += std::exp(z[c] - top);
    for (size_t c = 0; c < classes; ++c) softmax[s * classes + c] = static_cast<float>(std::exp(z[c] - top) / total);
  }
  EXPECT_LT(relative_difference(probabilities, softmax), 1e-4);
  fs::remove_all(dir);
}

TEST(OnnxExport, DemoCnnRunsInOpenCvAsInDptrain) {
  check_against_opencv("fashion_mnist.yaml", {"Conv", "Relu", "MaxPool", "Flatten", "Gemm", "Softmax"});
}

TEST(OnnxExport, ResNet20RunsInOpenCvAsInDptrain) {
  check_against_opencv("resnet20_fashion_mnist.yaml",
                       {"Conv", "BatchNormalization", "Relu", "Add", "GlobalAveragePool", "Gemm", "Softmax"});
}

// Every other layer type and option the configs can express: grouped and dilated convolutions
// without bias, batch norm without affine parameters, average pooling with padding (divided by the
// window's elements inside the input), concat, dropout, the activations, and dense on a 3-D input.
TEST(OnnxExport, EveryOtherLayerTypeRunsInOpenCvAsInDptrain) {
  const std::string model =
      "model=["
      "{type: conv2d, name: stem, out_channels: 8, kernel: 3, padding: 1},"
      "{type: leaky_relu, name: stem.act, negative_slope: 0.2},"
      "{type: conv2d, name: grouped, out_channels: 8, kernel: 3, padding: 2, dilation: 2, groups: 4, bias: false},"
      "{type: batchnorm2d, name: grouped.bn, affine: false},"
      "{type: silu, name: grouped.act},"
      "{type: avg_pool2d, name: side, inputs: [stem.act], kernel: 3, stride: 1, padding: 1},"
      "{type: sigmoid, name: side.act},"
      "{type: concat, name: joined, inputs: [grouped.act, side.act]},"
      "{type: max_pool2d, name: pool, kernel: 2},"
      "{type: avg_pool2d, name: pool2, kernel: 2},"
      "{type: tanh, name: squash},"
      "{type: dropout, name: drop, rate: 0.5},"
      "{type: dense, name: fc, units: 10},"
      "{type: softmax_cross_entropy}]";
  check_against_opencv("fashion_mnist.yaml",
                       {"Conv", "BatchNormalization", "LeakyRelu", "Sigmoid", "Mul", "AveragePool", "Concat",
                        "MaxPool", "Tanh", "Identity", "Flatten", "Gemm"},
                       {model}, "every_type");
}

TEST(OnnxExport, CarriesTheRunningStatisticsAndEveryParameter) {
  ConfigModel m("resnet20_fashion_mnist.yaml");
  const onnx::ModelProto proto = m.exported();
  size_t floats = 0;
  bool found_running_var = false;
  const Tensor buffers = m.model->host_buffers();
  for (const auto& t : proto.graph().initializer()) {
    floats += t.raw_data().size() / sizeof(float);
    if (t.name() == "bn1.running_var") {
      found_running_var = true;
      const ParamEntry* entry = nullptr;
      for (const ParamEntry& e : m.model->buffer_entries()) {
        if (e.name == "bn1.running_var") entry = &e;
      }
      ASSERT_NE(entry, nullptr);
      ASSERT_EQ(t.raw_data().size(), num_elements(entry->shape) * sizeof(float));
      EXPECT_EQ(0, std::memcmp(t.raw_data().data(), buffers.data() + entry->offset, t.raw_data().size()));
    }
  }
  EXPECT_TRUE(found_running_var);
  size_t running = 0;
  for (const ParamEntry& e : m.model->buffer_entries()) running += num_elements(e.shape);
  EXPECT_EQ(floats, m.model->num_parameters() + running);
}

TEST(OnnxExport, AFailedWriteLeavesTheExistingFileAsItWas) {
  ConfigModel m("fashion_mnist.yaml");
  const fs::path dir = scratch("failed_write");
  const fs::path target = dir / "model.onnx";
  { std::ofstream(target) << "the previous export"; }
  fs::create_directories(dir / "model.onnx.tmp");  // the temporary file cannot be created
  EXPECT_THROW(write_onnx(m.exported(), target.string()), UsageError);
  std::ifstream in(target);
  std::string kept((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(kept, "the previous export");
  EXPECT_THROW(write_onnx(m.exported(), (dir / "missing" / "model.onnx").string()), UsageError);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace dptrain
