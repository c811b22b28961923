/* Names, times, durations and tables for the CLI's text output. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "json_out.h"

const char *
cli_phase_name(int phase)
{
	return cli_enum_name(&troupe__phase__descriptor, phase);
}

const char *
cli_state_name(int state)
{
	return cli_enum_name(&troupe__item_state__descriptor, state);
}

int
cli_phase_terminal(int phase)
{
	return phase == TROUPE__PHASE__PHASE_SUCCEEDED ||
	       phase == TROUPE__PHASE__PHASE_FAILED ||
	       phase == TROUPE__PHASE__PHASE_ABORTED ||
	       phase == TROUPE__PHASE__PHASE_TIMED_OUT;
}

void
cli_fmt_time(char *buf, size_t len, int64_t ms)
{
	time_t    t = (time_t)(ms / 1000);
	struct tm tm;

	if (ms <= 0 || localtime_r(&t, &tm) == NULL) {
		snprintf(buf, len, "-");
		return;
	}
	strftime(buf, len, "%Y-%m-%d %H:%M:%S", &tm);
}

void
cli_fmt_dur(char *buf, size_t len, int64_t ms)
{
	if (ms < 0)
		ms = 0;
	if (ms < 1000)
		snprintf(buf, len, "%lldms", (long long)ms);
	else if (ms < 60000)
		snprintf(buf, len, "%.1fs", (double)ms / 1000.0);
	else if (ms < 3600000)
		snprintf(buf, len, "%lldm%02llds", (long long)(ms / 60000),
		         (long long)(ms % 60000 / 1000));
	else
		snprintf(buf, len, "%lldh%02lldm", (long long)(ms / 3600000),
		         (long long)(ms % 3600000 / 60000));
}

int64_t
cli_wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void
cli_table_init(cli_table *t, size_t cols, const char *const *header)
{
	memset(t, 0, sizeof(*t));
	t->cols = cols;
	cli_table_row(t, header);
}

void
cli_table_row(cli_table *t, const char *const *cells)
{
	char **nc;

	if (t->oom)
		return;
	nc = realloc(t->cells, (t->rows + 1) * t->cols * sizeof(*nc));
	if (nc == NULL) {
		t->oom = 1;
		return;
	}
	t->cells = nc;
	for (size_t i = 0; i < t->cols; i++) {
		const char *s = cells[i] != NULL ? cells[i] : "-";
		char      **dst = &t->cells[t->rows * t->cols + i];

		if ((*dst = strdup(s)) == NULL)
			t->oom = 1;
	}
	t->rows++;
}

int
cli_table_print(cli_table *t, FILE *f)
{
	size_t *w = NULL;
	int     code = CLI_EXIT_OK;

	if (t->oom || (w = calloc(t->cols, sizeof(*w))) == NULL) {
		code = cli_err("out of memory");
		goto fail;
	}
	for (size_t r = 0; r < t->rows; r++)
		for (size_t i = 0; i < t->cols; i++) {
			size_t n = strlen(t->cells[r * t->cols + i]);
			if (n > w[i])
				w[i] = n;
		}
	for (size_t r = 0; r < t->rows; r++) {
		for (size_t i = 0; i < t->cols; i++) {
			const char *s = t->cells[r * t->cols + i];

			if (i + 1 == t->cols)
				fprintf(f, "%s\n", s);
			else
				fprintf(f, "%-*s  ", (int)w[i], s);
		}
	}
fail:
	free(w);
	return code;
}

void
cli_table_free(cli_table *t)
{
	if (t->cells != NULL)
		for (size_t k = 0; k < t->rows * t->cols; k++)
			free(t->cells[k]);
	free(t->cells);
	memset(t, 0, sizeof(*t));
}
