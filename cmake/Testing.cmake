# Test registration helpers. Three kinds of test, each a ctest label:
#   unit         pure code, no services (cmocka)
#   integration  talks to the real Mosquitto/PostgreSQL that `./dmt test` starts;
#                skips (exit 77) when DMT_TEST_MQTT_URL / DMT_TEST_PG_DSN are unset
#   fuzz         every fuzz target replayed over its committed corpus, so each crash
#                ever found stays a regression test even in non-fuzz builds

# dmt_unit_test(<name> SOURCES <files...> [LIBS <libs...>])
function(dmt_unit_test name)
  cmake_parse_arguments(T "" "" "SOURCES;LIBS" ${ARGN})
  add_executable(${name} ${T_SOURCES})
  target_link_libraries(${name} PRIVATE dmt_common PkgConfig::CMOCKA ${T_LIBS})
  add_test(NAME ${name} COMMAND ${name})
  set_tests_properties(${name} PROPERTIES LABELS unit TIMEOUT 120)
endfunction()

# dmt_integration_test(<name> SOURCES <files...> [LIBS <libs...>] [TIMEOUT s])
function(dmt_integration_test name)
  cmake_parse_arguments(T "" "TIMEOUT" "SOURCES;LIBS" ${ARGN})
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 300)
  endif()
  add_executable(${name} ${T_SOURCES})
  # Paths built from nested fixtures trip GCC's truncation heuristics; tests size their buffers generously.
  target_compile_options(${name} PRIVATE -Wno-format-truncation)
  target_link_libraries(${name} PRIVATE dmt_test_harness dmt_common PkgConfig::CMOCKA ${T_LIBS})
  add_test(NAME ${name} COMMAND ${name})
  set_tests_properties(${name} PROPERTIES LABELS integration TIMEOUT ${T_TIMEOUT}
                       SKIP_RETURN_CODE 77 RUN_SERIAL TRUE)
endfunction()

# dmt_fuzz_target(<name> SOURCES <files...> [LIBS <libs...>])
# Corpus: tests/fuzz/corpus/<name>/ (seeds and minimised crashes, committed).
function(dmt_fuzz_target name)
  cmake_parse_arguments(T "" "" "SOURCES;LIBS" ${ARGN})
  set(corpus ${CMAKE_SOURCE_DIR}/tests/fuzz/corpus/${name})
  if(DMT_FUZZ)
    add_executable(${name} ${T_SOURCES})
    target_link_options(${name} PRIVATE -fsanitize=fuzzer)
    target_link_libraries(${name} PRIVATE dmt_common ${T_LIBS})
  else()
    add_executable(${name}_regress ${T_SOURCES} ${CMAKE_SOURCE_DIR}/tests/fuzz/replay_main.c)
    target_link_libraries(${name}_regress PRIVATE dmt_common ${T_LIBS})
    add_test(NAME ${name}_regress COMMAND ${name}_regress ${corpus})
    set_tests_properties(${name}_regress PROPERTIES LABELS fuzz TIMEOUT 300)
  endif()
endfunction()
