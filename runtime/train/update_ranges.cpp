#include "runtime/train/update_ranges.h"

#include <algorithm>
#include <numeric>

#include "runtime/core/errors.h"

namespace dptrain {

namespace {

// Layer types whose parameters are normalisation scales and shifts (DecayExclusion::Norm).
bool is_normalisation_layer(const std::string& layer_type) { return layer_type == "batchnorm2d"; }

}  // namespace

const std::vector<std::string>& decay_exclusion_names() {
  static const std::vector<std::string> names = {"bias", "norm"};
  return names;
}

const std::string& to_string(DecayExclusion exclusion) {
  return decay_exclusion_names()[static_cast<size_t>(exclusion)];
}

std::vector<DecayExclusion> read_decay_exclusions(ConfigMap& optimizer) {
  const std::vector<std::string>& names = decay_exclusion_names();
  std::vector<DecayExclusion> exclusions;
  for (const std::string& name : optimizer.get_choice_list("weight_decay_exclude", names, std::vector<std::string>{})) {
    const auto kind = static_cast<DecayExclusion>(std::find(names.begin(), names.end(), name) - names.begin());
    if (std::find(exclusions.begin(), exclusions.end(), kind) == exclusions.end()) exclusions.push_back(kind);
  }
  return exclusions;
}

bool decay_excluded(const ParamEntry& entry, const std::vector<DecayExclusion>& exclusions) {
  for (const DecayExclusion exclusion : exclusions) {
    if (exclusion == DecayExclusion::Bias && entry.param == "bias") return true;
    if (exclusion == DecayExclusion::Norm && is_normalisation_layer(entry.layer_type)) return true;
  }
  return false;
}

std::vector<UpdateRange> plan_update_ranges(const std::vector<ParamEntry>& entries, size_t flat_size,
                                            double weight_decay, const std::vector<DecayExclusion>& exclusions) {
  std::vector<size_t> order(entries.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return entries[a].offset < entries[b].offset; });

  std::vector<UpdateRange> ranges;
  size_t covered = 0;  // end of the previous entry's elements
  for (size_t k = 0; k < order.size(); ++k) {
    const ParamEntry& entry = entries[order[k]];
    const size_t size = num_elements(entry.shape);
    if (entry.offset < covered || entry.offset > flat_size || size > flat_size - entry.offset) {
      throw ShapeError("optimizer: parameter '" + entry.name + "' at [" + std::to_string(entry.offset) + ", " +
                       std::to_string(entry.offset + size) + ") overlaps the one before it or runs past the " +
                       std::to_string(flat_size) + " floats of the flat buffer");
    }
    covered = entry.offset + size;
    if (entry.use == ParamUse::Frozen) continue;
    const size_t begin = k == 0 ? 0 : entry.offset;
    const size_t end = k + 1 < order.size() ? entries[order[k + 1]].offset : flat_size;
    const double decay = decay_excluded(entry, exclusions) ? 0.0 : weight_decay;
    if (!ranges.empty() && ranges.back().end == begin && ranges.back().weight_decay == decay) {
      ranges.back().end = end;
    } else if (begin < end) {
      ranges.push_back({begin, end, decay});
    }
  }
  return ranges;
}

std::vector<UpdateRange> merge_adjacent(const std::vector<UpdateRange>& ranges) {
  std::vector<UpdateRange> merged;
  for (const UpdateRange& r : ranges) {
    if (!merged.empty() && merged.back().end == r.begin) {
      merged.back().end = r.end;
    } else {
      merged.push_back({r.begin, r.end, 0.0});
    }
  }
  return merged;
}

}  // namespace dptrain
