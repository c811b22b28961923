/*
 * The values the troupe CLI's flags take (see args.h): counts, seconds,
 * ratios, CPU and memory amounts, protocols, phases, roles and
 * durations, each refused with one line naming the flag.  Pure: no I/O.
 */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api.pb-c.h"
#include "args.h"
#include "troupe/error.h"

/* Unsigned decimal digits only: strtoull alone would take "-1", " 1",
 * "+1". */
static int
args_all_digits(const char *s)
{
	if (*s == '\0')
		return 0;
	for (; *s != '\0'; s++)
		if (!isdigit((unsigned char)*s))
			return 0;
	return 1;
}

/* A plain decimal number with an optional fraction: no sign, exponent,
 * hex, "inf" or "nan", which strtod would otherwise accept.  Parses the
 * first len bytes of s. */
static int
args_decimal(const char *s, size_t len, double *out)
{
	char   buf[64];
	char  *end = NULL;
	int    digits = 0, dots = 0;
	size_t i;

	if (len == 0 || len >= sizeof(buf))
		return -1;
	for (i = 0; i < len; i++) {
		if (isdigit((unsigned char)s[i]))
			digits++;
		else if (s[i] == '.')
			dots++;
		else
			return -1;
	}
	if (digits == 0 || dots > 1)
		return -1;
	memcpy(buf, s, len);
	buf[len] = '\0';
	errno = 0;
	*out = strtod(buf, &end);
	if (errno != 0 || *end != '\0' || !isfinite(*out))
		return -1;
	return 0;
}

int
cli_parse_u64(const char *flag, const char *s, uint64_t *out, char *err,
              size_t errlen)
{
	unsigned long long v;

	if (!args_all_digits(s))
		return cli_usage_err(
		    err, errlen, "--%s: '%s' is not a whole number", flag, s);
	errno = 0;
	v = strtoull(s, NULL, 10);
	if (errno != 0)
		return cli_usage_err(err, errlen, "--%s: %s is too large", flag,
		                     s);
	*out = (uint64_t)v;
	return 0;
}

int
cli_parse_u32(const char *flag, const char *s, uint32_t *out, char *err,
              size_t errlen)
{
	uint64_t v;
	int      rv;

	if ((rv = cli_parse_u64(flag, s, &v, err, errlen)) != 0)
		return rv;
	if (v > UINT32_MAX)
		return cli_usage_err(err, errlen, "--%s: %s is too large", flag,
		                     s);
	*out = (uint32_t)v;
	return 0;
}

int
cli_parse_secs_ms(const char *flag, const char *s, uint32_t *ms, char *err,
                  size_t errlen)
{
	double secs, v;

	if (args_decimal(s, strlen(s), &secs) != 0)
		return cli_usage_err(err, errlen,
		                     "--%s: '%s' is not a number of seconds",
		                     flag, s);
	v = ceil(secs * 1000.0);
	if (v > (double)UINT32_MAX)
		return cli_usage_err(err, errlen, "--%s: %s s is too long",
		                     flag, s);
	*ms = (uint32_t)v;
	return 0;
}

int
cli_parse_ratio(const char *flag, const char *s, double *out, char *err,
                size_t errlen)
{
	double r;

	if (args_decimal(s, strlen(s), &r) != 0 || r < 0.0 || r > 1.0)
		return cli_usage_err(
		    err, errlen, "--%s: '%s' is not a ratio between 0 and 1",
		    flag, s);
	*out = r;
	return 0;
}

int
cli_parse_cpu(const char *flag, const char *s, uint32_t *milli, char *err,
              size_t errlen)
{
	char   buf[32];
	size_t n = strlen(s);

	if (n > 0 && s[n - 1] == 'm')
		n--;
	if (n == 0 || n >= sizeof(buf))
		goto bad;
	memcpy(buf, s, n);
	buf[n] = '\0';
	if (!args_all_digits(buf))
		goto bad;
	return cli_parse_u32(flag, buf, milli, err, errlen);
bad:
	return cli_usage_err(err, errlen,
	                     "--%s: '%s' is not thousandths of a CPU "
	                     "(e.g. 500 or 500m for half a CPU)",
	                     flag, s);
}

