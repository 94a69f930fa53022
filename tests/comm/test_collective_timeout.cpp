// A collective that timed out says which collective, on how many ranks, and, with heartbeats off,
// how to have the missing rank named.
#include <gtest/gtest.h>

#include <string>

#include "comm/mpi/mpi_communicator.h"

namespace dptrain {
namespace DPTRAIN_TEST_UNIT {

TEST(CollectiveTimeout, WithoutHeartbeatsSaysHowToNameTheMissingRank) {
  const std::string message = collective_timeout("all-reduce of 12 floats", Deadline(300000), 3, nullptr);
  EXPECT_NE(message.find("all-reduce of 12 floats did not complete within 300 s (comm.timeout_seconds)"),
            std::string::npos)
      << message;
  EXPECT_NE(message.find("one of the other 2 ranks of this 3-rank communicator did not take part"), std::string::npos)
      << message;
  EXPECT_NE(message.find("Heartbeats are off"), std::string::npos) << message;
  EXPECT_NE(message.find("set comm.heartbeat_seconds"), std::string::npos) << message;
  EXPECT_EQ(message.find("another rank"), std::string::npos) << message;
}

TEST(CollectiveTimeout, TwoRanksNameTheOther) {
  const std::string message = collective_timeout("barrier", Deadline(1500), 2, nullptr);
  EXPECT_NE(message.find("within 1.5 s"), std::string::npos) << message;
  EXPECT_NE(message.find("the other rank of this 2-rank communicator"), std::string::npos) << message;
}

}  // namespace
}  // namespace dptrain
