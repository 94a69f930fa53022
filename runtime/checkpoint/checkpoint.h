// Checkpoints: one HDF5 file per saved training position, independent of the number of workers,
// written atomically and checksummed; listing a folder's checkpoints, choosing the one to resume
// from and pruning old ones.
//
// File layout (format "dptrain-checkpoint", format_version 2, or 3 for a quantized model; version 1 lacks /buffers). Every array dataset is chunked and
// Fletcher-32 checksummed; the file is written in the HDF5 1.10 format, whose metadata (superblock,
// object headers with their attributes, chunk indexes) carries checksums too, so damage anywhere is
// reported when the file is read. Readable by h5dump, h5ls and h5py (HDF5 >= 1.10).
//
//   /                              root attributes, all scalars:
//     format           string      "dptrain-checkpoint"
//     format_version   uint32      2
//     dptrain_version  string      version of the dptrain that wrote it, e.g. "0.1.0"
//     run_name         string      the config's name
//     seed             uint64      the run's seed
//     epoch            uint64      0-based epoch to continue in
//     step_in_epoch    uint64      steps of `epoch` already done (0 at an epoch boundary)
//     global_step      uint64      steps done in all; also the learning-rate schedule's position
//     steps_per_epoch  uint64      } with seed, epoch and step_in_epoch: the sampler's position
//     global_batch     uint64      }
//     dataset_size     uint64      }
//     world_size       uint64      workers at save time (for information; resuming may use any number)
//   optional root attributes, lists (absent from checkpoints written before dptrain stored them):
//     input_shape      uint64 (3)  (C, H, W) of one training sample: the shape the model takes
//     class_names      string (N)  class names by label, where the training set names its classes (an
//                                  image folder's class sub-folders, sorted; a converted HDF5 file's names)
//   /config                        string (1): the run's effective YAML config, overrides applied
//   /metrics                       string (1): free text, e.g. the last epoch's JSON record; may be ""
//   /parameters                    group, one dataset per model parameter in model order:
//     /parameters/<name>           float32 with the parameter's shape, e.g. /parameters/0.conv2d.weight (8, 1, 3, 3)
//                                  or /parameters/layer1.0.conv1.weight: "<layer name>.<parameter>"
//   /buffers                       group, one dataset per non-trained state tensor in model order, e.g.
//     /buffers/<name>              /buffers/layer1.0.bn1.running_mean (64): batch norm's running statistics
//   /optimizer                     group, attributes name (string: "sgd", "adam", "adamw") and steps (uint64)
//     /optimizer/<state>           group per optimizer state ("momentum"; "exp_avg", "exp_avg_sq"; none for plain sgd)
//       /optimizer/<state>/<name>  float32, the same names and shapes as /parameters
//   /masks                         group, only in runs that prune (prune:): one dataset per pruned weight
//     /masks/<name>                float32, the weight's name and shape: 1 kept, 0 pruned (held at zero)
//   /quantization                  group, only in a model quantized after training (dptrain quantize; format_version
//                                  3): one group per conv2d or dense weight held in int8, whose dataset in
//                                  /parameters is then int8 (the rounded values, -127..127) instead of float32
//     /quantization/<name>/scales       float32 (out channels): weight[c, ...] ~= int8 value * scales[c]
//     /quantization/<name>/input_range  float32 (1): the layer's input was seen in [0, input_range] when calibrated
//
// Every string is fixed-length, null-padded UTF-8, so that a checksum covers it: attributes sit in the
// checksummed object headers, and /config and /metrics are one-element datasets, chunked and checksummed
// like the arrays. h5py returns them as bytes: f.attrs["run_name"].decode(), f["config"][0].decode().
// Groups track link creation order, so iterating /parameters (h5py included) gives model order and
// /optimizer the optimizer's order.
//
// File names: "ckpt-e<epoch, 6 digits>-s<global_step, 8 digits>.h5" (wider when the numbers need it),
// e.g. ckpt-e000003-s00000123.h5; listing orders them by (epoch, global_step) read from the name.
// A file being written is ".<final name>.tmp-<pid>" in the same folder: never taken for a checkpoint.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "runtime/core/tensor.h"

