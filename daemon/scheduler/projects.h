/*
 * Projects in memory: each project's quotas (from the store's projects
 * table) and what it uses now, for the dispatch to share the cluster
 * fairly between projects and hold their quotas (README, "Projects and
 * roles").  A record exists for every project that has an execution or
 * an environment in memory, whether or not it was created with
 * `troupe project create` (the default project never is); records live
 * until the scheduler stops.
 *
 * Async contract: the scheduler's loop thread only.  `running` is
 * exec.c's to count, `replicas` actors.c's; quotas are set from the
 * store at start-up and by the API.
 */
#ifndef TROUPE_SCHED_PROJECTS_H
#define TROUPE_SCHED_PROJECTS_H

#include <stdbool.h>
#include <stdint.h>

#include "api.pb-c.h"
#include "store.h"

typedef struct project {
	struct project *next;
	char            name[64];
	uint32_t        max_running;  /* 0: no quota */
	uint32_t        max_replicas; /* 0: no quota */
	uint64_t        running;      /* items running now (exec.c's) */
	uint32_t        replicas;     /* replicas alive (actors.c's) */
} project;

typedef struct projects {
	project *head;
} projects;

/* Reads every project's quotas from st.  Returns 0 or TROUPE_E*. */
int projects_load(projects *ps, store *st);
/* The record of project name ("" is the default project), made when
 * missing; NULL only without memory. */
project *projects_get(projects *ps, const char *name);
/* Sets (p non-NULL) or clears (quotas of name back to none) quotas. */
void projects_set(projects *ps, const char *name, const Troupe__Project *p);
/* Frees every record. */
void projects_free(projects *ps);

/* Whether p may start one more item / replica under its quota. */
bool project_may_run(const project *p);
bool project_may_replicate(const project *p);

#endif
