# The Debian package: `cpack -G DEB` in a build directory (or `cmake
# --build BUILD --target package`) makes troupe_VERSION_ARCH.deb from
# every install() rule of the project, so whatever a part installs lands
# in the package with no change here.  Included by the top-level
# CMakeLists.txt after every subdirectory.
#
# The prefix is /usr whatever CMAKE_INSTALL_PREFIX says; files that name
# an installed path (the systemd units, troupe.pc) get it at install time.
# Configure the packaging build with -DCMAKE_INSTALL_PREFIX=/usr so that
# the library lands in Debian's multiarch directory (GNUInstallDirs picks
# lib/<triplet> only for /usr), and package a Release build: a sanitizer
# build makes a working package that needs libasan (see the README).
#
# Depends: dpkg-shlibdeps computes the libraries' packages from what the
# binaries really link.  A part that installs something else the package
# needs at run time (the Python SDK: python3, python3-protobuf) appends
# the Debian package names where it is defined:
#   set_property(GLOBAL APPEND PROPERTY TROUPE_DEB_DEPENDS python3 ...)
# tests/package/test_deb.sh fails when the package holds Python modules
# and Depends has no python3.
set(TROUPE_DEB_MAINTAINER "troupe maintainers <maintainers@troupe.invalid>"
    CACHE STRING "Maintainer field of the Debian package")

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME troupe)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT "${TROUPE_DEB_MAINTAINER}")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "map-task runner: a scheduler, workers, a CLI and a C client")
set(CPACK_DEBIAN_PACKAGE_DESCRIPTION "troupe runs map tasks, one command applied to every item of a list,
across worker daemons on one or many hosts.  troupe-scheduler keeps every
execution in SQLite and places items on workers; troupe-worker runs each
item as its own process or hands it to warm actor replicas; troupe is the
command line and libtroupe the C client library.
.
This package holds the three programs, libtroupe with its headers and
pkg-config file, the systemd units (not enabled on install), the system
users (sysusers.d), man pages and bash completion.")
set(CPACK_DEBIAN_PACKAGE_SECTION admin)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_COMPRESSION_TYPE xz)
# Install with DESTDIR, so that CMAKE_INSTALL_PREFIX is /usr itself while
# install(CODE) rules run (the units name ${CMAKE_INSTALL_PREFIX}/bin).
set(CPACK_SET_DESTDIR ON)
set(CPACK_INSTALL_PREFIX /usr)
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
# libtroupe.so.0: a shlibs file for packages built against it, and the
# ldconfig trigger.
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS ON)
get_property(_troupe_deb_depends GLOBAL PROPERTY TROUPE_DEB_DEPENDS)
if(_troupe_deb_depends)
  list(REMOVE_DUPLICATES _troupe_deb_depends)
  string(REPLACE ";" ", " CPACK_DEBIAN_PACKAGE_DEPENDS "${_troupe_deb_depends}")
endif()
# Building against libtroupe: its headers include nng's and protobuf-c's.
set(CPACK_DEBIAN_PACKAGE_SUGGESTS "libnng-dev, libprotobuf-c-dev, pkgconf")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    ${CMAKE_CURRENT_LIST_DIR}/deb/postinst
    ${CMAKE_CURRENT_LIST_DIR}/deb/prerm
    ${CMAKE_CURRENT_LIST_DIR}/deb/postrm)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION TRUE)
# Read by cpack: warns when packaging a sanitizer build or a prefix that
# is not /usr.
set(CPACK_TROUPE_SANITIZE "${TROUPE_SANITIZE}")
set(CPACK_TROUPE_INSTALL_PREFIX "${CMAKE_INSTALL_PREFIX}")
set(CPACK_PROJECT_CONFIG_FILE ${CMAKE_CURRENT_LIST_DIR}/cpack_project.cmake)
include(CPack)

# The package's test: builds it from this build directory with cpack,
# unpacks it into a scratch root and checks what a user would.
if(NOT TROUPE_FUZZ)
  string(REPLACE ";" "," _troupe_san "${TROUPE_SANITIZE}")
  add_test(NAME package_deb
           COMMAND /bin/bash ${PROJECT_SOURCE_DIR}/tests/package/test_deb.sh)
  set_tests_properties(package_deb PROPERTIES TIMEOUT 180 LABELS package
    SKIP_RETURN_CODE 77
    # cpack writes _CPack_Packages in the build directory: no other test
    # may package at the same time.
    RESOURCE_LOCK cpack
    ENVIRONMENT "TROUPE_BUILD_DIR=${PROJECT_BINARY_DIR};TROUPE_SOURCE_DIR=${PROJECT_SOURCE_DIR};TROUPE_SANITIZE=${_troupe_san};CC=${CMAKE_C_COMPILER};CPACK=${CMAKE_CPACK_COMMAND}")
endif()
