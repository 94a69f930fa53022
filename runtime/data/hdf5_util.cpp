#include "runtime/data/hdf5_util.h"

#include <cstdint>

namespace dptrain {

namespace {

// HDF5 closes what is still open when the process exits, from an atexit handler. A file whose close
// failed (a full disk) stays registered half torn down, and that handler then crashes; files are
// closed explicitly here, so the handler is switched off. It only works before HDF5 is first used,
// hence at static initialisation.
const bool kNoAtExitHandler = [] {
  H5dont_atexit();
  return true;
}();

}  // namespace

std::recursive_mutex& hdf5_mutex() {
  static std::recursive_mutex mutex;
  return mutex;
}

Hdf5Quiet::Hdf5Quiet() {
  H5Eget_auto2(H5E_DEFAULT, &saved_func_, &saved_data_);
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
}

Hdf5Quiet::~Hdf5Quiet() { H5Eset_auto2(H5E_DEFAULT, saved_func_, saved_data_); }

namespace {

herr_t keep_innermost(unsigned, const H5E_error2_t* error, void* data) {
  if (error->desc && error->desc[0]) *static_cast<std::string*>(data) = error->desc;
  return 0;
}

// "file write failed: time = ..., error message = 'File too large', ..." becomes "file write failed: File
// too large"; line breaks become spaces.
std::string tidy(std::string message) {
  const std::string key = "error message = '";
  const size_t at = message.find(key);
  if (at != std::string::npos) {
    const size_t end = message.find('\'', at + key.size());
    const std::string system = message.substr(at + key.size(), end == std::string::npos ? end : end - at - key.size());
    message = message.substr(0, message.find(':')) + ": " + system;
  }
  for (char& c : message) {
    if (c == '\n') c = ' ';
  }
  return message;
}

}  // namespace

bool hdf5_storage_holds(hid_t dataset, size_t logical_bytes, size_t* stored) {
  constexpr size_t kMaxFilterRatio = 1040;
  *stored = static_cast<size_t>(H5Dget_storage_size(dataset));
  H5Handle dcpl(H5Dget_create_plist(dataset), H5Pclose);
  const int filters = dcpl.valid() ? H5Pget_nfilters(dcpl.get()) : 0;
  H5Eclear2(H5E_DEFAULT);
  const size_t can_hold = filters > 0 && *stored <= SIZE_MAX / kMaxFilterRatio ? *stored * kMaxFilterRatio : *stored;
  return logical_bytes <= can_hold;
}

bool hdf5_has_variable_length(hid_t type) {
  if (H5Tis_variable_str(type) > 0) return true;
  switch (H5Tget_class(type)) {
    case H5T_VLEN:
      return true;
    case H5T_COMPOUND: {
      const int members = H5Tget_nmembers(type);
      for (int i = 0; i < members; ++i) {
        H5Handle member(H5Tget_member_type(type, static_cast<unsigned>(i)), H5Tclose);
        if (!member.valid() || hdf5_has_variable_length(member.get())) return true;
      }
      return members < 0;
    }
    case H5T_ARRAY:
    case H5T_ENUM: {
      H5Handle base(H5Tget_super(type), H5Tclose);
      return !base.valid() || hdf5_has_variable_length(base.get());
    }
    default:
      return false;
  }
}

H5Handle hdf5_checksummed_file_access() {
  H5Handle fapl(H5Pcreate(H5P_FILE_ACCESS), H5Pclose);
  if (fapl.valid() && H5Pset_libver_bounds(fapl.get(), H5F_LIBVER_V110, H5F_LIBVER_V110) < 0) fapl.close();
  return fapl;
}

std::string hdf5_error_message() {
  std::string message;
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_DOWNWARD, keep_innermost, &message);
  H5Eclear2(H5E_DEFAULT);
  return message.empty() ? "no details" : tidy(message);
}

}  // namespace dptrain
