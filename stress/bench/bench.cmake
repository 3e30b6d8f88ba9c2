# Benchmarks: frt-bench-alloc, frt-bench-brc (+ frt-bench-brc-atomic), frt-bench-stw.
# Programs that measure and print; they assert nothing (tests/ does that).
# Method and latest figures: docs/benchmarks.md.

# mimalloc: Debian's libmimalloc-dev ships a CMake config with the target
# `mimalloc`. Its shared library exports unprefixed malloc/free, so linking
# it would replace glibc's malloc for the whole process and the "glibc"
# column would silently be mimalloc. frt-bench-alloc therefore takes only the
# library's location from the target and dlopen()s it RTLD_LOCAL, calling
# mi_malloc/mi_free through dlsym (as it does jemalloc's mallocx/dallocx).
find_package(mimalloc CONFIG QUIET)
if(TARGET mimalloc)
  set(FRT_BENCH_MIMALLOC_LIB "$<TARGET_FILE:mimalloc>")
else()
  message(STATUS "frt benchmarks: mimalloc CMake package not found; frt-bench-alloc will try libmimalloc.so.2")
  set(FRT_BENCH_MIMALLOC_LIB "libmimalloc.so.2")
endif()

function(frt_bench_target name)
  target_compile_options(${name} PRIVATE ${FRT_WARNINGS} -Wno-missing-prototypes)
  target_include_directories(${name} PRIVATE ${CMAKE_CURRENT_LIST_DIR})
  target_link_libraries(${name} PRIVATE Threads::Threads ${CMAKE_DL_LIBS})
endfunction()

add_executable(frt-bench-alloc ${CMAKE_CURRENT_LIST_DIR}/bench_alloc.c)
frt_bench_target(frt-bench-alloc)
target_link_libraries(frt-bench-alloc PRIVATE frt_static)
target_compile_definitions(frt-bench-alloc PRIVATE
  "BENCH_MIMALLOC_LIB=\"${FRT_BENCH_MIMALLOC_LIB}\"")
# A short run of the cross-thread rows with the threads pinned apart
# (--xplace): it checks that the program gets through, not the figures.
if(FRT_BUILD_TESTS)
  add_test(NAME frt-bench-alloc-xthread
    COMMAND frt-bench-alloc --quick --reps 1 --only xthread --xplace apart)
  set_tests_properties(frt-bench-alloc-xthread PROPERTIES TIMEOUT 300 LABELS bench)
  if(FRT_SANITIZER STREQUAL "thread")
    set_target_properties(frt-bench-alloc PROPERTIES CROSSCOMPILING_EMULATOR "setarch;-R")
  endif()
endif()

# Biased reference counting against atomic counting. The same source is
# built twice: against frt_static (BRC) and against frt_rc_atomic, the same
# library sources compiled with FRT_RC_ATOMIC_ONLY=1 (every object starts
# merged, every count atomic). The two libraries share their symbol names,
# so they cannot live in one process: frt-bench-brc runs its sibling
# frt-bench-brc-atomic (next to it) for the mixed workload and prints both.
add_executable(frt-bench-brc ${CMAKE_CURRENT_LIST_DIR}/bench_brc.c)
frt_bench_target(frt-bench-brc)
target_link_libraries(frt-bench-brc PRIVATE frt_static)

add_executable(frt-bench-brc-atomic ${CMAKE_CURRENT_LIST_DIR}/bench_brc.c)
frt_bench_target(frt-bench-brc-atomic)
target_link_libraries(frt-bench-brc-atomic PRIVATE frt_rc_atomic)
target_compile_definitions(frt-bench-brc-atomic PRIVATE FRT_BENCH_ATOMIC=1)
add_dependencies(frt-bench-brc frt-bench-brc-atomic)
# A short run of the hot-object rows (section f at 1-3 threads): adaptive
# promotion stops the world while the threads run and wait at barriers;
# it checks that the program gets through, not the figures.
if(FRT_BUILD_TESTS)
  add_test(NAME frt-bench-brc-hot COMMAND frt-bench-brc --quick --reps 1 --only f --threads 1,2,3)
  set_tests_properties(frt-bench-brc-hot PROPERTIES TIMEOUT 300 LABELS bench)
  if(FRT_SANITIZER STREQUAL "thread")
    set_target_properties(frt-bench-brc PROPERTIES CROSSCOMPILING_EMULATOR "setarch;-R")
  endif()
endif()

# The owner pair through the shared library (what `pkg-config --libs frt`
# links): the same source against libfrt.so, run by frt-bench-brc for
# section a, which prints both.
add_executable(frt-bench-brc-shared ${CMAKE_CURRENT_LIST_DIR}/bench_brc.c)
frt_bench_target(frt-bench-brc-shared)
target_link_libraries(frt-bench-brc-shared PRIVATE frt)
target_compile_definitions(frt-bench-brc-shared PRIVATE FRT_BENCH_SHARED=1)
add_dependencies(frt-bench-brc frt-bench-brc-shared)

# Fixed loops for an instruction counter (valgrind callgrind): exact
# per-operation costs whatever the machine's load, static and shared.
foreach(lib IN ITEMS frt_static frt)
  set(name frt-bench-instructions)
  if(lib STREQUAL "frt")
    set(name frt-bench-instructions-shared)
  endif()
  add_executable(${name} ${CMAKE_CURRENT_LIST_DIR}/bench_instructions.c)
  frt_bench_target(${name})
  target_link_libraries(${name} PRIVATE ${lib})
endforeach()

add_executable(frt-bench-stw ${CMAKE_CURRENT_LIST_DIR}/bench_stw.c)
frt_bench_target(frt-bench-stw)
target_link_libraries(frt-bench-stw PRIVATE frt_static)
