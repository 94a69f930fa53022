// The dptrain subcommands, each a function from parsed options to an exit code.
#pragma once

#include <string>
#include <vector>

namespace CLI {
class App;
}

namespace dptrain::launcher {

// Options of `dptrain train`.
struct TrainArgs {
  std::string config;
  std::vector<std::string> overrides;  // --set key=value
  std::string metrics;                 // --metrics FILE.jsonl
  std::string progress = "auto";       // auto | terminal | plain | off
  bool dry_run = false;                // check the config and data, print the plan, train nothing
  std::string log_dir;                 // --log-dir DIR: every rank writes DIR/rank-<rank>.log
  std::string resume;                  // --resume auto|FILE; empty: train from the beginning
  std::string exit_status;             // --exit-status FILE: rank 0 writes how the run ended (dptrain launch)
  std::string timeline;                // --timeline FILE.json: every rank's steps, merged by rank 0
};

// Options of `dptrain eval`.
struct EvalArgs {
  std::string config;                  // empty: the config stored in the checkpoint
  std::vector<std::string> overrides;  // --set key=value
  std::string checkpoint;              // --checkpoint FILE
  bool json = false;                   // print one JSON object instead of a sentence
};

// Options of `dptrain predict`.
struct PredictArgs {
  std::string checkpoint;              // --checkpoint FILE
  std::vector<std::string> inputs;     // [CONFIG.yaml] then image files and folders
  std::vector<std::string> overrides;  // --set key=value
  size_t top_k = 5;                    // classes shown per image
  std::string format = "table";        // table | jsonl | csv
  size_t batch = 0;                    // images per forward pass; 0: the config's train.eval_batch_size
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
  size_t peak_size = 2048; // S of the GEMM peak measured before the repeats; 0: not measured
};

// Options of `dptrain bench layers`.
struct BenchLayersArgs {
  std::string config;
  std::vector<std::string> overrides;
  size_t batch = 0;        // 0: the config's train.batch_size
  size_t iterations = 20;
};

// Options of `dptrain bench predict`.
struct BenchPredictArgs {
  std::vector<std::string> checkpoints;  // --checkpoint FILE (repeatable): measured side by side
  size_t batch = 256;                    // images per forward pass
  size_t iterations = 10;                // timed forward passes per repeat
  size_t repeats = 5;                    // the median repeat is reported
  size_t threads = 0;                    // 0: default_thread_count()
};

// Options of `dptrain bench peak`.
struct BenchPeakArgs {
  size_t threads = 0;   // 0: default_thread_count() for the workers on this node
  size_t size = 2048;   // S of the S x S x S products
  size_t repeats = 5;   // timed products; the median is reported
  bool json = false;    // one JSON object instead of text
};

// Options of `dptrain bench allreduce`.
struct BenchAllreduceArgs {
  size_t min_bytes = 4 << 10;
  size_t max_bytes = 64 << 20;
  size_t iterations = 20;  // timed repetitions per size (fewer for the largest sizes)
  double bucket_mb = 1.0;  // bucket size of the bucketed all-reduce column
  double timeout_seconds = 120;
};

// The options of the four `dptrain bench` subcommands.
struct BenchArgs {
  BenchTrainArgs train;
  BenchLayersArgs layers;
  BenchAllreduceArgs allreduce;
  BenchPeakArgs peak;
  BenchPredictArgs predict;
};

// The subcommands `add_bench_commands` registered, to tell which one was parsed.
struct BenchCommands {
  CLI::App* train = nullptr;
  CLI::App* layers = nullptr;
  CLI::App* allreduce = nullptr;
  CLI::App* peak = nullptr;
  CLI::App* predict = nullptr;
};

class Workers;

// Register a subcommand (and its options) on `app`, parsing into `args`.
CLI::App* add_train_command(CLI::App& app, TrainArgs& args);
CLI::App* add_eval_command(CLI::App& app, EvalArgs& args);
CLI::App* add_predict_command(CLI::App& app, PredictArgs& args);
BenchCommands add_bench_commands(CLI::App& app, BenchArgs& args);


int run_train(const TrainArgs& args, Workers& workers);
int run_eval(const EvalArgs& args, Workers& workers);
int run_predict(const PredictArgs& args, Workers& workers);
int run_bench_train(const BenchTrainArgs& args, Workers& workers);
int run_bench_layers(const BenchLayersArgs& args);
int run_bench_allreduce(const BenchAllreduceArgs& args, Workers& workers);
int run_bench_peak(const BenchPeakArgs& args, Workers& workers);
int run_bench_predict(const BenchPredictArgs& args);
// Registers `bench predict` on the `bench` subcommand, parsing into `args`.
CLI::App* add_bench_predict_command(CLI::App& bench, BenchPredictArgs& args);

}  // namespace dptrain::launcher
