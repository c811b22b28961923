/*
 * What the libFuzzer targets of tests/fuzz share: the record reader that
 * splits one input into several messages, a deterministic getrandom, the
 * daemons' log silenced, the scratch directory removed at exit, and ASan's
 * defaults for fuzzing.
 *
 * Header-only, included by the one fuzz_*.c file of each program (it
 * defines getrandom and __asan_default_options).  Threading: one
 * thread.
 */
#ifndef TROUPE_FUZZ_COMMON_H
#define TROUPE_FUZZ_COMMON_H

#include <dirent.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#include "log.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* An input read as records: sel:1 len:2 (little-endian) data:len; a
 * record cut short by the end of the input takes what is left. */
typedef struct fz_reader {
	const uint8_t *p;
	size_t         n;
} fz_reader;

static inline bool
fz_next(fz_reader *r, uint8_t *sel, const uint8_t **data, size_t *len)
{
	size_t l;

	if (r->n < 1)
		return false;
	*sel = r->p[0];
	l = r->n >= 3 ? (size_t)r->p[1] | (size_t)r->p[2] << 8 : 0;
	r->p += r->n >= 3 ? 3 : r->n;
	r->n -= r->n >= 3 ? 3 : r->n;
	if (l > r->n)
		l = r->n;
	*data = r->p;
	*len = l;
	r->p += l;
	r->n -= l;
	return true;
}

/* The daemons' log: silent unless TROUPE_LOG=debug (or warn) is set. */
static inline void
fz_quiet(void)
{
	troupe_log_init("fuzz", -1);
}

/* getrandom for the code under test: a counter, reset by
 * fz_random_reset, so ids are the same on every run of an input. */
static uint64_t fz_random_ctr;

static inline void
fz_random_reset(void)
{
	fz_random_ctr = 0;
}

ssize_t getrandom(void *buf, size_t len, unsigned int flags);

ssize_t
getrandom(void *buf, size_t len, unsigned int flags)
{
	uint8_t *b = buf;

	(void)flags;
	for (size_t i = 0; i < len; i++) {
		uint64_t x = ++fz_random_ctr * 0x9e3779b97f4a7c15ull;

		b[i] = (uint8_t)(x >> 56);
	}
	return (ssize_t)len;
}

/* A 16 MiB quarantine (ASan's default is 256 MiB): freed memory is reused
 * sooner, so each run touches fewer new pages; page faults were half the
 * time of a run.  A use after free is still caught within the last 16 MiB
 * freed, which spans many runs.  ASAN_OPTIONS overrides it. */
const char *__asan_default_options(void);

const char *
__asan_default_options(void)
{
	return "quarantine_size_mb=16";
}

/* A scratch directory (flat) removed at exit. */
static const char *fz_cleanup_dir;

static inline void
fz_cleanup_dir_at_exit(void)
{
	DIR           *d;
	struct dirent *de;
	char           p[512];

	if (fz_cleanup_dir == NULL || (d = opendir(fz_cleanup_dir)) == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(p, sizeof(p), "%s/%s", fz_cleanup_dir, de->d_name);
		unlink(p);
	}
	closedir(d);
	rmdir(fz_cleanup_dir);
}

#endif
