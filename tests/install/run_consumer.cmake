# cmake -P script run by CTest: installs this build into a fresh prefix, then
# configures, builds and runs tests/install/consumer against that prefix only
# (not the source or build tree), and runs the installed `gna --version`.
# Inputs (-D): BUILD_DIR, CONSUMER_SOURCE, WORK_DIR, GENERATOR, VERSION.
foreach(var BUILD_DIR CONSUMER_SOURCE WORK_DIR GENERATOR VERSION)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "run_consumer.cmake needs -D${var}=...")
  endif()
endforeach()

function(run what)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE status OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT status EQUAL 0)
    message(FATAL_ERROR "${what} failed (${status}):\n${out}\n${err}")
  endif()
  set(out "${out}" PARENT_SCOPE)
endfunction()

set(prefix ${WORK_DIR}/prefix)
set(build ${WORK_DIR}/build)
file(REMOVE_RECURSE ${WORK_DIR})

run("install" ${CMAKE_COMMAND} --install ${BUILD_DIR} --prefix ${prefix})
foreach(file include/gna/gna.hpp include/gna/version.hpp bin/gna)
  if(NOT EXISTS ${prefix}/${file})
    message(FATAL_ERROR "the install lacks ${file}")
  endif()
endforeach()

# CMAKE_FIND_USE_PACKAGE_REGISTRY off: only the prefix may provide gna.
run("configure the consumer" ${CMAKE_COMMAND} -S ${CONSUMER_SOURCE} -B ${build} -G ${GENERATOR}
    -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH=${prefix}
    -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF)
file(STRINGS ${build}/CMakeCache.txt gna_dir REGEX "^gna_DIR:")
if(NOT gna_dir MATCHES "${prefix}/")
  message(FATAL_ERROR "the consumer found gna outside the install prefix: ${gna_dir}")
endif()
run("build the consumer" ${CMAKE_COMMAND} --build ${build})
run("run the consumer" ${build}/consumer)
message(STATUS "${out}")

run("gna --version" ${prefix}/bin/gna --version)
if(NOT out STREQUAL "gna ${VERSION}\n")
  message(FATAL_ERROR "installed gna --version printed '${out}', expected 'gna ${VERSION}'")
endif()
