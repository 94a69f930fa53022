// The MPI communicator's collectives, their deadlines and errors, and the bucketed gradient all-reduce.
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <thread>
#include <vector>

#include "comm/mpi/mpi_communicator.h"
#include "comm/mpi/world.h"
#include "comm/reducer.h"
#include "runtime/core/errors.h"

namespace dptrain {
namespace DPTRAIN_TEST_UNIT {

const Deadline kDeadline = std::chrono::seconds(60);

TEST(MpiCommunicator, AsyncAllReduceSumsEveryRanksValues) {
  MpiCommunicator comm(MPI_COMM_WORLD);
  ASSERT_GE(comm.size(), 2u);
  const size_t n = 100003;  // not a multiple of anything convenient
  std::vector<float> data(n);
  for (size_t i = 0; i < n; ++i) data[i] = static_cast<float>(comm.rank() + 1) * static_cast<float>(i % 97);
  auto request = comm.all_reduce_sum_async(data.data(), n);
  request->wait(kDeadline);
  EXPECT_TRUE(request->test());
  const float ranks_sum = static_cast<float>(comm.size() * (comm.size() + 1) / 2);
  for (size_t i = 0; i < n; i += 101) ASSERT_FLOAT_EQ(data[i], ranks_sum * static_cast<float>(i % 97)) << i;
}

TEST(MpiCommunicator, SeveralRequestsInFlightCompleteInOrder) {
  MpiCommunicator comm(MPI_COMM_WORLD);
  std::vector<std::vector<float>> buffers(5, std::vector<float>(1000, 1.0f));
  std::vector<std::unique_ptr<CommRequest>> requests;
  for (auto& b : buffers) requests.push_back(comm.all_reduce_sum_async(b.data(), b.size()));
  for (auto& r : requests) r->wait(kDeadline);
  for (auto& b : buffers) EXPECT_EQ(b[999], static_cast<float>(comm.size()));
}

TEST(MpiCommunicator, DoubleSumBroadcastBarrierAllGather) {
  MpiCommunicator comm(MPI_COMM_WORLD);
  double sums[2] = {1.0, static_cast<double>(comm.rank())};
  comm.all_reduce_sum(sums, 2, kDeadline);
  EXPECT_EQ(sums[0], static_cast<double>(comm.size()));
  EXPECT_EQ(sums[1], static_cast<double>(comm.size() * (comm.size() - 1) / 2));

  std::vector<int> payload(1000, static_cast<int>(comm.rank()));
  const size_t root = comm.size() - 1;
  comm.broadcast(payload.data(), payload.size() * sizeof(int), root, kDeadline);
  EXPECT_EQ(payload.front(), static_cast<int>(root));
  EXPECT_EQ(payload.back(), static_cast<int>(root));

  comm.barrier(kDeadline);
  const uint64_t mine = 1000 + comm.rank();
  std::vector<uint64_t> all(comm.size());
  comm.all_gather(&mine, sizeof(mine), all.data(), kDeadline);
  for (size_t r = 0; r < comm.size(); ++r) EXPECT_EQ(all[r], 1000 + r);
}

TEST(MpiCommunicator, MissedDeadlineNamesThisRankAndTheOperation) {
  MpiCommunicator comm(MPI_COMM_WORLD);
  if (comm.rank() == 0) {
    // The others arrive two seconds late: rank 0 gives up after 0.3 s with a message.
    const auto start = std::chrono::steady_clock::now();
    try {
      comm.barrier(std::chrono::milliseconds(300));
      ADD_FAILURE() << "barrier returned although the other ranks had not arrived";
    } catch (const CommError& e) {
      const std::string message = e.what();
      EXPECT_NE(message.find("rank 0 on " + host_name()), std::string::npos) << message;
      EXPECT_NE(message.find("barrier did not complete"), std::string::npos) << message;
    }
    EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(2));
  } else {
    std::this_thread::sleep_for(std::chrono::seconds(2));
    MPI_Request r;
    MPI_Ibarrier(comm.comm(), &r);  // the barrier rank 0 started, completed for tidiness
    MPI_Wait(&r, MPI_STATUS_IGNORE);
  }
  MPI_Barrier(MPI_COMM_WORLD);
}

// Rank 0 gives up on a barrier and closes its communicator; only then do the others take part in
// that barrier, and rank 0's MPI goes on advancing the abandoned request. The communicator must still
// be there for it (with three or more ranks the barrier has a second round to send).
TEST(MpiCommunicator, AnAbandonedWaitKeepsItsCommunicatorForMpi) {
  {
    auto comm = std::make_unique<MpiCommunicator>(MPI_COMM_WORLD);
    if (comm->rank() == 0) {
      EXPECT_THROW(comm->barrier(std::chrono::milliseconds(100)), CommError);
      comm.reset();
      MPI_Barrier(MPI_COMM_WORLD);  // the others start their part of the barrier only now
    } else {
      MPI_Barrier(MPI_COMM_WORLD);
      MPI_Request r;
      MPI_Ibarrier(comm->comm(), &r);
      wait_request(&r, kDeadline, comm->size(), "rank 0's abandoned barrier");
    }
  }
  // Rank 0 advances its abandoned request in here; with the communicator freed it would crash.
  for (int i = 0; i < 3; ++i) EXPECT_EQ(MPI_Barrier(MPI_COMM_WORLD), MPI_SUCCESS);
}

TEST(MpiCommunicator, FailedCallIsCommErrorWithCallFileAndRank) {
  try {
    DPTRAIN_MPI_CHECK(MPI_Bcast(nullptr, 1, MPI_INT, 999, MPI_COMM_WORLD));  // no rank 999
    FAIL() << "an invalid root was accepted";
  } catch (const CommError& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("MPI_Bcast"), std::string::npos) << message;
    EXPECT_NE(message.find("test_mpi_communicator.cpp:"), std::string::npos) << message;
    EXPECT_NE(message.find("rank "), std::string::npos) << message;
  }
}

