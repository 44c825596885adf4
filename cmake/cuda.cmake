# Decides whether the CUDA backends are built, and finds the CUTLASS/CuTe
# headers for the Hopper backend.
#
# CUTLASS comes from the PyPI wheel nvidia-cutlass==4.2.0.0, whose folder
# cutlass_library/source/include holds the headers; scripts/deps.sh unpacks it
# into .deps/cutlass/include. Point GNA_CUTLASS_DIR elsewhere to override.
set(GNA_WITH_CUDA OFF)
set(GNA_WITH_SM90 OFF)
if(NOT GNA_CUDA STREQUAL "OFF")
  include(CheckLanguage)
  check_language(CUDA)
  if(CMAKE_CUDA_COMPILER)
    set(CMAKE_CUDA_ARCHITECTURES ${GNA_CUDA_ARCHS})
    enable_language(CUDA)
    find_package(CUDAToolkit REQUIRED)
    set(CMAKE_CUDA_STANDARD 17)
    set(CMAKE_CUDA_STANDARD_REQUIRED ON)
    set(GNA_WITH_CUDA ON)
  elseif(GNA_CUDA STREQUAL "ON")
    message(FATAL_ERROR "GNA_CUDA=ON but no CUDA compiler was found (put nvcc on PATH)")
  endif()
endif()

set(GNA_CUTLASS_DIR "${PROJECT_SOURCE_DIR}/.deps/cutlass/include" CACHE PATH
    "CUTLASS/CuTe include folder (cutlass_library/source/include of nvidia-cutlass==4.2.0.0)")
if(GNA_WITH_CUDA AND GNA_SM90)
  if(EXISTS "${GNA_CUTLASS_DIR}/cute/tensor.hpp")
    set(GNA_WITH_SM90 ON)
  else()
    message(WARNING "CUTLASS headers not found in GNA_CUTLASS_DIR=${GNA_CUTLASS_DIR}; "
                    "run scripts/deps.sh. Building without the sm90 backend.")
  endif()
endif()
message(STATUS "gna: CUDA backends ${GNA_WITH_CUDA}, sm90 backend ${GNA_WITH_SM90}")
