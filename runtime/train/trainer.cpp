#include "runtime/train/trainer.h"

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdarg>
#include <sstream>

#include "comm/device_communicator.h"
#include "runtime/data/augment.h"
#include "runtime/core/errors.h"
#include "runtime/data/batch_loader.h"
#include "runtime/core/rng.h"
#include "runtime/data/epoch_plan.h"
#include "runtime/report/timeline.h"

namespace dptrain {

namespace {

using Clock = std::chrono::steady_clock;


}  // namespace

Trainer::Trainer(RunConfig& config, Communicator& comm, TrainerOptions options)
    : config_(config),
      comm_(&comm),
      options_(std::move(options)),
      context_(config.device, config.threads, options_.workers_on_node, std::nullopt, config.precision),
      deadline_(std::chrono::milliseconds(static_cast<int64_t>(config.comm.timeout_seconds * 1000))) {
  data_ = make_datasets(*config_.data, config_.seed);
  config_.data->finish();
  model_ = std::make_unique<Model>(config_.model, data_.train->sample_shape(), context_.backend(), config_.seed);
  if (model_->num_classes() < data_.train->num_classes()) {
    config_.model.back().fail("type", "the model ends in " + std::to_string(model_->num_classes()) +
                                          " outputs but the data has " + std::to_string(data_.train->num_classes()) +
                                          " classes");
  }
  optimizer_ = make_optimizer(*config_.optimizer, model_->parameters().num_elements(), model_->backend());
  config_.optimizer->finish();
  steps_per_epoch_ = EpochPlan(data_.train->size(), config_.train.batch_size, config_.seed, 0,
                               config_.train.drop_last, Shuffle::Yes)
                         .num_steps();
  if (steps_per_epoch_ == 0) {
    throw ConfigError(config_.file + ": train.batch_size " + std::to_string(config_.train.batch_size) +
                      " with drop_last leaves no step in an epoch of " + std::to_string(data_.train->size()) +
                      " samples");
  }
  schedule_ = std::make_unique<LrSchedule>(*config_.lr_schedule, optimizer_->base_lr(), steps_per_epoch_, config_.train.epochs);
  config_.lr_schedule->finish();
  if (comm_->rank() == 0 && !options_.metrics_path.empty()) metrics_ = MetricsWriter(options_.metrics_path);
  model_->set_timeline(options_.timeline);
  replace_communicator(comm);
  synchronize_start();
}

void Trainer::replace_communicator(Communicator& comm) {
  reducer_.reset();
  device_comm_.reset();
  comm_ = &comm;
  Tensor& grads = model_->gradients();
  device_comm_ = make_device_communicator(*comm_, model_->backend(), deadline_, config_.comm.device_transport);
  reducer_ = std::make_unique<GradientReducer>(device_comm_ ? *device_comm_ : *comm_, grads.data(),
                                               grads.num_elements(),
                                               static_cast<size_t>(config_.comm.bucket_mb * 1024 * 1024), deadline_);
  reducer_->set_timeline(options_.timeline);
}

void Trainer::set_timeline(Timeline* timeline) {
  options_.timeline = timeline;
  model_->set_timeline(timeline);
  reducer_->set_timeline(timeline);
}

void Trainer::synchronize_start() {
  if (comm_->size() == 1) return;
  const std::string differs = compare_setups();
  if (!differs.empty()) throw ConfigError(differs);
  Tensor params = model_->host_parameters();
  comm_->broadcast(params.data(), params.num_elements() * sizeof(float), 0, deadline_);
  model_->load_parameters(params);
}

void Trainer::log(const char* format, ...) const {
  if (comm_->rank() != 0 || !options_.log) return;
  va_list args;
  va_start(args, format);
  std::vfprintf(options_.log, format, args);
  va_end(args);
  std::fflush(options_.log);
}

void Trainer::rank_log(const char* format, ...) const {
  if (!options_.rank_log) return;
  va_list args;
  va_start(args, format);
  std::vfprintf(options_.rank_log, format, args);
  va_end(args);
  std::fflush(options_.rank_log);
}

std::string Trainer::describe() const {
  std::ostringstream out;
  out << "run " << config_.name << " (" << config_.file << "), seed " << config_.seed << "\n";
  out << "workers " << comm_->size() << " (" << comm_->backend() << "), device " << to_string(context_.device())
      << ", " << context_.num_threads() << " threads per worker, precision " << context_.describe_precision()
      << "\n";
  out << "train: " << data_.train->describe() << "\n";
  out << "test:  " << data_.test->describe() << "\n";
  if (data_.train_augment) out << "augmentation: " << data_.train_augment->describe() << "\n";
  out << "model:\n" << model_->summary() << "\n";
  out << "optimizer " << optimizer_->describe() << "\nlr schedule: " << schedule_->describe() << "\n";
  out << "global batch " << config_.train.batch_size << ", " << steps_per_epoch_ << " steps per epoch, "
      << config_.train.epochs << " epochs";
  if (comm_->size() > 1) {
    const auto& buckets = reducer_->buckets();
    out << "\ngradient all-reduce: " << buckets.size() << (buckets.size() == 1 ? " bucket" : " buckets") << " of up to "
        << format_number(config_.comm.bucket_mb) << " MiB, started during backward; timeout "
        << format_number(config_.comm.timeout_seconds) << " s";
  }
  const CheckpointSettings& ckpt = config_.checkpoint;
  if (ckpt.dir.empty()) {
    out << "\ncheckpoints: none (set checkpoint.dir to save and resume)";
  } else {
    out << "\ncheckpoints: " << ckpt.dir << ", every " << ckpt.every_epochs
        << (ckpt.every_epochs == 1 ? " epoch" : " epochs");
    if (ckpt.every_minutes > 0) out << " and every " << format_number(ckpt.every_minutes) << " minutes";
    out << ", newest " << ckpt.keep << " kept";
  }
  return out.str();
}

EpochSummary Trainer::train_epoch(size_t epoch, size_t first_step) {
  const auto start = Clock::now();
  const size_t rank = comm_->rank(), world = comm_->size();
  const EpochPlan plan(data_.train->size(), config_.train.batch_size, config_.seed, epoch,
                       config_.train.drop_last, Shuffle::Yes);
  const size_t steps = plan.num_steps();
  first_step = std::min(first_step, steps);
  BatchLoader loader(*data_.train, (config_.train.batch_size + world - 1) / world + 1, data_.train_augment.get(),
                     config_.seed);
  ProgressReporter progress(rank == 0 ? options_.progress : ProgressStyle::Off, config_.train.progress_seconds,
                            options_.log ? options_.log : stdout);
  progress.start_epoch(epoch + 1, config_.train.epochs, steps);
  position_.epoch = epoch;
  position_.step_in_epoch = first_step;

  Tensor& params = model_->parameters();
  Tensor& grads = model_->gradients();
  double sums[3] = {0, 0, 0};  // loss sum, correct, samples (all workers)
  bool stop = false;
  const double comm_wait_before = reducer_->exposed_seconds();
  if (first_step < steps) loader.prefetch(plan.slice(first_step, rank, world), epoch);
  size_t s = first_step;
  while (s < steps && !stop) {
    TimelineSpan step_span(options_.timeline, "step", "train");
    step_span.arg("step", static_cast<double>(position_.global_step)).arg("epoch", static_cast<double>(epoch + 1));
    TimelineSpan data_wait(options_.timeline, "data wait", "data", TimelineTrack::Data);
    Batch& batch = loader.next();
    data_wait.end();
    if (s + 1 < steps) loader.prefetch(plan.slice(s + 1, rank, world), epoch);
    if (options_.on_batch) options_.on_batch(epoch, s, batch.ids);
    const size_t global_batch = plan.batch_size(s);
    const StepInfo info{Mode::Train, config_.seed, epoch, batch.ids.data()};
    LossStats stats;
    reducer_->begin_step();
    if (batch.ids.empty()) {
      grads.zero();  // more workers than samples in this step: contribute nothing
    } else {
      stats = model_->step(batch.inputs, batch.labels.data(), info, 1.0f / static_cast<float>(global_batch),
                           [this](size_t begin, size_t end) { reducer_->ready(begin, end); });
    }
    reducer_->finish();
    {
      TimelineSpan span(options_.timeline, "optimizer", "compute");
      optimizer_->step(params, grads, static_cast<float>(schedule_->lr(position_.global_step)));
    }
    ++position_.global_step;
    position_.step_in_epoch = ++s;
    // The step's loss, accuracy and sample count, and whether any worker was asked to stop: every
    // worker learns of a stop request at the same step.
    const int signal = options_.stop_signal ? options_.stop_signal->load() : 0;
    double step_sums[4] = {stats.loss_sum, static_cast<double>(stats.correct), static_cast<double>(stats.count),
                           signal ? 1.0 : 0.0};
    if (world > 1) {
      TimelineSpan span(options_.timeline, "metrics all-reduce", "comm");
      comm_->all_reduce_sum(step_sums, 4, deadline_);
    }
    for (int i = 0; i < 3; ++i) sums[i] += step_sums[i];
    if (step_sums[3] > 0) {
      stop = true;
      stopped_by_ = signal ? signal : SIGTERM;  // a peer's signal; SIGTERM is what launchers send
    }
    const double elapsed = seconds_since(start);
    progress.update(s, sums[2] ? sums[0] / sums[2] : 0, sums[2] ? sums[1] / sums[2] : 0,
                    elapsed > 0 ? sums[2] / elapsed : 0);
    // Timed saves inside an epoch cost only rank 0 (the state is the same on every worker).
    if (!stop && s < steps && config_.checkpoint.every_minutes > 0 &&
        seconds_since(last_save_time_) >= config_.checkpoint.every_minutes * 60) {
      save_checkpoint();
    }
  }
  progress.finish_epoch();
  const double train_seconds = seconds_since(start);
  const double local_comm_wait = reducer_->exposed_seconds() - comm_wait_before;
  double waits[2] = {loader.wait_seconds(), local_comm_wait};
  comm_->all_reduce_sum(waits, 2, deadline_);

  EpochSummary summary;
  summary.epoch = epoch + 1;
  summary.step = position_.global_step;
  summary.first_step = first_step;
  summary.steps = s - first_step;
  summary.complete = s == steps;
  summary.loss = sums[2] ? sums[0] / sums[2] : 0;
  summary.train_accuracy = sums[2] ? sums[1] / sums[2] : 0;
  summary.train_seconds = train_seconds;
  summary.images_per_sec = train_seconds > 0 ? sums[2] / train_seconds : 0;
  summary.data_wait_seconds = waits[0] / static_cast<double>(world);
  summary.comm_wait_seconds = waits[1] / static_cast<double>(world);
  summary.seconds = train_seconds;
  rank_log("epoch %zu: rank %zu trained %zu steps (%zu to %zu of %zu) in %s, data wait %.3f s, exposed all-reduce "
           "%.3f s\n",
           epoch + 1, rank, s - first_step, first_step + 1, s, steps, format_duration(train_seconds).c_str(),
           loader.wait_seconds(), local_comm_wait);
  return summary;
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
    const StepInfo info{Mode::Eval, config_.seed, 0, b.ids.data()};
    const LossStats stats = model_->step(b.inputs, b.labels.data(), info, 1.0f);
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
  log("%s\n", describe().c_str());
  rank_log("%s\n", describe().c_str());
  if (!resumed_) check_checkpoint_dir();
  metrics_.write(MetricsRecord("start")
                     .add("run", config_.name)
                     .add("world_size", static_cast<double>(comm_->size()))
                     .add("epochs", static_cast<double>(config_.train.epochs))
                     .add("steps_per_epoch", static_cast<double>(steps_per_epoch_))
                     .add("batch_size", static_cast<double>(config_.train.batch_size))
                     .add("parameters", static_cast<double>(model_->num_parameters()))
                     .add("epoch", static_cast<double>(position_.epoch))
                     .add("step", static_cast<double>(position_.global_step)));
  const auto run_start = Clock::now();
  last_save_time_ = run_start;
  std::vector<EpochSummary> summaries;
  if (position_.epoch >= config_.train.epochs) {
    log("nothing to train: the run is at the end of epoch %zu and train.epochs is %zu (raise train.epochs to "
        "train longer)\n",
        position_.epoch, config_.train.epochs);
    return summaries;
  }
  for (size_t epoch = position_.epoch; epoch < config_.train.epochs; ++epoch) {
    const auto epoch_start = Clock::now();
    EpochSummary s = train_epoch(epoch, epoch == position_.epoch ? position_.step_in_epoch : 0);
    if (!s.complete) {
      summaries.push_back(s);
      run_end_ = RunEnd::Stopped;
      report_stop(save_checkpoint());
      return summaries;
    }
    s.test = evaluate();
    s.seconds = seconds_since(epoch_start);
    position_.epoch = epoch + 1;
    position_.step_in_epoch = 0;
    const double share = s.train_seconds > 0 ? 100.0 / s.train_seconds : 0;
    char line[320];
    std::snprintf(line, sizeof(line),
                  "epoch %zu/%zu  loss %.4f  train_acc %.4f  test_loss %.4f  test_acc %.4f  %.0f img/s  %s "
                  "(data wait %.1f%%, comm wait %.1f%%)\n",
                  s.epoch, config_.train.epochs, s.loss, s.train_accuracy, s.test.loss, s.test.accuracy,
                  s.images_per_sec, format_duration(s.seconds).c_str(), share * s.data_wait_seconds,
                  share * s.comm_wait_seconds);
    log("%s", line);
    rank_log("%s", line);
    const MetricsRecord record = MetricsRecord("epoch")
                                     .add("epoch", static_cast<double>(s.epoch))
                                     .add("step", static_cast<double>(s.step))
                                     .add("world_size", static_cast<double>(comm_->size()))
                                     .add("loss", s.loss)
                                     .add("train_accuracy", s.train_accuracy)
                                     .add("test_loss", s.test.loss)
                                     .add("test_accuracy", s.test.accuracy)
                                     .add("images_per_sec", s.images_per_sec)
                                     .add("lr", schedule_->lr(s.step ? s.step - 1 : 0))
                                     .add("data_wait_seconds", s.data_wait_seconds)
                                     .add("comm_wait_seconds", s.comm_wait_seconds)
                                     .add("train_seconds", s.train_seconds)
                                     .add("seconds", s.seconds);
    metrics_.write(record);
    last_metrics_ = record.to_json();
    summaries.push_back(s);
    const bool last = epoch + 1 == config_.train.epochs;
    if (last || (epoch + 1) % config_.checkpoint.every_epochs == 0) save_checkpoint();
    if (!last && stop_requested_anywhere()) {
      run_end_ = RunEnd::Stopped;
      report_stop(save_checkpoint());  // already saved at this position: the same file
      return summaries;
    }
    if (!last && options_.boundary) {
      const BoundaryAction action = options_.boundary->at_epoch_boundary(*this);
      if (action == BoundaryAction::Leave) {
        run_end_ = RunEnd::Left;
        return summaries;
      }
      if (action == BoundaryAction::Stop) {
        run_end_ = RunEnd::Stopped;
        report_stop(save_checkpoint());
        return summaries;
      }
    }
  }
  const double total = seconds_since(run_start);
  log("done: %zu epochs in %s, test accuracy %.4f\n", summaries.size(), format_duration(total).c_str(),
      summaries.back().test.accuracy);
  metrics_.write(MetricsRecord("end")
                     .add("epoch", static_cast<double>(summaries.back().epoch))
                     .add("step", static_cast<double>(position_.global_step))
                     .add("world_size", static_cast<double>(comm_->size()))
                     .add("test_accuracy", summaries.back().test.accuracy)
                     .add("seconds", total));
  return summaries;
}

}  // namespace dptrain
