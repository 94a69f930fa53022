# Finds nvcc, cuDNN and NCCL for the CUDA backend (included when DPTRAIN_CUDA is AUTO or ON).
# Sets DPTRAIN_WITH_CUDA and DPTRAIN_BACKENDS, and defines dptrain_add_cuda_sources(target sources...).
#
# Code for Ampere (sm_80) and Hopper (sm_90) is built ahead of time, with sm_90 PTX that the
# driver compiles for newer GPUs. Override with -DCMAKE_CUDA_ARCHITECTURES=... (e.g. "native").

set(DPTRAIN_CUDA_ROOT "/usr/local/cuda" CACHE PATH "Where the CUDA toolkit, cuDNN and NCCL are installed")

# AUTO turns missing pieces into a status line; ON turns them into an error naming what is missing.
function(dptrain_cuda_missing what)
  if(DPTRAIN_CUDA STREQUAL "ON")
    message(FATAL_ERROR "DPTRAIN_CUDA=ON but ${what} was not found under ${DPTRAIN_CUDA_ROOT}: install it, "
                        "point -DDPTRAIN_CUDA_ROOT=... at it, or configure with -DDPTRAIN_CUDA=OFF")
  endif()
  message(STATUS "CUDA backend: off (${what} not found; DPTRAIN_CUDA=AUTO)")
endfunction()

include(CheckLanguage)
if(NOT CMAKE_CUDA_COMPILER AND EXISTS "${DPTRAIN_CUDA_ROOT}/bin/nvcc")
  set(CMAKE_CUDA_COMPILER "${DPTRAIN_CUDA_ROOT}/bin/nvcc")
endif()
check_language(CUDA)
find_path(DPTRAIN_CUDNN_INCLUDE cudnn.h HINTS "${DPTRAIN_CUDA_ROOT}/include" /usr/include)
find_library(DPTRAIN_CUDNN_LIB cudnn HINTS "${DPTRAIN_CUDA_ROOT}/lib64" "${DPTRAIN_CUDA_ROOT}/lib")
find_path(DPTRAIN_NCCL_INCLUDE nccl.h HINTS "${DPTRAIN_CUDA_ROOT}/include" /usr/include)
find_library(DPTRAIN_NCCL_LIB nccl HINTS "${DPTRAIN_CUDA_ROOT}/lib64" "${DPTRAIN_CUDA_ROOT}/lib")

if(NOT CMAKE_CUDA_COMPILER)
  dptrain_cuda_missing("nvcc")
elseif(NOT DPTRAIN_CUDNN_INCLUDE OR NOT DPTRAIN_CUDNN_LIB)
  dptrain_cuda_missing("cuDNN (cudnn.h, libcudnn.so)")
elseif(NOT DPTRAIN_NCCL_INCLUDE OR NOT DPTRAIN_NCCL_LIB)
  dptrain_cuda_missing("NCCL (nccl.h, libnccl.so)")
else()
  if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES)
    set(CMAKE_CUDA_ARCHITECTURES "80-real;90")
  endif()
  enable_language(CUDA)
  set(CMAKE_CUDA_STANDARD 17)
  set(CMAKE_CUDA_STANDARD_REQUIRED ON)
  find_package(CUDAToolkit REQUIRED)
  set(DPTRAIN_WITH_CUDA ON)
  set(DPTRAIN_BACKENDS "cpu, cuda")
  message(STATUS "CUDA backend: on (nvcc ${CMAKE_CUDA_COMPILER_VERSION}, architectures ${CMAKE_CUDA_ARCHITECTURES}, "
                 "cuDNN ${DPTRAIN_CUDNN_LIB}, NCCL ${DPTRAIN_NCCL_LIB})")
endif()

# Adds CUDA sources (a part's cuda/ or nccl/ folder) and the CUDA libraries to the part `target`.
function(dptrain_add_cuda_sources target)
  target_sources(${target} PRIVATE ${ARGN})
  target_compile_definitions(${target} PRIVATE DPTRAIN_HAVE_CUDA=1)
  target_include_directories(${target} SYSTEM PUBLIC ${DPTRAIN_CUDNN_INCLUDE} ${DPTRAIN_NCCL_INCLUDE})
  target_link_libraries(${target} PUBLIC CUDA::cudart CUDA::cublas ${DPTRAIN_CUDNN_LIB} ${DPTRAIN_NCCL_LIB})
  # Device code: relaxed constexpr lets kernels call the constexpr hash functions of runtime/core/rng.h.
  target_compile_options(${target} PRIVATE $<$<COMPILE_LANGUAGE:CUDA>:--expt-relaxed-constexpr -Xcompiler=-Wall>)
  set_target_properties(${target} PROPERTIES CUDA_ARCHITECTURES "${CMAKE_CUDA_ARCHITECTURES}")
endfunction()
