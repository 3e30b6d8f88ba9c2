# Installed variants of the library, built from the same sources beside the
# normal one, for users who check their own programs:
#   frt::frt_tsan  (libfrt-tsan, frt-tsan.pc)   instrumented for ThreadSanitizer:
#       a -fsanitize=thread program linked against the plain library gets
#       false race reports (TSan cannot see the library's synchronisation)
#   frt::frt_debug (libfrt-debug, frt-debug.pc) FRT_DEBUG=1: every detected
#       misuse aborts with one line; its own <frt/config.h> turns on the
#       checked inline paths in the user's code too
# Each also comes as <name>_static. Skipped in sanitizer builds (their flags
# would mix) and, for TSan, where the compiler cannot build it.
option(FRT_INSTALL_VARIANTS "Build and install the frt_tsan and frt_debug variants" ON)
if(NOT FRT_INSTALL_VARIANTS OR NOT "${FRT_SANITIZER}" STREQUAL "")
  return()
endif()

include(CheckCSourceCompiles)
set(CMAKE_REQUIRED_FLAGS -fsanitize=thread)
set(CMAKE_REQUIRED_LINK_OPTIONS -fsanitize=thread)
check_c_source_compiles("int main(void) { return 0; }" FRT_HAVE_TSAN)
unset(CMAKE_REQUIRED_FLAGS)
unset(CMAKE_REQUIRED_LINK_OPTIONS)

# frt_add_variant(<name> <suffix> CONFIG_DEBUG <0|1> [OPTIONS <flags>...])
# Shared and static libraries libfrt-<suffix>, targets frt::<name> and
# frt::<name>_static, and frt-<suffix>.pc. OPTIONS go on the library's
# compile and link lines and, through its interface, on its users'.
function(frt_add_variant name suffix)
  cmake_parse_arguments(V "" "CONFIG_DEBUG" "OPTIONS" ${ARGN})
  set(inc ${PROJECT_BINARY_DIR}/variants/${suffix}/include)
  # The variant's own config.h, found before the shared headers.
  set(FRT_DEBUG ${V_CONFIG_DEBUG})
  configure_file(${PROJECT_SOURCE_DIR}/include/frt/config.h.in ${inc}/frt/config.h @ONLY)
  add_library(${name}_objects OBJECT ${FRT_SOURCES})
  set_target_properties(${name}_objects PROPERTIES POSITION_INDEPENDENT_CODE ON
                        C_VISIBILITY_PRESET hidden)
  target_compile_options(${name}_objects PRIVATE ${FRT_WARNINGS} ${V_OPTIONS})
  target_include_directories(${name}_objects PRIVATE ${inc} ${PROJECT_SOURCE_DIR}/include)
  add_library(${name} SHARED $<TARGET_OBJECTS:${name}_objects>)
  add_library(${name}_static STATIC $<TARGET_OBJECTS:${name}_objects>)
  set_target_properties(${name} PROPERTIES OUTPUT_NAME frt-${suffix} VERSION ${PROJECT_VERSION}
                        SOVERSION ${PROJECT_VERSION_MAJOR})
  set_target_properties(${name}_static PROPERTIES OUTPUT_NAME frt-${suffix})
  foreach(t ${name} ${name}_static)
    target_include_directories(${t} PUBLIC
      $<BUILD_INTERFACE:${inc}> $<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}/include>
      $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}/frt-${suffix}>
      $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>)
    target_link_libraries(${t} PUBLIC Threads::Threads)
    target_compile_options(${t} INTERFACE ${V_OPTIONS})
    target_link_options(${t} PUBLIC ${V_OPTIONS})
    add_library(frt::${t} ALIAS ${t})
  endforeach()
  frt_link_urcu(${name} ${name}_static)
  install(FILES ${inc}/frt/config.h DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/frt-${suffix}/frt)
  install(TARGETS ${name} ${name}_static EXPORT frtTargets
          LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
          ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
          RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
  string(REPLACE ";" " " flags "${V_OPTIONS}")
  set(FRT_PC_NAME frt-${suffix})
  set(FRT_PC_DESC " (${name} variant)")
  set(FRT_PC_CFLAGS "-I\${includedir}/frt-${suffix} -I\${includedir} ${flags}")
  set(FRT_PC_LIBS "${flags} -lfrt-${suffix}")
  configure_file(${PROJECT_SOURCE_DIR}/cmake/frt.pc.in ${PROJECT_BINARY_DIR}/frt-${suffix}.pc @ONLY)
  install(FILES ${PROJECT_BINARY_DIR}/frt-${suffix}.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
endfunction()

frt_add_variant(frt_debug debug CONFIG_DEBUG 1)
if(FRT_HAVE_TSAN)
  frt_add_variant(frt_tsan tsan CONFIG_DEBUG ${FRT_DEBUG} OPTIONS -fsanitize=thread -fno-omit-frame-pointer)
else()
  message(STATUS "frt: ${CMAKE_C_COMPILER_ID} cannot build -fsanitize=thread: no frt_tsan variant")
endif()
