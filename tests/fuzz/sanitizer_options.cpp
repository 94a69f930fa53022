// The sanitizers' defaults for the test and fuzz binaries of the sanitizer build (cmake/sanitize.cmake):
// leak reports filtered through the committed suppressions (lsan.supp: what Open MPI and HDF5 keep
// until exit by design; asan.supp: HDF5's own calls into intercepted functions), stack traces for undefined behaviour. The *_OPTIONS environment variables
// add to these and win where they repeat a setting.

#ifndef DPTRAIN_SOURCE_DIR
#error "DPTRAIN_SOURCE_DIR must name the source tree (tests/CMakeLists.txt, tests/fuzz/CMakeLists.txt)"
#endif

extern "C" {

// Read by AddressSanitizer at start-up.
const char* __asan_default_options() {
  return "detect_leaks=1:strict_string_checks=1:detect_stack_use_after_return=1:suppressions=" DPTRAIN_SOURCE_DIR
         "/tests/fuzz/asan.supp:print_suppressions=0";
}

// Read by LeakSanitizer at start-up.
const char* __lsan_default_options() { return "suppressions=" DPTRAIN_SOURCE_DIR "/tests/fuzz/lsan.supp:print_suppressions=0"; }

// Read by UndefinedBehaviorSanitizer at start-up.
const char* __ubsan_default_options() { return "print_stacktrace=1"; }

}  // extern "C"
