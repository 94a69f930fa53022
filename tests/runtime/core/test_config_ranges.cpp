// Every number a config gives has a range, durations included; duplicate keys, repeated --set keys
// and control characters in strings are refused naming the key.
#include <gtest/gtest.h>
#include <sched.h>

#include <algorithm>
#include <string>
#include <vector>
#include <utility>

#include "runtime/core/config_map.h"
#include "runtime/core/errors.h"
#include "runtime/core/run_config.h"
#include "tests/runtime/core/run_config_test_util.h"
#include "tests/test_util.h"

namespace dptrain {
namespace DPTRAIN_TEST_UNIT {

const std::string& kValid = run_config_test::kMinimalConfig;

// The message of the ConfigError that loading kValid with `overrides` throws.
std::string refusal(const std::vector<std::string>& overrides, const std::string& yaml = kValid) {
  return test_util::error_of<ConfigError>([&] { RunConfig::parse(yaml, "run.yaml", overrides); });
}

// kValid with the first layer's units given twice.
std::string replaced_layer() {
  std::string yaml = kValid;
  const std::string from = "{type: dense, units: 4}";
  return yaml.replace(yaml.find(from), from.size(), "{type: dense, units: 4, units: 8}");
}

bool has(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

TEST(ConfigRanges, DurationsAreFiniteAndAtMostSevenDays) {
  for (const char* key : {"comm.timeout_seconds", "comm.heartbeat_seconds", "elastic.wait_seconds",
                          "elastic.handover_seconds", "train.progress_seconds"}) {
    for (const char* value : {"1e10", "1e300", "604801"}) {
      const std::string message = refusal({std::string(key) + "=" + value});
      EXPECT_TRUE(has(message, std::string("--set ") + key + ": must be")) << message;
      EXPECT_TRUE(has(message, "604800 seconds (7 days)")) << message;
    }
    for (const char* value : {".nan", ".inf", "-.inf"}) {
      EXPECT_TRUE(has(refusal({std::string(key) + "=" + value}), "expected a number")) << key << "=" << value;
    }
  }
  EXPECT_TRUE(has(refusal({"comm.timeout_seconds=0"}), "must be greater than 0 and at most 604800 seconds"));
  EXPECT_TRUE(has(refusal({"comm.heartbeat_seconds=0.5"}), "must be 0 (off) or between 1 and 604800 seconds"));
  EXPECT_TRUE(has(refusal({"checkpoint.every_minutes=1e9"}), "must be 0 (off) or greater than 0 and at most 10080 minutes"));
  const RunConfig ok = RunConfig::parse(kValid, "run.yaml", {"comm.timeout_seconds=604800", "comm.heartbeat_seconds=0"});
  EXPECT_EQ(ok.comm.timeout_seconds, 604800);
  EXPECT_EQ(ok.comm.heartbeat_seconds, 0);
}

TEST(ConfigRanges, CountsHaveRanges) {
  EXPECT_TRUE(has(refusal({"train.batch_size=0"}), "--set train.batch_size: must be at least 1 samples, got 0"));
  EXPECT_TRUE(has(refusal({"elastic.min_workers=99999999999"}), "must be at most 1048576 workers, got 99999999999"));
  EXPECT_TRUE(has(refusal({"elastic.max_workers=99999999999"}), "must be at most 1048576 workers"));
  EXPECT_TRUE(has(refusal({"comm.bucket_mb=5000"}), "must be greater than 0 and at most 4096 MiB, got 5000"));
}

TEST(ConfigRanges, ThreadsFarBeyondTheCoresAreRefusedAndAboveThemWarned) {
  cpu_set_t set;
  ASSERT_EQ(sched_getaffinity(0, sizeof(set), &set), 0);
  const size_t cores = static_cast<size_t>(CPU_COUNT(&set));  // the cores this process may use
  const std::string message = refusal({"threads=" + std::to_string(4 * cores + 1)});
  EXPECT_TRUE(has(message, "--set threads: must be at most " + std::to_string(std::min<size_t>(1024, 4 * cores)) +
                               " threads, got " + std::to_string(4 * cores + 1)))
      << message;
  EXPECT_TRUE(has(refusal({"threads=100000"}), "threads, got 100000"));
  EXPECT_TRUE(has(refusal({"threads=-1"}), "--set threads: expected a non-negative integer, got '-1'"));
  const RunConfig within = RunConfig::parse(kValid, "run.yaml", {"threads=1"});
  EXPECT_TRUE(within.warnings.empty());
  const RunConfig above = RunConfig::parse(kValid, "run.yaml", {"threads=" + std::to_string(cores + 1)});
  ASSERT_EQ(above.warnings.size(), 1u);
  EXPECT_TRUE(has(above.warnings[0], "--set threads: " + std::to_string(cores + 1) + " threads per worker on "));
}

TEST(ConfigRanges, DuplicateKeysAreRefusedNamingBothLines) {
  const std::string twice = kValid + "seed: 4\n";
  std::string message = refusal({}, twice);
  EXPECT_TRUE(has(message, "run.yaml:14: key 'seed' is given twice (lines 2 and 14)")) << message;
  const std::string nested = "train:\n  epochs: 1\n  batch_size: 2\n  epochs: 3\n" + kValid.substr(0, kValid.find("train:"));
  message = refusal({}, nested);
  EXPECT_TRUE(has(message, "run.yaml:4: key 'train.epochs' is given twice (lines 2 and 4)")) << message;
  const std::string in_list = replaced_layer();
  message = refusal({}, in_list);
  EXPECT_TRUE(has(message, "key 'model[0].units' is given twice")) << message;
}

TEST(ConfigRanges, DuplicateKeysInASetValueAreRefusedAndARepeatedSetTakesTheLast) {
  EXPECT_EQ(RunConfig::parse(kValid, "run.yaml", {"train.epochs=1", "train.epochs=3"}).train.epochs, 3u);
  EXPECT_TRUE(has(refusal({"optimizer={type: sgd, lr: 0.1, lr: 0.2}"}), "key 'optimizer.lr' is given twice"));
}

TEST(ConfigRanges, ControlCharactersInStringsAreRefused) {
  std::string yaml = kValid;
  yaml.replace(yaml.find("name: demo"), 10, "name: \"de\\0mo\"");
  std::string message = refusal({}, yaml);
  EXPECT_TRUE(has(message, "run.yaml:1: key 'name': holds a control character (0x00 at character 3)")) << message;
  message = refusal({"checkpoint.dir=\"ck\\tpts\""});
  EXPECT_TRUE(has(message, "--set checkpoint.dir: holds a control character (0x09")) << message;
}

}  // namespace
}  // namespace dptrain
