// Metrics records and progress output.
#include <gtest/gtest.h>

#include <cstdio>
#include <string>

#include "runtime/report/metrics.h"

namespace dptrain {
namespace {

std::string read_all(std::FILE* f) {
  std::rewind(f);
  std::string out;
  char buf[512];
  while (size_t n = std::fread(buf, 1, sizeof buf, f)) out.append(buf, n);
  return out;
}

TEST(MetricsRecord, WritesOneJsonObject) {
  const std::string json =
      MetricsRecord("epoch").add("epoch", 3).add("loss", 0.25).add("run", "a \"b\"\n").add("bad", 0.0 / 0.0).to_json();
  EXPECT_EQ(json, "{\"event\": \"epoch\", \"epoch\": 3, \"loss\": 0.25, \"run\": \"a \\\"b\\\"\\n\", \"bad\": null}");
}

TEST(Progress, PlainLinesArePeriodicAndCarryEta) {
  std::FILE* f = std::tmpfile();
  ASSERT_NE(f, nullptr);
  ProgressReporter plain(ProgressStyle::Plain, 1e-9, f);
  plain.start_epoch(2, 5, 10);
  plain.update(4, 0.5, 0.75, 1000);
  plain.update(10, 0.4, 0.8, 1000);  // the last step is left to the epoch summary
  const std::string text = read_all(f);
  EXPECT_NE(text.find("epoch 2/5 step 4/10 (40%) loss 0.5000 acc 0.7500 1000 img/s"), std::string::npos) << text;
  EXPECT_NE(text.find("ETA"), std::string::npos) << text;
  EXPECT_EQ(text.find("step 10/10"), std::string::npos) << text;
  EXPECT_EQ(text.find('\r'), std::string::npos) << text;
  std::fclose(f);
}

TEST(Progress, TerminalLineIsRedrawnInPlace) {
  std::FILE* f = std::tmpfile();
  ASSERT_NE(f, nullptr);
  ProgressReporter term(ProgressStyle::Terminal, 10, f);
  term.start_epoch(1, 1, 8);
  term.update(8, 0.1, 0.9, 500);
  term.finish_epoch();
  const std::string text = read_all(f);
  EXPECT_EQ(text.rfind("\r\033[K", 0), 0u) << text;
  EXPECT_NE(text.find("8/8"), std::string::npos) << text;
  EXPECT_NE(text.find("ETA"), std::string::npos) << text;
  EXPECT_EQ(text.find('\n'), std::string::npos) << text;
  std::fclose(f);
}

TEST(Progress, OffPrintsNothing) {
  std::FILE* f = std::tmpfile();
  ASSERT_NE(f, nullptr);
  ProgressReporter off(ProgressStyle::Off, 0, f);
  off.start_epoch(1, 1, 2);
  off.update(1, 1, 0, 1);
  EXPECT_EQ(read_all(f), "");
  std::fclose(f);
}

TEST(FormatDuration, ReadsNaturally) {
  EXPECT_EQ(format_duration(12.34), "12.3s");
  EXPECT_EQ(format_duration(65), "1m05s");
  EXPECT_EQ(format_duration(3 * 3600 + 120), "3h02m");
}

}  // namespace
}  // namespace dptrain
