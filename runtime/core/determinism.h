// Determinism: whether GPU library calls may pick algorithms whose results vary run to run.
#pragma once

namespace dptrain {

// Which convolution algorithms the GPU may use (`cudnn_deterministic` in the run config). Some of
// cuDNN's fastest backward algorithms sum partial results with atomics, so their last bits depend
// on thread timing; the CPU backend and this project's own CUDA kernels are deterministic either way.
enum class Determinism {
  Fastest,   // cuDNN's fastest algorithm for each convolution, deterministic or not (the default)
  Required,  // only algorithms cuDNN reports as deterministic: repeatable GPU runs, a little slower
};

// "fastest" or "deterministic", for start-up lines and messages.
inline const char* to_string(Determinism determinism) {
  return determinism == Determinism::Required ? "deterministic" : "fastest";
}

}  // namespace dptrain
