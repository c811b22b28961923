/*
 * The scheduler's counters and histograms, and the text exposition
 * format (see metrics.h for the contract).
 */
#include <assert.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fnv.h"
#include "metrics.h"

#define M_MAX_BUCKETS 16
#define M_TABLE_SIZE  1024 /* hash chains; a power of two */

typedef struct m_series {
	struct m_series *next;  /* the family's, in the order written */
	struct m_series *hnext; /* the hash chain's */
	unsigned         hash;
	metrics_id       id;
	double           value; /* a counter's; a histogram's sum */
	double           count; /* a histogram's */
	double           buckets[M_MAX_BUCKETS];
	char             labels[];
} m_series;

typedef struct m_family {
	const char  *name; /* a counter's without _total */
	const char  *help;
	bool         histogram;
	const double bounds[M_MAX_BUCKETS]; /* ascending, then zeros */
	size_t       n_bounds;
} m_family;

/* Item and commit durations: 1 ms to 1 h, and 1 to 4096 executions. */
#define M_SECONDS_BOUNDS                               \
	{                                              \
	    0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1,     \
	    5,     10,    30,   60,   300, 900, 3600}, \
	    14
#define M_COMMIT_BOUNDS                                   \
	{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, \
	 0.1,    0.25,  0.5,    1,     2.5,  5},          \
	    13
#define M_BATCH_BOUNDS {1, 2, 4, 8, 16, 32, 64, 128, 256, 1024, 4096}, 11

static const m_family m_families[M_N_IDS] = {
    [M_API_REQUESTS] = {"troupe_api_requests",
                        "Calls answered, by service, method and reply code "
                        "(the nng sockets and POST /api).",
                        false,
                        {0},
                        0},
    [M_ITEMS_FINISHED] = {"troupe_items_finished",
                          "Items that reached a final state, by task and "
                          "outcome (succeeded, failed, cancelled).",
                          false,
                          {0},
                          0},
    [M_ATTEMPTS_FINISHED] = {"troupe_attempts_finished",
                             "Attempts that ended, by task and how "
                             "(succeeded, failed, lost, cancelled).",
                             false,
                             {0},
                             0},
    [M_ITEM_SECONDS] = {"troupe_item_duration_seconds",
                        "Wall time of each item's last attempt, from "
                        "dispatch to its report, by task.",
                        true, M_SECONDS_BOUNDS},
    [M_SYSTEM_RETRIES] = {"troupe_system_retries",
                          "Attempts retried for the system's sake (not "
                          "counted against the user's retries), by cause.",
                          false,
                          {0},
                          0},
    [M_EXECS_FINISHED] = {"troupe_executions_finished",
                          "Executions that ended since the scheduler "
                          "started, by final phase.",
                          false,
                          {0},
                          0},
    [M_REPLICA_STARTS] = {"troupe_replica_starts",
                          "Actor replicas the scheduler placed on workers, "
                          "by environment.",
                          false,
                          {0},
                          0},
    [M_REPLICA_EXITS] = {"troupe_replica_exits",
                         "Actor replicas gone as the scheduler sees them, "
                         "by environment and cause (stopped, exited, "
                         "worker_lost).",
                         false,
                         {0},
                         0},
    [M_REPLICA_PROC_STARTS] = {"troupe_replica_processes_started",
                               "Replica processes the workers started "
                               "(restarts in place included), by "
                               "environment.",
                               false,
                               {0},
                               0},
    [M_REPLICA_PROC_EXITS] = {"troupe_replica_processes_exited",
                              "Replica processes that exited on the "
                              "workers, by environment and cause (ttl, "
                              "recycled, crashed, stopped).",
                              false,
                              {0},
                              0},
    [M_COMMIT_SECONDS] = {"troupe_commit_duration_seconds",
                          "Wall time of each group commit to SQLite.", true,
                          M_COMMIT_BOUNDS},
    [M_COMMIT_BATCH] = {"troupe_commit_batch_executions",
                        "Executions written by each group commit.", true,
                        M_BATCH_BOUNDS},
};

static m_series *m_series_of[M_N_IDS];
/* Every series by hash of family and labels: an event is counted on every
 * call answered and every item reported, too often for a list scan. */
static m_series *m_table[M_TABLE_SIZE];

/* The hash of the family and the label text. */
static unsigned
m_hash(metrics_id id, const char *labels)
{
	return fnv_str(FNV_INIT ^ (unsigned)id, labels);
}

/* The series of id with labels, made on first use; NULL when out of
 * memory (the event goes uncounted rather than stopping the daemon). */
static m_series *
m_find(metrics_id id, const char *labels)
{
	unsigned   h = m_hash(id, labels);
	m_series **slot = &m_table[h & (M_TABLE_SIZE - 1)];
	m_series  *s;
	size_t     n;

	assert(id >= 0 && id < M_N_IDS);
	for (s = *slot; s != NULL; s = s->hnext)
		if (s->hash == h && s->id == id &&
		    strcmp(s->labels, labels) == 0)
			return s;
	n = strlen(labels);
	if ((s = calloc(1, sizeof(*s) + n + 1)) == NULL)
		return NULL;
	memcpy(s->labels, labels, n + 1);
	s->id = id;
	s->hash = h;
	s->hnext = *slot;
	*slot = s;
	s->next = m_series_of[id];
	m_series_of[id] = s;
	return s;
}

void
metrics_add(metrics_id id, const char *labels, double by)
{
	m_series *s = m_find(id, labels);

	assert(!m_families[id].histogram);
	if (s != NULL)
		s->value += by;
}

