#include "runtime/core/blas_kernels.h"

#include <cblas.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "runtime/core/errors.h"
#include "runtime/core/fault_hooks.h"

namespace dptrain {

namespace {

// OpenBLAS's cores whose single-precision GEMM uses AVX-512 (lower case).
constexpr const char* kAvx512Cores[] = {"skylakex", "cooperlake", "sapphirerapids"};

// The core a restart asks for: SkylakeX's AVX-512 sgemm. Cooperlake adds bf16 kernels dptrain does not
// call; alternating 2048^3 sgemm runs on an AVX-512 bf16 CPU (AMD Zen 5) could not tell the two apart.
constexpr const char* kAvx512Core = "SkylakeX";

std::string lower(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(), [](unsigned char c) { return std::tolower(c); });
  return text;
}

bool is_avx512_core(const std::string& core) {
  const std::string name = lower(core);
  return std::any_of(std::begin(kAvx512Cores), std::end(kAvx512Cores), [&](const char* c) { return name == c; });
}

std::optional<std::string> env_value(const char* name) {
  const char* value = std::getenv(name);
  if (!value) return std::nullopt;
  return std::string(value);
}

}  // namespace

CpuFeatures detect_cpu_features() {
  CpuFeatures f;
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  f.avx2 = __builtin_cpu_supports("avx2");
  f.fma = __builtin_cpu_supports("fma");
  f.avx512f = __builtin_cpu_supports("avx512f");
  f.avx512bw = __builtin_cpu_supports("avx512bw");
  f.avx512vl = __builtin_cpu_supports("avx512vl");
  f.avx512dq = __builtin_cpu_supports("avx512dq");
  f.avx512cd = __builtin_cpu_supports("avx512cd");
#endif
  return f;
}

std::string openblas_core_name() {
  const char* name = openblas_get_corename();
  return name ? std::string(name) : std::string("unknown");
}

BlasCoreEnv read_blas_core_env() {
  return {env_value("OPENBLAS_CORETYPE"), env_value(kBlasCoreTypeVar), env_value(kBlasCoreReplacedVar)};
}

BlasCoreDecision decide_blas_core(const CpuFeatures& features, const std::string& openblas_core,
                                  const BlasCoreEnv& env) {
  BlasCoreDecision decision;
  const std::string mode = env.dptrain_coretype ? lower(*env.dptrain_coretype) : std::string("auto");
  if (mode != "auto" && mode != "keep") {
    throw UsageError(std::string(kBlasCoreTypeVar) + "=" + *env.dptrain_coretype +
                     ": expected auto (choose OpenBLAS's kernels for this CPU; the default) or keep (OpenBLAS's "
                     "own choice); to name a core, set OPENBLAS_CORETYPE instead");
  }
  if (env.replaced) {  // this process is the restart: never again
    decision.reason = BlasCoreReason::Replaced;
    decision.replaced = *env.replaced;
    return decision;
  }
  if (env.openblas_coretype) {
    decision.reason = BlasCoreReason::UserChoice;
    return decision;
  }
  if (mode == "keep") {
    decision.reason = BlasCoreReason::OptedOut;
    return decision;
  }
  if (!features.skylakex_set() || is_avx512_core(openblas_core)) return decision;
  decision.action = BlasCoreAction::Restart;
  decision.reason = BlasCoreReason::Upgrade;
  decision.core = kAvx512Core;
  decision.replaced = openblas_core;
  return decision;
}

std::string describe_blas_core(const std::string& core_in_use, const BlasCoreDecision& decision,
                               const BlasCoreEnv& env) {
  std::string out = core_in_use + " (";
  switch (decision.reason) {
    case BlasCoreReason::UserChoice:
      out += "OPENBLAS_CORETYPE=" + env.openblas_coretype.value_or("") + " set in the environment";
      break;
    case BlasCoreReason::OptedOut:
      out += "OpenBLAS's own choice: " + std::string(kBlasCoreTypeVar) + "=keep";
      break;
    case BlasCoreReason::OpenBlasChoice:
      out += "OpenBLAS's own choice for this CPU";
      break;
    case BlasCoreReason::Replaced:
      out += "chosen at start-up: OpenBLAS chose " + decision.replaced + ", without AVX-512, on an AVX-512 CPU; " +
             kBlasCoreTypeVar + "=keep keeps OpenBLAS's choice";
      break;
    case BlasCoreReason::Upgrade:
      out +=
          "OpenBLAS's own choice, without AVX-512, on an AVX-512 CPU: start with OPENBLAS_CORETYPE=" + decision.core +
          " for its AVX-512 kernels";
      break;
  }
  // OpenBLAS ignores a core it was not built with (or any, without DYNAMIC_ARCH).
  const std::optional<std::string>& asked = env.openblas_coretype;
  if (asked && decision.reason != BlasCoreReason::Upgrade && lower(*asked) != lower(core_in_use)) {
    out += "; OPENBLAS_CORETYPE asks for " + *asked + " but OpenBLAS runs " + core_in_use;
  }
  return out + ")";
}

BlasCoreDecision decide_this_blas_core() {
  std::string core = openblas_core_name();
  // Test hooks: decide as if OpenBLAS had chosen its AVX2 kernels, which takes the restart path on any
  // AVX-512 machine; blas_restart_fails also makes the restart's execv fail.
  if (fault_hooks::armed("blas_core_haswell") || fault_hooks::armed("blas_restart_fails")) core = "Haswell";
  return decide_blas_core(detect_cpu_features(), core, read_blas_core_env());
}

std::string describe_this_blas_core() {
  return describe_blas_core(openblas_core_name(), decide_this_blas_core(), read_blas_core_env());
}

std::string restart_with_blas_core(const BlasCoreDecision& decision, char** argv) {
  if (setenv("OPENBLAS_CORETYPE", decision.core.c_str(), 1) != 0 ||
      setenv(kBlasCoreReplacedVar, decision.replaced.c_str(), 1) != 0) {
    const int error = errno;
    unsetenv("OPENBLAS_CORETYPE");
    unsetenv(kBlasCoreReplacedVar);
    return std::string("setenv: ") + std::strerror(error);
  }
  const char* self = fault_hooks::armed("blas_restart_fails") ? "/proc/self/no-such-file" : "/proc/self/exe";
  execv(self, argv);
  const int error = errno;
  unsetenv("OPENBLAS_CORETYPE");
  unsetenv(kBlasCoreReplacedVar);
  return std::string("execv ") + self + ": " + std::strerror(error);
}

const char* to_string(BlasCoreReason reason) {
  switch (reason) {
    case BlasCoreReason::UserChoice:
      return "user";
    case BlasCoreReason::OptedOut:
      return "keep";
    case BlasCoreReason::OpenBlasChoice:
      return "openblas";
    case BlasCoreReason::Replaced:
      return "dptrain";
    case BlasCoreReason::Upgrade:
      return "openblas";
  }
  return "openblas";
}

}  // namespace dptrain
