#include "runtime/checkpoint/format.h"

namespace dptrain::checkpoint_detail {

namespace {

// The outermost function (the API call) and the innermost description on the error stack.
struct Failure {
  std::string api;
  std::string innermost;
};

herr_t collect(unsigned position, const H5E_error2_t* error, void* data) {
  auto* failure = static_cast<Failure*>(data);
  if (position == 0 && error->func_name) failure->api = error->func_name;
  if (error->desc && error->desc[0]) failure->innermost = error->desc;
  return 0;
}

}  // namespace

std::string dtype_name(hid_t type) {
  const std::string bits = std::to_string(H5Tget_size(type) * 8);
  switch (H5Tget_class(type)) {
    case H5T_FLOAT:
      return "float" + bits;
    case H5T_INTEGER:
      return (H5Tget_sign(type) == H5T_SGN_NONE ? "uint" : "int") + bits;
    case H5T_STRING:
      return "string";
    case H5T_COMPOUND:
      return "compound";
    case H5T_ENUM:
      return "enum";
    case H5T_ARRAY:
      return "array";
    case H5T_VLEN:
      return "vlen";
    case H5T_REFERENCE:
      return "reference";
    default:
      return "other";
  }
}

std::string hdf5_failure() {
  Failure failure;
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_DOWNWARD, collect, &failure);
  H5Eclear2(H5E_DEFAULT);
  if (failure.innermost.empty()) return "no details from HDF5";
  return failure.api.empty() ? failure.innermost : failure.api + ": " + failure.innermost;
}

H5Handle checkpoint_file_access() {
  H5Handle fapl = hdf5_checksummed_file_access();
  if (fapl.valid()) {
    H5Pset_fclose_degree(fapl.get(), H5F_CLOSE_STRONG);
    H5Pset_file_locking(fapl.get(), true, true);
  }
  return fapl;
}

H5Handle ordered_group_creation() {
  H5Handle gcpl(H5Pcreate(H5P_GROUP_CREATE), H5Pclose);
  if (gcpl.valid()) H5Pset_link_creation_order(gcpl.get(), H5P_CRT_ORDER_TRACKED | H5P_CRT_ORDER_INDEXED);
  return gcpl;
}

}  // namespace dptrain::checkpoint_detail
