/* What frt_shutdown says about the objects still alive. */
#ifndef FRT_RUNTIME_LEAK_REPORT_H
#define FRT_RUNTIME_LEAK_REPORT_H

#include <stddef.h>

/* Count the objects still allocated (immortal ones aside) and, in a debug
 * build or with FRT_LEAKS=1 in the environment (FRT_LEAKS=0: never), list
 * them on stderr grouped by type. With a single thread left. */
size_t frt__leaks_report(void);

#endif
