#include "runtime/trainer.h"

#include <algorithm>
#include <chrono>
#include <cstdarg>
#include <sstream>

#include "runtime/errors.h"
#include "runtime/loader.h"
#include "runtime/sampler.h"

namespace dptrain {

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

}  // namespace

Trainer::Trainer(RunConfig& config, Communicator& comm, TrainerOptions options)
    : config_(config),
      comm_(comm),
      options_(std::move(options)),
      context_(config.device, config.threads) {
  data_ = make_datasets(*config_.data, config_.seed);
  config_.data->finish();
  model_ = std::make_unique<Model>(config_.model, data_.train->sample_shape(), context_.device(), config_.seed);
  if (model_->num_classes() < data_.train->num_classes()) {
    config_.model.back().fail("type", "the model ends in " + std::to_string(model_->num_classes()) +
                                          " outputs but the data has " + std::to_string(data_.train->num_classes()) +
                                          " classes");
  }
  optimizer_ = make_optimizer(*config_.optimizer, model_->parameters().num_elements());
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
  if (comm_.rank() == 0 && !options_.metrics_path.empty()) metrics_ = MetricsWriter(options_.metrics_path);
}

void Trainer::log(const char* format, ...) const {
  if (comm_.rank() != 0 || !options_.log) return;
  va_list args;
  va_start(args, format);
  std::vfprintf(options_.log, format, args);
  va_end(args);
  std::fflush(options_.log);
}

std::string Trainer::describe() const {
  std::ostringstream out;
  out << "run " << config_.name << " (" << config_.file << "), seed " << config_.seed << "\n";
  out << "workers " << comm_.size() << " (" << comm_.backend() << "), device " << to_string(context_.device())
      << ", " << context_.num_threads() << " threads per worker\n";
  out << "train: " << data_.train->describe() << "\n";
  out << "test:  " << data_.test->describe() << "\n";
  out << "model:\n" << model_->summary() << "\n";
  out << "optimizer " << optimizer_->describe() << "\nlr schedule: " << schedule_->describe() << "\n";
  out << "global batch " << config_.train.batch_size << ", " << steps_per_epoch_ << " steps per epoch, "
      << config_.train.epochs << " epochs";
  return out.str();
}

EpochSummary Trainer::train_epoch(size_t epoch) {
  const auto start = Clock::now();
  const size_t rank = comm_.rank(), world = comm_.size();
  const EpochPlan plan(data_.train->size(), config_.train.batch_size, config_.seed, epoch,
                       config_.train.drop_last, Shuffle::Yes);
  const size_t steps = plan.num_steps();
  BatchLoader loader(*data_.train, (config_.train.batch_size + world - 1) / world + 1);
  ProgressReporter progress(rank == 0 ? options_.progress : ProgressStyle::Off, config_.train.progress_seconds,
                            options_.log ? options_.log : stdout);
  progress.start_epoch(epoch + 1, config_.train.epochs, steps);

  Tensor& params = model_->parameters();
  Tensor& grads = model_->gradients();
  double sums[3] = {0, 0, 0};  // loss sum, correct, samples (this worker)
  size_t images_seen = 0;      // all workers
  loader.prefetch(plan.slice(0, rank, world));
  for (size_t s = 0; s < steps; ++s) {
    Batch& batch = loader.next();
    if (s + 1 < steps) loader.prefetch(plan.slice(s + 1, rank, world));
    const size_t global_batch = plan.batch_size(s);
    const StepInfo info{Mode::Train, config_.seed, epoch, batch.ids.data()};
    LossStats stats;
    if (batch.ids.empty()) {
      grads.zero();  // more workers than samples in this step: contribute nothing
    } else {
      stats = model_->step(batch.inputs, batch.labels.data(), info, 1.0f / static_cast<float>(global_batch));
    }
    if (world > 1) comm_.all_reduce_sum(grads.data(), grads.num_elements(), options_.comm_deadline);
    optimizer_->step(params, grads, static_cast<float>(schedule_->lr(global_step_)));
    ++global_step_;
    sums[0] += stats.loss_sum;
    sums[1] += static_cast<double>(stats.correct);
    sums[2] += static_cast<double>(stats.count);
    images_seen += global_batch;
    const double elapsed = seconds_since(start);
    progress.update(s + 1, sums[2] ? sums[0] / sums[2] : 0, sums[2] ? sums[1] / sums[2] : 0,
                    elapsed > 0 ? images_seen / elapsed : 0);
  }
  progress.finish_epoch();
  const double train_seconds = seconds_since(start);
  comm_.all_reduce_sum(sums, 3, options_.comm_deadline);

  EpochSummary summary;
  summary.epoch = epoch + 1;
  summary.step = global_step_;
  summary.loss = sums[2] ? sums[0] / sums[2] : 0;
  summary.train_accuracy = sums[2] ? sums[1] / sums[2] : 0;
  summary.train_seconds = train_seconds;
  summary.images_per_sec = train_seconds > 0 ? sums[2] / train_seconds : 0;
  summary.data_wait_seconds = loader.wait_seconds();
  summary.seconds = train_seconds;
  return summary;
}

