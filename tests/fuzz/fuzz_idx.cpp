// Fuzz target: read_idx, the IDX reader, on plain and gzipped files (gzip is told by its magic bytes).
#include <cstddef>
#include <cstdint>

#include "runtime/core/errors.h"
#include "runtime/data/idx.h"
#include "tests/fuzz/fuzz_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const dptrain::fuzz::MemoryFile file(data, size);
  try {
    const dptrain::IdxArray array = dptrain::read_idx(file.path());
    if (dptrain::num_elements(array.dims) != array.data.size()) __builtin_trap();  // the reader's promise
  } catch (const dptrain::Error& error) {
    dptrain::fuzz::refused(error);
  }
  return 0;
}
