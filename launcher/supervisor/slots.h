// What `dptrain launch` reads before each launch: the workers that can be placed.
#pragma once

#include <cstddef>
#include <string>

namespace dptrain::launcher {

struct LaunchArgs;

// How many workers can be placed now, and where that number comes from (for the launch line).
struct Slots {
  size_t count = 0;
  std::string source;  // "--np", "hostfile FILE: 2 host(s), 3 slot(s)", "Slurm allocation ..."
};

// The slots of an Open MPI hostfile: the sum of every host line's slots=N (1 when a line has
// none). Throws UsageError naming the file (and line) when it cannot be read or parsed.
Slots hostfile_slots(const std::string& path);

// From --hostfile when given (read afresh, so an operator may remove a broken node between
// launches); else, inside a Slurm allocation (SLURM_JOB_ID), from SLURM_NTASKS or
// SLURM_TASKS_PER_NODE; else --np.
Slots available_slots(const LaunchArgs& args);

}  // namespace dptrain::launcher
