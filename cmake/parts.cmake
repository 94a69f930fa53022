# dptrain_add_part(NAME DIR SOURCES <globs> [CUDA_SOURCES <globs>] [DEPENDS <parts>] [LIBRARIES <libs>]
#                  [WHOLE_ARCHIVE])
#
# One part of dptrain (runtime/core, layers, comm, ...) as the static library dptrain_NAME, built from
# the files matching SOURCES under DIR (and CUDA_SOURCES in CUDA builds). It links the parts named in
# DEPENDS (which must come before it in DPTRAIN_PART_ORDER) and the external LIBRARIES, and nothing
# else, so that a call into a part above it does not link. cmake/check_layering.cmake checks the includes.
#
# WHOLE_ARCHIVE: the part's files register themselves with static registrars (layers, device
# transports) that nothing else refers to, which a linker drops from a static library. Every part
# that depends on it links it as $<LINK_LIBRARY:WHOLE_ARCHIVE,...>, so executables keep all its objects.
set(DPTRAIN_PART_ORDER core report layers comm data checkpoint train elastic export)
set_property(GLOBAL PROPERTY DPTRAIN_WHOLE_ARCHIVE_PARTS "")

function(dptrain_add_part name dir)
  cmake_parse_arguments(PART "WHOLE_ARCHIVE" "" "SOURCES;CUDA_SOURCES;DEPENDS;LIBRARIES" ${ARGN})
  list(FIND DPTRAIN_PART_ORDER ${name} own_index)
  if(own_index LESS 0)
    message(FATAL_ERROR "part ${name} is not in DPTRAIN_PART_ORDER (cmake/parts.cmake)")
  endif()
  foreach(dep IN LISTS PART_DEPENDS)
    list(FIND DPTRAIN_PART_ORDER ${dep} dep_index)
    if(dep_index LESS 0 OR NOT dep_index LESS own_index)
      message(FATAL_ERROR "part ${name} may depend only on parts before it in DPTRAIN_PART_ORDER, not on ${dep}")
    endif()
  endforeach()

  list(TRANSFORM PART_SOURCES PREPEND "${PROJECT_SOURCE_DIR}/${dir}/")
  file(GLOB sources CONFIGURE_DEPENDS ${PART_SOURCES})
  add_library(dptrain_${name} STATIC ${sources})
  target_link_libraries(dptrain_${name} PUBLIC dptrain_settings)
  get_property(whole_parts GLOBAL PROPERTY DPTRAIN_WHOLE_ARCHIVE_PARTS)
  foreach(dep IN LISTS PART_DEPENDS)
    if(dep IN_LIST whole_parts)
      target_link_libraries(dptrain_${name} PUBLIC "$<LINK_LIBRARY:WHOLE_ARCHIVE,dptrain_${dep}>")
    else()
      target_link_libraries(dptrain_${name} PUBLIC dptrain_${dep})
    endif()
  endforeach()
  target_link_libraries(dptrain_${name} PUBLIC ${PART_LIBRARIES})
  target_compile_options(dptrain_${name} PRIVATE $<$<COMPILE_LANGUAGE:CXX>:${DPTRAIN_CXX_FLAGS}>)
  set_target_properties(dptrain_${name} PROPERTIES POSITION_INDEPENDENT_CODE ON)
  if(DPTRAIN_WITH_CUDA AND PART_CUDA_SOURCES)
    list(TRANSFORM PART_CUDA_SOURCES PREPEND "${PROJECT_SOURCE_DIR}/${dir}/")
    file(GLOB cuda_sources CONFIGURE_DEPENDS ${PART_CUDA_SOURCES})
    dptrain_add_cuda_sources(dptrain_${name} ${cuda_sources})
  endif()
  if(PART_WHOLE_ARCHIVE)
    set_property(GLOBAL APPEND PROPERTY DPTRAIN_WHOLE_ARCHIVE_PARTS ${name})
  endif()
endfunction()
