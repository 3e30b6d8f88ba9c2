/* The workload table. A new workload is one file, stress_wl_NAME.c, that
 * defines `const stress_workload stress_wl_NAME` (see stress.h for the
 * hooks; its .name is NAME with '-' for '_'), plus one line here.
 * stress/harness/stress.cmake builds every stress/harness/stress_*.c and reads the lines
 * of this table to make the CTest tests (one stress run per workload and
 * its two --inject-fault tests); `--workload all` is this table. */
#include "stress.h"

#include <string.h>

extern const stress_workload stress_wl_private, stress_wl_shared_read, stress_wl_shared_hot,
    stress_wl_shared_nohot, stress_wl_handoff,
    stress_wl_cycles, stress_wl_churn, stress_wl_mixed, stress_wl_weakref, stress_wl_locks,
    stress_wl_map;

const stress_workload *const stress_workloads[] = {
    &stress_wl_private,     /* each thread on its own objects: the owner's fast path */
    &stress_wl_shared_read, /* one hot object touched by every thread */
    &stress_wl_shared_hot,  /* the same, made hot (frt_make_hot) */
    &stress_wl_shared_nohot, /* the same, adaptive hot objects off */
    &stress_wl_handoff,     /* producer/consumer queues passing ownership */
    &stress_wl_cycles,      /* cyclic graphs built and dropped while collections run */
    &stress_wl_churn,       /* threads attaching and detaching, objects outliving them */
    &stress_wl_mixed,       /* a service-like blend of all of the above */
    &stress_wl_weakref,     /* a weak-value cache under churn */
    &stress_wl_locks,       /* nested critical sections, locking finalizers, blocking I/O */
    &stress_wl_map,         /* the concurrent map against a sequential model */
    NULL,
};

const stress_workload *stress_workload_find(const char *name)
{
    for (unsigned i = 0; stress_workloads[i]; i++)
        if (strcmp(stress_workloads[i]->name, name) == 0)
            return stress_workloads[i];
    return NULL;
}