namespace dptrain {

// The layout version this dptrain writes; it reads this version and older ones, and quantized files.
inline constexpr uint32_t kCheckpointFormatVersion = 2;
// The layout version of a quantized model (/quantization, int8 parameters): older dptrains refuse it.
inline constexpr uint32_t kQuantizedCheckpointFormatVersion = 3;
// The root attribute `format` of every checkpoint.
inline constexpr char kCheckpointFormat[] = "dptrain-checkpoint";

// One named tensor of a checkpoint: a model parameter, or one optimizer state of a parameter.
struct CheckpointTensor {
  std::string name;           // "<layer index>.<type>.<param>", e.g. "0.conv2d.weight"; no '/'
  Shape shape;                // e.g. (8, 1, 3, 3); at least one dimension, no dimension 0
  std::vector<float> values;  // (num_elements(shape)), row-major; empty when read with CheckpointContents::Header
};

// One named optimizer state ("momentum", "exp_avg", ...): one tensor per model parameter.
struct CheckpointOptimizerState {
  std::string name;
  std::vector<CheckpointTensor> tensors;  // the names, order and shapes of CheckpointState::parameters
};

// A weight held in int8 in a quantized model (dptrain quantize); see Int8Weights (layers/layer.h).
struct CheckpointQuantization {
  std::string name;           // the parameter's name, e.g. "layer1.0.conv1.weight"
  std::vector<float> scales;  // per output channel (the weight's dimension 0), each > 0
  float input_range = 0;      // > 0
};

// Everything a run needs to continue where it stopped, with any number of workers.
struct CheckpointState {
  uint32_t format_version = kCheckpointFormatVersion;  // as read; always written as kCheckpointFormatVersion
  std::string dptrain_version = DPTRAIN_VERSION;       // as read; always written as DPTRAIN_VERSION
  std::string run_name;
  std::string config_text;  // the effective YAML config
  uint64_t seed = 0;

  uint64_t epoch = 0;          // 0-based epoch to continue in
  uint64_t step_in_epoch = 0;  // steps of `epoch` already done: 0 at an epoch boundary, > 0 after a stop mid-epoch
  uint64_t global_step = 0;    // steps done in all; also the learning-rate schedule's position
  uint64_t steps_per_epoch = 0;
  uint64_t global_batch = 0;
  uint64_t dataset_size = 0;  // training samples; the sampler's position is (seed, epoch, step_in_epoch) + these
  uint64_t world_size = 0;    // workers at save time
  Shape input_shape;                     // (C, H, W) the model takes; empty when not stored (older files)
  std::vector<std::string> class_names;  // by label; empty when the data set has none, or not stored (older files)

  std::vector<CheckpointTensor> parameters;  // one per model parameter, in model order
  std::vector<CheckpointTensor> buffers;     // one per non-trained state tensor, in model order (may be empty)
  std::vector<CheckpointTensor> masks;       // prune: one per pruned weight (1 kept, 0 pruned), named like it; else empty
  // A quantized model: the weights held in int8, in parameter order. Their `parameters` values are the
  // int8 values times the scales (as read), and are stored rounded (when written).
  std::vector<CheckpointQuantization> quantization;

  std::string optimizer_name;  // Optimizer::name(): "sgd", "adam", "adamw"
  uint64_t optimizer_steps = 0;
  std::vector<CheckpointOptimizerState> optimizer_state;  // in Optimizer::state() order; empty for plain sgd

