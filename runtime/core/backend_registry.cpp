// The backends of this build. Only this file asks whether the CUDA backend was compiled in.
#include "runtime/core/backend_registry.h"

#include "runtime/core/cpu_backend.h"
#include "runtime/core/errors.h"

#ifdef DPTRAIN_HAVE_CUDA
#include "runtime/core/cuda/cuda_backend.h"
#endif

namespace dptrain {

namespace {

// One backend this build has.
struct BackendEntry {
  const char* name;
  DeviceKind device;
  size_t (*device_count)(std::string* why);
  std::unique_ptr<Backend> (*open)(const BackendRequest& request);
};

const std::vector<BackendEntry>& entries() {
  static const std::vector<BackendEntry> list{
      {"cpu", DeviceKind::CPU, cpu_device_count, open_cpu_backend},
#ifdef DPTRAIN_HAVE_CUDA
      {"cuda", DeviceKind::CUDA, cuda_device_count, open_cuda_backend},
#endif
  };
  return list;
}

const BackendEntry* find_entry(DeviceKind device) {
  for (const BackendEntry& entry : entries()) {
    if (entry.device == device) return &entry;
  }
  return nullptr;
}

// "the cpu backend", "the cpu and cuda backends".
std::string built_list() {
  std::string text;
  const std::vector<std::string> names = built_backends();
  for (size_t i = 0; i < names.size(); ++i) {
    text += (i == 0 ? "" : i + 1 == names.size() ? " and " : ", ") + names[i];
  }
  return "the " + text + (names.size() == 1 ? " backend" : " backends");
}

}  // namespace

std::vector<std::string> built_backends() {
  std::vector<std::string> names;
  for (const BackendEntry& entry : entries()) names.emplace_back(entry.name);
  return names;
}

size_t visible_device_count(DeviceKind device, std::string* why) {
  const BackendEntry* entry = find_entry(device);
  if (!entry) {
    if (why) *why = "this build has only " + built_list();
    return 0;
  }
  return entry->device_count(why);
}

std::unique_ptr<Backend> open_backend(DeviceKind device, const BackendRequest& request) {
  const BackendEntry* entry = find_entry(device);
  if (!entry) {
    throw UsageError(std::string("device '") + to_string(device) + "' is not available: this build has only " +
                     built_list() + " (set device: cpu, or rebuild with -DDPTRAIN_CUDA=ON where nvcc, cuDNN and " +
                     "NCCL are installed)");
  }
  return entry->open(request);
}

size_t visible_gpu_count(std::string* why) { return visible_device_count(DeviceKind::CUDA, why); }

DeviceKind resolve_device(const std::string& choice) {
  if (choice == "cuda") return DeviceKind::CUDA;
  if (choice == "auto") return visible_gpu_count() > 0 ? DeviceKind::CUDA : DeviceKind::CPU;
  return DeviceKind::CPU;
}

}  // namespace dptrain
