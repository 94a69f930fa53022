// Loads an epoch of augmented samples the way `world` workers with `threads` loader threads each would.
#pragma once

#include <cstdint>
#include <map>
#include <vector>

#include "runtime/data/augment.h"
#include "runtime/data/batch_loader.h"
#include "runtime/data/dataset.h"
#include "runtime/data/epoch_plan.h"

namespace dptrain::testing {

// Every sample of `plan`'s epoch, loaded rank by rank (each with its own loader and `threads` decode
// threads, augmentation seeded 11), by global index.
inline std::map<uint64_t, std::vector<float>> load_epoch(const Dataset& data, const Augmentation& augment,
                                                         const EpochPlan& plan, uint64_t epoch, size_t world,
                                                         size_t threads) {
  std::map<uint64_t, std::vector<float>> out;
  const size_t per = num_elements(data.sample_shape());
  for (size_t rank = 0; rank < world; ++rank) {
    BatchLoader loader(data, plan.global_batch(), &augment, 11, threads);
    for (size_t s = 0; s < plan.num_steps(); ++s) {
      loader.prefetch(plan.slice(s, rank, world), epoch);
      Batch& b = loader.next();
      for (size_t i = 0; i < b.ids.size(); ++i) {
        out[b.ids[i]] = std::vector<float>(b.inputs.data() + i * per, b.inputs.data() + (i + 1) * per);
      }
    }
  }
  return out;
}

}  // namespace dptrain::testing
