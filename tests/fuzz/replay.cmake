# Included by tests/CMakeLists.txt in the normal build: every fuzz target
# of tests/fuzz linked with replay.c instead of libFuzzer, and a ctest test
# fuzz_replay_NAME that runs its committed corpus (tests/fuzz/corpus/NAME:
# seeds and the inputs of crashes found) once under the build's sanitizers.
set(_fz_dir ${CMAKE_CURRENT_LIST_DIR})
file(GLOB _fz_srcs CONFIGURE_DEPENDS ${_fz_dir}/fuzz_*.c)
foreach(src ${_fz_srcs})
  get_filename_component(t ${src} NAME_WE)
  string(REGEX REPLACE "^fuzz_" "" name ${t})
  add_executable(replay_${name} ${src} ${_fz_dir}/replay.c)
  target_include_directories(replay_${name} PRIVATE ${_fz_dir})
  target_link_libraries(replay_${name} PRIVATE troupe_sched troupe_work troupe_cli ${CMAKE_DL_LIBS})
  add_test(NAME fuzz_replay_${name}
           COMMAND replay_${name} ${_fz_dir}/corpus/${name})
  set_tests_properties(fuzz_replay_${name} PROPERTIES LABELS unit TIMEOUT 120)
endforeach()
if(TARGET replay_worker)
  target_link_libraries(replay_worker PRIVATE troupe_daemon)
endif()
