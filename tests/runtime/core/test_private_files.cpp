#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include "runtime/core/errors.h"
#include "runtime/core/private_files.h"
#include "tests/test_util.h"

namespace dptrain {
namespace DPTRAIN_TEST_UNIT {

namespace fs = std::filesystem;

// Sets the process umask for one test and restores it.
class ScopedUmask {
 public:
  explicit ScopedUmask(mode_t mask) : old_(::umask(mask)) {}
  ~ScopedUmask() { ::umask(old_); }

 private:
  mode_t old_;
};

std::string read_all(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

mode_t mode_of(const std::string& path) { return path_mode(path).value_or(07777); }

class PrivateFilesUnderUmask : public ::testing::TestWithParam<mode_t> {};

TEST_P(PrivateFilesUnderUmask, NewFoldersAndFilesAreOwnerOnly) {
  test_util::TempDir tmp;
  ScopedUmask umask(GetParam());
  const std::string deep = tmp.file("a/b/c");
  make_private_directories(deep);
  for (const std::string& folder : {tmp.file("a"), tmp.file("a/b"), deep}) EXPECT_EQ(mode_of(folder), 0700u) << folder;
  write_private_file(deep + "/status", "done\n");
  EXPECT_EQ(mode_of(deep + "/status"), 0600u);
  EXPECT_EQ(read_all(deep + "/status"), "done\n");
  const int fd = open_private_append(deep + "/metrics.jsonl");
  ::close(fd);
  EXPECT_EQ(mode_of(deep + "/metrics.jsonl"), 0600u);
}

INSTANTIATE_TEST_SUITE_P(Umask, PrivateFilesUnderUmask, ::testing::Values(mode_t{0}, mode_t{022}));

TEST(PrivateFiles, ExistingFoldersKeepTheirMode) {
  test_util::TempDir tmp;
  ASSERT_EQ(::chmod(tmp.path().c_str(), 0755), 0);
  make_private_directories(tmp.path());
  EXPECT_EQ(mode_of(tmp.path()), 0755u);
}

TEST(PrivateFiles, AFileInTheWayOfAFolderIsNamed) {
  test_util::TempDir tmp;
  std::ofstream(tmp.file("plain")) << "x";
  try {
    make_private_directories(tmp.file("plain/sub"));
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(tmp.file("plain")), std::string::npos) << e.what();
  }
}

TEST(PrivateFiles, AFolderOthersCanWriteIsRefusedWithItsModeAndTheFix) {
  test_util::TempDir tmp;
  for (mode_t mode : {mode_t{0770}, mode_t{0757}, mode_t{0777}, mode_t{01777}}) {
    ASSERT_EQ(::chmod(tmp.path().c_str(), mode), 0);
    try {
      check_private_folder(tmp.path(), "run.yaml: checkpoint.dir");
      FAIL() << "mode " << std::oct << mode << " accepted";
    } catch (const ConfigError& e) {
      const std::string message = e.what();
      EXPECT_NE(message.find("run.yaml: checkpoint.dir " + tmp.path()), std::string::npos) << message;
      EXPECT_NE(message.find("chmod go-w " + tmp.path()), std::string::npos) << message;
      char octal[16];
      std::snprintf(octal, sizeof(octal), "(mode %04o)", static_cast<unsigned>(mode));
      EXPECT_NE(message.find(octal), std::string::npos) << message;
    }
  }
  ASSERT_EQ(::chmod(tmp.path().c_str(), 0700), 0);
}

TEST(PrivateFiles, AFolderOthersCanOnlyReadIsAccepted) {
  test_util::TempDir tmp;
  for (mode_t mode : {mode_t{0700}, mode_t{0750}, mode_t{0755}}) {
    ASSERT_EQ(::chmod(tmp.path().c_str(), mode), 0);
    EXPECT_NO_THROW(check_private_folder(tmp.path(), "checkpoint.dir")) << std::oct << mode;
  }
  EXPECT_NO_THROW(check_private_folder(tmp.file("missing"), "checkpoint.dir"));
}

TEST(PrivateFiles, ASymlinkedFolderIsJudgedByItsTarget) {
  test_util::TempDir tmp;
  fs::create_directory(tmp.file("real"));
  fs::create_directory_symlink(tmp.file("real"), tmp.file("link"));
  ASSERT_EQ(::chmod(tmp.file("real").c_str(), 0700), 0);
  EXPECT_NO_THROW(check_private_folder(tmp.file("link"), "checkpoint.dir"));
  ASSERT_EQ(::chmod(tmp.file("real").c_str(), 0777), 0);
  EXPECT_THROW(check_private_folder(tmp.file("link"), "checkpoint.dir"), ConfigError);
  std::ofstream(tmp.file("file")) << "x";
  EXPECT_THROW(check_private_folder(tmp.file("file"), "checkpoint.dir"), ConfigError);
}

TEST(PrivateFiles, TemporaryNamesAreUnpredictableAndRemovedUnlessPublished) {
  test_util::TempDir tmp;
  std::string first, second;
  {
    PrivateTempFile a(tmp.file("members"));
    PrivateTempFile b(tmp.file("members"));
    first = a.path();
    second = b.path();
    EXPECT_NE(first, second);
    EXPECT_EQ(fs::path(first).filename().string().rfind(".members.tmp-" + std::to_string(::getpid()) + "-", 0), 0u)
        << first;
    EXPECT_TRUE(fs::exists(first));
  }
  EXPECT_FALSE(fs::exists(first));
  EXPECT_FALSE(fs::exists(second));
  EXPECT_FALSE(fs::exists(tmp.file("members")));
}

TEST(PrivateFiles, ASymlinkPlantedAtTheFinalNameIsReplacedNotFollowed) {
  test_util::TempDir tmp;
  std::ofstream(tmp.file("victim")) << "precious\n";
  fs::create_symlink(tmp.file("victim"), tmp.file("members"));
  write_private_file(tmp.file("members"), "epoch 1\n");
  EXPECT_EQ(read_all(tmp.file("victim")), "precious\n");
  EXPECT_FALSE(fs::is_symlink(tmp.file("members")));
  EXPECT_EQ(read_all(tmp.file("members")), "epoch 1\n");
}

TEST(PrivateFiles, AppendingRefusesASymlinkAndAFifo) {
  test_util::TempDir tmp;
  std::ofstream(tmp.file("victim")) << "precious\n";
  fs::create_symlink(tmp.file("victim"), tmp.file("metrics.jsonl"));
  EXPECT_THROW(open_private_append(tmp.file("metrics.jsonl")), Error);
  EXPECT_EQ(read_all(tmp.file("victim")), "precious\n");
  ASSERT_EQ(::mkfifo(tmp.file("fifo").c_str(), 0600), 0);
  EXPECT_THROW(open_private_append(tmp.file("fifo")), Error);
}

TEST(PrivateFiles, SmallReadsRefuseSymlinksFifosAndLongFiles) {
  test_util::TempDir tmp;
  std::string problem;
  EXPECT_FALSE(read_small_file(tmp.file("missing"), 100, &problem));
  EXPECT_TRUE(problem.empty());
  std::ofstream(tmp.file("short")) << "host 1\n";
  EXPECT_EQ(read_small_file(tmp.file("short"), 100).value_or(""), "host 1\n");
  EXPECT_FALSE(read_small_file(tmp.file("short"), 3, &problem));
  EXPECT_NE(problem.find("more than"), std::string::npos) << problem;
  fs::create_symlink(tmp.file("short"), tmp.file("link"));
  EXPECT_FALSE(read_small_file(tmp.file("link"), 100, &problem));
  EXPECT_NE(problem.find("symlink"), std::string::npos) << problem;
  ASSERT_EQ(::mkfifo(tmp.file("fifo").c_str(), 0600), 0);
  EXPECT_FALSE(read_small_file(tmp.file("fifo"), 100, &problem));  // returns at once, no writer needed
  EXPECT_NE(problem.find("not a regular file"), std::string::npos) << problem;
}

}  // namespace
}  // namespace dptrain
