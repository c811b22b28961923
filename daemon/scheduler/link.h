/*
 * The worker link service (link.proto's WorkerLink), served by rpc.c on
 * the worker listener.  See link.c.
 */
#ifndef TROUPE_SCHED_LINK_H
#define TROUPE_SCHED_LINK_H

#include "rpc.h"
#include "core.h"

/* The service for rpc_server_open, bound to s (static storage: one per
 * process, rebound by each call). */
const rpc_service *link_service(sched *s);

#endif
