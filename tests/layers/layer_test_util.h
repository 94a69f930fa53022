// Helpers for layer tests: building layers from YAML, filling tensors, comparing buffers.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "layers/registry.h"
#include "runtime/core/config_map.h"
#include "runtime/core/cpu_backend.h"
#include "runtime/core/errors.h"
#include "runtime/core/rng.h"
#include "runtime/core/tensor.h"

namespace dptrain::testing {

// The CPU backend the layer tests build their layers for, whose conv2d layers train with
// `convolution`'s kernels (it holds no other state).
inline CpuBackend& cpu_backend(CpuConvolution convolution = CpuConvolution::Auto) {
  static CpuBackend automatic(CpuConvolution::Auto), onednn(CpuConvolution::OneDnn), im2col(CpuConvolution::Im2col);
  switch (convolution) {
    case CpuConvolution::OneDnn: return onednn;
    case CpuConvolution::Im2col: return im2col;
    default: return automatic;
  }
}

// Builds a CPU layer from its YAML mapping, as the model does.
inline std::unique_ptr<Layer> make_layer(const std::string& yaml, const Shape& input_shape,
                                         CpuConvolution convolution = CpuConvolution::Auto) {
  ConfigMap options = ConfigMap::parse(yaml);
  return LayerRegistry::builtin().create(options, input_shape, cpu_backend(convolution));
}

// The message of the ConfigError that building `yaml` throws because the layer cannot take input
// of `input_shape`; fails the test and returns "" when there is none.
inline std::string input_shape_error(const std::string& yaml, const Shape& input_shape) {
  try {
    make_layer(yaml, input_shape);
  } catch (const ConfigError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("cannot take input of shape " + to_string(input_shape)), std::string::npos) << msg;
    return msg;
  }
  ADD_FAILURE() << yaml << " accepted input of shape " << to_string(input_shape);
  return "";
}

// A tensor of standard normal values drawn from `key`.
inline Tensor random_tensor(const Shape& shape, uint64_t key) {
  Tensor t(shape);
  Rng rng(hash_key(key, 0x7e57));
  for (size_t i = 0; i < t.num_elements(); ++i) t.data()[i] = rng.normal();
  return t;
}

inline Tensor tensor_of(const Shape& shape, const std::vector<float>& values) {
  Tensor t(shape);
  EXPECT_EQ(values.size(), t.num_elements());
  for (size_t i = 0; i < values.size() && i < t.num_elements(); ++i) t.data()[i] = values[i];
  return t;
}

// A host float32 tensor's values as doubles, to compare another tensor with.
inline std::vector<double> to_doubles(const Tensor& t) { return {t.data(), t.data() + t.num_elements()}; }

// Expects |a - b| <= tol * max(1, |b|) element-wise, naming the first few mismatches.
inline void expect_near_all(const Tensor& actual, const std::vector<double>& expected, double tol,
                            const char* what = "") {
  ASSERT_EQ(actual.num_elements(), expected.size()) << what;
  size_t reported = 0;
  for (size_t i = 0; i < expected.size(); ++i) {
    const double err = std::fabs(actual.data()[i] - expected[i]);
    if (err > tol * std::max(1.0, std::fabs(expected[i])) && reported++ < 5) {
      ADD_FAILURE() << what << "[" << i << "]: got " << actual.data()[i] << ", expected " << expected[i];
    }
  }
  EXPECT_EQ(reported, 0u) << what << ": " << reported << " mismatches";
}

}  // namespace dptrain::testing
