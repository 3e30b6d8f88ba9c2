# frt-stress: the stress suites and the scaling harness (docs/stress.md).
#
# One program built twice from stress/harness/stress_*.c: frt-stress against
# frt_static (biased reference counting) and frt-stress-atomic against
# frt_rc_atomic (the same library sources with FRT_RC_ATOMIC_ONLY=1). Their
# libraries share symbol names, so they cannot share a process:
# `frt-stress --rc atomic|both` runs frt-stress-atomic from its own
# directory, one child process per case.
#
# Tests, in every preset (TSan, ASan+UBSan included):
#   stress_<workload>               every workload of the table in
#                                   stress_workloads.c, 4 threads, 1 s, both builds
#   stress_fault_<workload>_<fault> --inject-fault leak / extra-decref must make
#                                   that workload's own checks fail, in both builds
#   stress_plan, stress_usage, stress_outputs   placement, option errors, JSON/CSV/plots
#   test_stress_topology            (tests/) the placement function on synthetic topologies

set(FRT_STRESS_WORKLOAD_DIR ${CMAKE_CURRENT_SOURCE_DIR}/workloads)
file(GLOB FRT_STRESS_SOURCES CONFIGURE_DEPENDS ${CMAKE_CURRENT_LIST_DIR}/stress_*.c
     ${FRT_STRESS_WORKLOAD_DIR}/stress_*.c)

foreach(variant IN ITEMS brc atomic)
  if(variant STREQUAL "brc")
    set(target frt-stress)
    set(lib frt_static)
    set(atomic 0)
  else()
    set(target frt-stress-atomic)
    set(lib frt_rc_atomic)
    set(atomic 1)
  endif()
  add_executable(${target} ${FRT_STRESS_SOURCES})
  target_compile_options(${target} PRIVATE ${FRT_WARNINGS})
  target_compile_definitions(${target} PRIVATE _GNU_SOURCE STRESS_RC_ATOMIC=${atomic})
  # stress_stats.c shares the benchmarks' timing code (bench/bench_common.h).
  target_include_directories(${target} PRIVATE ${CMAKE_CURRENT_LIST_DIR} ${CMAKE_CURRENT_SOURCE_DIR}/bench)
  target_link_libraries(${target} PRIVATE ${lib} PkgConfig::HWLOC Threads::Threads m)
  if(FRT_SANITIZER STREQUAL "thread")
    # TSan cannot run with this kernel's mmap randomisation (docs/api.md, "What you need");
    # the personality is inherited by the cases' child processes.
    set_target_properties(${target} PROPERTIES CROSSCOMPILING_EMULATOR "setarch;-R")
  endif()
endforeach()
add_dependencies(frt-stress frt-stress-atomic)

# The placement function is tested on its own (tests/test_stress_topology.c,
# built by tests/CMakeLists.txt against frt_static only): give it the
# source and hwloc.
if(TARGET test_stress_topology)
  target_sources(test_stress_topology PRIVATE ${CMAKE_CURRENT_LIST_DIR}/stress_topology.c)
  target_link_libraries(test_stress_topology PRIVATE PkgConfig::HWLOC)
endif()

if(NOT FRT_BUILD_TESTS)
  return()
endif()

# The workloads, read from the table so that a new entry gets its tests.
set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS
             ${FRT_STRESS_WORKLOAD_DIR}/stress_workloads.c)
file(STRINGS ${FRT_STRESS_WORKLOAD_DIR}/stress_workloads.c FRT_STRESS_TABLE
     REGEX "^[ \t]*&stress_wl_[a-z0-9_]+,")
set(FRT_STRESS_WORKLOADS "")
foreach(line IN LISTS FRT_STRESS_TABLE)
  string(REGEX REPLACE "^[ \t]*&stress_wl_([a-z0-9_]+),.*" "\\1" id "${line}")
  list(APPEND FRT_STRESS_WORKLOADS ${id})
