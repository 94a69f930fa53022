#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "runtime/elastic/run_dir.h"
#include "tests/test_util.h"

namespace dptrain::launcher {
namespace {

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

}  // namespace
}  // namespace dptrain::launcher
