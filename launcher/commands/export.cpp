// `dptrain export` in a build with ONNX: the checkpoint's model through runtime/export to an ONNX file.
#include <onnx/onnx_pb.h>

#include <cstdio>
#include <memory>
#include <optional>

#include "launcher/commands/checkpoint_run.h"
#include "launcher/commands/export_command.h"
#include "launcher/workers.h"
#include "runtime/core/context.h"
#include "runtime/core/run_config.h"
#include "runtime/export/onnx_export.h"
#include "runtime/checkpoint/checkpoint.h"
#include "runtime/train/model.h"
#include "runtime/train/predictor.h"
#include "runtime/train/training_run.h"

namespace dptrain::launcher {

int run_export(const ExportArgs& args, Workers& workers) {
  RunConfig config = checkpoint_run_config(args.config, args.checkpoint, args.overrides, workers);
  config.device = DeviceKind::CPU;  // the parameters are read on the host either way
  const CheckpointState state = read_checkpoint(args.checkpoint);
  // A checkpoint that stores its input shape gives the model without the data set; an older one
  // needs the config's data to size it, as a training run does.
  std::unique_ptr<Context> context;
  std::unique_ptr<Predictor> stored;
  std::unique_ptr<TrainingRun> run;
  TrainingPosition at{state.epoch, state.step_in_epoch, state.global_step};
  if (!state.input_shape.empty()) {
    if (workers.rank() != 0) return 0;
    context = std::make_unique<Context>(config.device, config.threads, 1, std::nullopt, config.precision,
                                        config.determinism, config.cpu_convolution);
    stored = std::make_unique<Predictor>(config, state.input_shape, state, args.checkpoint, context->backend());
  } else {
    run = std::make_unique<TrainingRun>(config, workers.comm(), quiet_trainer_options(workers));
    at = run->load_checkpoint_parameters(args.checkpoint);
    if (workers.rank() != 0) return 0;
  }

  OnnxExportOptions export_options;
  export_options.opset = args.opset;
  export_options.graph_name = config.name.empty() ? "dptrain" : config.name;
  export_options.metadata = {
      {"dptrain.checkpoint", args.checkpoint},
      {"dptrain.global_step", std::to_string(at.global_step)},
      {"dptrain.input", "the first layer's input: images as the data set's normalisation leaves them "
                        "(see data.mean and data.std in dptrain.config)"},
      {"dptrain.config", config.text},  // the effective config the model was built from
  };
  const Model& model = stored ? stored->model() : run->model();
  const onnx::ModelProto proto = to_onnx(model, model.host_parameters(), model.host_buffers(), export_options);
  write_onnx(proto, args.onnx);
  std::printf("%s: %d nodes, %d initializers (%zu parameters), opset %lld, input %s, outputs %s and %s\n",
              args.onnx.c_str(), proto.graph().node_size(), proto.graph().initializer_size(), model.num_parameters(),
              static_cast<long long>(args.opset), kOnnxInput, kOnnxLogits, kOnnxProbabilities);
  return 0;
}

}  // namespace dptrain::launcher
