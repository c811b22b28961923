/*
 * Replays a fuzz target's corpus without libFuzzer: the normal (gcc,
 * ASan+UBSan) build links each tests/fuzz/fuzz_NAME.c with this main and
 * runs every file of tests/fuzz/corpus/NAME through it once (ctest
 * fuzz_replay_NAME), so the seeds and the regression inputs of crashes
 * found by fuzzing are checked by every test run, not only in the clang
 * fuzz build.
 *
 *	replay_NAME DIR...
 *
 * Exit status 0 when every input ran (a crash aborts the program, with the
 * sanitizer's report); 1 when a directory cannot be read or holds no
 * input.  Threading: one thread.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int
replay_file(const char *path)
{
	FILE    *f = fopen(path, "rb");
	uint8_t *buf = NULL;
	long     n;

	if (f == NULL || fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 ||
	    fseek(f, 0, SEEK_SET) != 0 ||
	    (buf = malloc((size_t)n + 1)) == NULL ||
	    fread(buf, 1, (size_t)n, f) != (size_t)n) {
		fprintf(stderr, "replay: cannot read %s\n", path);
		if (f != NULL)
			fclose(f);
		free(buf);
		return -1;
	}
	fclose(f);
	fprintf(stderr, "replay: %s (%ld bytes)\n", path, n);
	LLVMFuzzerTestOneInput(buf, (size_t)n);
	free(buf);
	return 0;
}

int
main(int argc, char **argv)
{
	int ran = 0;

	LLVMFuzzerInitialize(&argc, &argv);
	for (int i = 1; i < argc; i++) {
		DIR           *d = opendir(argv[i]);
		struct dirent *de;
		char           p[4096];

		if (d == NULL) {
			fprintf(stderr, "replay: cannot open %s\n", argv[i]);
			return 1;
		}
		while ((de = readdir(d)) != NULL) {
			if (de->d_name[0] == '.')
				continue;
			snprintf(p, sizeof(p), "%s/%s", argv[i], de->d_name);
			if (replay_file(p) != 0) {
				closedir(d);
				return 1;
			}
			ran++;
		}
		closedir(d);
	}
	fprintf(stderr, "replay: %d inputs\n", ran);
	return ran > 0 ? 0 : 1;
}
