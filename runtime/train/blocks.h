// Blocks: layer types that stand for a small graph of layers (ResNet's basic and bottleneck blocks),
// so that a deep network is a config of a few dozen lines.
#pragma once

#include <string>
#include <vector>

#include "runtime/core/config_map.h"
#include "runtime/core/tensor.h"

namespace dptrain {

// One layer of the model graph as configured: its options (type included), its name and the names
// of the layers it reads (kModelInputName for the model's input).
struct LayerNode {
  ConfigMap options;
  std::string name;
  std::vector<std::string> inputs;
};

// The name by which a layer's `inputs` refers to the model's input.
inline constexpr const char* kModelInputName = "input";

// Whether `type` is a block type (basic_block, bottleneck) rather than a layer.
bool is_block_type(const std::string& type);

// The layers block `block` stands for, reading `input` (per-sample shape `input_shape`, (C, H, W)).
// Every layer is named "<name>.<part>" as torchvision names the same modules, so a converted
// torchvision checkpoint matches parameter for parameter:
//   basic_block {out_channels, stride = 1, repeat = 1}: conv1 (3x3, stride), bn1, relu1, conv2 (3x3),
//     bn2, and when the stride is not 1 or the channels change a projection shortcut downsample.0
//     (1x1 conv, stride) and downsample.1 (batchnorm2d); then add (bn2 + shortcut) and relu.
//   bottleneck {out_channels, width = out_channels / 4, stride = 1, groups = 1, repeat = 1}: conv1
//     (1x1 to width), bn1, relu1, conv2 (3x3, stride, groups), bn2, relu2, conv3 (1x1 to
//     out_channels), bn3, the same shortcut, add and relu (torchvision's ResNet v1.5).
// With repeat: N the block is repeated N times, named "<name>.0" ... "<name>.<N-1>", the first with
// the stride, the rest with stride 1. Convolutions have no bias; `init` is passed on to them, and
// `stats` (global or per_worker) to the batch norms.
// Errors (missing or bad options) are ConfigError naming the block's file, line and key.
std::vector<LayerNode> expand_block(ConfigMap& block, const std::string& name, const std::string& input,
                                    const Shape& input_shape);

}  // namespace dptrain
