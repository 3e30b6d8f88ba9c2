# frt-bench-gc-load: full collections under allocating threads (the TSan
# cost scenario, docs/benchmarks.md).
add_executable(frt-bench-gc-load ${CMAKE_CURRENT_LIST_DIR}/bench_gc_load.c)
target_compile_options(frt-bench-gc-load PRIVATE ${FRT_WARNINGS} -Wno-missing-prototypes)
target_link_libraries(frt-bench-gc-load PRIVATE frt_static Threads::Threads)