EvalResult Trainer::evaluate() {
  const Dataset& test = *data_.test;
  const size_t rank = comm_.rank(), world = comm_.size();
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
  comm_.all_reduce_sum(sums, 3, options_.comm_deadline);
  EvalResult result;
  result.samples = static_cast<size_t>(sums[2]);
  result.loss = sums[2] ? sums[0] / sums[2] : 0;
  result.accuracy = sums[2] ? sums[1] / sums[2] : 0;
  return result;
}

std::vector<EpochSummary> Trainer::run() {
  log("%s\n", describe().c_str());
  metrics_.write(MetricsRecord("start")
                     .add("run", config_.name)
                     .add("world_size", static_cast<double>(comm_.size()))
                     .add("epochs", static_cast<double>(config_.train.epochs))
                     .add("steps_per_epoch", static_cast<double>(steps_per_epoch_))
                     .add("batch_size", static_cast<double>(config_.train.batch_size))
                     .add("parameters", static_cast<double>(model_->num_parameters())));
  const auto run_start = Clock::now();
  std::vector<EpochSummary> summaries;
  for (size_t epoch = 0; epoch < config_.train.epochs; ++epoch) {
    const auto epoch_start = Clock::now();
    EpochSummary s = train_epoch(epoch);
    s.test = evaluate();
    s.seconds = seconds_since(epoch_start);
    log("epoch %zu/%zu  loss %.4f  train_acc %.4f  test_loss %.4f  test_acc %.4f  %.0f img/s  %s (data wait %.1f%%)\n",
        s.epoch, config_.train.epochs, s.loss, s.train_accuracy, s.test.loss, s.test.accuracy, s.images_per_sec,
        format_duration(s.seconds).c_str(), s.train_seconds > 0 ? 100.0 * s.data_wait_seconds / s.train_seconds : 0);
    metrics_.write(MetricsRecord("epoch")
                       .add("epoch", static_cast<double>(s.epoch))
                       .add("step", static_cast<double>(s.step))
                       .add("world_size", static_cast<double>(comm_.size()))
                       .add("loss", s.loss)
                       .add("train_accuracy", s.train_accuracy)
                       .add("test_loss", s.test.loss)
                       .add("test_accuracy", s.test.accuracy)
                       .add("images_per_sec", s.images_per_sec)
                       .add("lr", schedule_->lr(global_step_ ? global_step_ - 1 : 0))
                       .add("data_wait_seconds", s.data_wait_seconds)
                       .add("train_seconds", s.train_seconds)
                       .add("seconds", s.seconds));
    summaries.push_back(s);
  }
  const double total = seconds_since(run_start);
  if (!summaries.empty()) {
    log("done: %zu epochs in %s, test accuracy %.4f\n", summaries.size(), format_duration(total).c_str(),
        summaries.back().test.accuracy);
    metrics_.write(MetricsRecord("end")
                       .add("epoch", static_cast<double>(summaries.back().epoch))
                       .add("step", static_cast<double>(global_step_))
                       .add("world_size", static_cast<double>(comm_.size()))
                       .add("test_accuracy", summaries.back().test.accuracy)
                       .add("seconds", total));
  }
  return summaries;
}

}  // namespace dptrain
