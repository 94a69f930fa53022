// The Trainer's checkpoints: the state of the position it has reached, saving it, resuming from a
// saved one, and loading a checkpoint's parameters for evaluation.
#include <algorithm>

#include "runtime/checkpoint/finite_values.h"
#include "runtime/data/batch_loader.h"
#include "runtime/train/model_state.h"
#include "runtime/train/resume_point.h"
#include "runtime/train/trainer.h"

namespace dptrain {

CheckpointState Trainer::checkpoint_state() const {
  CheckpointState state;
  state.run_name = config_.name;
  state.config_text = config_.text;
  state.seed = config_.seed;
  state.epoch = position_.epoch;
  state.step_in_epoch = position_.step_in_epoch;
  state.global_step = position_.global_step;
  state.steps_per_epoch = steps_per_epoch_;
  state.global_batch = config_.train.batch_size;
  state.dataset_size = data_.train->size();
  state.world_size = comm_->size();
  state.input_shape = model_->input_shape();  // what `dptrain predict` fits images to, and names classes with
  state.class_names = data_.train->class_names();
  state.parameters = tensors_from_flat(model_->parameter_entries(), model_->host_parameters());
  state.buffers = tensors_from_flat(model_->buffer_entries(), model_->host_buffers());
  capture_optimizer(*optimizer_, model_->parameter_entries(), state);
  if (pruner_) state.masks = pruner_->masks();
  state.metrics_json = report_.last_epoch_record();
  return state;
}

std::string Trainer::save_checkpoint() {
  if (comm_->rank() != 0 || !checkpoints_.enabled()) return "";
  if (const std::string* saved = checkpoints_.saved_at(position_.global_step)) return *saved;
  CheckpointState state = checkpoint_state();
  // A GPU's parameters are seen on the host only here: a diverged state never replaces a good checkpoint.
  if (const auto bad = non_finite_dataset(state)) diverged("the state to save has " + *bad + ", so it was not saved");
  return checkpoints_.write(state, report_);
}

bool Trainer::resume(const std::string& what) {
  ResumeCheckpoint from;
  if (comm_->rank() == 0) {
    from = find_resume_point(what, config_, report_);
    if (from.found()) {
      refuse_non_finite(from.path, from.state);
      check_resumable(from.path, from.state,
                      {config_.seed, config_.train.batch_size, data_.train->size(), steps_per_epoch_});
      Tensor params = model_->host_parameters();
      tensors_to_flat(from.state.parameters, model_->parameter_entries(), params, from.path);
      restore_optimizer(from.state, model_->parameter_entries(), *optimizer_, from.path);
      model_->load_parameters(params);
      load_buffers(from.state, from.path);
      if (pruner_) pruner_->load(from.state.masks, from.path);
      position_ = {from.state.epoch, from.state.step_in_epoch, from.state.global_step};
    }
  }
  if (!replicas_->share_root_state(*comm_, from.found(), position_)) return false;
  if (pruner_) pruner_->share(*comm_, deadline_);
  if (comm_->rank() == 0) {
    report_.resumed(from.path, position_, config_.train.epochs, steps_per_epoch_, from.state.world_size,
                    comm_->size());
    checkpoints_.saved(from.path, position_.global_step);  // resuming and stopping at once does not rewrite it
  }
  return true;
}

void Trainer::load_buffers(const CheckpointState& state, const std::string& path) {
  Tensor buffers = model_->host_buffers();
  tensors_to_flat(state.buffers, model_->buffer_entries(), buffers, path, "buffer");
  model_->load_buffers(buffers);
}

TrainingPosition Trainer::load_parameters(const std::string& path) {
  TrainingPosition at;
  std::vector<CheckpointQuantization> quantization;
  if (comm_->rank() == 0) {
    const CheckpointState state = read_checkpoint(path);
    refuse_non_finite(path, state);
    Tensor params = model_->host_parameters();
    tensors_to_flat(state.parameters, model_->parameter_entries(), params, path);
    model_->load_parameters(params);
    load_buffers(state, path);
    at = {state.epoch, state.step_in_epoch, state.global_step};
    quantization = state.quantization;
  }
  at = replicas_->share_root_parameters(*comm_, at);
  // A quantized model: the other workers read its int8 scales themselves (a small file, read for eval).
  if (comm_->rank() != 0 && !read_checkpoint(path, CheckpointContents::Header).quantization.empty()) {
    quantization = read_checkpoint(path).quantization;
  }
  if (!quantization.empty()) model_->use_int8(int8_weights(quantization));
  return at;
}

Int8Calibration Trainer::calibrate_int8(size_t batches) {
  Int8Calibration calibration(*model_);
  const Dataset& train = *data_.train;
  const size_t batch = std::min(config_.train.eval_batch_size, train.size());
  const size_t total = std::min(train.size(), batches * batch);
  BatchLoader loader(train, batch);  // no augmentation: the samples as evaluation sees them
  for (size_t first = 0; first < total; first += batch) {
    std::vector<uint64_t> ids;  // spread evenly over the training set
    for (size_t k = first; k < std::min(total, first + batch); ++k) ids.push_back(k * train.size() / total);
    loader.prefetch(ids);
    Batch& b = loader.next();
    model_->step(b.inputs, b.labels.data(), step_info(Mode::Eval, 0, b), 1.0f);
    calibration.observe(*model_, b.inputs, ids.size());
  }
  return calibration;
}

}  // namespace dptrain
