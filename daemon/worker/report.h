/*
 * Building the ItemReport of one attempt (proto/link.proto): what the
 * runner fills in and the worker sends back.  Reports built here own every
 * field (none point into an unpacked message) and are freed only with
 * report_free.
 *
 * No state: plain functions, callable from any thread (the runner, the
 * pool and the outbox call them on the loop thread).
 */
#ifndef TROUPE_WORKER_REPORT_H
#define TROUPE_WORKER_REPORT_H

#include <stddef.h>
#include <stdint.h>

#include "link.pb-c.h"

/* Returns a new report for attempt `attempt` of item `index` of execution,
 * in state ITEM_FAILED with no output and an empty error, or NULL when out
 * of memory.  The caller owns it (report_free). */
Troupe__ItemReport *report_new(const char *execution, uint64_t index,
                               uint32_t attempt);

/* Frees rep and everything it holds.  Accepts NULL. */
void report_free(Troupe__ItemReport *rep);

/* Sets rep's error to a copy of text (n bytes), made valid UTF-8 (proto3
 * strings must be: invalid bytes become '?', a character cut at the start
 * is dropped).  Returns 0 or TROUPE_ENOMEM (rep keeps its old error). */
int report_set_error(Troupe__ItemReport *rep, const char *text, size_t n);

/* printf-style report_set_error. */
int report_errorf(Troupe__ItemReport *rep, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Marks rep FAILED because the worker could not run it (system_failure:
 * the attempt does not use up the task's retries) with a formatted
 * reason. */
int report_system_failure(Troupe__ItemReport *rep, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Moves the attempt's stderr log from l (logcap.h) into rep (empty when
 * nothing was written); l is emptied.  Out of memory loses the log, not
 * the report. */
struct logcap;
void report_take_log(Troupe__ItemReport *rep, struct logcap *l);

#endif
