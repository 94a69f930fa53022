#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "runtime/core/errors.h"
#include "runtime/core/private_files.h"
#include "runtime/elastic/run_dir.h"
#include "tests/test_util.h"

namespace dptrain::launcher {
namespace DPTRAIN_TEST_UNIT {

namespace fs = std::filesystem;

TEST(ElasticDirRequests, LeaveRequestsAreTakenOnceInRankOrder) {
  test_util::TempDir tmp;
  ElasticDir dir(tmp.path());
  dir.create();
  dir.request_leave(3);
  dir.request_leave(1);
  EXPECT_EQ(dir.take_leave_requests(), (std::vector<size_t>{1, 3}));
  EXPECT_TRUE(dir.take_leave_requests().empty());
}

TEST(ElasticDirRequests, AnUnreadableRequestIsMovedAsideReportedAndCannotStopTheJobAgain) {
  test_util::TempDir tmp;
  ElasticDir dir(tmp.path());
  dir.create();
  const std::vector<std::string> bad = {"leave-99999999999999999999999", "leave-", "leave-1x", "leave--2"};
  for (const std::string& name : bad) std::ofstream(dir.path("requests/" + name)) << "leave\n";
  dir.request_leave(2);

  std::vector<std::string> rejected;
  EXPECT_EQ(dir.take_leave_requests(&rejected), (std::vector<size_t>{2}));
  ASSERT_EQ(rejected.size(), bad.size());
  for (const std::string& why : rejected) {
    EXPECT_NE(why.find("not a rank number"), std::string::npos) << why;
    EXPECT_NE(why.find("moved to"), std::string::npos) << why;
  }
  for (const std::string& name : bad) {
    EXPECT_FALSE(fs::exists(dir.path("requests/" + name))) << name;
    EXPECT_TRUE(fs::exists(dir.path("requests/rejected/" + name))) << name;
  }
  // The next epoch boundary finds nothing to refuse again.
  rejected.clear();
  EXPECT_TRUE(dir.take_leave_requests(&rejected).empty());
  EXPECT_TRUE(rejected.empty());
}

std::string read_all(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

WorkerInfo worker(const std::string& host, int pid) {
  WorkerInfo info;
  info.pid = pid;
  host.copy(info.host, sizeof(info.host) - 1);
  return info;
}

class ElasticDirUnderUmask : public ::testing::TestWithParam<mode_t> {};

TEST_P(ElasticDirUnderUmask, FoldersAreOwnerOnlyAndFiles0600) {
  test_util::TempDir tmp;
  const mode_t old = ::umask(GetParam());
  ElasticDir dir(tmp.file("run"));
  dir.create();
  dir.publish("name: x\n", "port-name");
  dir.write_members(1, {worker("node1", 11)});
  dir.request_leave(1);
  write_join_request(dir, JoinRequest{"node2-22", {worker("node2", 22)}});
  ::umask(old);
  for (const std::string& folder : {tmp.file("run"), dir.path(""), dir.path("requests")}) {
    EXPECT_EQ(path_mode(folder).value_or(0), 0700u) << folder;
  }
  for (const std::string& file : {dir.config_path(), dir.path("port"), dir.path("members"),
                                  dir.path("requests/leave-1"), dir.path("requests/node2-22.join")}) {
    EXPECT_EQ(path_mode(file).value_or(0), 0600u) << file;
  }
}

INSTANTIATE_TEST_SUITE_P(Umask, ElasticDirUnderUmask, ::testing::Values(mode_t{0}, mode_t{022}));

TEST(ElasticDirPermissions, ARunFolderOthersCanWriteIsRefused) {
  test_util::TempDir tmp;
  ASSERT_EQ(::chmod(tmp.path().c_str(), 0775), 0);
  try {
    ElasticDir(tmp.path()).create();
    FAIL() << "a group-writable run folder was accepted";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("chmod go-w " + tmp.path()), std::string::npos) << e.what();
  }
  EXPECT_FALSE(fs::exists(tmp.file("elastic")));
  ASSERT_EQ(::chmod(tmp.path().c_str(), 0755), 0);  // readable by others is fine
  ElasticDir(tmp.path()).create();
  ASSERT_EQ(::chmod(tmp.file("elastic/requests").c_str(), 0777), 0);  // left so by an earlier run
  EXPECT_THROW(ElasticDir(tmp.path()).create(), ConfigError);
}

TEST(ElasticDirPermissions, APlantedSymlinkAtATemporaryOrFinalNameIsNotFollowed) {
  test_util::TempDir tmp;
  ElasticDir dir(tmp.file("run"));
  dir.create();
  const std::string victim = tmp.file("victim");
  std::ofstream(victim) << "precious\n";
  fs::create_symlink(victim, dir.path(".members.tmp-" + std::to_string(::getpid())));
  fs::create_symlink(victim, dir.path("port"));
  dir.write_members(2, {worker("node1", 11)});
  dir.publish("name: x\n", "port-name");
  EXPECT_EQ(read_all(victim), "precious\n");
  EXPECT_FALSE(fs::is_symlink(dir.path("port")));
  EXPECT_EQ(dir.port().value_or(""), "port-name");
  ASSERT_EQ(dir.read_members().size(), 1u);
}

TEST(JoinRequestText, RoundTripsAndRefusesMalformedText) {
  const JoinRequest request{"node2-22", {worker("node2", 22), worker("node3", 33)}};
  const ParsedJoinRequest parsed = parse_join_request_text(join_request_text(request));
  ASSERT_TRUE(parsed.problem.empty()) << parsed.problem;
  ASSERT_EQ(parsed.workers.size(), 2u);
  EXPECT_STREQ(parsed.workers[1].host, "node3");
  EXPECT_EQ(parsed.workers[1].pid, 33);
  EXPECT_EQ(parsed.workers[1].rank, 1u);
  const std::vector<std::string> bad = {"",
                                        "node2 22",  // no newline at the end
                                        "node2\n",
                                        "node2 x\n",
                                        "node2 0\n",
                                        "node2 -5\n",
                                        "node2 99999999999999999999\n",
                                        "node2 22\n\n",
                                        "node2  22\n",
                                        std::string("no\0de 22\n", 10),
                                        std::string(100, 'h') + " 22\n",
                                        std::string(70 * 1024, 'x')};
  for (const std::string& text : bad) {
    const ParsedJoinRequest refused = parse_join_request_text(text);
    EXPECT_FALSE(refused.problem.empty()) << text;
    EXPECT_TRUE(refused.workers.empty()) << text;
  }
}

TEST(JoinRequestText, AnswersAreOneOfThreeForms) {
  for (const std::string& good : {"accepted\n", "pending\n", "refused: too many\n", "accepted"}) {
    EXPECT_TRUE(parse_join_answer_text(good).problem.empty()) << good;
  }
  for (const std::string& bad : {"", "\n", "yes\n", "refused: \n", "accepted\nmore\n", "accepted\r\n"}) {
    EXPECT_FALSE(parse_join_answer_text(bad).problem.empty()) << bad;
  }
}

TEST(ElasticDirRequests, AMalformedJoinRequestIsMovedAsideReportedAndIgnored) {
  test_util::TempDir tmp;
  ElasticDir dir(tmp.path());
  dir.create();
  std::ofstream(dir.path("requests/junk.join")) << "node2 notapid\n";
  fs::create_symlink(tmp.file("elsewhere"), dir.path("requests/link.join"));
  write_join_request(dir, JoinRequest{"node2-22", {worker("node2", 22)}});

  std::vector<std::string> rejected;
  const std::vector<JoinRequest> requests = read_join_requests(dir, std::chrono::seconds(15), &rejected);
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_EQ(requests[0].name, "node2-22");
  ASSERT_EQ(rejected.size(), 2u);
  for (const std::string& why : rejected) EXPECT_NE(why.find("moved to"), std::string::npos) << why;
  for (const std::string& name : {"junk.join", "link.join"}) {
    EXPECT_FALSE(fs::exists(fs::symlink_status(dir.path("requests/" + name)))) << name;
    EXPECT_TRUE(fs::exists(fs::symlink_status(dir.path("requests/rejected/" + name)))) << name;
  }
  rejected.clear();
  EXPECT_EQ(read_join_requests(dir, std::chrono::seconds(15), &rejected).size(), 1u);
  EXPECT_TRUE(rejected.empty());
}

TEST(ElasticDirRequests, AMalformedAnswerIsMovedAsideAndIgnored) {
  test_util::TempDir tmp;
  ElasticDir dir(tmp.path());
  dir.create();
  std::ofstream(dir.path("requests/node2-22.answer")) << "sure, come in\n";
  std::vector<std::string> rejected;
  EXPECT_FALSE(take_join_answer(dir, "node2-22", &rejected));
  ASSERT_EQ(rejected.size(), 1u);
  EXPECT_TRUE(fs::exists(dir.path("requests/rejected/node2-22.answer")));
  answer_join_request(dir, "node2-22", "accepted");
  EXPECT_EQ(take_join_answer(dir, "node2-22").value_or(""), "accepted");
  EXPECT_FALSE(take_join_answer(dir, "node2-22"));
}

}  // namespace
}  // namespace dptrain::launcher
