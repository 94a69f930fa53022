// Fuzz target: read_metrics_curves, the metrics-file reader of `dptrain plot` (JSON lines).
#include <cmath>
#include <cstddef>
#include <cstdint>

#include "runtime/core/errors.h"
#include "runtime/report/metrics_curves.h"
#include "tests/fuzz/fuzz_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const dptrain::fuzz::MemoryFile file(data, size);
  try {
    const dptrain::RunCurves run = dptrain::read_metrics_curves(file.path(), "fuzz");
    if (run.epoch_records + run.step_records == 0) __builtin_trap();  // the reader's promises
    for (const dptrain::Curve& curve : run.curves) {
      for (const auto& piece : curve) {
        if (piece.empty()) __builtin_trap();
        for (const dptrain::CurvePoint& p : piece) {
          if (!std::isfinite(p.epochs) || !std::isfinite(p.value) || std::isinf(p.seconds)) __builtin_trap();
        }
      }
    }
  } catch (const dptrain::Error& error) {
    dptrain::fuzz::refused(error);
  }
  return 0;
}
