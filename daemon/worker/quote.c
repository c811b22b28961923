/* Shell quoting (see quote.h: no state, any thread). */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "placeholder.h"
#include "quote.h"
#include "troupe/error.h"

/* True for the bytes that never need quoting. */
static bool
quote_safe(uint8_t c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') ||
	       (c != '\0' && strchr("@%+:,./_-", c) != NULL);
}

int
quote_word(const uint8_t *s, size_t n, char **out)
{
	size_t quotes = 0, safe = 0;
	char  *buf, *p;

	*out = NULL;
	if (n > 0 && memchr(s, '\0', n) != NULL)
		return TROUPE_EINVAL;
	for (size_t i = 0; i < n; i++)
		safe += quote_safe(s[i]);
	if (n > 0 && safe == n) {
		if ((buf = malloc(n + 1)) == NULL)
			return TROUPE_ENOMEM;
		memcpy(buf, s, n);
		buf[n] = '\0';
		*out = buf;
		return 0;
	}
	for (size_t i = 0; i < n; i++)
		if (s[i] == '\'')
			quotes++;
	/* Two enclosing quotes, 3 extra bytes per inner quote, the NUL. */
	if ((buf = malloc(n + 3 * quotes + 3)) == NULL)
		return TROUPE_ENOMEM;
	p = buf;
	*p++ = '\'';
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '\'') {
			/* Close the quote, an escaped quote, reopen. */
			memcpy(p, "'\\''", 4);
			p += 4;
		} else {
			*p++ = (char)s[i];
		}
	}
	*p++ = '\'';
	*p = '\0';
	*out = buf;
	return 0;
}

int
quote_command(const char *cmd, const uint8_t *item, size_t n, char **out)
{
	char       *word = NULL;
	char       *buf = NULL;
	char       *p;
	const char *c;
	size_t      slots = 0, wlen, len;
	int         rv;

	*out = NULL;
	for (c = cmd; (c = strstr(c, "{}")) != NULL; c += 2)
		slots++;
	if (slots == 0)
		return (*out = strdup(cmd)) != NULL ? 0 : TROUPE_ENOMEM;
	if ((rv = placeholder_check(cmd, NULL, 0)) != 0)
		return rv == TROUPE_EINVAL ? TROUPE_EPERM : rv;
	if ((rv = quote_word(item, n, &word)) != 0)
		return rv;
	wlen = strlen(word);
	len = strlen(cmd) - 2 * slots + wlen * slots;
	if ((buf = malloc(len + 1)) == NULL) {
		rv = TROUPE_ENOMEM;
		goto fail;
	}
	p = buf;
	for (c = cmd; *c != '\0';) {
		if (c[0] == '{' && c[1] == '}') {
			memcpy(p, word, wlen);
			p += wlen;
			c += 2;
		} else {
			*p++ = *c++;
		}
	}
	*p = '\0';
	*out = buf;
	buf = NULL;
	rv = 0;
fail:
	free(word);
	free(buf);
	return rv;
}
