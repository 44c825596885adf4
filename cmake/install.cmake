# `cmake --install build --prefix P` installs the headers, libgna, the `gna`
# tool and a CMake package, so that another project can do
#   find_package(gna 0.1 REQUIRED)
#   target_link_libraries(app PRIVATE gna::gna)
# (tests/install builds such a project against an installed copy). The
# Python wheel installs only its own component and takes none of this.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)
set(GNA_INSTALL_CMAKEDIR ${CMAKE_INSTALL_LIBDIR}/cmake/gna)

install(TARGETS gna EXPORT gnaTargets
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
        INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(DIRECTORY ${PROJECT_SOURCE_DIR}/include/gna DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
if(TARGET gna_cli)
  install(TARGETS gna_cli RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
endif()

install(EXPORT gnaTargets NAMESPACE gna:: DESTINATION ${GNA_INSTALL_CMAKEDIR})
configure_package_config_file(${CMAKE_CURRENT_LIST_DIR}/gnaConfig.cmake.in
                              ${PROJECT_BINARY_DIR}/gnaConfig.cmake
                              INSTALL_DESTINATION ${GNA_INSTALL_CMAKEDIR})
# 0.x: a new minor version may change the API, so only patch releases match.
write_basic_package_version_file(${PROJECT_BINARY_DIR}/gnaConfigVersion.cmake
                                 COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/gnaConfig.cmake ${PROJECT_BINARY_DIR}/gnaConfigVersion.cmake
        DESTINATION ${GNA_INSTALL_CMAKEDIR})
