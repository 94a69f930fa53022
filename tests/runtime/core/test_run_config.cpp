// Config loading: every kind of mistake names the file, the line and the key.
#include <gtest/gtest.h>

#include <string>
#include <utility>

#include "runtime/core/config_map.h"
#include "runtime/core/errors.h"
#include "runtime/core/run_config.h"
#include "tests/runtime/core/run_config_test_util.h"
#include "tests/test_util.h"

namespace dptrain {
namespace DPTRAIN_TEST_UNIT {

const std::string& kValid = run_config_test::kMinimalConfig;

// The message of the ConfigError that `f` throws (fails the test if it throws none, or another).
template <typename F>
std::string config_error(F&& f) {
  return test_util::error_of<ConfigError>(std::forward<F>(f));
}

std::string replaced(std::string text, const std::string& from, const std::string& to) {
  const size_t at = text.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  return text.replace(at, from.size(), to);
}

TEST(RunConfig, ReadsAValidConfig) {
  RunConfig cfg = RunConfig::parse(kValid, "demo.yaml");
  EXPECT_EQ(cfg.name, "demo");
  EXPECT_EQ(cfg.seed, 3u);
  EXPECT_EQ(cfg.train.batch_size, 32u);
  EXPECT_EQ(cfg.train.epochs, 2u);
  EXPECT_EQ(cfg.model.size(), 2u);
  EXPECT_EQ(cfg.optimizer->get_string("type"), "sgd");
}

TEST(RunConfig, UnknownTopLevelKeyNamesFileLineAndKey) {
  const std::string msg = config_error([] { RunConfig::parse(std::string(kValid) + "epochz: 3\n", "demo.yaml"); });
  EXPECT_NE(msg.find("demo.yaml:14"), std::string::npos) << msg;
  EXPECT_NE(msg.find("'epochz'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("unknown key"), std::string::npos) << msg;
  EXPECT_NE(msg.find("train"), std::string::npos) << msg;  // lists the known keys
}

TEST(RunConfig, UnknownNestedKeyNamesDottedPath) {
  const std::string msg =
      config_error([] { RunConfig::parse(replaced(kValid, "  epochs: 2", "  epoch: 2"), "demo.yaml"); });
  EXPECT_NE(msg.find("key 'train.epochs': required key is missing"), std::string::npos) << msg;
  EXPECT_NE(msg.find("unknown key(s) here: 'epoch' on line 13"), std::string::npos) << msg;
  // With the required key present, the stray one is reported by itself.
  const std::string stray = config_error(
      [] { RunConfig::parse(replaced(kValid, "  epochs: 2", "  epochs: 2\n  epoch: 2"), "demo.yaml"); });
  EXPECT_NE(stray.find("demo.yaml:14: key 'train.epoch': unknown key"), std::string::npos) << stray;
}

TEST(RunConfig, WrongValueTypeNamesKeyAndValue) {
  const std::string msg =
      config_error([] { RunConfig::parse(replaced(kValid, "batch_size: 32", "batch_size: lots"), "demo.yaml"); });
  EXPECT_NE(msg.find("demo.yaml:12: key 'train.batch_size'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("'lots'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("integer"), std::string::npos) << msg;
}

TEST(RunConfig, NegativeCountIsRejected) {
  const std::string msg =
      config_error([] { RunConfig::parse(replaced(kValid, "epochs: 2", "epochs: -1"), "demo.yaml"); });
  EXPECT_NE(msg.find("key 'train.epochs'"), std::string::npos) << msg;
}

TEST(RunConfig, ZeroBatchIsRejected) {
  const std::string msg =
      config_error([] { RunConfig::parse(replaced(kValid, "batch_size: 32", "batch_size: 0"), "demo.yaml"); });
  EXPECT_NE(msg.find("key 'train.batch_size': must be at least 1"), std::string::npos) << msg;
}

TEST(RunConfig, MetricsEveryStepsIsOffByDefaultAndACount) {
  EXPECT_EQ(RunConfig::parse(kValid, "demo.yaml").train.metrics_every_steps, 0u);
  const std::string yaml = replaced(kValid, "  epochs: 2", "  epochs: 2\n  metrics_every_steps: 25");
  EXPECT_EQ(RunConfig::parse(yaml, "demo.yaml").train.metrics_every_steps, 25u);
  EXPECT_EQ(RunConfig::parse(yaml, "demo.yaml", {"train.metrics_every_steps=0"}).train.metrics_every_steps, 0u);
  const std::string negative = config_error([] {
    RunConfig::parse(replaced(kValid, "  epochs: 2", "  epochs: 2\n  metrics_every_steps: -5"), "demo.yaml");
  });
  EXPECT_NE(negative.find("demo.yaml:14: key 'train.metrics_every_steps'"), std::string::npos) << negative;
  EXPECT_NE(negative.find("'-5'"), std::string::npos) << negative;
  const std::string word =
      config_error([] { RunConfig::parse(kValid, "demo.yaml", {"train.metrics_every_steps=often"}); });
  EXPECT_NE(word.find("--set train.metrics_every_steps"), std::string::npos) << word;
  EXPECT_NE(word.find("'often'"), std::string::npos) << word;
  const std::string huge =
      config_error([] { RunConfig::parse(kValid, "demo.yaml", {"train.metrics_every_steps=99999999999999"}); });
  EXPECT_NE(huge.find("must be at most"), std::string::npos) << huge;
}

TEST(RunConfig, CheckpointSection) {
  const RunConfig none = RunConfig::parse(kValid, "demo.yaml");
  EXPECT_TRUE(none.checkpoint.dir.empty());
  EXPECT_EQ(none.checkpoint.every_epochs, 1u);
  EXPECT_EQ(none.checkpoint.keep, 3u);
  const RunConfig set = RunConfig::parse(
      std::string(kValid) + "checkpoint: {dir: runs/ckpt, every_epochs: 2, keep: 5, every_minutes: 30}\n", "demo.yaml");
  EXPECT_EQ(set.checkpoint.dir, "runs/ckpt");
  EXPECT_EQ(set.checkpoint.every_epochs, 2u);
  EXPECT_EQ(set.checkpoint.keep, 5u);
  EXPECT_DOUBLE_EQ(set.checkpoint.every_minutes, 30.0);
  struct Case {
    std::string yaml, message;
  };
  for (const Case& c : {Case{"checkpoint: {dir: d, keep: 0}", "key 'checkpoint.keep': must be at least 1"},
                        Case{"checkpoint: {dir: d, every_epochs: 0}", "key 'checkpoint.every_epochs': must be at least 1"},
                        Case{"checkpoint: {every_minutes: -1}", "key 'checkpoint.every_minutes': must be 0 (off)"},
                        Case{"checkpoint: {folder: d}", "'checkpoint.folder'"}}) {
    const std::string msg = config_error([&] { RunConfig::parse(std::string(kValid) + c.yaml + "\n", "demo.yaml"); });
    EXPECT_NE(msg.find(c.message), std::string::npos) << c.yaml << ": " << msg;
    EXPECT_NE(msg.find("demo.yaml:14"), std::string::npos) << msg;
  }
}

TEST(RunConfig, CommDeviceTransport) {
  EXPECT_EQ(RunConfig::parse(kValid, "demo.yaml").comm.device_transport, DeviceTransport::Auto);
  for (DeviceTransport t : {DeviceTransport::Auto, DeviceTransport::Nccl, DeviceTransport::Staging}) {
    const std::string spelling = to_string(t);
    const RunConfig in_file =
        RunConfig::parse(std::string(kValid) + "comm: {device_transport: " + spelling + "}\n", "demo.yaml");
    EXPECT_EQ(in_file.comm.device_transport, t) << spelling;
    const RunConfig by_flag = RunConfig::parse(kValid, "demo.yaml", {"comm.device_transport=" + spelling});
    EXPECT_EQ(by_flag.comm.device_transport, t) << spelling;
  }
  const std::string msg = config_error(
      [] { RunConfig::parse(std::string(kValid) + "comm:\n  bucket_mb: 2\n  device_transport: gloo\n", "demo.yaml"); });
  EXPECT_NE(msg.find("demo.yaml:16: key 'comm.device_transport': unknown value 'gloo' "
                     "(expected one of: auto, nccl, staging)"),
            std::string::npos)
      << msg;
  const std::string flag = config_error([] { RunConfig::parse(kValid, "demo.yaml", {"comm.device_transport=mpi"}); });
  EXPECT_NE(flag.find("--set comm.device_transport"), std::string::npos) << flag;
  EXPECT_NE(flag.find("unknown value 'mpi'"), std::string::npos) << flag;
}

TEST(RunConfig, MissingRequiredKeyIsNamed) {
  const std::string msg =
      config_error([] { RunConfig::parse(replaced(kValid, "  epochs: 2\n", ""), "demo.yaml"); });
  EXPECT_NE(msg.find("key 'train.epochs': required key is missing"), std::string::npos) << msg;
}

TEST(RunConfig, SectionOfWrongKindIsNamed) {
  const std::string msg =
      config_error([] { RunConfig::parse(replaced(kValid, "model:\n  - {type: dense, units: 4}\n  - {type: softmax_cross_entropy}",
                                                  "model: dense"), "demo.yaml"); });
  EXPECT_NE(msg.find("key 'model': expected a list"), std::string::npos) << msg;
}

TEST(RunConfig, BadDeviceListsChoices) {
  const std::string msg = config_error([] { RunConfig::parse(std::string(kValid) + "device: tpu\n", "demo.yaml"); });
  EXPECT_NE(msg.find("key 'device': unknown value 'tpu' (expected one of: auto, cpu, cuda)"), std::string::npos) << msg;
}

TEST(RunConfig, InvalidYamlNamesLine) {
  const std::string msg = config_error([] { RunConfig::parse("train:\n  batch_size: [1, 2\n", "broken.yaml"); });
  EXPECT_NE(msg.find("broken.yaml:"), std::string::npos) << msg;
  EXPECT_NE(msg.find("invalid YAML"), std::string::npos) << msg;
}

TEST(RunConfig, MissingFileIsNamed) {
  const std::string msg = config_error([] { RunConfig::load("/nonexistent/run.yaml"); });
  EXPECT_NE(msg.find("/nonexistent/run.yaml"), std::string::npos) << msg;
}

TEST(RunConfigOverrides, SetReplacesValues) {
  RunConfig cfg = RunConfig::parse(kValid, "demo.yaml", {"train.epochs=7", "optimizer.lr=0.5", "model.0.units=9"});
  EXPECT_EQ(cfg.train.epochs, 7u);
  EXPECT_DOUBLE_EQ(cfg.optimizer->get_double("lr"), 0.5);
  EXPECT_EQ(cfg.model[0].get_size("units"), 9u);
  EXPECT_NE(cfg.text.find("epochs: 7"), std::string::npos) << cfg.text;
}

TEST(RunConfigOverrides, SetCanAddAnOptionalKey) {
  RunConfig cfg = RunConfig::parse(kValid, "demo.yaml", {"train.drop_last=true"});
  EXPECT_EQ(cfg.train.drop_last, DropLast::Yes);
}

TEST(RunConfigOverrides, BadSetValueNamesTheSetFlag) {
  const std::string msg = config_error([] { RunConfig::parse(kValid, "demo.yaml", {"train.epochs=many"}); });
  EXPECT_NE(msg.find("--set train.epochs"), std::string::npos) << msg;
  EXPECT_NE(msg.find("'many'"), std::string::npos) << msg;
}

TEST(RunConfigOverrides, UnknownSetKeyIsRejected) {
  const std::string msg = config_error([] { RunConfig::parse(kValid, "demo.yaml", {"train.epohcs=1"}); });
  EXPECT_NE(msg.find("--set train.epohcs"), std::string::npos) << msg;
  EXPECT_NE(msg.find("unknown key"), std::string::npos) << msg;
}

TEST(RunConfigOverrides, MalformedSetIsRejected) {
  EXPECT_NE(config_error([] { RunConfig::parse(kValid, "demo.yaml", {"train.epochs"}); }).find("expected key=value"),
            std::string::npos);
  EXPECT_NE(config_error([] { RunConfig::parse(kValid, "demo.yaml", {"model.7.units=3"}); }).find("not an index"),
            std::string::npos);
  // An index past what any number type holds is a config error too, not an internal one.
  for (const char* set : {"model.99999999999999999999.units=3", "model.-1.units=3", "model.+0.units=3"}) {
    EXPECT_NE(config_error([set] { RunConfig::parse(kValid, "demo.yaml", {set}); }).find("not an index"),
              std::string::npos)
        << set;
  }
  EXPECT_NE(config_error([] { RunConfig::parse(kValid, "demo.yaml", {"seed.x=3"}); }).find("is a value, not a mapping"),
            std::string::npos);
}

TEST(ConfigMap, ListsAndChoices) {
  ConfigMap map = ConfigMap::parse("{a: [1, 2], b: 0.5, c: x}");
  EXPECT_EQ(map.get_size_list("a"), (std::vector<size_t>{1, 2}));
  EXPECT_EQ(map.get_double_list("b"), (std::vector<double>{0.5}));
  EXPECT_THROW(map.get_choice("c", {"y", "z"}), ConfigError);
  EXPECT_THROW(map.get_bool("b"), ConfigError);
  map.finish();
}

}  // namespace
}  // namespace dptrain
