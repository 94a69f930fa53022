// Fuzz target: the checkpoint reader: the input opened as a checkpoint file, read whole (every
// checksum), verified, and listed as `dptrain inspect` lists it.
#include <cstddef>
#include <cstdint>

#include "runtime/checkpoint/checkpoint.h"
#include "runtime/core/errors.h"
#include "tests/fuzz/fuzz_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const dptrain::fuzz::TempFile file(data, size);
  try {
    (void)dptrain::read_checkpoint(file.path(), dptrain::CheckpointContents::Everything);
  } catch (const dptrain::Error& error) {
    dptrain::fuzz::refused(error);
  }
  try {
    (void)dptrain::verify_checkpoint(file.path());
  } catch (const dptrain::Error& error) {
    dptrain::fuzz::refused(error);
  }
  try {
    (void)dptrain::checkpoint_layout(file.path());
  } catch (const dptrain::Error& error) {
    dptrain::fuzz::refused(error);
  }
  return 0;
}
