// cluster/mpirun/dptrain-mpirun.sh: the mpirun command it builds from a hostfile, binding and
// network options, and a real two-worker run through it on this machine.
#include <gtest/gtest.h>

#include <string>

#include "tests/e2e/run_command.h"

namespace dptrain {
namespace DPTRAIN_TEST_UNIT {

const std::string kSource = DPTRAIN_SOURCE_DIR;
const std::string kScript = kSource + "/cluster/mpirun/dptrain-mpirun.sh ";

using e2e::CommandResult;
using e2e::run_command;

TEST(MpirunRecipes, HostfileBindingAndNetworkBecomeMpirunOptions) {
  const CommandResult r = run_command(kScript + "--dry-run --hostfile " + kSource +
                                      "/cluster/mpirun/hostfile.example --per-node 4 --threads 8 --net eth1 --dptrain "
                                      "/opt/dptrain -- train my.yaml --log-dir logs");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  for (const char* part : {"mpirun -np 8 ", "--map-by ppr:4:node:PE=8 --bind-to core -x OMP_NUM_THREADS=8",
                           "--mca btl_tcp_if_include eth1 --mca oob_tcp_if_include eth1",
                           "/opt/dptrain train my.yaml --log-dir logs"}) {
    EXPECT_NE(r.output.find(part), std::string::npos) << part << "\n" << r.output;
  }
  const CommandResult ucx = run_command(kScript + "--dry-run --np 3 --ucx mlx5_0:1 --dptrain d -- train c.yaml");
  ASSERT_EQ(ucx.exit_code, 0) << ucx.output;
  EXPECT_NE(ucx.output.find("mpirun -np 3 --mca pml ucx"), std::string::npos) << ucx.output;
  EXPECT_NE(ucx.output.find("UCX_NET_DEVICES=mlx5_0:1"), std::string::npos) << ucx.output;
}

TEST(MpirunRecipes, TwoBoundWorkersOnLoopbackTrainThroughTheScript) {
  const CommandResult r = run_command(
      "env OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 timeout 120 " + kScript + "--hostfile " + kSource +
      "/cluster/mpirun/hostfile.localhost --threads 1 --net lo --dptrain " + DPTRAIN_BINARY + " -- train " + kSource +
      "/configs/synthetic_smoke.yaml --progress off --set train.epochs=1");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("world: 2 workers on 1 host (mpi)"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("1 threads per worker"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("done: 1 epochs"), std::string::npos) << r.output;
}

TEST(MpirunRecipes, MistakesAreNamed) {
  CommandResult r = run_command(kScript + "--np 2");
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("after --"), std::string::npos) << r.output;
  r = run_command(kScript + "--hostfile /nonexistent/hosts -- train c.yaml");
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("--hostfile /nonexistent/hosts: cannot read it"), std::string::npos) << r.output;
  r = run_command(kScript + "--threads two -- train c.yaml");
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("--threads two"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace dptrain
