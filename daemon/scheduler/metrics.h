/*
 * The scheduler's counters and histograms for Prometheus (README,
 * "Metrics and the HTTP listener"): a bottom-layer module that every
 * layer may call when it sees an event, and the text exposition format
 * (version 0.0.4) it is read in.  Gauges that are a view of the state
 * (executions by phase, workers, replicas) are not kept here: the HTTP
 * layer writes them at each scrape with metrics_head and metrics_sample.
 *
 * Series are found by family and label text through one hash table:
 * they are counted on every call and every item reported.
 *
 * Async contract: the scheduler's loop thread only (no locking).
 */
#ifndef TROUPE_SCHED_METRICS_H
#define TROUPE_SCHED_METRICS_H

#include <stddef.h>
#include <stdio.h>

/* The families kept here, in the order they are written. */
typedef enum metrics_id {
	M_API_REQUESTS,        /* counter {service,method,code} */
	M_ITEMS_FINISHED,      /* counter {task,outcome} */
	M_ATTEMPTS_FINISHED,   /* counter {task,state} */
	M_ITEM_SECONDS,        /* histogram {task} */
	M_SYSTEM_RETRIES,      /* counter {cause} */
	M_EXECS_FINISHED,      /* counter {phase} */
	M_REPLICA_STARTS,      /* counter {environment} */
	M_REPLICA_EXITS,       /* counter {environment,cause} */
	M_REPLICA_PROC_STARTS, /* counter {environment}, from the workers */
	M_REPLICA_PROC_EXITS,  /* counter {environment,cause}, from them */
	M_COMMIT_SECONDS,      /* histogram {} */
	M_COMMIT_BATCH,        /* histogram {} (executions per commit) */
	M_N_IDS
} metrics_id;

/* Adds by to a counter's series labels (e.g. "task=\"t\"", made with
 * metrics_labels; "" for none). */
void metrics_add(metrics_id id, const char *labels, double by);

/* Counts v into a histogram's series labels. */
void metrics_observe(metrics_id id, const char *labels, double v);

/* Writes into buf (len bytes, NUL-terminated, cut if too small) the label
 * pairs of the NULL-terminated list name1, value1, name2, value2, ...,
 * values escaped as the format says (\\, \", \n).  Returns buf. */
char *metrics_labels(char *buf, size_t len, ...);

/* A family's HELP and TYPE lines. */
void metrics_head(FILE *f, const char *name, const char *type,
                  const char *help);
/* One sample: name{labels} value ("" labels: none). */
void metrics_sample(FILE *f, const char *name, const char *labels, double v);

/* Writes every family kept here, then the process's own (resident memory,
 * CPU seconds, open files, start time) read from /proc/self. */
void metrics_write(FILE *f);

/* Forgets every series (the tests' scheduler restarts in one process). */
void metrics_reset(void);

#endif
