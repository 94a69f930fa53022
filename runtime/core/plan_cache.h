// PlanCache: a few prepared plans (library descriptors, chosen algorithms) kept by the key they
// were made for, so that alternating shapes (the training and the evaluation batch) are planned once.
#pragma once

#include <cstddef>
#include <list>
#include <memory>
#include <utility>

namespace dptrain {

// At most `capacity` plans, looked up by equality on Key; inserting beyond the capacity destroys
// the least recently used plan. Owned by one layer, used from one thread.
template <typename Key, typename Plan>
class PlanCache {
 public:
  // `capacity` 0 is taken as 1.
  explicit PlanCache(size_t capacity) : capacity_(capacity > 0 ? capacity : 1) {}

  // The plan made for `key`, now the most recently used; null when there is none.
  Plan* find(const Key& key) {
    for (auto it = entries_.begin(); it != entries_.end(); ++it) {
      if (it->first == key) {
        entries_.splice(entries_.begin(), entries_, it);
        return entries_.front().second.get();
      }
    }
    return nullptr;
  }

  // Keeps `plan` for `key` (replacing one made for the same key) as the most recently used, and
  // destroys the least recently used plan when that leaves more than capacity(). Returns the plan.
  Plan& insert(const Key& key, std::unique_ptr<Plan> plan) {
    for (auto it = entries_.begin(); it != entries_.end(); ++it) {
      if (it->first == key) {
        entries_.erase(it);
        break;
      }
    }
    entries_.emplace_front(key, std::move(plan));
    if (entries_.size() > capacity_) entries_.pop_back();
    return *entries_.front().second;
  }

  // Plans held, at most capacity().
  size_t size() const { return entries_.size(); }
  size_t capacity() const { return capacity_; }
  // Calls f(key, plan) for every plan, most recently used first.
  template <typename F>
  void for_each(F&& f) const {
    for (const auto& entry : entries_) f(entry.first, *entry.second);
  }

 private:
  size_t capacity_;
  std::list<std::pair<Key, std::unique_ptr<Plan>>> entries_;  // most recently used first
};

}  // namespace dptrain
