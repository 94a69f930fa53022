// The smallest valid run config, which the config tests vary.
#pragma once

#include <string>

namespace dptrain::run_config_test {

inline const std::string kMinimalConfig = R"(name: demo
seed: 3
data:
  type: synthetic
model:
  - {type: dense, units: 4}
  - {type: softmax_cross_entropy}
optimizer:
  type: sgd
  lr: 0.1
train:
  batch_size: 32
  epochs: 2
)";

}  // namespace dptrain::run_config_test
