#include "runtime/train/trainer.h"

#include <algorithm>
#include <thread>

#include "comm/device_communicator.h"
#include "runtime/core/errors.h"
#include "runtime/core/fault_hooks.h"
#include "runtime/data/augment.h"
#include "runtime/data/batch_loader.h"
#include "runtime/data/epoch_plan.h"
#include "runtime/report/timeline.h"
#include "runtime/train/fine_tune.h"

namespace dptrain {

namespace {

using Clock = std::chrono::steady_clock;

// What the steps of one epoch added up to, for its summary.
struct EpochTally {
  size_t epoch = 0;                // 0-based
  size_t first_step = 0, end_step = 0, steps = 0;  // trained [first_step, end_step) of `steps`
  uint64_t global_step = 0;        // after the last step trained
  double sums[3] = {0, 0, 0};      // loss sum, correct, samples (all workers)
  double train_seconds = 0;
  double data_wait_seconds = 0;    // this worker's
  double comm_wait_seconds = 0;    // this worker's
};

// The epoch's summary over all workers (the waits are averaged: collective), logged in the rank log.
// `rest`: this worker's loss sums that no step's all-reduce carried (a GPU's last ones).
EpochSummary summarize_epoch(EpochTally& t, const LossStats& rest, Communicator& comm, Deadline deadline,
                             const RunReport& report) {
  const size_t world = comm.size();
  double waits[5] = {t.data_wait_seconds, t.comm_wait_seconds, rest.loss_sum, static_cast<double>(rest.correct),
                     static_cast<double>(rest.count)};
  comm.all_reduce_sum(waits, 5, deadline);
  for (int i = 0; i < 3; ++i) t.sums[i] += waits[2 + i];
  EpochSummary summary;
  summary.epoch = t.epoch + 1;
  summary.step = t.global_step;
  summary.first_step = t.first_step;
  summary.steps = t.end_step - t.first_step;
  summary.complete = t.end_step == t.steps;
  summary.loss = t.sums[2] ? t.sums[0] / t.sums[2] : 0;
  summary.train_accuracy = t.sums[2] ? t.sums[1] / t.sums[2] : 0;
  summary.train_seconds = t.train_seconds;
  summary.images_per_sec = t.train_seconds > 0 ? t.sums[2] / t.train_seconds : 0;
  summary.data_wait_seconds = waits[0] / static_cast<double>(world);
  summary.comm_wait_seconds = waits[1] / static_cast<double>(world);
  summary.seconds = t.train_seconds;
  report.rank_log("epoch %zu: rank %zu trained %zu steps (%zu to %zu of %zu) in %s, data wait %.3f s, exposed "
                  "all-reduce %.3f s\n",
                  t.epoch + 1, comm.rank(), t.end_step - t.first_step, t.first_step + 1, t.end_step, t.steps,
                  format_duration(t.train_seconds).c_str(), t.data_wait_seconds, t.comm_wait_seconds);
  return summary;
}

// A global batch larger than the training set: with drop_last no step is left (refused where the
// steps are counted); without, every step trains on the whole set, which is allowed with a warning,
// since the batch size (and the learning rate tuned for it) is then not what trains.
void warn_batch_beyond_data(RunConfig& config, size_t train_size) {
  const TrainSettings& train = config.train;
  if (train.batch_size <= train_size || train.drop_last == DropLast::Yes) return;
  const std::string where = train.section ? train.section->where("batch_size") : "train.batch_size";
  config.warnings.push_back(where + ": " + std::to_string(train.batch_size) + " is larger than the training set (" +
                            std::to_string(train_size) + " samples): every step trains on the whole set");
}

}  // namespace

Trainer::Trainer(RunConfig& config, Communicator& comm, TrainerOptions options)
    : config_(config),
      comm_(&comm),
      options_(std::move(options)),
      context_(config.device, config.threads, options_.workers_on_node, std::nullopt, config.precision,
               config.determinism, config.cpu_convolution),
      deadline_(std::chrono::milliseconds(static_cast<int64_t>(config.comm.timeout_seconds * 1000))),
      report_(options_.log, options_.rank_log, options_.progress, config.train.progress_seconds),
      checkpoints_(config.checkpoint),
      stop_vote_(options_.stop_signal, deadline_) {
  data_ = make_datasets(*config_.data, config_.seed);
  config_.data->finish();
  warn_batch_beyond_data(config_, data_.train->size());
  model_ = std::make_unique<Model>(config_.model, data_.train->sample_shape(), context_.backend(), config_.seed,
                                   config_.init.freeze);
  check_init_entries(config_.init, *model_);
  if (model_->num_classes() < data_.train->num_classes()) {
    config_.model.back().fail("type", "the model ends in " + std::to_string(model_->num_classes()) +
                                          " outputs but the data has " + std::to_string(data_.train->num_classes()) +
                                          " classes");
  }
  optimizer_ = make_optimizer(*config_.optimizer, model_->parameter_entries(), model_->parameters().num_elements(),
                              model_->backend());
  config_.optimizer->finish();
  steps_per_epoch_ = EpochPlan(data_.train->size(), config_.train.batch_size, config_.seed, 0,
                               config_.train.drop_last, Shuffle::Yes)
                         .num_steps();
  if (steps_per_epoch_ == 0) {
    const std::string rule = std::to_string(config_.train.batch_size) +
                             " with train.drop_last leaves no step in an epoch of the training set's " +
                             std::to_string(data_.train->size()) + " samples: set train.batch_size to at most " +
                             std::to_string(data_.train->size()) + ", or drop_last: false";
    if (config_.train.section) config_.train.section->fail("batch_size", rule);
    throw ConfigError(config_.file + ": train.batch_size " + rule);
  }
  schedule_ = std::make_unique<LrSchedule>(*config_.lr_schedule, optimizer_->base_lr(), steps_per_epoch_, config_.train.epochs);
  config_.lr_schedule->finish();
  report_.set_rank(comm.rank());
  // A fresh start from init.from: rank 0 loads, synchronize_start shares; resume() replaces it all.
  if (!config_.init.from.empty() && comm.rank() == 0) {
    report_.log("%s\n", describe_initial_state(load_initial_state(config_.init, *model_)).c_str());
  }
  report_.open_metrics(options_.metrics_path);
  model_->set_timeline(options_.timeline);
  reproducible_auto_ = config_.train.reproducible == Reproducibility::Auto;
  config_.train.reproducible = resolve_reproducible(config_.train.reproducible, *model_, &reproducible_why_not_);
  if (config_.train.reproducible == Reproducibility::BitExact) set_up_reproducible();
  if (config_.prune.enabled) {
    if (model_->device() != DeviceKind::CPU) {
      const std::string why = "pruning runs on the CPU backend only for now (set device: cpu)";
      if (config_.prune.section) config_.prune.section->fail("sparsity", why);
      throw ConfigError(config_.file + ": prune: " + why);
    }
    pruner_ = std::make_unique<Pruner>(config_.prune, *model_, steps_per_epoch_);
  }
  replicas_ = std::make_unique<ReplicaSync>(*model_, *optimizer_, config_.text, data_.train->size(), deadline_);
  replace_communicator(comm);
  replicas_->synchronize_start(*comm_);
}

Trainer::~Trainer() = default;

void Trainer::replace_communicator(Communicator& comm) {
  reducer_.reset();
  exact_reducer_.reset();
  step_stats_ = nullptr;
  device_comm_.reset();
  comm_ = &comm;
  report_.set_rank(comm.rank());
  batch_stats_ = std::make_unique<BatchStatsSum>(comm, deadline_);
  // Rank 0 draws the progress line: it asks for a GPU's loss sums as often as the line is redrawn.
  std::optional<double> read_period;
  if (comm.rank() == 0 && options_.progress == ProgressStyle::Plain) read_period = config_.train.progress_seconds;
  if (comm.rank() == 0 && options_.progress == ProgressStyle::Terminal) read_period = 1.0;
  const LossReadout readout = model_->device() == DeviceKind::CPU ? LossReadout::Now : LossReadout::Later;
  metrics_ = std::make_unique<StepMetrics>(readout, [this] { return model_->take_loss_sums(); }, read_period,
                                           config_.train.metrics_every_steps);
  // Only trained gradients travel: frozen parameters lie before trained_range() in the flat buffer.
  const auto [trained_begin, trained_end] = model_->trained_range();
  // (With every parameter frozen the range is empty: one float of the frozen part stands in.)
  Tensor& grads = model_->gradients();
  float* trained = grads.data() + std::min(trained_begin, grads.num_elements() - 1);
  device_comm_ = make_device_communicator(*comm_, model_->backend(), deadline_, config_.comm.device_transport);
  step_stats_ = &choose_batch_stats_sum(device_comm_.get(), *batch_stats_);
  reducer_ = std::make_unique<GradientReducer>(device_comm_ ? *device_comm_ : *comm_, trained,
                                               std::max<size_t>(trained_end - trained_begin, 1),
                                               static_cast<size_t>(config_.comm.bucket_mb * 1024 * 1024), deadline_);
  reducer_->set_timeline(options_.timeline);
  if (config_.train.reproducible == Reproducibility::BitExact) make_exact_reducer();
}

void Trainer::set_timeline(Timeline* timeline) {
  options_.timeline = timeline;
  model_->set_timeline(timeline);
  reducer_->set_timeline(timeline);
  if (exact_reducer_) exact_reducer_->set_timeline(timeline);
}

std::string Trainer::hand_over() {
  std::string problem = replicas_->share_with_joiners(*comm_, position_);
  // The same setup on every worker (else no worker gets here): every one has a pruner, or none.
  if (problem.empty() && pruner_) pruner_->share(*comm_, deadline_);
  return problem;
}

// The training step, as one block (llm.c's "TRAINING SECTION"): forward and backward, each bucket of
// gradients all-reduced as soon as backward has finished it; the all-reduce finished; the update.
LossStats Trainer::train_step(const Batch& batch, size_t epoch, size_t global_batch) {
  StepInfo info = step_info(Mode::Train, epoch, batch);
  if (comm_->size() > 1) info.batch_stats = step_stats_;
  const size_t trained_begin = model_->trained_range().first;
  const float lr = static_cast<float>(schedule_->lr(position_.global_step));
  Tensor& params = model_->parameters();
  Tensor& grads = model_->gradients();
  // train.reproducible: the exact sums travel instead of the float gradients, bucket by bucket too.
  const bool exact = info.summation == Summation::Exact;
  GradientReducer& reducer = exact ? *exact_reducer_ : *reducer_;
  const GradsReady ready = [&](size_t begin, size_t end) { reducer.ready(begin - trained_begin, end - trained_begin); };
  LossStats stats;
  reducer.begin_step();
  if (batch.ids.empty()) {
    model_->idle_step(info, ready);  // more workers than samples in this step: contribute nothing
  } else {
    stats = model_->step(batch.inputs, batch.labels.data(), info, 1.0f / static_cast<float>(global_batch), ready);
  }
  reducer.finish();
  if (exact) round_exact_gradients();
  if (pruner_) pruner_->mask_gradients(grads);  // pruned weights get no update
  {
    TimelineSpan span(options_.timeline, "optimizer", "compute");
    optimizer_->clip_grad_norm(grads);  // the all-reduced gradients, the same on every worker
    optimizer_->step(params, grads, lr);
  }
  ++position_.global_step;
  if (pruner_) {  // the same parameters on every worker: the same weights pruned
    if (pruner_->updates_at(position_.global_step)) {
      pruner_->update(params, position_.global_step);
    } else {
      pruner_->apply(params);
    }
  }
  return stats;
}

EpochSummary Trainer::train_epoch(size_t epoch, size_t first_step) {
  const auto start = Clock::now();
  const size_t rank = comm_->rank(), world = comm_->size();
  const EpochPlan plan(data_.train->size(), config_.train.batch_size, config_.seed, epoch,
                       config_.train.drop_last, Shuffle::Yes);
  EpochTally t;
  t.epoch = epoch;
  t.steps = plan.num_steps();
  t.first_step = std::min(first_step, t.steps);
  const size_t unit = config_.train.reproducible == Reproducibility::BitExact ? config_.train.micro_shard : 1;
  BatchLoader loader(*data_.train, plan.largest_slice(world, unit) + 1, data_.train_augment.get(), config_.seed);
  ProgressReporter progress = report_.progress(epoch + 1, config_.train.epochs, t.steps);
  position_.epoch = epoch;
  position_.step_in_epoch = t.first_step;
  const double comm_wait_before = exposed_comm_seconds();
  if (t.first_step < t.steps) loader.prefetch(plan.slice(t.first_step, rank, world, unit), epoch);
  bool stop = false;
  size_t s = t.first_step;
  double (&sums)[3] = t.sums;  // loss sum, correct, samples (all workers)
  metrics_->start(start);
  // A test hook: DPTRAIN_FAULT=step-floor-us=N makes every step last at least N microseconds, so
  // that tests which join and leave between epochs get epochs long enough on any machine.
  const std::optional<uint64_t> step_floor_us = fault_hooks::value("step-floor-us");
  while (s < t.steps && !stop) {
    const auto step_start = Clock::now();
    TimelineSpan step_span(options_.timeline, "step", "train");
    step_span.arg("step", static_cast<double>(position_.global_step)).arg("epoch", static_cast<double>(epoch + 1));
    TimelineSpan data_wait(options_.timeline, "data wait", "data", TimelineTrack::Data);
    Batch& batch = loader.next();
    data_wait.end();
    if (s + 1 < t.steps) loader.prefetch(plan.slice(s + 1, rank, world, unit), epoch);
    if (options_.on_batch) options_.on_batch(epoch, s, batch.ids);
    const LossStats stats = train_step(batch, epoch, plan.batch_size(s));
    if (step_floor_us) std::this_thread::sleep_until(step_start + std::chrono::microseconds(*step_floor_us));
    position_.step_in_epoch = ++s;
    if (model_->device() == DeviceKind::CPU) check_finite_update();  // on a GPU: the loss, when read back
    // Every worker learns of a stop request at the same step; the loss sums travel along.
    double step_sums[StepMetrics::kSlots];
    metrics_->fill(stats, step_sums, Clock::now(), position_.global_step);
    stop = stop_vote_.after_step(step_sums, StepMetrics::kSlots, *comm_, options_.timeline);
    check_finite_loss(step_sums[0]);
    for (int i = 0; i < 3; ++i) sums[i] += step_sums[i];
    const double elapsed = seconds_since(start);
    if (metrics_->after_all_reduce(step_sums)) {
      progress.update(s, sums[2] ? sums[0] / sums[2] : 0, sums[2] ? sums[1] / sums[2] : 0,
                      elapsed > 0 ? sums[2] / elapsed : 0);
    }
    const auto record = metrics_->step_record(position_, t.steps, sums, *schedule_, Clock::now());
    if (record) report_.step_done(*record, world);
    // Timed saves inside an epoch cost only rank 0 (the state is the same on every worker).
    if (!stop && s < t.steps && checkpoints_.due_inside_epoch()) save_checkpoint();
  }
  progress.finish_epoch();
  t.end_step = s;
  t.global_step = position_.global_step;
  t.data_wait_seconds = loader.wait_seconds();
  t.comm_wait_seconds = exposed_comm_seconds() - comm_wait_before;
  const LossStats rest = metrics_->take_rest();
  t.train_seconds = seconds_since(start);  // with the device's last steps, when the rest waited for them
  return summarize_epoch(t, rest, *comm_, deadline_, report_);
}

EvalResult Trainer::evaluate() {
  TimelineSpan span(options_.timeline, "evaluate", "eval");
  const Dataset& test = *data_.test;
  const size_t rank = comm_->rank(), world = comm_->size();
  // Each worker takes a contiguous share of the test set, in batches.
  const size_t begin = test.size() * rank / world, end = test.size() * (rank + 1) / world;
  const size_t batch = std::min(config_.train.eval_batch_size, std::max<size_t>(end - begin, 1));
  BatchLoader loader(test, batch);
  double sums[3] = {0, 0, 0};
  auto ids_from = [&](size_t first) {
    std::vector<uint64_t> ids;
    for (size_t i = first; i < std::min(end, first + batch); ++i) ids.push_back(i);
    return ids;
  };
  if (begin < end) loader.prefetch(ids_from(begin));
  for (size_t first = begin; first < end; first += batch) {
    Batch& b = loader.next();
    if (first + batch < end) loader.prefetch(ids_from(first + batch));
    const StepInfo info = step_info(Mode::Eval, 0, b);
    const LossStats stats = model_->step(b.inputs, b.labels.data(), info, 1.0f);
    sums[0] += stats.loss_sum;
    sums[1] += static_cast<double>(stats.correct);
    sums[2] += static_cast<double>(stats.count);
  }
  if (metrics_->readout() == LossReadout::Later) {
    const LossStats stats = model_->take_loss_sums();  // the evaluation's, on the device until now
    sums[0] += stats.loss_sum;
    sums[1] += static_cast<double>(stats.correct);
    sums[2] += static_cast<double>(stats.count);
  }
  comm_->all_reduce_sum(sums, 3, deadline_);
  EvalResult result;
  result.samples = static_cast<size_t>(sums[2]);
  result.loss = sums[2] ? sums[0] / sums[2] : 0;
  result.accuracy = sums[2] ? sums[1] / sums[2] : 0;
  return result;
}

std::vector<EpochSummary> Trainer::run() {
  const std::string description = describe();
  report_.log("%s\n", description.c_str());
  report_.rank_log("%s\n", description.c_str());
  // A run that continues from a checkpoint of its own does not need a new run's folder.
  if (comm_->rank() == 0 && !checkpoints_.holds_checkpoint()) checkpoints_.check_folder_for_new_run(config_.file);
  report_.started({config_.name, comm_->size(), config_.train.epochs, steps_per_epoch_, config_.train.batch_size,
                   model_->num_parameters()},
                  position_);
  const auto run_start = Clock::now();
  checkpoints_.start_clock();
  outcome_ = {};
  std::vector<EpochSummary> summaries;
  if (position_.epoch >= config_.train.epochs) {
    report_.log("nothing to train: the run is at the end of epoch %zu and train.epochs is %zu (raise train.epochs "
                "to train longer)\n",
                position_.epoch, config_.train.epochs);
    return summaries;
  }
  for (size_t epoch = position_.epoch; epoch < config_.train.epochs; ++epoch) {
    const auto epoch_start = Clock::now();
    summaries.push_back(train_epoch(epoch, epoch == position_.epoch ? position_.step_in_epoch : 0));
    check_finite_loss(summaries.back().loss);  // with a GPU's last loss sums, read at the epoch's end
    if (!summaries.back().complete) {
      stop();
      return summaries;
    }
    finish_epoch(summaries.back(), epoch_start);
    const bool last = epoch + 1 == config_.train.epochs;
    if (checkpoints_.due_after_epoch(epoch + 1, last)) save_checkpoint();
    if (!last && !cross_epoch_boundary()) return summaries;
  }
  report_.completed(summaries, position_.global_step, comm_->size(), seconds_since(run_start));
  return summaries;
}

void Trainer::finish_epoch(EpochSummary& s, Clock::time_point epoch_start) {
  s.test = evaluate();
  s.seconds = seconds_since(epoch_start);
  if (pruner_) {
    s.sparsity = pruner_->sparsity();
    s.total_sparsity = pruner_->total_sparsity();
  }
  position_.epoch = s.epoch;  // the next epoch, 0-based
  position_.step_in_epoch = 0;
  report_.epoch_done(s, config_.train.epochs, comm_->size(), schedule_->lr(s.step ? s.step - 1 : 0));
}

bool Trainer::cross_epoch_boundary() {
  if (stop_vote_.at_epoch_boundary(*comm_)) {
    stop();  // saved at this position already: the same file
    return false;
  }
  if (!options_.boundary) return true;
  const BoundaryDecision decision = options_.boundary->at_epoch_boundary(*this);
  switch (decision.action) {
    case BoundaryAction::Continue:
      return true;
    case BoundaryAction::Leave:
      outcome_.end = RunEnd::Left;
      return false;
    case BoundaryAction::Stop:
      stop(decision.stop_reason);
      return false;
  }
  return true;
}

void Trainer::stop(const std::string& reason) {
  outcome_ = {RunEnd::Stopped, stop_vote_.stopped_by(), reason};
  report_.stopped(outcome_, position_, steps_per_epoch_, comm_->size(), save_checkpoint());
}

}  // namespace dptrain
