/*
 * Projects in memory (see projects.h for the contract).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "projects.h"
#include "troupe/error.h"

static const char *
projects_name(const char *name)
{
	return name != NULL && name[0] != '\0' ? name : STORE_DEFAULT_PROJECT;
}

project *
projects_get(projects *ps, const char *name)
{
	project *p;

	name = projects_name(name);
	for (p = ps->head; p != NULL; p = p->next)
		if (strcmp(p->name, name) == 0)
			return p;
	if ((p = calloc(1, sizeof(*p))) == NULL)
		return NULL;
	snprintf(p->name, sizeof(p->name), "%s", name);
	p->next = ps->head;
	ps->head = p;
	return p;
}

void
projects_set(projects *ps, const char *name, const Troupe__Project *q)
{
	project *p = projects_get(ps, name);

	if (p == NULL)
		return;
	p->max_running = q != NULL ? q->max_running : 0;
	p->max_replicas = q != NULL ? q->max_replicas : 0;
}

static int
projects_row(void *arg, ProtobufCMessage *m)
{
	Troupe__Project *q = (Troupe__Project *)m;

	projects_set(arg, q->name, q);
	troupe__project__free_unpacked(q, NULL);
	return 0;
}

int
projects_load(projects *ps, store *st)
{
	return store_named_list(st, STORE_K_PROJECT, projects_row, ps);
}

void
projects_free(projects *ps)
{
	while (ps->head != NULL) {
		project *p = ps->head;
		ps->head = p->next;
		free(p);
	}
}

bool
project_may_run(const project *p)
{
	return p == NULL || p->max_running == 0 || p->running < p->max_running;
}

bool
project_may_replicate(const project *p)
{
	return p == NULL || p->max_replicas == 0 ||
	       p->replicas < p->max_replicas;
}