  std::string metrics_json;  // optional free text, e.g. the last epoch's metrics record
};

// ---- Writing ----

// "ckpt-e000003-s00000123.h5": the file name of the checkpoint at (epoch, global_step).
std::string checkpoint_file_name(uint64_t epoch, uint64_t global_step);

// Writes `state` to `path` atomically: into ".NAME.tmp-PID" in the same folder, closed, fsynced, renamed
// over `path`, and the folder fsynced. On any failure the temporary file is removed and `path` (if it
// existed) and every other file are left as they were. Throws CheckpointError naming `path`: missing
// folder, a tensor whose values do not fill its shape, a bad tensor name, an HDF5 or file system failure.
void write_checkpoint(const std::string& path, const CheckpointState& state);

// Writes `state` into folder `dir` (created when missing) as checkpoint_file_name(state.epoch,
// state.global_step), replacing a checkpoint of the same position; returns the file's path.
std::string save_checkpoint(const std::string& dir, const CheckpointState& state);

// ---- Reading and checking ----

// How much of a checkpoint read_checkpoint loads.
enum class CheckpointContents {
  Everything,  // all values (every tensor's checksum is checked on the way)
  Header,      // attributes, config and metrics, tensor names and shapes; tensor values left empty
};

// Reads and checks a checkpoint. Throws CheckpointError naming the file and what is wrong: missing,
// empty, not HDF5, truncated, damaged (a checksum mismatch), not a dptrain checkpoint, a newer format
// version, a missing attribute or dataset, a non-float tensor, optimizer state that does not match the
// parameters' names and shapes.
CheckpointState read_checkpoint(const std::string& path, CheckpointContents contents = CheckpointContents::Everything);

// Checks the layout as read_checkpoint does, then reads every dataset in the file, whatever its name, so
// that every checksum is checked. Returns the number of datasets; throws CheckpointError.
size_t verify_checkpoint(const std::string& path);

// What an object of a checkpoint file is.
enum class CheckpointObjectKind { Group, Dataset, Other };

// One group or dataset of a checkpoint file, as `dptrain inspect` lists it.
struct CheckpointObject {
  std::string path;  // e.g. "/parameters/0.conv2d.weight"
  CheckpointObjectKind kind = CheckpointObjectKind::Other;
  Shape shape;        // datasets: the dimensions, empty for a scalar
  std::string dtype;  // datasets: "float32", "float64", "int32", "uint64", "string", ...; otherwise empty
};

// Every group and dataset in the file below the root, parents before children, in creation order where
// the file tracks it. Needs only an HDF5 file that opens (no dptrain attributes); throws CheckpointError.
std::vector<CheckpointObject> checkpoint_layout(const std::string& path);

// ---- Choosing and pruning ----

// A checkpoint file in a folder, with the position its name gives.
struct CheckpointFile {
  std::string path;
  uint64_t epoch = 0;
  uint64_t global_step = 0;
};

// The regular files of `dir` named like checkpoints (see checkpoint_file_name), newest position first.
// Temporary files and every other file are ignored. A missing folder has none; a folder that cannot be
// read throws CheckpointError.
std::vector<CheckpointFile> list_checkpoints(const std::string& dir);

// A checkpoint that was passed over, and why (the error without the file name).
struct SkippedCheckpoint {
  std::string path;
  std::string reason;
};

// The checkpoint a run resumes from.
struct ResumeCheckpoint {
  std::string path;                        // empty when no checkpoint in the folder verifies
  CheckpointState state;                   // what `path` holds, values included
  std::vector<SkippedCheckpoint> skipped;  // newer files that failed to verify, newest first
  bool found() const { return !path.empty(); }
};

// The newest checkpoint in `dir` that verifies (verify_checkpoint), loaded, and the newer ones that did
// not, so that the caller can report "skipped FILE: REASON". Nothing found in a missing or empty folder.
ResumeCheckpoint find_resume_checkpoint(const std::string& dir);

// What prune_checkpoints did.
struct PruneResult {
  std::vector<std::string> removed;             // checkpoints deleted, newest first
  std::vector<std::string> removed_temp_files;  // leftovers of writers that crashed
  std::vector<SkippedCheckpoint> not_removed;   // files that should have gone but could not be deleted
};

// Keeps the newest `keep` checkpoints of `dir` (keep >= 1, else CheckpointError) and deletes the older
// ones, except that the newest checkpoint that verifies is always kept, even when it is older than the
// newest `keep` (which are then all damaged). Also removes stale temporary files (remove_stale_temp_files).
PruneResult prune_checkpoints(const std::string& dir, size_t keep);

// Deletes the temporary files ".ckpt-*.h5.tmp-PID" in `dir` that another process left behind and that
// are older than this process: a writer that crashed. Files of this process, recent files and anything
// not matching the pattern are left alone. Returns the paths removed.
std::vector<std::string> remove_stale_temp_files(const std::string& dir);

}  // namespace dptrain
