// ReusePool: objects made once and handed out again, so that a hot path (an all-reduce per bucket
// per step) does not create and destroy them (CUDA events).
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <mutex>
#include <utility>
#include <vector>

namespace dptrain {

// Hands out objects of type T as shared handles; when the last copy of a handle goes (on any
// thread), the object returns to the pool instead of being destroyed. Objects are made by `make`
// only when none is free. Handles may outlive the pool: the free objects live until both are gone.
template <class T>
class ReusePool {
 public:
  using Make = std::function<std::unique_ptr<T>()>;

  explicit ReusePool(Make make) : state_(std::make_shared<State>()) { state_->make = std::move(make); }

  // A free object, or a new one when none is free.
  std::shared_ptr<T> acquire() {
    std::unique_ptr<T> object;
    {
      std::lock_guard<std::mutex> lock(state_->mutex);
      if (!state_->free.empty()) {
        object = std::move(state_->free.back());
        state_->free.pop_back();
      }
    }
    if (!object) {
      object = state_->make();
      std::lock_guard<std::mutex> lock(state_->mutex);
      ++state_->made;
    }
    return std::shared_ptr<T>(object.release(), [state = state_](T* p) { state->give_back(p); });
  }

  // Objects made so far (the pool's whole population).
  size_t made() const {
    std::lock_guard<std::mutex> lock(state_->mutex);
    return state_->made;
  }
  // Objects waiting to be handed out again.
  size_t free() const {
    std::lock_guard<std::mutex> lock(state_->mutex);
    return state_->free.size();
  }

 private:
  struct State {
    Make make;
    std::mutex mutex;
    std::vector<std::unique_ptr<T>> free;
    size_t made = 0;
    void give_back(T* p) noexcept {
      std::unique_ptr<T> object(p);
      try {
        std::lock_guard<std::mutex> lock(mutex);
        free.push_back(std::move(object));
      } catch (...) {
        // Out of memory for the free list: the object is destroyed instead (object still owns it).
      }
    }
  };
  std::shared_ptr<State> state_;
};

}  // namespace dptrain
