# Fails when a source file includes a header of a part above its own, or when a source file other
# than the backend registry asks whether CUDA was compiled in (DPTRAIN_HAVE_CUDA): the CUDA code
# registers itself, and only runtime/core/backend_registry.cpp lists the backends.
# Run as: cmake -DSOURCE_DIR=<project root> -P cmake/check_layering.cmake
#
# The parts, lowest first (each may include itself and the parts before it):
#   core (runtime/core) < report (runtime/report) < layers < comm < data (runtime/data)
#   < checkpoint (runtime/checkpoint) < train (runtime/train) < elastic (runtime/elastic)
#   < export (runtime/export) < launcher
cmake_minimum_required(VERSION 3.25)
if(NOT SOURCE_DIR)
  message(FATAL_ERROR "usage: cmake -DSOURCE_DIR=<project root> -P check_layering.cmake")
endif()

set(PART_DIRS runtime/core runtime/report layers comm runtime/data runtime/checkpoint runtime/train
              runtime/elastic runtime/export launcher)

# The index of the part that `path` (relative to the root) belongs to, or -1 for files of no part.
function(part_of path out)
  set(index 0)
  set(found -1)
  foreach(dir IN LISTS PART_DIRS)
    string(LENGTH "${dir}/" n)
    string(SUBSTRING "${path}" 0 ${n} head)
    if(head STREQUAL "${dir}/")
      set(found ${index})
    endif()
    math(EXPR index "${index} + 1")
  endforeach()
  set(${out} ${found} PARENT_SCOPE)
endfunction()

set(violations "")
set(count 0)
foreach(dir IN LISTS PART_DIRS)
  file(GLOB_RECURSE files RELATIVE "${SOURCE_DIR}" "${SOURCE_DIR}/${dir}/*.h" "${SOURCE_DIR}/${dir}/*.cpp"
       "${SOURCE_DIR}/${dir}/*.cu" "${SOURCE_DIR}/${dir}/*.cuh")
  foreach(file IN LISTS files)
    math(EXPR count "${count} + 1")
    part_of("${file}" own)
    file(STRINGS "${SOURCE_DIR}/${file}" lines REGEX "^[ \t]*#[ \t]*include[ \t]+\"")
    foreach(line IN LISTS lines)
      string(REGEX REPLACE "^[ \t]*#[ \t]*include[ \t]+\"([^\"]+)\".*" "\\1" header "${line}")
      part_of("${header}" theirs)
      if(theirs GREATER own)
        list(GET PART_DIRS ${own} own_dir)
        list(GET PART_DIRS ${theirs} their_dir)
        string(APPEND violations "  ${file} (${own_dir}) includes ${header} (${their_dir}, a part above it)\n")
      endif()
    endforeach()
  endforeach()
endforeach()

if(violations)
  message(FATAL_ERROR "includes against the direction of the parts:\n${violations}"
                      "Move the code to the lower part, or pass what it needs in from above.")
endif()
message(STATUS "layering: ${count} files, every include points to its own part or one below")

# The compile-time backend switch: the registry's file alone, in the parts and the tests.
set(BACKEND_REGISTRY runtime/core/backend_registry.cpp)
set(cuda_switches "")
set(sources "")
foreach(dir IN LISTS PART_DIRS ITEMS tests)
  file(GLOB_RECURSE files RELATIVE "${SOURCE_DIR}" "${SOURCE_DIR}/${dir}/*.h" "${SOURCE_DIR}/${dir}/*.cpp"
       "${SOURCE_DIR}/${dir}/*.cu" "${SOURCE_DIR}/${dir}/*.cuh")
  list(APPEND sources ${files})
endforeach()
foreach(file IN LISTS sources)
  if(file STREQUAL BACKEND_REGISTRY)
    continue()
  endif()
  file(STRINGS "${SOURCE_DIR}/${file}" uses REGEX "DPTRAIN_HAVE_CUDA")
  if(uses)
    string(APPEND cuda_switches "  ${file}\n")
  endif()
endforeach()
if(cuda_switches)
  message(FATAL_ERROR "DPTRAIN_HAVE_CUDA is used outside ${BACKEND_REGISTRY}:\n${cuda_switches}"
                      "Register the CUDA implementation from its own file (DPTRAIN_REGISTER_LAYER, "
                      "DPTRAIN_REGISTER_DEVICE_TRANSPORT) or add the backend to the backend registry.")
endif()
message(STATUS "backend switch: DPTRAIN_HAVE_CUDA appears in ${BACKEND_REGISTRY} alone")
