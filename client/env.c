/*
 * Environment merge (see troupe/env.h).
 *
 * Walks the entries from the last to the first, keeping an entry when its
 * key has not been seen yet (an open-addressing table of the keys kept so
 * far), then reverses what was kept: each key's last entry, in the order
 * of those entries.
 */
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "troupe/env.h"
#include "troupe/error.h"

/* FNV-1a of the key (up to '='). */
static uint64_t
env_hash(const char *entry, size_t keylen)
{
	uint64_t h = 14695981039346656037ull;

	for (size_t i = 0; i < keylen; i++) {
		h ^= (uint8_t)entry[i];
		h *= 1099511628211ull;
	}
	return h;
}

int
troupe_env_merge(char *const *const *sets, const size_t *sizes, size_t n_sets,
                 char ***out, size_t *n_out)
{
	size_t total = 0, cap = 16, k = 0;
	char **keep = NULL, **table = NULL;
	int    rv = TROUPE_ENOMEM;

	*out = NULL;
	*n_out = 0;
	for (size_t s = 0; s < n_sets; s++)
		total += sizes[s];
	while (cap < total * 2)
		cap *= 2;
	if ((keep = calloc(total + 1, sizeof(*keep))) == NULL ||
	    (table = calloc(cap, sizeof(*table))) == NULL)
		goto done;
	for (size_t s = n_sets; s-- > 0;)
		for (size_t i = sizes[s]; i-- > 0;) {
			char  *entry = sets[s][i];
			char  *eq = strchr(entry, '=');
			size_t n, slot;

			if (eq == NULL)
				continue;
			n = (size_t)(eq - entry);
			slot = (size_t)env_hash(entry, n) & (cap - 1);
			while (table[slot] != NULL &&
			       !(strncmp(table[slot], entry, n + 1) == 0))
				slot = (slot + 1) & (cap - 1);
			if (table[slot] != NULL)
				continue; /* a later entry set this key */
			table[slot] = entry;
			keep[k++] = entry;
		}
	assert(k <= total);
	for (size_t i = 0; i < k / 2; i++) {
		char *t = keep[i];
		keep[i] = keep[k - 1 - i];
		keep[k - 1 - i] = t;
	}
	keep[k] = NULL;
	*out = keep;
	*n_out = k;
	keep = NULL;
	rv = 0;
done:
	free(keep);
	free(table);
	return rv;
}
