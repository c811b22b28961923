/*
 * Per-item logs (README, "Per-item logs"): the stderr each attempt of an
 * execution's items wrote, as the scheduler keeps it (GetLogs in
 * proto/api.proto), paged through for the caller.
 *
 * Synchronous, like every libtroupe call: one GetLogs request per page
 * on the calling thread, bounded by the client's timeout.
 */
#ifndef TROUPE_LOGS_H
#define TROUPE_LOGS_H

#include <stdint.h>

#include "api.pb-c.h"
#include "troupe/client.h"

/* Which logs: every item's (item < 0), or item's alone: every attempt
 * (attempt 0) or that one. */
typedef struct troupe_logs_query {
	const char *id;
	int64_t     item;
	uint32_t    attempt;
} troupe_logs_query;

/* Called with each log, by item then attempt.  log lives only during the
 * call.  Returns 0 to go on, non-zero to stop (troupe_logs_each returns
 * it). */
typedef int (*troupe_log_fn)(void *arg, const Troupe__ItemLog *log);

/* Pages through the logs q asks for, calling fn with each.  *attempts
 * (may be NULL) receives, with an item, the attempts it has started (so
 * the caller can tell its last one), set from each page before fn sees
 * that page's logs; *total (may be NULL) the execution's
 * items.  Returns 0, fn's non-zero return, or the call's TROUPE_E* (its
 * message in troupe_client_error(c): an unknown id, an item or attempt
 * that does not exist). */
int troupe_logs_each(troupe_client *c, const troupe_logs_query *q,
                     troupe_log_fn fn, void *arg, uint32_t *attempts,
                     uint64_t *total);

#endif
