#include "comm/staging_communicator.h"

#include <utility>
#include <vector>

namespace dptrain {

namespace {

// A host all-reduce of a staged copy; the result is copied back to the device buffer once it is done.
class StagedRequest final : public CommRequest {
 public:
  StagedRequest(Backend& backend, float* device_data, std::vector<float> host, Communicator& comm)
      : backend_(backend), device_data_(device_data), host_(std::move(host)) {
    inner_ = comm.all_reduce_sum_async(host_.data(), host_.size());
  }

  bool test() override {
    if (!copied_back_ && inner_->test()) copy_back();
    return copied_back_;
  }

  void wait(Deadline deadline) override {
    if (copied_back_) return;
    inner_->wait(deadline);
    copy_back();
  }

 private:
  void copy_back() {
    if (!host_.empty()) backend_.copy_to_device(device_data_, host_.data(), host_.size() * sizeof(float));
    copied_back_ = true;
  }

  Backend& backend_;
  float* device_data_;
  std::vector<float> host_;  // (count): the staged copy, reduced in place
  std::unique_ptr<CommRequest> inner_;
  bool copied_back_ = false;
};

}  // namespace

std::unique_ptr<CommRequest> StagingCommunicator::all_reduce_sum_async(float* device_data, size_t count) {
  std::vector<float> host(count);
  if (count > 0) device_.copy_to_host(host.data(), device_data, count * sizeof(float));
  return std::make_unique<StagedRequest>(device_, device_data, std::move(host), host_);
}

}  // namespace dptrain
