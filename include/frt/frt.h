/* frt: a free-threaded object runtime for C.
 *
 * The one public include. Everything a user needs is declared here or in the
 * headers this file pulls in; the contract is docs/api.md. */
#ifndef FRT_FRT_H
#define FRT_FRT_H

#include <frt/config.h>
#include <frt/errors.h>
#include <frt/object.h>
#include <frt/lifecycle.h>
#include <frt/heap.h>
#include <frt/gc.h>
#include <frt/weakref.h>
#include <frt/ref.h>
#include <frt/map.h>
#include <frt/lock.h>

#endif