TEST(MpiCommunicator, BroadcastFromAMissingRankIsAClearError) {
  MpiCommunicator comm(MPI_COMM_WORLD);
  int value = 0;
  EXPECT_THROW(comm.broadcast(&value, sizeof(value), comm.size(), kDeadline), CommError);
}

TEST(GradientReducer, BucketedSumEqualsTheSumOverRanksForAnyBucketSize) {
  MpiCommunicator comm(MPI_COMM_WORLD);
  const size_t n = 5000;
  for (size_t bucket_bytes : {64ul, 1000ul, 4096ul, 1ul << 20}) {
    std::vector<float> grads(n);
    for (size_t i = 0; i < n; ++i) grads[i] = static_cast<float>((i * 7 + comm.rank() * 13) % 31);
    GradientReducer reducer(comm, grads.data(), n, bucket_bytes, kDeadline);
    reducer.begin_step();
    // Layers report from the end of the buffer, as backward does, in uneven pieces.
    for (size_t end = n; end > 0;) {
      const size_t begin = end > 777 ? end - 777 : 0;
      reducer.ready(begin, end);
      end = begin;
    }
    reducer.finish();
    for (size_t i = 0; i < n; ++i) {
      float expected = 0;
      for (size_t r = 0; r < comm.size(); ++r) expected += static_cast<float>((i * 7 + r * 13) % 31);
      ASSERT_EQ(grads[i], expected) << "bucket " << bucket_bytes << " index " << i;
    }
    EXPECT_GE(reducer.exposed_seconds(), 0.0);
  }
}

TEST(World, LocalRanksAreDistinctAndHostsAreNamed) {
  MpiCommunicator comm(MPI_COMM_WORLD);
  const LocalRank local = discover_local_rank(MPI_COMM_WORLD);
  EXPECT_LT(local.rank, local.size);
  EXPECT_EQ(local.size, comm.size());  // every rank of the test runs on this host
  WorkerInfo self;
  self.rank = static_cast<uint32_t>(comm.rank());
  self.local_rank = static_cast<uint32_t>(local.rank);
  self.local_size = static_cast<uint32_t>(local.size);
  std::snprintf(self.host, sizeof(self.host), "%s", host_name().c_str());
  const std::vector<WorkerInfo> all = gather_workers(comm, self, kDeadline);
  std::vector<bool> seen(comm.size(), false);
  for (const auto& w : all) {
    ASSERT_LT(w.local_rank, comm.size());
    EXPECT_FALSE(seen[w.local_rank]) << "local rank " << w.local_rank << " twice";
    seen[w.local_rank] = true;
  }
  const std::string text = describe_world(all, comm.backend());
  EXPECT_NE(text.find("world: " + std::to_string(comm.size()) + " workers on 1 host (mpi)"), std::string::npos) << text;
}

}  // namespace
}  // namespace dptrain