int
cli_parse_bytes(const char *flag, const char *s, uint64_t *out, char *err,
                size_t errlen)
{
	static const char units[] = "KMGT";
	const char       *p = s;
	const char       *u;
	double            v, mult = 1.0;

	while (isdigit((unsigned char)*p) || *p == '.')
		p++;
	if (args_decimal(s, (size_t)(p - s), &v) != 0)
		goto bad;
	if (*p != '\0') {
		if ((u = strchr(units, toupper((unsigned char)*p))) == NULL)
			goto bad;
		mult = pow(1024.0, (double)(u - units + 1));
		p++;
		if (*p == 'i')
			p++;
		if (*p == 'B' || *p == 'b')
			p++;
		if (*p != '\0')
			goto bad;
	}
	v = ceil(v * mult);
	if (v >= 18446744073709551616.0)
		goto bad;
	*out = (uint64_t)v;
	return 0;
bad:
	return cli_usage_err(err, errlen,
	                     "--%s: '%s' is not a size (bytes, or with K, M, "
	                     "G or T)",
	                     flag, s);
}

int
cli_parse_protocol(const char *flag, const char *s, int *out, char *err,
                   size_t errlen)
{
	if (strcmp(s, "lines") == 0)
		*out = TROUPE__PROTOCOL__PROTOCOL_LINES;
	else if (strcmp(s, "frames") == 0)
		*out = TROUPE__PROTOCOL__PROTOCOL_FRAMES;
	else
		return cli_usage_err(err, errlen,
		                     "--%s: '%s' is not a protocol (lines or "
		                     "frames)",
		                     flag, s);
	return 0;
}

int
cli_check_env(const char *flag, const char *s, char *err, size_t errlen)
{
	const char *eq = strchr(s, '=');

	if (eq == NULL || eq == s || isdigit((unsigned char)s[0]))
		goto bad;
	for (const char *p = s; p < eq; p++)
		if (!isalnum((unsigned char)*p) && *p != '_')
			goto bad;
	return 0;
bad:
	return cli_usage_err(err, errlen, "--%s: '%s' is not KEY=VALUE", flag,
	                     s);
}

int
cli_parse_phase(const char *flag, const char *s, int *out, char *err,
                size_t errlen)
{
	const ProtobufCEnumDescriptor *d = &troupe__phase__descriptor;

	for (unsigned i = 0; i < d->n_values; i++) {
		const char *n = d->values[i].name;
		const char *us = strchr(n, '_');

		if (d->values[i].value == TROUPE__PHASE__PHASE_UNSPECIFIED)
			continue;
		if (strcasecmp(s, n) == 0 ||
		    (us != NULL && strcasecmp(s, us + 1) == 0)) {
			*out = d->values[i].value;
			return 0;
		}
	}
	return cli_usage_err(err, errlen,
	                     "--%s: '%s' is not a phase (queued, running, "
	                     "succeeded, failed, aborted, timed_out)",
	                     flag, s);
}

int
cli_parse_role(const char *flag, const char *s, int *out, char *err,
               size_t errlen)
{
	const ProtobufCEnumDescriptor *d = &troupe__role__descriptor;

	for (unsigned i = 0; i < d->n_values; i++) {
		const char *n = d->values[i].name;
		const char *us = strchr(n, '_');

		if (d->values[i].value == TROUPE__ROLE__ROLE_NONE)
			continue;
		if (strcasecmp(s, n) == 0 ||
		    (us != NULL && strcasecmp(s, us + 1) == 0)) {
			*out = d->values[i].value;
			return 0;
		}
	}
	return cli_usage_err(err, errlen,
	                     "--%s: '%s' is not a role (read, submit, admin "
	                     "or worker)",
	                     flag, s);
}

int
cli_parse_duration_s(const char *flag, const char *s, uint32_t *secs, char *err,
                     size_t errlen)
{
	size_t n = strlen(s);
	double v, mult = 1.0;

	if (n > 0 && !isdigit((unsigned char)s[n - 1]) && s[n - 1] != '.') {
		switch (s[n - 1]) {
		case 's': mult = 1.0; break;
		case 'm': mult = 60.0; break;
		case 'h': mult = 3600.0; break;
		case 'd': mult = 86400.0; break;
		default: goto bad;
		}
		n--;
	}
	if (args_decimal(s, n, &v) != 0)
		goto bad;
	v = ceil(v * mult);
	if (v < 1.0)
		return cli_usage_err(err, errlen,
		                     "--%s: %s is too short (at least 1s)",
		                     flag, s);
	if (v > (double)UINT32_MAX)
		return cli_usage_err(err, errlen, "--%s: %s is too long", flag,
		                     s);
	*secs = (uint32_t)v;
	return 0;
bad:
	return cli_usage_err(err, errlen,
	                     "--%s: '%s' is not a duration (seconds, or a "
	                     "number with s, m, h or d: 30s, 10m, 12h, 7d)",
	                     flag, s);
}
