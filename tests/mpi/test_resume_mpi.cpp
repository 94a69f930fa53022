// Checkpoints across workers: a stop requested on one rank stops every rank at the same step, rank 0
// alone writes, and a run saved by 2 workers resumes on the same number bit-exactly and on another
// number (every rank of the job, and 1) within 1e-4 of the uninterrupted run.
#include <gtest/gtest.h>

#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "runtime/checkpoint/checkpoint.h"
#include "runtime/core/config_map.h"
#include "runtime/core/run_config.h"
#include "runtime/train/trainer.h"
#include "tests/mpi/mpi_test_util.h"

namespace dptrain {
namespace DPTRAIN_TEST_UNIT {

namespace fs = std::filesystem;
using mpi_test::first_ranks;
using mpi_test::kConfig;
using mpi_test::is_root;
using mpi_test::relative_difference;
using mpi_test::world_size;

const Deadline kDeadline = std::chrono::seconds(120);


// A folder every rank names alike (from `name` and rank 0's pid), removed by rank 0 at the end.
class SharedDir {
 public:
  explicit SharedDir(const std::string& name) {
    int pid = static_cast<int>(::getpid());
    MPI_Bcast(&pid, 1, MPI_INT, 0, MPI_COMM_WORLD);
    path_ = (fs::temp_directory_path() / ("dptrain_mpi_" + name + "_" + std::to_string(pid))).string();
    if (is_root()) {
      fs::remove_all(path_);
      fs::create_directories(path_);
    }
    MPI_Barrier(MPI_COMM_WORLD);
  }
  ~SharedDir() {
    MPI_Barrier(MPI_COMM_WORLD);
    if (is_root()) fs::remove_all(path_);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// What one rank saw of a run.
struct Outcome {
  std::vector<float> parameters;
  TrainingPosition position;
  int stopped_by = 0;
};

// Trains kConfig on the first `workers` ranks (the others wait), checkpointing into `dir`, optionally
// resuming, and with rank `stop_rank` alone asked to stop at (stop_epoch, stop_step).
Outcome train_on(size_t workers, const std::string& dir, const std::string& resume, long stop_rank = -1,
                 size_t stop_epoch = 0, size_t stop_step = 0) {
  Outcome out;
  std::unique_ptr<MpiCommunicator> comm = first_ranks(workers);
  if (comm) {
    RunConfig config = RunConfig::parse(kConfig, "invariance.yaml", {"checkpoint.dir=" + dir, "comm.timeout_seconds=60"});
    std::atomic<int> stop{0};
    const long rank = static_cast<long>(comm->rank());
    TrainerOptions options;
    options.log = nullptr;
    options.stop_signal = &stop;
    options.on_batch = [&](size_t epoch, size_t step, const std::vector<uint64_t>&) {
      if (rank == stop_rank && epoch == stop_epoch && step == stop_step) stop = SIGTERM;
    };
    Trainer trainer(config, *comm, options);
    if (!resume.empty()) trainer.resume(resume);
    trainer.run();
    const Tensor& p = trainer.model().parameters();
    out.parameters.assign(p.data(), p.data() + p.num_elements());
    out.position = trainer.position();
    out.stopped_by = trainer.stopped_by();
  }
  MPI_Barrier(MPI_COMM_WORLD);
  return out;
}

TEST(ResumeAcrossWorkers, StopOnOneRankStopsAllAndResumesOnAnyNumberOfWorkers) {
  ASSERT_GE(world_size(), 2u) << "run under mpirun -np 2 or more";
  SharedDir reference_dir("reference"), stopped_dir("stopped");
  const Outcome reference = train_on(2, reference_dir.path(), "");

  // Rank 1 alone is asked to stop in epoch 2 at step 9; rank 0 must stop at the same step.
  const Outcome stopped = train_on(2, stopped_dir.path(), "", 1, 1, 9);
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  if (rank < 2) {
    EXPECT_EQ(stopped.stopped_by, SIGTERM);
    EXPECT_EQ(stopped.position.epoch, 1u);
    EXPECT_EQ(stopped.position.step_in_epoch, 10u);
  }
  if (is_root()) {
    // Only EXPECTs from here on: a rank leaving the test early would leave the others waiting.
    const std::vector<CheckpointFile> files = list_checkpoints(stopped_dir.path());
    EXPECT_FALSE(files.empty());
    if (!files.empty()) {
      const CheckpointState saved = read_checkpoint(files[0].path, CheckpointContents::Header);
      EXPECT_EQ(saved.world_size, 2u);
      EXPECT_EQ(saved.step_in_epoch, 10u);
    }
  }
  // Keep the stopped state: each resume below continues from a copy of it.
  auto copy_of_stop = [&](const std::string& name) {
    const std::string dir = stopped_dir.path() + "/" + name;
    if (is_root()) {
      fs::create_directories(dir);
      for (const CheckpointFile& f : list_checkpoints(stopped_dir.path())) {
        fs::copy_file(f.path, dir + "/" + fs::path(f.path).filename().string());
      }
    }
    MPI_Barrier(MPI_COMM_WORLD);
    return dir;
  };

  const Outcome same = train_on(2, copy_of_stop("same"), "auto");
  if (is_root()) {
    EXPECT_EQ(same.parameters, reference.parameters) << "resuming on the same 2 workers is not bit-exact";
  }
  const size_t all = world_size();
  if (all != 2) {
    const Outcome more = train_on(all, copy_of_stop("all"), "auto");
    if (is_root()) {
      const double diff = relative_difference(reference.parameters, more.parameters);
      EXPECT_LT(diff, 1e-4) << "saved by 2 workers, resumed by " << all;
      std::printf("saved by 2 workers, resumed by %zu: relative difference %s\n", all, format_number(diff).c_str());
    }
  }
  const Outcome one = train_on(1, copy_of_stop("one"), "auto");
  if (is_root()) {
    const double diff = relative_difference(reference.parameters, one.parameters);
    EXPECT_LT(diff, 1e-4) << "saved by 2 workers, resumed by 1";
    std::printf("saved by 2 workers, resumed by 1: relative difference %s\n", format_number(diff).c_str());
  }
}

}  // namespace
}  // namespace dptrain
