// RunConfig: a run's YAML config, loaded strictly, with command-line overrides applied.
#pragma once

#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "runtime/core/config_map.h"
#include "runtime/core/cpu_convolution.h"
#include "runtime/core/determinism.h"
#include "runtime/core/precision.h"
#include "runtime/core/tensor.h"

namespace dptrain {

// Whether a final global batch smaller than the configured size is dropped.
enum class DropLast { No, Yes };

// The `train:` section.
// Whether a run's parameters are bit-identical for any number of workers and threads
// (`train.reproducible`, docs/reproducibility.md): sums over samples in exact arithmetic (BitExact),
// or in float in whatever order the split gives (Approximate: equal up to rounding). Auto, the
// default, is BitExact where the run can be (the CPU backend, every layer able to sum exactly) and
// Approximate elsewhere; the trainer decides once the model is built (resolve_reproducible).
enum class Reproducibility { Auto, Approximate, BitExact };

struct TrainSettings {
  size_t batch_size = 128;       // global batch, shared by all workers
  size_t epochs = 1;
  DropLast drop_last = DropLast::No;   // train on or drop the last, smaller global batch
  size_t eval_batch_size = 1000;
  double progress_seconds = 10;  // period of plain progress lines when stdout is not a terminal
  Reproducibility reproducible = Reproducibility::Auto;
  size_t micro_shard = 16;       // with reproducible: samples per micro-shard, the unit workers split batches in
  size_t metrics_every_steps = 0;  // a "step" metrics record every this many global steps; 0: none
  std::shared_ptr<const ConfigMap> section;  // the section as read, for errors naming its keys
};

// How gradients in device memory are all-reduced (`comm.device_transport`).
enum class DeviceTransport {
  Auto,     // the backend's direct transport (NCCL for cuda) with several workers, else staging
  Nccl,     // NCCL; an error where the build has no NCCL transport for the backend
  Staging,  // device -> host -> the host communicator (MPI) -> device
};

// "auto", "nccl" or "staging", as the config spells it.
const char* to_string(DeviceTransport transport);

// The `comm:` section: how workers exchange gradients.
struct CommSettings {
  double bucket_mb = 1.0;           // gradient all-reduce bucket size, MiB
  double timeout_seconds = 300;     // longest wait on another worker before giving up with a message
  double heartbeat_seconds = 10;    // a worker silent this long counts as lost (killed, node down); 0: no heartbeats
  DeviceTransport device_transport = DeviceTransport::Auto;  // for gradients on a GPU; no effect on the CPU
};

// The `checkpoint:` section: where and how often rank 0 saves the training state.
struct CheckpointSettings {
  std::string dir;            // folder of the checkpoint files; empty: no checkpoints
  size_t every_epochs = 1;    // save after every this many epochs (and always after the last)
  size_t keep = 3;            // newest checkpoints kept; older ones are deleted
  double every_minutes = 0;   // also save inside an epoch when this many minutes passed since the last save; 0: off
};

// Where prune.sparsity applies: to each pruned tensor alone, or to all of them together (one magnitude
// threshold, so that large layers with many small weights give up more than small ones).
enum class PruneScope { Layer, Global };

// The `prune:` section: magnitude pruning of convolution and dense weights on a gradual schedule.
struct PruneSettings {
  bool enabled = false;          // the section is present
  double sparsity = 0;           // `sparsity`, in (0, 1): the share of each pruned tensor that ends at zero
  double start_epoch = 0;        // `start_epoch`: pruning starts here (epochs, fractions allowed)
  double end_epoch = 0;          // `end_epoch`: the final sparsity is reached here (default: epochs - 1, at least 1)
  size_t every_steps = 50;       // `every_steps`: steps between mask updates in between
  std::vector<std::string> layers;  // `layers`: layer or parameter names (as init.freeze); empty: every conv2d and dense weight
  PruneScope scope = PruneScope::Layer;  // `scope`: layer (each tensor to the sparsity) or global (one threshold)
  std::shared_ptr<const ConfigMap> section;  // the section as read, for errors naming its keys
};

// The `elastic:` section: workers joining and leaving a running job between epochs.
struct ElasticSettings {
  bool enabled = false;                  // accept joiners (`dptrain join`); leaving works either way
  size_t min_workers = 1;                // below this, wait for joiners, then checkpoint and stop
  size_t max_workers = 0;                // joiners beyond this are refused; 0: no limit
  std::string run_dir;                   // where the job publishes its port and takes requests; default: checkpoint.dir
  double wait_seconds = 300;             // how long a job below min_workers waits for joiners
  double handover_seconds = 60;          // longest join hand-over before the joiners are given up
};

// The `init:` section: where a fresh run's parameters start, for fine-tuning. Entries of `skip` and
// `freeze` are parameter names, dotted prefixes ("layer1") or prefixes ending in '*' (Model's rule).
struct InitSettings {
  std::string from;                  // checkpoint whose parameters and buffers a fresh run starts from; empty: none
  std::vector<std::string> skip;     // parameters and buffers not loaded from `from` (e.g. a new classifier)
  std::vector<std::string> freeze;   // parameters not trained (passed to the Model)
  std::shared_ptr<const ConfigMap> section;  // the section as read, for errors naming its keys
};

// Everything a run is made from. Sections with their own builders (data, model, optimizer,
// lr_schedule) stay ConfigMaps, consumed and checked with finish() when the run is set up.
struct RunConfig {
  std::string file;      // where it was loaded from
  std::string text;      // the effective config (overrides applied) as YAML, for records
  std::string name;
  uint64_t seed = 0;
  size_t threads = 0;    // 0 = automatic; at most 4 a core (and 1024)
  std::vector<std::string> warnings;  // "FILE:LINE: key 'threads': ...": accepted, but likely a mistake
  DeviceKind device = DeviceKind::CPU;
  std::string device_reason;  // why `device`: "auto: 1 GPU visible", "auto: no GPU visible: ...", "device: cpu in the config"
  Precision precision = Precision::Float32;  // of convolutions and dense layers on the GPU; bf16 is GPU-only
  Determinism determinism = Determinism::Fastest;  // `cudnn_deterministic: true` is Required; GPU-only effect
  CpuConvolution cpu_convolution = CpuConvolution::Auto;  // `cpu_convolution`; CPU-only effect
  TrainSettings train;
  CommSettings comm;
  CheckpointSettings checkpoint;
  ElasticSettings elastic;
  InitSettings init;
  PruneSettings prune;

  std::shared_ptr<ConfigMap> data;
  std::vector<ConfigMap> model;
  std::shared_ptr<ConfigMap> optimizer;
  std::shared_ptr<ConfigMap> lr_schedule;

  // Reads `path`, applies overrides of the form "a.b.c=value" (a list entry by index:
  // "model.3.units=256"), and checks the top-level keys and the train section.
  static RunConfig load(const std::string& path, const std::vector<std::string>& overrides = {});
  // The same from YAML text; `file` names it in messages.
  static RunConfig parse(const std::string& yaml, const std::string& file,
                         const std::vector<std::string>& overrides = {});
};

// The device of a run's start-up lines, which and why: "cuda (auto: 1 GPU visible, NVIDIA H200 (device 0,
// sm_90))", "cpu (auto: no GPU visible: cudaGetDeviceCount: no CUDA-capable device is detected)".
// `opened` is the opened backend's description, added where it names more than the device kind.
std::string describe_device(const RunConfig& config, const std::string& opened);

}  // namespace dptrain
