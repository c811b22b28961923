/* The progress line of `troupe map` (see progress.h). */
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "progress.h"

double
cli_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void
cli_progress_init(cli_progress *p, FILE *f)
{
	memset(p, 0, sizeof(*p));
	p->f = isatty(fileno(f)) ? f : NULL;
}

/* Writes a duration as "4s", "3m05s" or "2h03m". */
static void
progress_dur(char *buf, size_t len, double s)
{
	unsigned long t = (unsigned long)(s + 0.5);

	if (t < 60)
		snprintf(buf, len, "%lus", t);
	else if (t < 3600)
		snprintf(buf, len, "%lum%02lus", t / 60, t % 60);
	else
		snprintf(buf, len, "%luh%02lum", t / 3600, (t % 3600) / 60);
}

void
cli_progress_format(char *buf, size_t len, uint64_t done, uint64_t total,
                    uint64_t failed, double rate, const char *phase)
{
	char   bar[23], eta[32], fail[48];
	size_t w = 20, fill = total > 0 ? (size_t)(done * w / total) : 0;

	if (fill > w)
		fill = w;
	bar[0] = '[';
	memset(bar + 1, '#', fill);
	memset(bar + 1 + fill, '.', w - fill);
	bar[w + 1] = ']';
	bar[w + 2] = '\0';
	if (rate > 0 && total >= done) {
		char d[24];
		progress_dur(d, sizeof(d), (double)(total - done) / rate);
		snprintf(eta, sizeof(eta), "  ETA %s", d);
	} else {
		eta[0] = '\0';
	}
	fail[0] = '\0';
	if (failed > 0)
		snprintf(fail, sizeof(fail), "  %llu failed",
		         (unsigned long long)failed);
	if (rate >= 0)
		snprintf(buf, len, "%s %llu/%llu  %.1f/s%s%s  %s", bar,
		         (unsigned long long)done, (unsigned long long)total,
		         rate, eta, fail, phase);
	else
		snprintf(buf, len, "%s %llu/%llu%s  %s", bar,
		         (unsigned long long)done, (unsigned long long)total,
		         fail, phase);
}

void
cli_progress_update(cli_progress *p, uint64_t done, uint64_t total,
                    uint64_t failed, const char *phase)
{
	char   line[256];
	double now, rate = -1;

	if (p->f == NULL)
		return;
	now = cli_now();
	if (!p->started) {
		p->started = 1;
		p->t0 = now;
		p->done0 = done;
	} else if (now - p->t0 > 0.2 && done >= p->done0) {
		rate = (double)(done - p->done0) / (now - p->t0);
	}
	cli_progress_format(line, sizeof(line), done, total, failed, rate,
	                    phase);
	/* \r and "erase to end of line": the new text may be shorter. */
	fprintf(p->f, "\r%s\033[K", line);
	fflush(p->f);
	p->drawn = 1;
}

void
cli_progress_clear(cli_progress *p)
{
	if (p->f == NULL || !p->drawn)
		return;
	fputs("\r\033[K", p->f);
	fflush(p->f);
	p->drawn = 0;
}
