# frt-bench-share: sharing mutable objects (locks, critical sections, and
# the rows of every other stress/bench/bench_share*.c file, which register
# themselves). Figures: docs/benchmarks.md.
file(GLOB FRT_BENCH_SHARE_SOURCES CONFIGURE_DEPENDS ${CMAKE_CURRENT_LIST_DIR}/bench_share*.c)
add_executable(frt-bench-share ${FRT_BENCH_SHARE_SOURCES})
frt_bench_target(frt-bench-share)
target_link_libraries(frt-bench-share PRIVATE frt_static)

# A smoke run (one repetition of each row): the rows work, not the figures.
if(FRT_BUILD_TESTS)
  add_test(NAME frt-bench-share-quick COMMAND frt-bench-share --quick --reps 1)
  set_tests_properties(frt-bench-share-quick PROPERTIES TIMEOUT 300 LABELS bench)
  if(FRT_SANITIZER STREQUAL "thread")
    set_target_properties(frt-bench-share PROPERTIES CROSSCOMPILING_EMULATOR "setarch;-R")
  endif()
endif()
