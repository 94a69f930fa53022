// Metrics records and progress output.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "runtime/core/errors.h"
#include "runtime/core/private_files.h"
#include "runtime/report/metrics.h"
#include "tests/test_util.h"

namespace dptrain {
namespace DPTRAIN_TEST_UNIT {

std::string read_all(std::FILE* f) {
  std::rewind(f);
  std::string out;
  char buf[512];
  while (size_t n = std::fread(buf, 1, sizeof buf, f)) out.append(buf, n);
  return out;
}

double unix_seconds_now() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// `text` with the ', "time": T' every written line ends with taken out, and each T appended to `times`.
std::string without_times(const std::string& text, std::vector<double>& times) {
  const std::string field = ", \"time\": ";
  std::string out;
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    const size_t at = line.rfind(field);
    if (at == std::string::npos || line.back() != '}') return "a line without a time: " + line;
    times.push_back(std::stod(line.substr(at + field.size())));
    out += line.substr(0, at) + "}\n";
  }
  return out;
}

// Sets (or, with nullopt, unsets) environment variables for the lifetime of the object.
class ScopedEnvironment {
 public:
  void set(const char* name, std::optional<std::string> value) {
    const char* old = std::getenv(name);
    saved_.push_back({name, old ? std::optional<std::string>(old) : std::nullopt});
    if (value) {
      setenv(name, value->c_str(), 1);
    } else {
      unsetenv(name);
    }
  }
  ~ScopedEnvironment() {
    for (auto it = saved_.rbegin(); it != saved_.rend(); ++it) {
      if (it->second) {
        setenv(it->first, it->second->c_str(), 1);
      } else {
        unsetenv(it->first);
      }
    }
  }

 private:
  std::vector<std::pair<const char*, std::optional<std::string>>> saved_;
};

TEST(MetricsWriter, AppendsToAnOwnerOnlyFileAndRefusesASymlink) {
  test_util::TempDir dir;
  const std::string path = dir.file("metrics.jsonl");
  const double before = unix_seconds_now();
  {
    MetricsWriter writer(path);
    writer.write(MetricsRecord("epoch").add("loss", 0.5));
  }
  MetricsWriter(path).write(MetricsRecord("epoch").add("loss", 0.25));
  const double after = unix_seconds_now();
  std::vector<double> times;
  EXPECT_EQ(without_times(test_util::read_file(path), times),
            "{\"event\": \"epoch\", \"loss\": 0.5}\n{\"event\": \"epoch\", \"loss\": 0.25}\n");
  ASSERT_EQ(times.size(), 2u);
  for (double t : times) {
    EXPECT_GE(t, before - 0.001);  // written to the millisecond
    EXPECT_LE(t, after + 0.001);
  }
  EXPECT_LE(times[0], times[1]);
  EXPECT_EQ(path_mode(path).value_or(0), 0600u);
  std::ofstream(dir.file("victim")) << "precious\n";
  std::filesystem::create_symlink(dir.file("victim"), dir.file("link.jsonl"));
  EXPECT_THROW(MetricsWriter(dir.file("link.jsonl")), UsageError);
  EXPECT_EQ(test_util::read_file(dir.file("victim")), "precious\n");
}

TEST(Progress, AutoRedrawsOnlyOnATerminalNotStartedByAnMpiLauncher) {
  ScopedEnvironment env;
  for (const char* name : {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK"}) env.set(name, std::nullopt);
  std::FILE* file = std::tmpfile();
  ASSERT_NE(file, nullptr);
  EXPECT_EQ(detect_progress_style(file), ProgressStyle::Plain);
  std::fclose(file);

  // A pseudo-terminal, as mpirun gives its ranks even when its own output goes to a file.
  const int master = posix_openpt(O_RDWR | O_NOCTTY);
  ASSERT_GE(master, 0) << "posix_openpt failed";
  ASSERT_EQ(grantpt(master), 0);
  ASSERT_EQ(unlockpt(master), 0);
  std::FILE* terminal = std::fopen(ptsname(master), "w");
  ASSERT_NE(terminal, nullptr);
  EXPECT_EQ(detect_progress_style(terminal), ProgressStyle::Terminal);
  EXPECT_FALSE(started_by_mpi_launcher());
  for (const char* name : {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK"}) {
    ScopedEnvironment launched;
    launched.set(name, "1");
    EXPECT_TRUE(started_by_mpi_launcher()) << name;
    EXPECT_EQ(detect_progress_style(terminal), ProgressStyle::Plain) << name;
  }
  std::fclose(terminal);
  close(master);
}

TEST(MetricsRecord, TimesAreUnixSecondsToTheMillisecond) {
  const auto when = std::chrono::system_clock::time_point(std::chrono::milliseconds(1700000000123));
  EXPECT_EQ(MetricsRecord("step").add("step", 8).add_time("time", when).to_json(),
            "{\"event\": \"step\", \"step\": 8, \"time\": 1700000000.123}");
}

TEST(MetricsWriter, ARecordWithItsOwnTimeKeepsIt) {
  test_util::TempDir dir;
  const std::string path = dir.file("metrics.jsonl");
  const auto when = std::chrono::system_clock::time_point(std::chrono::seconds(1700000000));
  const MetricsRecord record = MetricsRecord("epoch").add("loss", 0.5).add_time("time", when);
  EXPECT_TRUE(record.has("time"));
  EXPECT_FALSE(record.has("seconds"));
  MetricsWriter(path).write(record);
  EXPECT_EQ(test_util::read_file(path), record.to_json() + "\n");
  EXPECT_EQ(record.to_json(), "{\"event\": \"epoch\", \"loss\": 0.5, \"time\": 1700000000.000}");
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