endforeach()

if(FRT_SANITIZER STREQUAL "thread")
  set(FRT_STRESS_EMU "setarch|-R")
else()
  set(FRT_STRESS_EMU "")
endif()

# A run that must fail: exit status non-zero, at least EXPECT cases
# reporting a failed invariant (one "reproduce:" line each), and nothing
# else failing first: no sanitizer report, no abort by the runtime's own
# misuse checks, no crash or hang. Arguments are '|'-separated.
set(FRT_STRESS_EXPECT_FAIL ${CMAKE_CURRENT_BINARY_DIR}/stress_expect_failure.cmake)
file(WRITE ${FRT_STRESS_EXPECT_FAIL} [=[
string(REPLACE "|" ";" emu "${EMU}")
string(REPLACE "|" ";" args "${ARGS}")
execute_process(COMMAND ${emu} ${PROG} ${args} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
message("${out}")
message("${err}")
if(rc EQUAL 0)
  message(FATAL_ERROR "expected the injected fault to be caught, but the run passed")
endif()
string(REGEX MATCHALL "frt-stress: reproduce:" caught "${err}")
list(LENGTH caught n)
if(n LESS EXPECT)
  message(FATAL_ERROR "expected ${EXPECT} cases to report INVARIANT FAILED, found ${n}")
endif()
if(err MATCHES "ThreadSanitizer|AddressSanitizer|UndefinedBehaviorSanitizer|LeakSanitizer|runtime error:|frt: misuse")
  message(FATAL_ERROR "something other than the workload's checks reported the fault")
endif()
if(err MATCHES "crashed|hung|no result|exit [0-9]")
  message(FATAL_ERROR "a case crashed or hung instead of failing its checks")
endif()
]=])

foreach(id IN LISTS FRT_STRESS_WORKLOADS)
  string(REPLACE "_" "-" name "${id}")
  # About two seconds (two cases of 1 s): every workload, both builds, in
  # every preset. A failure prints its seed and the command that reproduces it.
  add_test(NAME stress_${id}
           COMMAND frt-stress --workload ${name} --threads 4 --duration 1 --rc both --pin scatter)
  set_tests_properties(stress_${id} PROPERTIES TIMEOUT 300)
  foreach(fault IN ITEMS leak extra-decref)
    string(REPLACE "-" "_" fid "${fault}")
    add_test(NAME stress_fault_${id}_${fid}
             COMMAND ${CMAKE_COMMAND} "-DEMU=${FRT_STRESS_EMU}" "-DPROG=$<TARGET_FILE:frt-stress>"
                     "-DARGS=--workload|${name}|--threads|2|--duration|0.3|--rc|both|--inject-fault|${fault}"
                     -DEXPECT=2 -P ${FRT_STRESS_EXPECT_FAIL})
    set_tests_properties(stress_fault_${id}_${fid} PROPERTIES TIMEOUT 300)
  endforeach()
endforeach()

# The placement on a 4-NUMA-node, 128-PU synthetic host, as printed: scatter
# puts threads 0..3 on PUs 0, 64, 32, 96 (packages 0 1 0 1, nodes 0 2 1 3).
add_test(NAME stress_plan
         COMMAND frt-stress --plan --pin scatter --threads 4 --topology "pack:2 numa:2 core:16 pu:2")
set_tests_properties(stress_plan PROPERTIES TIMEOUT 60 PASS_REGULAR_EXPRESSION
  "#[ ]+0[ ]+0/0[ ]+0[ ]+0[ ]+0[ ]+0\n#[ ]+1[ ]+64/64[ ]+32[ ]+1[ ]+2[ ]+64\n#[ ]+2[ ]+32/32[ ]+16[ ]+0[ ]+1[ ]+32\n#[ ]+3[ ]+96/96[ ]+48[ ]+1[ ]+3[ ]+96\n")

add_test(NAME stress_usage COMMAND frt-stress --workload nosuch)
set_tests_properties(stress_usage PROPERTIES TIMEOUT 60
  PASS_REGULAR_EXPRESSION "unknown workload 'nosuch'")

# A tiny sweep with every output: the JSON parses and holds every case, the
# CSV has a row per case, and the plots exist where gnuplot is installed.
set(FRT_STRESS_OUTPUTS_CHECK ${CMAKE_CURRENT_BINARY_DIR}/stress_outputs_check.cmake)
file(WRITE ${FRT_STRESS_OUTPUTS_CHECK} [=[
string(REPLACE "|" ";" emu "${EMU}")
file(REMOVE_RECURSE ${DIR})
file(MAKE_DIRECTORY ${DIR})
execute_process(COMMAND ${emu} ${PROG} --workload private,handoff --threads 1,2 --duration 0.2
                        --rc both --seeds 2 --json ${DIR}/r.json --csv ${DIR}/r.csv --plot ${DIR}/plots
                        --report ${DIR}/report.txt
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
message("${out}${err}")
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "the sweep failed (${rc})")
endif()
file(READ ${DIR}/r.json json)
string(JSON n LENGTH "${json}" results)
if(NOT n EQUAL 8)
  message(FATAL_ERROR "r.json has ${n} results, expected 8")
endif()
math(EXPR last "${n} - 1")
foreach(i RANGE ${last})
  string(JSON status GET "${json}" results ${i} status)
  string(JSON ops GET "${json}" results ${i} ops)
  if(NOT status STREQUAL "ok" OR ops LESS_EQUAL 0)
    message(FATAL_ERROR "result ${i}: status ${status}, ops ${ops}")
  endif()
endforeach()
string(JSON eff GET "${json}" results 0 efficiency)
string(JSON ratio GET "${json}" results 0 brc_over_atomic)
string(JSON ratio_cpu GET "${json}" results 0 brc_over_atomic_cpu)
string(JSON seeds GET "${json}" results 0 seeds)
if(NOT eff EQUAL 1 OR ratio STREQUAL "" OR ratio STREQUAL "NOTFOUND" OR ratio_cpu STREQUAL ""
   OR NOT seeds EQUAL 2)
  message(FATAL_ERROR "derived fields missing: efficiency ${eff}, brc_over_atomic ${ratio}, "
                      "brc_over_atomic_cpu ${ratio_cpu}, seeds ${seeds}")
endif()
file(STRINGS ${DIR}/r.csv rows)
list(LENGTH rows nrows)
if(NOT nrows EQUAL 9)
  message(FATAL_ERROR "r.csv has ${nrows} lines, expected a header and 8 rows")
endif()
file(READ ${DIR}/report.txt report)
if(NOT report MATCHES "brc/atomic" OR NOT report MATCHES "8 cases, 0 failed"
   OR NOT report MATCHES "median over 2 seeds")
  message(FATAL_ERROR "report.txt lacks the tables or the --seeds note")
endif()
find_program(GNUPLOT gnuplot)
if(GNUPLOT)
  foreach(f throughput.png throughput.svg efficiency.png efficiency.svg brc_over_atomic.png brc_over_atomic.svg)
    if(NOT EXISTS ${DIR}/plots/${f})
      message(FATAL_ERROR "plot ${f} was not written")
    endif()
  endforeach()
elseif(NOT out MATCHES "gnuplot is not installed")
  message(FATAL_ERROR "no gnuplot, and the sweep did not say so")
endif()
]=])
add_test(NAME stress_outputs
         COMMAND ${CMAKE_COMMAND} "-DEMU=${FRT_STRESS_EMU}" "-DPROG=$<TARGET_FILE:frt-stress>"
                 -DDIR=${CMAKE_CURRENT_BINARY_DIR}/stress-outputs-test -P ${FRT_STRESS_OUTPUTS_CHECK})
set_tests_properties(stress_outputs PROPERTIES TIMEOUT 300)
