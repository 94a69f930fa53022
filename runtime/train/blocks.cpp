#include "runtime/train/blocks.h"

#include <optional>

#include "layers/layer_util.h"

namespace dptrain {

namespace {

// The options every block type shares, and those of its own.
struct BlockOptions {
  std::string type;
  size_t out_channels = 0;
  size_t width = 0;  // bottleneck: channels of the 3x3 convolution
  size_t stride = 1;
  size_t groups = 1;
  size_t repeat = 1;
  std::optional<std::string> init;   // passed on to every convolution
  std::optional<std::string> stats;  // passed on to every batch norm
};

BlockOptions read_block(ConfigMap& block) {
  BlockOptions o;
  o.type = block.get_choice("type", {"basic_block", "bottleneck"});
  const CountRange size{1, kMaxLayerSize, ""};
  o.out_channels = block.get_count("out_channels", std::nullopt, size);
  o.stride = block.get_count("stride", 1, size);
  o.repeat = block.get_count("repeat", 1, CountRange{1, 4096, "blocks"});
  if (o.type == "bottleneck") {
    o.width = block.get_size("width", o.out_channels / 4);
    if (o.width == 0) block.fail("width", "must be >= 1 (out_channels / 4 by default)");
    if (o.width > kMaxLayerSize) block.fail("width", describe(size, o.width) + ", got " + std::to_string(o.width));
    o.groups = block.get_size("groups", 1);
    if (o.groups == 0 || o.width % o.groups != 0) {
      block.fail("groups", "must be >= 1 and divide the width " + std::to_string(o.width));
    }
  }
  if (block.has("init")) o.init = block.get_string("init");
  if (block.has("stats")) o.stats = block.get_choice("stats", {"global", "per_worker"});
  block.finish();
  return o;
}

// Builds the nodes of one block instance.
class BlockBuilder {
 public:
  BlockBuilder(const ConfigMap& block, const BlockOptions& options, std::string prefix)
      : block_(block), options_(options), prefix_(std::move(prefix)) {}

  // Adds a layer named prefix.part of `type` reading `inputs` (full names); returns its full name.
  std::string add(const std::string& part, const std::string& type, const std::vector<std::string>& inputs,
                  YAML::Node options = YAML::Node(YAML::NodeType::Map)) {
    options["type"] = type;
    const std::string name = prefix_ + "." + part;
    nodes_.push_back({block_.derived(options, " (" + name + ")"), name, inputs});
    return name;
  }

  std::string conv(const std::string& part, const std::string& input, size_t out, size_t kernel, size_t stride,
                   size_t groups = 1) {
    YAML::Node o(YAML::NodeType::Map);
    o["out_channels"] = out;
    o["kernel"] = kernel;
    o["stride"] = stride;
    o["padding"] = kernel / 2;
    o["bias"] = false;
    if (groups != 1) o["groups"] = groups;
    if (options_.init) o["init"] = *options_.init;
    return add(part, "conv2d", {input}, o);
  }

  std::string bn(const std::string& part, const std::string& input) {
    YAML::Node o(YAML::NodeType::Map);
    if (options_.stats) o["stats"] = *options_.stats;
    return add(part, "batchnorm2d", {input}, o);
  }
  std::string relu(const std::string& part, const std::string& input) { return add(part, "relu", {input}); }

  std::vector<LayerNode> take() { return std::move(nodes_); }

 private:
  const ConfigMap& block_;
  const BlockOptions& options_;
  std::string prefix_;
  std::vector<LayerNode> nodes_;
};

}  // namespace

bool is_block_type(const std::string& type) { return type == "basic_block" || type == "bottleneck"; }

std::vector<LayerNode> expand_block(ConfigMap& block, const std::string& name, const std::string& input,
                                    const Shape& input_shape) {
  const BlockOptions o = read_block(block);
  if (input_shape.size() != 3) {
    block.fail("type", o.type + " needs (C, H, W) input, got " + to_string(input_shape));
  }
  std::vector<LayerNode> nodes;
  std::string in = input;
  size_t in_channels = input_shape[0];
  for (size_t r = 0; r < o.repeat; ++r) {
    const size_t stride = r == 0 ? o.stride : 1;
    BlockBuilder b(block, o, o.repeat > 1 ? name + "." + std::to_string(r) : name);
    std::string main;
    if (o.type == "basic_block") {
      main = b.relu("relu1", b.bn("bn1", b.conv("conv1", in, o.out_channels, 3, stride)));
      main = b.bn("bn2", b.conv("conv2", main, o.out_channels, 3, 1));
    } else {
      main = b.relu("relu1", b.bn("bn1", b.conv("conv1", in, o.width, 1, 1)));
      main = b.relu("relu2", b.bn("bn2", b.conv("conv2", main, o.width, 3, stride, o.groups)));
      main = b.bn("bn3", b.conv("conv3", main, o.out_channels, 1, 1));
    }
    std::string shortcut = in;
    if (stride != 1 || in_channels != o.out_channels) {
      shortcut = b.bn("downsample.1", b.conv("downsample.0", in, o.out_channels, 1, stride));
    }
    in = b.relu("relu", b.add("add", "add", {main, shortcut}));
    in_channels = o.out_channels;
    for (LayerNode& node : b.take()) nodes.push_back(std::move(node));
  }
  return nodes;
}

}  // namespace dptrain
