# Read by cpack for each package it makes (CPACK_PROJECT_CONFIG_FILE):
# says when this build is not the one to ship.
if(CPACK_GENERATOR STREQUAL "DEB")
  if(CPACK_TROUPE_SANITIZE)
    message(WARNING "troupe: packaging a ${CPACK_TROUPE_SANITIZE} sanitizer "
            "build; ship a Release build (README, Installing the Debian package)")
  endif()
  if(NOT CPACK_TROUPE_INSTALL_PREFIX STREQUAL "/usr")
    message(STATUS "troupe: this build was configured for "
            "${CPACK_TROUPE_INSTALL_PREFIX}; the library goes to /usr/lib, "
            "not the multiarch directory (configure with -DCMAKE_INSTALL_PREFIX=/usr)")
  endif()
endif()
