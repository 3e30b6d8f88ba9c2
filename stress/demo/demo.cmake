# frt-demo: the main job's program (.ci/demo runs it). It is also a test, so
# every preset, the sanitizer ones included, checks its invariants.
add_executable(frt-demo ${CMAKE_CURRENT_LIST_DIR}/demo.c)
target_link_libraries(frt-demo PRIVATE frt_static)
target_compile_options(frt-demo PRIVATE ${FRT_WARNINGS})
if(FRT_SANITIZER STREQUAL "thread")
  # TSan cannot run with this kernel's mmap randomisation (docs/api.md, "What you need").
  set_target_properties(frt-demo PROPERTIES CROSSCOMPILING_EMULATOR "setarch;-R")
endif()
# Half a second of exchange: enough to cross every path, short under TSan.
add_test(NAME frt_demo COMMAND frt-demo 0.5)
set_tests_properties(frt_demo PROPERTIES TIMEOUT 300)
