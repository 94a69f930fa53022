// Safe use of the HDF5 C library: one process-wide lock, RAII identifiers, readable error messages.
#pragma once

#include <hdf5.h>

#include <mutex>
#include <string>

namespace dptrain {

// The lock every HDF5 call in dptrain holds. Debian's libhdf5 is the serial build, which is not
// thread-safe, even for different files: data loader threads and checkpoint writers must not call
// into it at the same time. Recursive, so that helpers may take it again.
std::recursive_mutex& hdf5_mutex();

// An HDF5 identifier, closed with its own close function when the handle is destroyed. Destroy (or
// close) it while holding hdf5_mutex().
class H5Handle {
 public:
  using Closer = herr_t (*)(hid_t);
  H5Handle() = default;
  H5Handle(hid_t id, Closer closer) : id_(id), closer_(closer) {}
  ~H5Handle() { close(); }
  H5Handle(H5Handle&& other) noexcept : id_(other.id_), closer_(other.closer_) { other.id_ = -1; }
  H5Handle& operator=(H5Handle&& other) noexcept {
    if (this != &other) {
      close();
      id_ = other.id_;
      closer_ = other.closer_;
      other.id_ = -1;
    }
    return *this;
  }
  H5Handle(const H5Handle&) = delete;
  H5Handle& operator=(const H5Handle&) = delete;

  hid_t get() const { return id_; }
  bool valid() const { return id_ >= 0; }
  // Closes now; false when HDF5 reports an error (for a file: the final write failed).
  bool close() {
    if (id_ < 0) return true;
    const herr_t status = closer_(id_);
    id_ = -1;
    return status >= 0;
  }

 private:
  hid_t id_ = -1;
  Closer closer_ = nullptr;
};

// While alive, HDF5 prints nothing on errors (its automatic stack dump is switched off and restored
// afterwards); errors are reported through hdf5_error_message() instead. Hold hdf5_mutex().
class Hdf5Quiet {
 public:
  Hdf5Quiet();
  ~Hdf5Quiet();
  Hdf5Quiet(const Hdf5Quiet&) = delete;
  Hdf5Quiet& operator=(const Hdf5Quiet&) = delete;

 private:
  H5E_auto2_t saved_func_ = nullptr;
  void* saved_data_ = nullptr;
};

// Whether `dataset` stores enough bytes in its file for `logical_bytes` of values: at least that many
// without filters, at least 1/1040 of them with filters (deflate, the strongest one in use, expands at
// most 1032 times). False for a dataset declared far larger than its data: chunks never written, an
// extent set beyond what was stored. `*stored` receives the stored bytes. Hold hdf5_mutex().
bool hdf5_storage_holds(hid_t dataset, size_t logical_bytes, size_t* stored);

// Whether values of `type` (a file's or memory type) are kept in HDF5's global heap: a variable-length
// string or sequence, at the top or inside a compound or array type. The global heap carries no
// checksum, and HDF5 1.10 reading a damaged one loops forever or reads outside its buffers, so dptrain
// reads no such value. Hold hdf5_mutex().
bool hdf5_has_variable_length(hid_t type);

// File access properties for the files dptrain writes: the HDF5 1.10 format (H5Pset_libver_bounds
// V110..V110), whose superblock, version-2 object headers with their attributes, and chunk indexes
// (fixed and extensible arrays) all carry checksums. h5py and h5dump of HDF5 1.10 or newer read it.
// Invalid when HDF5 cannot create the list. Hold hdf5_mutex().
H5Handle hdf5_checksummed_file_access();

// The most specific message on HDF5's error stack, e.g. "unable to open file: name = 'x.h5', errno = 2,
// ...", or "no details" when the stack is empty. Clears the stack.
std::string hdf5_error_message();

}  // namespace dptrain
