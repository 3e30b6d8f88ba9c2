# CTest driver for kvserver_fuzz: a bounded libFuzzer run (200,000 inputs or
# 60 seconds, whichever comes first) over a scratch corpus seeded from
# fuzz_corpus/. New inputs the fuzzer finds go to the scratch copy only.
#   cmake -DFUZZER=<kv-fuzz-resp> -DSEEDS=<dir> -DWORK=<dir> -P run_fuzz.cmake
file(REMOVE_RECURSE ${WORK})
file(MAKE_DIRECTORY ${WORK})
execute_process(COMMAND ${FUZZER} -runs=200000 -max_total_time=60 -max_len=4096
                        -print_final_stats=1 ${WORK} ${SEEDS}
                RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "kv-fuzz-resp failed (exit ${rc}); the crashing input is in the working directory")
endif()
