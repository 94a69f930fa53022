// Checkpoints as a user meets them: writers killed at random moments, h5dump on a written file, and
// `dptrain inspect` on good and damaged files.
#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "runtime/checkpoint/checkpoint.h"
#include "runtime/core/errors.h"
#include "tests/test_util.h"

namespace dptrain {
namespace DPTRAIN_TEST_UNIT {

namespace fs = std::filesystem;

struct CommandOutput {
  int exit_code;
  std::string output;  // stdout and stderr together
};

CommandOutput run(const std::string& command) {
  CommandOutput result{-1, ""};
  FILE* pipe = popen((command + " 2>&1").c_str(), "r");
  if (!pipe) return result;
  std::array<char, 4096> buffer;
  while (size_t n = fread(buffer.data(), 1, buffer.size(), pipe)) result.output.append(buffer.data(), n);
  const int status = pclose(pipe);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

bool have_program(const std::string& name) { return run("command -v " + name).exit_code == 0; }

using test_util::TempDir;

// The value of element i of every tensor of the checkpoint at `global_step`: each file's content is
// tied to its position, so a file holding another write's data is caught.
float value_at(uint64_t global_step, size_t i) {
  return static_cast<float>(global_step) + 1e-3f * static_cast<float>(i);
}

// A checkpoint of a model with 2 x 32768 parameters and SGD momentum (about 512 KiB on disk).
CheckpointState state_at(uint64_t epoch, uint64_t global_step) {
  CheckpointState state;
  state.run_name = "crash";
  state.config_text = "name: crash\n";
  state.epoch = epoch;
  state.global_step = global_step;
  state.steps_per_epoch = 1000;
  state.world_size = 2;
  for (const char* name : {"0.conv2d.weight", "2.dense.weight"}) {
    CheckpointTensor t{name, {128, 256}, std::vector<float>(128 * 256)};
    for (size_t i = 0; i < t.values.size(); ++i) t.values[i] = value_at(global_step, i);
    state.parameters.push_back(std::move(t));
  }
  state.optimizer_name = "sgd";
  state.optimizer_steps = global_step;
  state.optimizer_state = {{"momentum", state.parameters}};
  return state;
}

// Loads `path` and checks that every value is what the writer of its position stored.
void expect_complete(const CheckpointFile& file) {
  CheckpointState state;
  try {
    verify_checkpoint(file.path);
    state = read_checkpoint(file.path);
  } catch (const CheckpointError& e) {
    ADD_FAILURE() << e.what();
    return;
  }
  EXPECT_EQ(state.global_step, file.global_step) << file.path;
  EXPECT_EQ(state.epoch, file.epoch) << file.path;
  ASSERT_EQ(state.parameters.size(), 2u) << file.path;
  ASSERT_EQ(state.optimizer_state.size(), 1u) << file.path;
  for (const std::vector<CheckpointTensor>* tensors : {&state.parameters, &state.optimizer_state[0].tensors}) {
    for (const CheckpointTensor& t : *tensors) {
      size_t wrong = 0;
      for (size_t i = 0; i < t.values.size(); ++i) wrong += t.values[i] != value_at(file.global_step, i);
      EXPECT_EQ(wrong, 0u) << file.path << " " << t.name;
    }
  }
}

TEST(CheckpointCrash, WritersKilledAtRandomMomentsLeaveOnlyCompleteCheckpoints) {
  TempDir dir;
  std::mt19937 random(20240611);
  std::uniform_int_distribution<int> delay_ms(0, 80);
  constexpr int kRounds = 30;
  int killed = 0;
  for (int round = 0; round < kRounds; ++round) {
    const pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
      // Saves and prunes checkpoints of increasing position until killed, as a training run does.
      for (uint64_t i = 0;; ++i) {
        try {
          save_checkpoint(dir.path(), state_at(round, static_cast<uint64_t>(round) * 1000 + i));
          prune_checkpoints(dir.path(), 3);
        } catch (...) {
          ::_exit(2);
        }
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms(random)));
    ::kill(child, SIGKILL);
    int status = 0;
    ASSERT_EQ(::waitpid(child, &status, 0), child);
    killed += WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL;  // otherwise a write failed: exit code 2
  }
  EXPECT_EQ(killed, kRounds);

  const std::vector<CheckpointFile> files = list_checkpoints(dir.path());
  ASSERT_FALSE(files.empty());
  size_t temp_files = 0;
  for (const auto& entry : fs::directory_iterator(dir.path())) {
    temp_files += entry.path().filename().string().find(".tmp-") != std::string::npos;
  }
  for (const CheckpointFile& file : files) {
    EXPECT_EQ(file.path.find(".tmp-"), std::string::npos) << file.path;
    expect_complete(file);
  }
  const ResumeCheckpoint resume = find_resume_checkpoint(dir.path());
  EXPECT_EQ(resume.path, files[0].path);
  EXPECT_TRUE(resume.skipped.empty());
  std::printf("[ info ] %zu checkpoints and %zu temporary files survived %d killed writers\n", files.size(), temp_files,
              kRounds);
}

TEST(CheckpointTools, H5dumpAndH5lsReadTheLayout) {
  if (!have_program("h5dump") || !have_program("h5ls")) GTEST_SKIP() << "h5dump or h5ls is not installed";
  TempDir dir;
  const std::string path = save_checkpoint(dir.path(), state_at(3, 123));

  const CommandOutput header = run("h5dump -p -H " + path);
  ASSERT_EQ(header.exit_code, 0) << header.output;
  EXPECT_NE(header.output.find("GROUP \"parameters\""), std::string::npos) << header.output;
  EXPECT_NE(header.output.find("DATASET \"0.conv2d.weight\""), std::string::npos);
  EXPECT_NE(header.output.find("DATASPACE  SIMPLE { ( 128, 256 ) / ( 128, 256 ) }"), std::string::npos);
  EXPECT_NE(header.output.find("H5T_IEEE_F32LE"), std::string::npos);
  size_t checksummed = 0;
  for (size_t at = header.output.find("CHECKSUM FLETCHER32"); at != std::string::npos;
       at = header.output.find("CHECKSUM FLETCHER32", at + 1)) {
    ++checksummed;
  }
  EXPECT_EQ(checksummed, 6u);  // config, metrics, two parameters, two momentum tensors

  const CommandOutput format = run("h5dump -a /format " + path);
  EXPECT_EQ(format.exit_code, 0);
  EXPECT_NE(format.output.find("\"dptrain-checkpoint\""), std::string::npos) << format.output;
  const CommandOutput config = run("h5dump -d /config " + path);
  EXPECT_NE(config.output.find("name: crash"), std::string::npos) << config.output;

  const CommandOutput list = run("h5ls -r " + path);
  EXPECT_EQ(list.exit_code, 0);
  EXPECT_NE(list.output.find("/optimizer/momentum/2.dense.weight Dataset {128, 256}"), std::string::npos)
      << list.output;
}

TEST(CheckpointInspect, GoodFilePrintsPositionLayoutAndChecksums) {
  TempDir dir;
  CheckpointState state = state_at(3, 123);
  state.step_in_epoch = 23;
  const std::string path = save_checkpoint(dir.path(), state);
  const CommandOutput r = run(std::string(DPTRAIN_BINARY) + " inspect " + path);
  EXPECT_EQ(r.exit_code, 0) << r.output;
  for (const std::string expected :
       {"checkpoint: " + path,
        std::string("format: dptrain-checkpoint version 2, written by dptrain ") + DPTRAIN_VERSION,
        std::string("run: crash"), std::string("epoch: 3"), std::string("step_in_epoch: 23 of 1000"),
        std::string("global_step: 123"), std::string("world_size at save: 2"),
        std::string("parameters: 65536 in 2 tensors"), std::string("optimizer: sgd, 123 steps, state: momentum"),
        std::string("  /parameters/2.dense.weight"), std::string("float32 (128, 256)"),
        std::string("config:\n  name: crash\n"), std::string("checksums: OK (6 datasets)")}) {
    EXPECT_NE(r.output.find(expected), std::string::npos) << "missing '" << expected << "' in:\n" << r.output;
  }
}

TEST(CheckpointInspect, DamagedFileExitsOneAndNamesTheFile) {
  TempDir dir;
  const std::string path = save_checkpoint(dir.path(), state_at(1, 5));
  std::string bytes;
  {
    std::ifstream in(path, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), {});
  }
  const float pattern[2] = {value_at(5, 1000), value_at(5, 1001)};
  const size_t at = bytes.find(std::string(reinterpret_cast<const char*>(pattern), sizeof(pattern)));
  ASSERT_NE(at, std::string::npos);
  bytes[at + 3] = static_cast<char>(bytes[at + 3] ^ 0x40);
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << bytes;
  }
  const CommandOutput r = run(std::string(DPTRAIN_BINARY) + " inspect " + path);
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("global_step: 5"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("checksums: FAILED"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("error: " + path + ": dataset /parameters/0.conv2d.weight cannot be read"), std::string::npos)
      << r.output;
}

TEST(CheckpointInspect, FilesThatAreNoCheckpointExitOne) {
  TempDir dir;
  const std::string text = dir.path() + "/notes.h5";
  {
    std::ofstream out(text);
    out << "not a checkpoint\n";
  }
  CommandOutput r = run(std::string(DPTRAIN_BINARY) + " inspect " + text);
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find(text + ": is not an HDF5 file"), std::string::npos) << r.output;

  const std::string truncated = save_checkpoint(dir.path(), state_at(1, 5));
  fs::resize_file(truncated, fs::file_size(truncated) / 3);
  r = run(std::string(DPTRAIN_BINARY) + " inspect " + truncated);
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find(truncated + ": cannot be opened as HDF5"), std::string::npos) << r.output;

  r = run(std::string(DPTRAIN_BINARY) + " inspect " + dir.path() + "/missing.h5");
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("missing.h5: no such file"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace dptrain
