/* ItemReport construction (see report.h: no state, any thread). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "logcap.h"
#include "report.h"
#include "troupe/error.h"

Troupe__ItemReport *
report_new(const char *execution, uint64_t index, uint32_t attempt)
{
	Troupe__ItemReport *rep = malloc(sizeof(*rep));

	if (rep == NULL)
		return NULL;
	troupe__item_report__init(rep);
	rep->execution = strdup(execution);
	rep->error = strdup("");
	if (rep->execution == NULL || rep->error == NULL) {
		report_free(rep);
		return NULL;
	}
	rep->index = index;
	rep->attempt = attempt;
	rep->state = TROUPE__ITEM_STATE__ITEM_FAILED;
	return rep;
}

void
report_free(Troupe__ItemReport *rep)
{
	if (rep == NULL)
		return;
	free(rep->execution);
	free(rep->error);
	free(rep->output.data);
	free(rep->stderr_log.data);
	free(rep);
}

/* Length of the valid UTF-8 sequence at s (at most n bytes), or 0. */
static size_t
report_utf8_len(const unsigned char *s, size_t n)
{
	size_t   len;
	uint32_t cp;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		len = 2;
		cp = s[0] & 0x1f;
	} else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		len = 3;
		cp = s[0] & 0x0f;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		len = 4;
		cp = s[0] & 0x07;
	} else {
		return 0;
	}
	if (len > n)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	/* Overlong forms, surrogates, beyond U+10FFFF. */
	if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
	    (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
		return 0;
	return len;
}

int
report_set_error(Troupe__ItemReport *rep, const char *text, size_t n)
{
	const unsigned char *s = (const unsigned char *)text;
	char                *buf, *p;
	size_t               i = 0;

	if ((buf = malloc(n + 1)) == NULL)
		return TROUPE_ENOMEM;
	/* A tail cut mid-character starts with continuation bytes. */
	while (i < n && i < 3 && (s[i] & 0xc0) == 0x80)
		i++;
	p = buf;
	while (i < n) {
		size_t len = report_utf8_len(s + i, n - i);

		if (len == 0 || (len == 1 && s[i] == '\0')) {
			*p++ = '?';
			i++;
			continue;
		}
		memcpy(p, s + i, len);
		p += len;
		i += len;
	}
	*p = '\0';
	free(rep->error);
	rep->error = buf;
	return 0;
}

static int
report_vset(Troupe__ItemReport *rep, const char *fmt, va_list ap)
{
	char line[1024];
	int  n = vsnprintf(line, sizeof(line), fmt, ap);

	if (n < 0)
		n = 0;
	if ((size_t)n >= sizeof(line))
		n = sizeof(line) - 1;
	return report_set_error(rep, line, (size_t)n);
}

int
report_errorf(Troupe__ItemReport *rep, const char *fmt, ...)
{
	va_list ap;
	int     rv;

	va_start(ap, fmt);
	rv = report_vset(rep, fmt, ap);
	va_end(ap);
	return rv;
}

int
report_system_failure(Troupe__ItemReport *rep, const char *fmt, ...)
{
	va_list ap;
	int     rv;

	rep->state = TROUPE__ITEM_STATE__ITEM_FAILED;
	rep->system_failure = 1;
	va_start(ap, fmt);
	rv = report_vset(rep, fmt, ap);
	va_end(ap);
	return rv;
}

void
report_take_log(Troupe__ItemReport *rep, logcap *l)
{
	uint8_t *data = NULL;
	size_t   len = 0;
	uint64_t dropped = 0;

	if (logcap_take(l, &data, &len, &dropped) != 0)
		return;
	free(rep->stderr_log.data);
	rep->stderr_log.data = data;
	rep->stderr_log.len = len;
	rep->stderr_dropped = dropped;
}
