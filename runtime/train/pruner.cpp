#include "runtime/train/pruner.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>

#include "runtime/core/errors.h"
#include "runtime/report/metrics.h"

namespace dptrain {

namespace {

// Whether a parameter is one pruning may take: a convolution's or dense layer's weight.
bool prunable(const ParamEntry& e) { return (e.layer_type == "conv2d" || e.layer_type == "dense") && e.param == "weight"; }

}  // namespace

Pruner::Pruner(const PruneSettings& settings, const Model& model, size_t steps_per_epoch) : settings_(settings) {
  const auto steps = static_cast<double>(steps_per_epoch);
  start_step_ = static_cast<uint64_t>(std::llround(settings.start_epoch * steps));
  end_step_ = std::max(start_step_ + 1, static_cast<uint64_t>(std::llround(settings.end_epoch * steps)));
  std::vector<bool> used(settings.layers.size(), false);
  for (const ParamEntry& e : model.parameter_entries()) {
    if (!prunable(e)) continue;
    bool chosen = settings.layers.empty();
    for (size_t i = 0; i < settings.layers.size(); ++i) {
      // An entry names a layer ("conv1", "layer1") or a parameter ("fc.weight").
      if (parameter_matches(settings.layers[i], e.name)) chosen = used[i] = true;
    }
    if (chosen) pruned_.push_back({&e, std::vector<uint8_t>(num_elements(e.shape), 1), 0});
  }
  for (size_t i = 0; i < settings.layers.size(); ++i) {
    if (used[i]) continue;
    const std::string why = "entry '" + settings.layers[i] +
                            "' matches no conv2d or dense weight of the model: name layers or parameters as the "
                            "model summary shows them, e.g. [conv1, fc]";
    if (settings.section) settings.section->fail("layers", why);
    throw ConfigError("prune.layers: " + why);
  }
  if (pruned_.empty()) throw ConfigError("prune: the model has no conv2d or dense weight to prune");
}

double Pruner::target(uint64_t step) const {
  if (step < start_step_) return 0;
  if (step >= end_step_) return settings_.sparsity;
  const double p = static_cast<double>(step - start_step_) / static_cast<double>(end_step_ - start_step_);
  return settings_.sparsity * (1 - std::pow(1 - p, 3));
}

bool Pruner::updates_at(uint64_t step) const {
  if (step < start_step_ || step > end_step_) return false;
  return step == end_step_ || (step - start_step_) % settings_.every_steps == 0;
}

void Pruner::update(Tensor& params, uint64_t step) {
  const double share = target(step);
  if (settings_.scope == PruneScope::Global) {
    update_global(params, share);
    return;
  }
  for (Pruned& p : pruned_) {
    float* w = params.data() + p.entry->offset;
    const size_t n = p.keep.size();
    // Never fewer zeros than before: pruned weights are zero, the smallest of all, and stay pruned.
    const auto zeros = std::max(p.zeros, static_cast<size_t>(std::floor(share * static_cast<double>(n))));
    std::vector<uint32_t> order(n);
    std::iota(order.begin(), order.end(), 0u);
    auto smaller = [&](uint32_t a, uint32_t b) {
      const float x = std::fabs(w[a]), y = std::fabs(w[b]);
      return x < y || (x == y && a < b);
    };
    if (zeros > 0 && zeros < n) std::nth_element(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(zeros), order.end(), smaller);
    std::fill(p.keep.begin(), p.keep.end(), 1);
    for (size_t i = 0; i < zeros; ++i) p.keep[order[i]] = 0;
    p.zeros = zeros;
  }
  apply(params);
}

void Pruner::update_global(Tensor& params, double share) {
  // Every pruned weight, by magnitude then tensor then position: the smallest `zeros` of all are pruned.
  struct Weight {
    float magnitude;
    uint32_t tensor, index;
  };
  std::vector<Weight> all;
  size_t pruned_before = 0;
  for (size_t t = 0; t < pruned_.size(); ++t) {
    const float* w = params.data() + pruned_[t].entry->offset;
    for (size_t i = 0; i < pruned_[t].keep.size(); ++i) {
      all.push_back({std::fabs(w[i]), static_cast<uint32_t>(t), static_cast<uint32_t>(i)});
    }
    pruned_before += pruned_[t].zeros;
  }
  const auto zeros = std::max(pruned_before, static_cast<size_t>(std::floor(share * static_cast<double>(all.size()))));
  auto smaller = [](const Weight& a, const Weight& b) {
    if (a.magnitude != b.magnitude) return a.magnitude < b.magnitude;
    return a.tensor != b.tensor ? a.tensor < b.tensor : a.index < b.index;
  };
  if (zeros > 0 && zeros < all.size()) {
    std::nth_element(all.begin(), all.begin() + static_cast<std::ptrdiff_t>(zeros), all.end(), smaller);
  }
  for (Pruned& p : pruned_) {
    std::fill(p.keep.begin(), p.keep.end(), 1);
    p.zeros = 0;
  }
  for (size_t k = 0; k < std::min(zeros, all.size()); ++k) {
    pruned_[all[k].tensor].keep[all[k].index] = 0;
    ++pruned_[all[k].tensor].zeros;
  }
  apply(params);
}

void Pruner::mask_gradients(Tensor& grads) const { apply(grads); }

void Pruner::apply(Tensor& params) const {
  for (const Pruned& p : pruned_) {
    float* w = params.data() + p.entry->offset;
    for (size_t i = 0; i < p.keep.size(); ++i) {
      if (!p.keep[i]) w[i] = 0.0f;
    }
  }
}

std::vector<std::pair<std::string, double>> Pruner::sparsity() const {
  std::vector<std::pair<std::string, double>> out;
  for (const Pruned& p : pruned_) {
    out.emplace_back(p.entry->name, static_cast<double>(p.zeros) / static_cast<double>(p.keep.size()));
  }
  return out;
}

double Pruner::total_sparsity() const {
  size_t zeros = 0, total = 0;
  for (const Pruned& p : pruned_) {
    zeros += p.zeros;
    total += p.keep.size();
  }
  return total ? static_cast<double>(zeros) / static_cast<double>(total) : 0;
}

std::string Pruner::describe() const {
  size_t weights = 0;
  for (const Pruned& p : pruned_) weights += p.keep.size();
  char text[256];
  std::snprintf(text, sizeof(text),
                "prune: %zu weight tensors (%zu weights) to %s zeros %s by magnitude, from step %llu to %llu "
                "(epochs %g to %g), masks updated every %zu steps; now %s",
                pruned_.size(), weights, format_percent(settings_.sparsity).c_str(),
                settings_.scope == PruneScope::Global ? "over all of them" : "each", static_cast<unsigned long long>(start_step_),
                static_cast<unsigned long long>(end_step_), settings_.start_epoch, settings_.end_epoch,
                settings_.every_steps, format_percent(total_sparsity()).c_str());
  return text;
}

std::vector<CheckpointTensor> Pruner::masks() const {
  std::vector<CheckpointTensor> out;
  for (const Pruned& p : pruned_) out.push_back({p.entry->name, p.entry->shape, {p.keep.begin(), p.keep.end()}});
  return out;
}

void Pruner::load(const std::vector<CheckpointTensor>& masks, const std::string& source) {
  for (Pruned& p : pruned_) {
    std::fill(p.keep.begin(), p.keep.end(), 1);
    p.zeros = 0;
  }
  for (const CheckpointTensor& t : masks) {
    auto it = std::find_if(pruned_.begin(), pruned_.end(), [&](const Pruned& p) { return p.entry->name == t.name; });
    if (it == pruned_.end() || t.shape != it->entry->shape || t.values.size() != it->keep.size()) {
      throw CheckpointError(source, "pruning mask " + t.name +
                                        " does not fit this run's pruned weights (prune.layers, or the model, "
                                        "differs from the run that saved it)");
    }
    for (size_t i = 0; i < t.values.size(); ++i) {
      it->keep[i] = t.values[i] != 0.0f;
      it->zeros += it->keep[i] ? 0 : 1;
    }
  }
}

void Pruner::share(Communicator& comm, Deadline deadline) {
  if (comm.size() == 1) return;
  std::vector<uint8_t> all;
  for (const Pruned& p : pruned_) all.insert(all.end(), p.keep.begin(), p.keep.end());
  comm.broadcast(all.data(), all.size(), 0, deadline);
  size_t at = 0;
  for (Pruned& p : pruned_) {
    std::copy(all.begin() + static_cast<std::ptrdiff_t>(at), all.begin() + static_cast<std::ptrdiff_t>(at + p.keep.size()),
              p.keep.begin());
    at += p.keep.size();
    p.zeros = static_cast<size_t>(std::count(p.keep.begin(), p.keep.end(), uint8_t{0}));
  }
}

}  // namespace dptrain
