/*
 * The one-line progress display of `troupe map` on a terminal: done/total,
 * rate, ETA, redrawn in place on stderr.  Nothing is drawn when stderr is
 * not a terminal.
 */
#ifndef TROUPE_CLI_PROGRESS_H
#define TROUPE_CLI_PROGRESS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef struct cli_progress {
	FILE    *f;       /* NULL: draw nothing */
	double   t0;      /* when we started watching, seconds */
	uint64_t done0;   /* items already done then (rate counts from it) */
	int      started; /* t0/done0 are set */
	int      drawn;   /* a line is on screen */
} cli_progress;

/* Returns a monotonic clock in seconds. */
double cli_now(void);

/* Sets p up to draw on f when f is a terminal (else draws nothing). */
void cli_progress_init(cli_progress *p, FILE *f);

/* Writes the progress text into buf: "[####....] 45/100  12.3/s  ETA 4s"
 * plus the failed count when there are failures.  rate < 0: unknown. */
void cli_progress_format(char *buf, size_t len, uint64_t done, uint64_t total,
                         uint64_t failed, double rate, const char *phase);

/* Redraws the line for these counts. */
void cli_progress_update(cli_progress *p, uint64_t done, uint64_t total,
                         uint64_t failed, const char *phase);

/* Erases the line, if any. */
void cli_progress_clear(cli_progress *p);

#endif
