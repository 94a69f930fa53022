// The dptrain subcommands, each a function from parsed options to an exit code.
#pragma once

#include <string>
#include <vector>

namespace dptrain::launcher {

// Options of `dptrain train`.
struct TrainArgs {
  std::string config;
  std::vector<std::string> overrides;  // --set key=value
  std::string metrics;                 // --metrics FILE.jsonl
  std::string progress = "auto";       // auto | terminal | plain | off
  bool dry_run = false;                // check the config and data, print the plan, train nothing
};

// Options of `dptrain bench train`.
struct BenchTrainArgs {
  std::string config;
  std::vector<std::string> overrides;
  size_t steps = 50;       // timed steps per repeat
  size_t warmup = 1;       // untimed epochs (of `steps` steps) before the first repeat
  size_t repeats = 3;
  std::string data = "synthetic";  // synthetic | config
  bool json = false;       // one JSON line per repeat instead of a table
};

// Options of `dptrain bench layers`.
struct BenchLayersArgs {
  std::string config;
  std::vector<std::string> overrides;
  size_t batch = 0;        // 0: the config's train.batch_size
  size_t iterations = 20;
};

int run_train(const TrainArgs& args);
int run_bench_train(const BenchTrainArgs& args);
int run_bench_layers(const BenchLayersArgs& args);

}  // namespace dptrain::launcher
