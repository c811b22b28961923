/*
 * The scheduler as its program (main.c) and the tests see it: open the
 * core (core.h), serve the two services (api.h, link.h) through rpc.h.
 * The layers behind it are described in docs/design.md, "The scheduler's
 * layers".
 */
#ifndef TROUPE_SCHEDULER_H
#define TROUPE_SCHEDULER_H

#include "api.h"
#include "link.h"
#include "rpc.h"
#include "core.h"

#endif
