// Which OpenBLAS kernels a run uses, chosen at start-up from the CPU's features: a DYNAMIC_ARCH OpenBLAS
// that does not know a CPU falls back to an older family's kernels (OpenBLAS 0.3.21 runs its AVX2
// "Haswell" kernels on AMD Zen 5, at half the AVX-512 rate). OpenBLAS reads OPENBLAS_CORETYPE once, when
// it loads, so a better choice takes effect only in a process started with it in its environment.
#pragma once

#include <optional>
#include <string>

namespace dptrain {

// The instruction-set extensions that decide which OpenBLAS kernels can run.
struct CpuFeatures {
  bool avx2 = false;
  bool fma = false;
  bool avx512f = false;
  bool avx512bw = false;
  bool avx512vl = false;
  bool avx512dq = false;
  bool avx512cd = false;
  // The set OpenBLAS's SkylakeX kernels need (F, BW, VL, DQ, CD).
  bool skylakex_set() const { return avx512f && avx512bw && avx512vl && avx512dq && avx512cd; }
};

// This CPU's features (__builtin_cpu_supports; all false on other architectures).
CpuFeatures detect_cpu_features();

// The core whose kernels the linked OpenBLAS runs (openblas_get_corename(), e.g. "Haswell").
std::string openblas_core_name();

// The environment variables the choice reads; nullopt where a variable is not set.
struct BlasCoreEnv {
  std::optional<std::string> openblas_coretype;  // OPENBLAS_CORETYPE: the user's (or an earlier start's) choice
  std::optional<std::string> dptrain_coretype;   // DPTRAIN_BLAS_CORETYPE: "auto" (the default) or "keep"
  std::optional<std::string> replaced;           // DPTRAIN_BLAS_CORE_REPLACED: the core a re-exec replaced
};

// Reads BlasCoreEnv from this process's environment.
BlasCoreEnv read_blas_core_env();

// Whether the process has to be started again with OPENBLAS_CORETYPE set.
enum class BlasCoreAction { Keep, Restart };

// Why the core in use is the one it is.
enum class BlasCoreReason {
  UserChoice,      // OPENBLAS_CORETYPE was set by the user
  OptedOut,        // DPTRAIN_BLAS_CORETYPE=keep
  OpenBlasChoice,  // OpenBLAS's own choice already suits the CPU (or no better kernels exist for it)
  Replaced,        // chosen at start-up: the process was restarted with OPENBLAS_CORETYPE set
  Upgrade,         // OpenBLAS chose kernels without AVX-512 on an AVX-512 CPU: restart with `core`
};

// What to do about the OpenBLAS core, and why.
struct BlasCoreDecision {
  BlasCoreAction action = BlasCoreAction::Keep;
  BlasCoreReason reason = BlasCoreReason::OpenBlasChoice;
  std::string core;      // Restart: the OPENBLAS_CORETYPE to set
  std::string replaced;  // Replaced, Upgrade: the core OpenBLAS chose (before the restart)
};

// The environment variable that opts out of the choice ("keep") and the one a restart leaves behind.
inline constexpr const char* kBlasCoreTypeVar = "DPTRAIN_BLAS_CORETYPE";
inline constexpr const char* kBlasCoreReplacedVar = "DPTRAIN_BLAS_CORE_REPLACED";

// The decision for a CPU with `features` on which OpenBLAS chose `openblas_core`, given `env`: a pure
// function. Restart only when nothing in `env` says otherwise, the CPU has the SkylakeX set and
// `openblas_core` is not an AVX-512 core; never when a restart already happened (`env.replaced`), so
// that no restart loop is possible. UsageError for a DPTRAIN_BLAS_CORETYPE other than auto or keep.
BlasCoreDecision decide_blas_core(const CpuFeatures& features, const std::string& openblas_core,
                                  const BlasCoreEnv& env);

// One line for logs: the core in use and why ("SkylakeX (chosen at start-up: ...; DPTRAIN_BLAS_CORETYPE=keep
// keeps OpenBLAS's own)").
std::string describe_blas_core(const std::string& core_in_use, const BlasCoreDecision& decision,
                               const BlasCoreEnv& env);

// The decision for this process: its CPU, its OpenBLAS, its environment (test builds: DPTRAIN_FAULT=
// blas_core_haswell decides as if OpenBLAS had chosen Haswell; blas_restart_fails also fails the execv).
BlasCoreDecision decide_this_blas_core();

// describe_blas_core for this process.
std::string describe_this_blas_core();

// Starts this program again (execv of /proc/self/exe with `argv`) with OPENBLAS_CORETYPE=decision.core and
// DPTRAIN_BLAS_CORE_REPLACED=decision.replaced in its environment. Call it first thing in main, before MPI_Init and
// before any thread starts. Returns only when the execv failed: the environment is then restored and the
// return value says why, for a one-line note.
std::string restart_with_blas_core(const BlasCoreDecision& decision, char** argv);

// A short token for JSON output: "user", "keep", "openblas", "dptrain" (chosen at start-up).
const char* to_string(BlasCoreReason reason);

}  // namespace dptrain
