/*
 * The seed's anomaly detector as a C actor replica over the frames protocol
 * (libtroupe's troupe_actor_serve): for each item (an integer), answers
 * "true" when it is above the threshold, else "false"; an item that is not
 * an integer fails alone, with a per-item error, and the replica goes on.
 * The C counterpart of detect.py --frames, and the README's example.
 *
 *	troupe-detect [--boot S] [--work-ms N] [--threshold T]
 *
 * --boot sleeps once at start (loading a model), --work-ms per item.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "troupe/actor.h"

typedef struct {
	long   threshold;
	double work_s;
} detect_conf;

static void
detect_sleep(double s)
{
	struct timespec ts;

	if (s <= 0)
		return;
	ts.tv_sec = (time_t)s;
	ts.tv_nsec = (long)((s - (double)ts.tv_sec) * 1e9);
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* One item: see troupe_actor_fn in troupe/actor.h for who owns what. */
static int
detect_item(void *arg, const uint8_t *in, size_t len, uint8_t **out,
            size_t *out_len, char **error)
{
	const detect_conf *c = arg;
	char               buf[32], *end = NULL;
	const char        *answer;
	long               v;

	if (len == 0 || len >= sizeof(buf))
		goto bad;
	memcpy(buf, in, len);
	buf[len] = '\0';
	errno = 0;
	v = strtol(buf, &end, 10);
	if (errno != 0 || *end != '\0')
		goto bad;
	detect_sleep(c->work_s);
	answer = v > c->threshold ? "true" : "false";
	if ((*out = (uint8_t *)strdup(answer)) == NULL)
		return -1;
	*out_len = strlen(answer);
	return 0;
bad:
	if (asprintf(error, "not an integer: '%.*s'",
	             (int)(len > 40 ? 40 : len), (const char *)in) < 0)
		*error = NULL;
	return -1;
}

int
main(int argc, char **argv)
{
	detect_conf c = {11, 0};
	double      boot = 0;

	for (int i = 1; i < argc; i++) {
		if (i + 1 < argc && strcmp(argv[i], "--boot") == 0)
			boot = atof(argv[++i]);
		else if (i + 1 < argc && strcmp(argv[i], "--work-ms") == 0)
			c.work_s = atof(argv[++i]) / 1000;
		else if (i + 1 < argc && strcmp(argv[i], "--threshold") == 0)
			c.threshold = atol(argv[++i]);
		else {
			fprintf(stderr, "usage: troupe-detect [--boot S] "
			                "[--work-ms N] [--threshold T]\n");
			return 2;
		}
	}
	signal(SIGPIPE, SIG_IGN); /* a gone worker is a write error */
	detect_sleep(boot);
	return troupe_actor_serve(detect_item, &c) == 0 ? 0 : 1;
}
