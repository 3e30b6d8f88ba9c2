# frt-bench-weakref: what weak references cost. frt_weakref_get (+ the
# decref of what it returns) against frt_incref+frt_decref on the same
# object in the same run, on the owner, on another thread and with N threads
# on one weakref; weakref creation; and an object's death with 0, 1 and 10
# weakrefs. A program that measures and prints; it asserts nothing.
# Self-contained (does not rely on the order in which fragments are read).
add_executable(frt-bench-weakref ${CMAKE_CURRENT_LIST_DIR}/bench_weakref.c)
target_compile_options(frt-bench-weakref PRIVATE ${FRT_WARNINGS} -Wno-missing-prototypes)
target_include_directories(frt-bench-weakref PRIVATE ${CMAKE_CURRENT_LIST_DIR})
target_link_libraries(frt-bench-weakref PRIVATE frt_static Threads::Threads)
