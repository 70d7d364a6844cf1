# Provides the imported target `boringssl` (libssl + libcrypto) and the string
# PORTIER_BORINGSSL_DESC that `portier -V` prints.
#
# Three sources, in order of preference:
#   -DBORINGSSL_ROOT=DIR          a self-built upstream BoringSSL: DIR/include and
#                                 libssl.a/libcrypto.a in DIR, DIR/lib or DIR/build
#   (default)                     Debian's source package, fetched once into the
#                                 build tree and compiled here without OPENSSL_SMALL
#   -DPORTIER_BORINGSSL_SYSTEM=ON Debian's binary package android-libboringssl-dev:
#                                 the slow OPENSSL_SMALL build, with a warning
# With the default, -DPORTIER_BORINGSSL_SOURCE=DIR names a copy of that source
# fetched already (DIR/BORINGSSL_REVISION): a package build, which must not
# download, compiles it as it is.

set(BORINGSSL_ROOT "" CACHE PATH "A self-built BoringSSL (include/ and libssl.a, libcrypto.a)")
option(PORTIER_BORINGSSL_SYSTEM "Use Debian's small (slow) android-libboringssl-dev" OFF)
set(PORTIER_BORINGSSL_SOURCE "" CACHE PATH "Debian's BoringSSL source, fetched already")

add_library(boringssl INTERFACE)

if(BORINGSSL_ROOT)
  find_path(_bssl_inc openssl/ssl.h PATHS "${BORINGSSL_ROOT}/include"
            NO_DEFAULT_PATH REQUIRED)
  foreach(_l ssl crypto)
    find_library(_bssl_${_l} NAMES lib${_l}.a ${_l}
                 PATHS "${BORINGSSL_ROOT}" "${BORINGSSL_ROOT}/lib"
                       "${BORINGSSL_ROOT}/build" "${BORINGSSL_ROOT}/build/${_l}"
                 NO_DEFAULT_PATH REQUIRED)
  endforeach()
  target_include_directories(boringssl SYSTEM INTERFACE "${_bssl_inc}")
  target_link_libraries(boringssl INTERFACE "${_bssl_ssl}" "${_bssl_crypto}" pthread stdc++)
  set(PORTIER_BORINGSSL_DESC "self-built BoringSSL from ${BORINGSSL_ROOT}")

elseif(PORTIER_BORINGSSL_SYSTEM)
  message(WARNING
    "PORTIER_BORINGSSL_SYSTEM=ON: linking Debian's android-libboringssl, which is "
    "built with OPENSSL_SMALL. ECDSA signing, and so every full handshake, is about "
    "3x slower. Use the default (Debian source, rebuilt) for anything but a quick try.")
  find_path(_bssl_inc openssl/ssl.h PATHS /usr/include/android NO_DEFAULT_PATH REQUIRED)
  find_library(_bssl_ssl NAMES ssl PATHS /usr/lib/${CMAKE_LIBRARY_ARCHITECTURE}/android
               NO_DEFAULT_PATH REQUIRED)
  find_library(_bssl_crypto NAMES crypto PATHS /usr/lib/${CMAKE_LIBRARY_ARCHITECTURE}/android
               NO_DEFAULT_PATH REQUIRED)
  target_include_directories(boringssl SYSTEM INTERFACE "${_bssl_inc}")
  target_link_libraries(boringssl INTERFACE "${_bssl_ssl}" "${_bssl_crypto}")
  set(PORTIER_BORINGSSL_DESC "Debian android-libboringssl (small build: OPENSSL_SMALL, slow)")
  set(PORTIER_BORINGSSL_SMALL 1)

else()
  set(_dir "${CMAKE_BINARY_DIR}/boringssl")
  if(PORTIER_BORINGSSL_SOURCE AND NOT EXISTS "${_dir}/src/BORINGSSL_REVISION")
    if(NOT EXISTS "${PORTIER_BORINGSSL_SOURCE}/BORINGSSL_REVISION")
      message(FATAL_ERROR "PORTIER_BORINGSSL_SOURCE=${PORTIER_BORINGSSL_SOURCE} holds no "
                          "BoringSSL source (no BORINGSSL_REVISION)")
    endif()
    file(MAKE_DIRECTORY "${_dir}")
    file(COPY "${PORTIER_BORINGSSL_SOURCE}/" DESTINATION "${_dir}/src")
  endif()
  if(NOT EXISTS "${_dir}/src/BORINGSSL_REVISION")
    message(STATUS "Fetching Debian's BoringSSL source package into ${_dir}")
    execute_process(COMMAND "${PROJECT_SOURCE_DIR}/scripts/fetch-boringssl" "${_dir}"
                    RESULT_VARIABLE _rc)
    if(NOT _rc EQUAL 0)
      message(FATAL_ERROR "Could not fetch BoringSSL's source. Pass -DBORINGSSL_ROOT=DIR "
                          "for a self-built one, or -DPORTIER_BORINGSSL_SYSTEM=ON.")
    endif()
  endif()
  file(READ "${_dir}/src/BORINGSSL_REVISION" _rev)
  string(STRIP "${_rev}" _rev)
  file(READ "${_dir}/src/DEBIAN_VERSION" _debver)
  string(STRIP "${_debver}" _debver)

  # android-sources.cmake prefixes every path with ${BORINGSSL_ROOT}; shadow the
  # (empty) cache entry with a normal variable for the include only.
  set(BORINGSSL_ROOT "${_dir}/src/")
  include("${_dir}/src/android-sources.cmake")
  unset(BORINGSSL_ROOT)

  set(_asm)
  if(CMAKE_SYSTEM_PROCESSOR MATCHES "^(x86_64|AMD64|amd64)$")
    set(_asm ${crypto_sources_linux_x86_64})
  elseif(CMAKE_SYSTEM_PROCESSOR MATCHES "^(aarch64|arm64)$")
    set(_asm ${crypto_sources_linux_aarch64})
  endif()
  if(_asm)
    enable_language(ASM)
  endif()

  add_library(bssl_crypto STATIC ${crypto_sources} ${_asm})
  add_library(bssl_ssl STATIC ${ssl_sources})
  foreach(_t bssl_crypto bssl_ssl)
    target_include_directories(${_t} PRIVATE "${_dir}/src/src/include" "${_dir}/src/src/crypto")
    target_compile_definitions(${_t} PRIVATE BORINGSSL_IMPLEMENTATION NDEBUG)
    if(NOT _asm)
      target_compile_definitions(${_t} PRIVATE OPENSSL_NO_ASM)
    endif()
    # Always optimised, whatever the build type: it is our crypto. -O3
    # makes the generic X25519 of this version 11 % faster (measured with
    # bench/cryptolimit), and X25519 is a third of a resumed handshake.
    target_compile_options(${_t} PRIVATE -O3 -fno-strict-aliasing -w
                           $<$<COMPILE_LANGUAGE:CXX>:-fno-exceptions -fno-rtti>)
    set_target_properties(${_t} PROPERTIES POSITION_INDEPENDENT_CODE ON
                          C_STANDARD 11 C_EXTENSIONS ON CXX_STANDARD 17)
  endforeach()
  target_link_libraries(bssl_ssl PUBLIC bssl_crypto)
  target_include_directories(boringssl SYSTEM INTERFACE "${_dir}/src/src/include")
  target_link_libraries(boringssl INTERFACE bssl_ssl bssl_crypto pthread)
  set(PORTIER_BORINGSSL_DESC "BoringSSL ${_rev} from Debian source ${_debver}, full build (no OPENSSL_SMALL)")
endif()
