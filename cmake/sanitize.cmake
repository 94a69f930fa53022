# DPTRAIN_SANITIZE: the sanitizer build (clang only, CPU backend only).
#
# Every library and test binary is compiled with AddressSanitizer and UndefinedBehaviorSanitizer
# (-fno-sanitize-recover=undefined: undefined behaviour fails the test instead of printing a line)
# and with libFuzzer's coverage instrumentation (-fsanitize=fuzzer-no-link), so that the fuzz targets
# of tests/fuzz/ (linked with -fsanitize=fuzzer) are guided by the coverage of the real readers.
# The sanitizers' defaults, the committed leak suppressions included, are compiled into the test
# binaries (tests/fuzz/sanitizer_options.cpp); ASAN_OPTIONS, LSAN_OPTIONS and UBSAN_OPTIONS add to them.
#
#   CC=clang CXX=clang++ cmake -S . -B build-san -DDPTRAIN_SANITIZE=ON -DDPTRAIN_CUDA=OFF
if(NOT DPTRAIN_SANITIZE)
  return()
endif()
if(NOT CMAKE_CXX_COMPILER_ID STREQUAL "Clang" OR NOT CMAKE_C_COMPILER_ID STREQUAL "Clang")
  message(FATAL_ERROR "DPTRAIN_SANITIZE=ON needs clang (libFuzzer): configure a fresh build folder with "
                      "CC=clang CXX=clang++ (scripts/install-deps.sh installs them)")
endif()
if(DPTRAIN_CUDA STREQUAL "ON")
  message(FATAL_ERROR "DPTRAIN_SANITIZE=ON builds the CPU backend only: use -DDPTRAIN_CUDA=OFF")
endif()
set(DPTRAIN_CUDA OFF)  # AUTO: nvcc's objects carry no sanitizer instrumentation

set(DPTRAIN_SANITIZE_FLAGS -fsanitize=address,undefined -fno-sanitize-recover=undefined)
add_compile_options(${DPTRAIN_SANITIZE_FLAGS} -fsanitize=fuzzer-no-link -fno-omit-frame-pointer -gline-tables-only)
add_link_options(${DPTRAIN_SANITIZE_FLAGS})
