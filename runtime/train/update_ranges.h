// Update ranges: the stretches of the flat parameter buffer the optimizer updates, each with its
// own weight decay, worked out once from the model's parameter layout.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "runtime/train/model.h"

namespace dptrain {

// A kind of parameter that weight decay leaves alone (an entry of optimizer.weight_decay_exclude).
enum class DecayExclusion { Bias, Norm };

// The config names of the exclusions, in enum order: "bias", "norm".
const std::vector<std::string>& decay_exclusion_names();
// The config name of `exclusion`.
const std::string& to_string(DecayExclusion exclusion);
// Reads optimizer.weight_decay_exclude (default none); an unknown entry is a ConfigError listing the known ones.
std::vector<DecayExclusion> read_decay_exclusions(ConfigMap& optimizer);

// Whether weight decay skips `entry`: Bias skips every parameter named "bias", Norm every parameter of a
// normalisation layer (batchnorm2d).
bool decay_excluded(const ParamEntry& entry, const std::vector<DecayExclusion>& exclusions);

// One stretch [begin, end) of the flat buffers (in floats) that one backend update covers.
struct UpdateRange {
  size_t begin = 0;
  size_t end = 0;
  double weight_decay = 0;
};

// The update ranges of flat buffers of `flat_size` floats laid out as `entries` (in any order). A
// trained entry covers its elements and the alignment padding up to the next entry (the first one
// also from 0, the last one to flat_size); a frozen entry is covered by no range, so no update,
// weight decay or momentum touches it. Neighbouring ranges with the same weight decay merge, so
// without exclusions and frozen entries the plan is the single range [0, flat_size).
// ShapeError when entries overlap or run past flat_size.
std::vector<UpdateRange> plan_update_ranges(const std::vector<ParamEntry>& entries, size_t flat_size,
                                            double weight_decay, const std::vector<DecayExclusion>& exclusions);

// `ranges` with neighbours merged whatever their weight decay: the trained stretches, over which
// gradient clipping measures the norm with as few calls as possible.
std::vector<UpdateRange> merge_adjacent(const std::vector<UpdateRange>& ranges);

}  // namespace dptrain
