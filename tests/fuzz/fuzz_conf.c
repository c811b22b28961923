/*
 * libFuzzer target: the daemons' config file parser (daemon/common/conf.c,
 * conf_stream_each, which conf_file_each runs on the opened file), fed
 * arbitrary file contents.  Checks what every caller relies on: each
 * setting's name and value come trimmed, the name holds no '=', both are
 * NUL-terminated inside the line, no more settings come than the file has
 * lines holding a '=' (a line too long for the buffer must not come back
 * as a second setting), and a refused setting stops the parse with a
 * message.
 *
 * Threading: one thread.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "fuzz_common.h"
#include "troupe/error.h"

static int
fz_setting(void *arg, const char *key, const char *val)
{
	size_t kl = strlen(key), vl = strlen(val);
	int   *n = arg;

	if (kl >= 4096 || vl >= 4096 || strchr(key, '=') != NULL ||
	    key[0] == '#' ||
	    (kl > 0 && (isspace((unsigned char)key[0]) ||
	                isspace((unsigned char)key[kl - 1]))) ||
	    (vl > 0 && (isspace((unsigned char)val[0]) ||
	                isspace((unsigned char)val[vl - 1]))))
		abort();
	(*n)++;
	/* A daemon refuses what it does not know: so does this one, for
	 * one name, to cover the stop. */
	return strcmp(key, "refuse") == 0 ? TROUPE_EINVAL : 0;
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fz_quiet();
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	FILE *f = fmemopen((void *)data, size, "r");
	char  err[256] = "";
	int   n = 0, rv;

	if (f == NULL)
		return 0;
	rv = conf_stream_each(f, "fuzz.conf", fz_setting, &n, err, sizeof(err));
	fclose(f);
	if (rv != 0 && err[0] == '\0')
		abort(); /* a refusal always says why */
	{
		int    lines = 0;
		bool   eq = false;
		size_t i;

		for (i = 0; i < size; i++) {
			eq = eq || data[i] == '=';
			if (data[i] == '\n') {
				lines += eq;
				eq = false;
			}
		}
		lines += eq;
		if (n > lines)
			abort(); /* a line read as two */
	}
	return 0;
}
