// TrainerOptions: how a trainer runs and reports what it does, beside what its config says.
#pragma once

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include "runtime/report/metrics.h"

namespace dptrain {

class EpochBoundary;
class Timeline;

// Called on every worker for every training step with the global sample indices it trains on.
using BatchObserver = std::function<void(size_t epoch, size_t step, const std::vector<uint64_t>& ids)>;

// How a trainer runs and reports what it does.
struct TrainerOptions {
  std::string metrics_path;                       // JSON-lines file, written by rank 0; empty: none
  ProgressStyle progress = ProgressStyle::Plain;  // while an epoch runs (rank 0 only)
  std::FILE* log = stdout;                        // where rank 0 prints; nullptr: nowhere
  std::FILE* rank_log = nullptr;                  // this worker's own log (every rank); nullptr: none
  size_t workers_on_node = 1;                     // shares the cores when threads are chosen automatically
  BatchObserver on_batch;                         // optional
  // Set (to the signal number) by a SIGTERM/SIGINT handler: every worker finishes its current step,
  // rank 0 writes a checkpoint of the position inside the epoch, and the run returns. nullptr: never.
  const std::atomic<int>* stop_signal = nullptr;
  // Records every step's phases, each bucket's all-reduce and evaluation (runtime/report/timeline.h); nullptr: off.
  Timeline* timeline = nullptr;
  // Asked at every epoch boundary who trains on (elastic membership); nullptr: the same workers throughout.
  EpochBoundary* boundary = nullptr;
};

}  // namespace dptrain
