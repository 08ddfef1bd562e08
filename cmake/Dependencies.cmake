# Finds every mandated dependency and fails with the Debian package to install
# when one is missing, so a newcomer never has to guess.
find_package(PkgConfig REQUIRED)

function(dmt_require_pkg prefix module apt)
  pkg_check_modules(${prefix} QUIET IMPORTED_TARGET GLOBAL ${module})
  if(NOT ${prefix}_FOUND)
    message(FATAL_ERROR "Missing dependency '${module}': install it with `apt-get install ${apt}`")
  endif()
endfunction()

dmt_require_pkg(OPENSSL     openssl        libssl-dev)
dmt_require_pkg(LIBPQ       libpq          libpq-dev)
dmt_require_pkg(MSGPACK     msgpack        libmsgpack-dev)
dmt_require_pkg(LWS         libwebsockets  libwebsockets-dev)
dmt_require_pkg(LIBJWT      libjwt         libjwt-dev)
dmt_require_pkg(JANSSON     jansson        libjansson-dev)
dmt_require_pkg(LIBXML2     libxml-2.0     libxml2-dev)
dmt_require_pkg(CMOCKA      cmocka         libcmocka-dev)

find_package(OpenSSL 3 REQUIRED)  # Paho's CMake config links OpenSSL::SSL
find_package(eclipse-paho-mqtt-c QUIET CONFIG)
if(NOT TARGET eclipse-paho-mqtt-c::paho-mqtt3as)
  message(FATAL_ERROR "Missing dependency 'Paho MQTT C (paho-mqtt3as)': install it with `apt-get install libpaho-mqtt-dev`")
endif()

find_path(MOSQUITTO_PLUGIN_INCLUDE_DIR mosquitto_plugin.h)
if(NOT MOSQUITTO_PLUGIN_INCLUDE_DIR)
  message(FATAL_ERROR "Missing dependency 'mosquitto_plugin.h': install it with `apt-get install mosquitto-dev libmosquitto-dev`")
endif()

find_program(MOSQUITTO_BIN mosquitto PATHS /usr/sbin)
if(NOT MOSQUITTO_BIN)
  message(FATAL_ERROR "Missing dependency 'mosquitto' broker: install it with `apt-get install mosquitto`")
endif()

find_package(Threads REQUIRED)

# libcurl (OpenSSL flavour): the Vault KV v2 client of the secret store and the
# broker plugin's JWKS fetcher; blocking HTTP with TLS verification, timeouts
# and proxies, where a hand-written client would be the risk.
dmt_require_pkg(CURL        libcurl        libcurl4-openssl-dev)

# libmosquitto: the MQTT v5 client the broker tenancy test drives the real broker with.
dmt_require_pkg(LIBMOSQUITTO libmosquitto  libmosquitto-dev)
