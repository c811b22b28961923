/*
 * The daemons' flags the README promises, seen from outside:
 *  - `troupe-worker --config FILE` (`name = value` lines, `#` comments)
 *    sets its name and slots, and `--label K=V` (flag or config line)
 *    shows in `troupe workers --json`;
 *  - `troupe-scheduler --config FILE` sets its database path;
 *  - `troupe-worker --drain-timeout S`: SIGTERMed while an item runs
 *    longer, it kills the item after S seconds, exits 0 well before the
 *    default 30 s, and the item runs again on another worker.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness_faults.h"
#include "skip.h"

/* Writes text to path, failing the test when it cannot. */
static void
write_file(h_cluster *c, const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	if (f == NULL || fputs(text, f) < 0 || fclose(f) != 0)
		h_fail(c, "cannot write %s", path);
}

static void
test_worker_config_and_labels(void **state)
{
	h_cluster    *c = h_start(NULL);
	const char   *conf = h_path(c, "worker.conf");
	char         *out, *argv[16], **lines;
	json_object **objs, *labels;
	int           k = 0, n;

	write_file(c, conf,
	           "# a worker configured by file\n"
	           "name = cfg-worker\n"
	           "\n"
	           "  slots = 3\n"
	           "label = zone=east\n");
	(void)hf_sh("mkdir -p %s", h_path(c, "cw"));
	argv[k++] = (char *)hf_bin(c, "troupe-worker");
	argv[k++] = "--allow-root"; /* CI runs as root */
	argv[k++] = "--home";
	argv[k++] = (char *)h_path(c, "cw");
	argv[k++] = "--scheduler";
	argv[k++] = (char *)h_worker_addr(c);
	argv[k++] = "--config";
	argv[k++] = (char *)conf;
	argv[k++] = "--label";
	argv[k++] = "gpu=none";
	argv[k] = NULL;
	(void)hf_spawn(c, "cw", NULL, NULL, argv);
	h_wait_workers(c, 1, 30000);

	assert_int_equal(h_run(c, &out, NULL, "troupe workers --json"), 0);
	assert_int_equal(h_json_lines(c, out, &objs), 1);
	assert_string_equal(h_jstr(objs[0], "name"), "cfg-worker");
	assert_int_equal(h_jint(objs[0], "slots"), 3);
	assert_true(json_object_object_get_ex(objs[0], "labels", &labels));
	assert_string_equal(h_jstr(labels, "zone"), "east");
	assert_string_equal(h_jstr(labels, "gpu"), "none");
	assert_int_equal(json_object_object_length(labels), 2);
	assert_int_equal(h_run(c, &out, NULL, "troupe workers"), 0);
	n = h_split(c, out, &lines);
	assert_int_equal(n, 2);
	assert_true(strncmp(lines[1], "cfg-worker ", 11) == 0);
	/* It runs items under that name. */
	assert_int_equal(
	    h_run(c, &out, NULL, "echo x | troupe map --json --cmd 'echo {}'"),
	    0);
	assert_string_equal(h_jstr(h_json(c, out), "worker"), "cfg-worker");
	hf_stop_all(c);
	h_done(c);
}

static void
test_scheduler_config(void **state)
{
	char        dir[] = "/tmp/troupe-conf-XXXXXX";
	char        conf[128], db[128], args[160], text[512];
	h_cluster  *c;
	struct stat st;
	char       *out;

	assert_non_null(mkdtemp(dir));
	hf_at_end("rm -rf %s", dir);
	snprintf(conf, sizeof(conf), "%s/scheduler.conf", dir);
	snprintf(db, sizeof(db), "%s/elsewhere.db", dir);
	snprintf(text, sizeof(text),
	         "# the database away from the state directory\n"
	         "db = %s\n",
	         db);
	{
		FILE *f = fopen(conf, "w");
		assert_non_null(f);
		fputs(text, f);
		fclose(f);
	}
	snprintf(args, sizeof(args), "--config %s", conf);
	c = h_start(&(h_opts){.workers = 1, .sched_args = args});
	assert_int_equal(
	    h_run(c, &out, NULL, "seq 3 | troupe map --cmd 'echo {}'"), 0);
	assert_string_equal(out, "1\n2\n3\n");
	assert_int_equal(stat(db, &st), 0);
	assert_true(st.st_size > 0);
	assert_int_not_equal(stat(h_path(c, "troupe.db"), &st), 0);
	h_done(c);
}

/* The one item runs `sleep 60` on its first attempt and answers on the
 * next. */
#define DRAIN_CMD                                                        \
	"'if [ \"$TROUPE_ATTEMPT\" = 1 ]; then exec sleep 60; fi; echo " \
	"again {} \"$TROUPE_ATTEMPT\"'"

static void
test_drain_timeout(void **state)
{
	h_cluster           *c = h_start(NULL);
	Troupe__ItemResult **items;
	Troupe__Execution   *e;
	const char          *id;
	char                *argv[16];
	hf_proc             *w1;
	uint64_t             one = 1;
	int64_t              t0, dt;
	int                  k = 0, st;

	(void)hf_sh("mkdir -p %s", h_path(c, "w1"));
	argv[k++] = (char *)hf_bin(c, "troupe-worker");
	argv[k++] = "--allow-root"; /* CI runs as root */
	argv[k++] = "--home";
	argv[k++] = (char *)h_path(c, "w1");
	argv[k++] = "--scheduler";
	argv[k++] = (char *)h_worker_addr(c);
	argv[k++] = "--name";
	argv[k++] = "w1";
	argv[k++] = "--drain-timeout";
	argv[k++] = "1";
	argv[k] = NULL;
	w1 = hf_spawn(c, "w1", NULL, NULL, argv);
	h_wait_workers(c, 1, 30000);
	id = h_map_detach(c, "a\n", "--cmd " DRAIN_CMD);
	(void)h_wait_exec(c, id, hf_running_at_least, &one, 30000,
	                  "the item running on w1");
	(void)hf_spawn_worker(c, "w2", 2, NULL);
	h_wait_workers(c, 2, 30000);

	/* SIGTERM: the item outlasts --drain-timeout 1, is killed, and the
	 * worker exits 0 within seconds, not after the default 30. */
	t0 = h_now_ms();
	st = hf_kill(c, w1, SIGTERM);
	dt = h_now_ms() - t0;
	fprintf(stderr, "w1 exited %lld ms after SIGTERM\n", (long long)dt);
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		h_fail(c, "w1: wait status %#x after SIGTERM, want exit 0", st);
	assert_true(dt >= 900);
	assert_true(dt < 12000);

	/* The item runs again, on w2, and succeeds. */
	e = h_wait_done(c, id, 60000);
	assert_int_equal(e->phase, TROUPE__PHASE__PHASE_SUCCEEDED);
	assert_int_equal(h_outputs(c, id, &items), 1);
	assert_int_equal(items[0]->state, TROUPE__ITEM_STATE__ITEM_SUCCEEDED);
	assert_int_equal(items[0]->attempts, 2);
	assert_string_equal(items[0]->worker, "w2");
	assert_int_equal(items[0]->output.len, strlen("again a 2\n"));
	assert_memory_equal(items[0]->output.data, "again a 2\n", 10);
	hf_stop_all(c);
	h_done(c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    HF_TEST(test_worker_config_and_labels),
	    HF_TEST(test_scheduler_config),
	    HF_TEST(test_drain_timeout),
	};
	return t_exit(cmocka_run_group_tests(tests, NULL, NULL));
}
