# frt-bench-gc: the cycle collector against CPython's gc and the Boehm GC.
# One invocation runs all three: frt in-process, CPython (the system python3
# running stress/bench/bench_gc_cpython.py) and Boehm (frt-bench-gc-boehm, next to
# frt-bench-gc) as child processes driven over pipes, their repetitions
# interleaved with frt's. Method and figures: docs/benchmarks.md.

add_executable(frt-bench-gc ${CMAKE_CURRENT_LIST_DIR}/bench_gc.c)
frt_bench_target(frt-bench-gc)
target_link_libraries(frt-bench-gc PRIVATE frt_static)
target_compile_definitions(frt-bench-gc PRIVATE
  "BENCH_GC_PY=\"${CMAKE_CURRENT_LIST_DIR}/bench_gc_cpython.py\"")

# Boehm GC (Debian libgc-dev, pkg-config bdw-gc). Optional: without it
# frt-bench-gc says the baseline is missing and runs the rest.
# Not under a sanitizer: libgc scans and stops threads in ways the
# sanitizers' runtimes do not expect, and the figures would mean nothing.
pkg_check_modules(BDWGC QUIET IMPORTED_TARGET bdw-gc)
if(BDWGC_FOUND AND NOT FRT_SANITIZER)
  add_executable(frt-bench-gc-boehm ${CMAKE_CURRENT_LIST_DIR}/bench_gc_boehm.c)
  target_compile_options(frt-bench-gc-boehm PRIVATE ${FRT_WARNINGS} -Wno-missing-prototypes)
  target_link_libraries(frt-bench-gc-boehm PRIVATE PkgConfig::BDWGC)
  add_dependencies(frt-bench-gc frt-bench-gc-boehm)
  target_compile_definitions(frt-bench-gc PRIVATE BENCH_GC_HAVE_BOEHM=1)
elseif(FRT_SANITIZER)
  message(STATUS "frt-bench-gc: sanitizer build; the Boehm GC baseline is not built")
else()
  message(STATUS "frt-bench-gc: libgc (pkg-config bdw-gc) not found; the Boehm GC baseline is skipped")
endif()

# A seconds-long smoke run of the whole program (tiny graphs, all three
# sections, CPython included when python3 is there): it checks that the
# benchmark and the collector paths it drives work, not the figures.
if(FRT_BUILD_TESTS)
  add_test(NAME frt-bench-gc-quick COMMAND frt-bench-gc --quick)
  set_tests_properties(frt-bench-gc-quick PROPERTIES TIMEOUT 300 LABELS bench)
  if(FRT_SANITIZER STREQUAL "thread")
    # As tests/CMakeLists.txt: TSan needs mmap randomisation off here.
    set_target_properties(frt-bench-gc PROPERTIES CROSSCOMPILING_EMULATOR "setarch;-R")
  endif()
endif()