void
metrics_observe(metrics_id id, const char *labels, double v)
{
	const m_family *f = &m_families[id];
	m_series       *s = m_find(id, labels);

	assert(f->histogram);
	if (s == NULL)
		return;
	s->value += v;
	s->count++;
	/* Each bucket counts what is at most its bound: cumulative. */
	for (size_t i = 0; i < f->n_bounds; i++)
		if (v <= f->bounds[i])
			s->buckets[i]++;
}

char *
metrics_labels(char *buf, size_t len, ...)
{
	va_list     ap;
	size_t      at = 0;
	const char *name;

	assert(len > 0);
	buf[0] = '\0';
	va_start(ap, len);
	while ((name = va_arg(ap, const char *)) != NULL) {
		const char *v = va_arg(ap, const char *);
		int         n = snprintf(buf + at, len - at, "%s%s=\"",
                                 at > 0 ? "," : "", name);

		if (n < 0 || (size_t)n >= len - at)
			break;
		at += (size_t)n;
		for (; v != NULL && *v != '\0' && at + 3 < len; v++) {
			char c = *v;

			if (c == '\\' || c == '"' || c == '\n') {
				buf[at++] = '\\';
				c = c == '\n' ? 'n' : c;
			}
			buf[at++] = c;
		}
		if (at + 2 > len)
			break;
		buf[at++] = '"';
		buf[at] = '\0';
	}
	va_end(ap);
	buf[len - 1] = '\0';
	return buf;
}

void
metrics_head(FILE *f, const char *name, const char *type, const char *help)
{
	fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A value as the format writes it: integers without a fraction. */
static void
m_value(FILE *f, double v)
{
	if (v == (double)(long long)v && v < 9e15 && v > -9e15)
		fprintf(f, "%lld\n", (long long)v);
	else
		fprintf(f, "%.15g\n", v);
}

void
metrics_sample(FILE *f, const char *name, const char *labels, double v)
{
	if (labels[0] != '\0')
		fprintf(f, "%s{%s} ", name, labels);
	else
		fprintf(f, "%s ", name);
	m_value(f, v);
}

/* A histogram's le label after the series' own. */
static void
m_bucket(FILE *f, const char *name, const char *labels, const char *le,
         double v)
{
	fprintf(f, "%s_bucket{%s%sle=\"%s\"} ", name, labels,
	        labels[0] != '\0' ? "," : "", le);
	m_value(f, v);
}

/* The process's own figures, as Prometheus' client libraries name them. */
static void
m_process(FILE *f)
{
	FILE              *st = fopen("/proc/self/stat", "r");
	char               buf[1024], *p;
	unsigned long long utime = 0, stime = 0, start = 0, vsize = 0;
	long long          rss = 0;
	long               tck = sysconf(_SC_CLK_TCK);
	long               page = sysconf(_SC_PAGESIZE);

	if (st == NULL)
		return;
	if (fgets(buf, sizeof(buf), st) == NULL ||
	    (p = strrchr(buf, ')')) == NULL ||
	    /* After the command: state, then fields 4.. (proc(5)). */
	    sscanf(p + 2,
	           "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu "
	           "%*d %*d %*d %*d %*d %*d %llu %llu %lld",
	           &utime, &stime, &start, &vsize, &rss) != 5) {
		fclose(st);
		return;
	}
	fclose(st);
	metrics_head(f, "process_cpu_seconds_total", "counter",
	             "Total user and system CPU time spent in seconds.");
	metrics_sample(f, "process_cpu_seconds_total", "",
	               (double)(utime + stime) / (double)tck);
	metrics_head(f, "process_resident_memory_bytes", "gauge",
	             "Resident memory size in bytes.");
	metrics_sample(f, "process_resident_memory_bytes", "",
	               (double)rss * (double)page);
	metrics_head(f, "process_virtual_memory_bytes", "gauge",
	             "Virtual memory size in bytes.");
	metrics_sample(f, "process_virtual_memory_bytes", "", (double)vsize);
	if ((st = fopen("/proc/stat", "r")) != NULL) {
		unsigned long long btime = 0;

		while (fgets(buf, sizeof(buf), st) != NULL)
			if (sscanf(buf, "btime %llu", &btime) == 1)
				break;
		fclose(st);
		if (btime > 0) {
			metrics_head(f, "process_start_time_seconds", "gauge",
			             "Start time of the process since unix "
			             "epoch in seconds.");
			metrics_sample(f, "process_start_time_seconds", "",
			               (double)btime +
			                   (double)start / (double)tck);
		}
	}
}

void
metrics_write(FILE *f)
{
	char name[128];

	for (int id = 0; id < M_N_IDS; id++) {
		const m_family *fam = &m_families[id];

		snprintf(name, sizeof(name), "%s%s", fam->name,
		         fam->histogram ? "" : "_total");
		metrics_head(f, name, fam->histogram ? "histogram" : "counter",
		             fam->help);
		for (m_series *s = m_series_of[id]; s != NULL; s = s->next) {
			char key[160], le[32];

			if (!fam->histogram) {
				metrics_sample(f, name, s->labels, s->value);
				continue;
			}
			for (size_t i = 0; i < fam->n_bounds; i++) {
				snprintf(le, sizeof(le), "%g", fam->bounds[i]);
				m_bucket(f, name, s->labels, le, s->buckets[i]);
			}
			m_bucket(f, name, s->labels, "+Inf", s->count);
			snprintf(key, sizeof(key), "%s_sum", name);
			metrics_sample(f, key, s->labels, s->value);
			snprintf(key, sizeof(key), "%s_count", name);
			metrics_sample(f, key, s->labels, s->count);
		}
	}
	m_process(f);
}

void
metrics_reset(void)
{
	for (int id = 0; id < M_N_IDS; id++)
		while (m_series_of[id] != NULL) {
			m_series *s = m_series_of[id];

			m_series_of[id] = s->next;
			free(s);
		}
	memset(m_table, 0, sizeof(m_table));
}
