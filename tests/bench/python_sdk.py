#!/usr/bin/python3
"""The Python SDK's benchmark, in one invocation (not part of ctest: wall
clock figures are printed as ratios, never asserted).

1. The seed scenario through troupe.map (docs/design.md, "Targets"): 100
   items, concurrency 10, a function whose process loads a model in 0.5 s
   and then works 10 ms per item:
     - @troupe.task, a process per item: ideal 10 rounds x 0.51 = 5.1 s;
     - an ActorEnvironment of 10 replicas, cold (a name of this run's own,
       no replica before): ideal 0.5 + 10 x 0.01 = 0.6 s;
     - the same map again within the TTL, warm: ideal 10 x 0.01 = 0.1 s,
       checked to start no process (the replicas' pids are the same).
2. Throughput: 100,000 trivial items (x + 1) through 10 warm Python
   replicas, in items/s, next to dask.bag (Debian's python3-dask and
   python3-distributed) mapping the same function over the same items on
   a distributed LocalCluster of 10 single-threaded worker processes,
   also warm (the cluster is started before the clock starts).  troupe
   runs it twice: an item per argument (batch_size=1, every argument
   retried, counted and logged alone), and batch_size=1000, a thousand
   arguments an item, as dask.bag's default of 100 partitions holds a
   thousand each.  It also prints the CPU seconds each kind of process
   (this client, the scheduler, the worker, the replicas) used during the
   item-per-argument map: on 2 cores their sum, not any one of them, sets
   the time.

It starts its own local cluster (`troupe up --slots 10`) in a throw-away
TROUPE_HOME.  Run it on a Release build (a sanitized one is several times
slower, and says so):

    cmake -S . -B build -DCMAKE_BUILD_TYPE=Release && cmake --build build -j2
    /usr/bin/python3 tests/bench/python_sdk.py build
"""

import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))))
BUILD = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else
                        os.environ.get("BUILD_DIR", os.path.join(ROOT,
                                                                 "build")))
sys.path.insert(0, os.path.join(BUILD, "python"))

import troupe  # noqa: E402

ITEMS, CONC = 100, 10
BOOT_S, WORK_S = 0.5, 0.01
IDEAL_PER_ITEM, IDEAL_COLD, IDEAL_WARM = 5.1, 0.6, 0.1
N_TRIVIAL = 100_000
BATCH = 1000
REPLICAS = 10
threshold = 11


_model = {}


def detect(data_point):
    """The seed's task: loads its model once per process (0.5 s), then
    10 ms per item."""
    if "m" not in _model:
        time.sleep(BOOT_S)
        _model["m"] = threshold
    time.sleep(WORK_S)
    return data_point > _model["m"]


def trivial(x):
    return x + 1


def up():
    """Starts `troupe up --slots 10` in a fresh TROUPE_HOME; waits (at most
    30 s) until its worker is READY.  Returns (process, home)."""
    home = tempfile.mkdtemp(prefix="troupe-pybench-")
    os.environ["TROUPE_HOME"] = home
    for k in ("TROUPE_ADDR", "TROUPE_TOKEN", "TROUPE_TOKEN_FILE"):
        os.environ.pop(k, None)
    log = open(os.path.join(home, "up.log"), "wb")
    p = subprocess.Popen([os.path.join(BUILD, "client", "troupe"), "up",
                          "--slots", str(REPLICAS), "--workers", "1"],
                         stdout=log, stderr=log, start_new_session=True)
    deadline = time.monotonic() + 30
    while True:
        try:
            with troupe.Client(timeout=2) as c:
                if any(w.state == troupe.pb.WORKER_READY
                       for w in c.workers()):
                    return p, home
        except troupe.TroupeError:
            pass
        if p.poll() is not None or time.monotonic() > deadline:
            sys.exit("troupe up did not come up; see %s/up.log" % home)
        time.sleep(0.1)


def down(p, home):
    if p.poll() is None:
        p.send_signal(signal.SIGINT)
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()
    shutil.rmtree(home, ignore_errors=True)


def replicas(c, name):
    """(sorted pids, items served) of the environment's live replicas."""
    for a in c.actors():
        if a.env.name == name:
            return (sorted(r.pid for r in a.replicas),
                    sum(r.items_served for r in a.replicas))
    return [], 0


def settled(c, name, served):
    """replicas() once they report `served` items (or after 5 s)."""
    deadline = time.monotonic() + 5
    while True:
        r = replicas(c, name)
        if r[1] >= served or time.monotonic() > deadline:
            return r
        time.sleep(0.2)


def cpu_by_process(root):
    """{process name: CPU seconds so far} of this process ("client") and
    of every descendant of pid root (the daemons, the replicas), from
    /proc: where a map's time goes on a machine with fewer cores than
    processes."""
    parent, cpu = {}, {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                st = f.read()
        except OSError:
            continue
        name, rest = st[st.index("(") + 1:st.rindex(")")], st.rsplit(")", 1)[1]
        f = rest.split()
        parent[int(d)] = int(f[1])
        cpu[int(d)] = (name, (int(f[11]) + int(f[12])) / os.sysconf(
            "SC_CLK_TCK"))
    out, todo = {}, [root]
    while todo:
        pp = todo.pop()
        for pid, par in parent.items():
            if par == pp:
                todo.append(pid)
                out[pid] = cpu[pid]
    out[os.getpid()] = ("client", cpu[os.getpid()][1])
    return out


def cpu_split(before, after):
    """'name seconds, ...' of the CPU used between two cpu_by_process."""
    agg = {}
    for pid, (name, t) in after.items():
        name = "replicas" if name == "python3" else name
        agg[name] = agg.get(name, 0.0) + t - before.get(pid, (name, 0.0))[1]
    return ", ".join("%s %.2f" % kv for kv in sorted(
        agg.items(), key=lambda kv: -kv[1]) if kv[1] >= 0.01)


def timed(f, *a, **kw):
    t0 = time.monotonic()
    out = f(*a, **kw)
    return out, time.monotonic() - t0


def seed(c):
    data = list(range(ITEMS))
    want = [x > threshold for x in data]
    per_item = troupe.task(detect)
    name = "seed-%d-%d" % (os.getpid(), time.time_ns())
    env = troupe.ActorEnvironment(name=name, replica_count=REPLICAS,
                                  ttl_seconds=60)
    on_env = env.task(detect)

    out, t_item = timed(troupe.map, per_item, data, concurrency=CONC,
                        client=c)
    assert out == want, "per item: wrong outputs"
    before = replicas(c, name)
    assert not before[0], "cold run: replicas already there"
    out, t_cold = timed(troupe.map, on_env, data, concurrency=CONC, client=c)
    assert out == want, "cold: wrong outputs"
    pids_cold, served_cold = settled(c, name, ITEMS)
    out, t_warm = timed(troupe.map, on_env, data, concurrency=CONC, client=c)
    assert out == want, "warm: wrong outputs"
    pids_warm, served_warm = settled(c, name, 2 * ITEMS)

    print("seed scenario through troupe.map: %d items, concurrency %d, "
          "%.1f s model load + %d ms work per item" % (ITEMS, CONC, BOOT_S,
                                                       WORK_S * 1000))
    print("%-34s %8s %8s %15s" % ("runner", "seconds", "ideal",
                                   "ratio to ideal"))
    for label, t, ideal in (("@troupe.task, a process per item", t_item,
                             IDEAL_PER_ITEM),
                            ("ActorEnvironment(10), cold", t_cold,
                             IDEAL_COLD),
                            ("ActorEnvironment(10), warm", t_warm,
                             IDEAL_WARM)):
        print("%-34s %8.2f %8.2f %15.2f" % (label, t, ideal, t / ideal))
    if pids_warm == pids_cold and served_warm > served_cold:
        print("warm run: the same %d replicas (pids %s), no process started"
              % (len(pids_cold), ",".join(map(str, pids_cold))))
    else:
        sys.exit("warm run: NOT the same replicas: %s then %s"
                 % (pids_cold, pids_warm))


def throughput(c, root):
    items = list(range(N_TRIVIAL))
    want = [x + 1 for x in items]
    env = troupe.ActorEnvironment(name="trivial-%d" % os.getpid(),
                                  replica_count=REPLICAS, ttl_seconds=120)
    f = env.task(trivial)
    # Start the 10 replicas first: the figure is the warm rate.
    troupe.map(f, range(REPLICAS * 20), concurrency=REPLICAS, client=c)
    cpu0 = cpu_by_process(root)
    out, t_sdk = timed(troupe.map, f, items, client=c)
    split = cpu_split(cpu0, cpu_by_process(root))
    assert out == want, "troupe.map: wrong outputs"
    out, t_batch = timed(troupe.map, f, items, batch_size=BATCH, client=c)
    assert out == want, "troupe.map, batches: wrong outputs"

    import dask.bag as db
    from distributed import Client as DaskClient, LocalCluster

    t0 = time.monotonic()
    cluster = LocalCluster(n_workers=REPLICAS, threads_per_worker=1,
                           processes=True, dashboard_address=None,
                           silence_logs=logging.CRITICAL)
    dc = DaskClient(cluster)
    t_dask_up = time.monotonic() - t0
    try:
        db.from_sequence(range(100), npartitions=REPLICAS).map(
            trivial).compute()  # warm: imports done, workers connected
        bag = db.from_sequence(items)
        out, t_dask = timed(lambda: bag.map(trivial).compute())
        assert out == want, "dask.bag: wrong outputs"
        bag10 = db.from_sequence(items, npartitions=REPLICAS)
        out, t_dask10 = timed(lambda: bag10.map(trivial).compute())
        assert out == want, "dask.bag: wrong outputs"
        nparts = bag.npartitions
    finally:
        logging.disable(logging.CRITICAL)  # its workers' shutdown chatter
        dc.close()
        cluster.close()

    print()
    print("%d trivial items (x + 1), 10 warm workers" % N_TRIVIAL)
    print("%-44s %8s %10s %12s %12s" % ("runner", "seconds", "items/s",
                                        "vs troupe", "vs batches"))
    for label, t in (("troupe.map, 10 replicas, an item each", t_sdk),
                     ("troupe.map, 10 replicas, batch_size=%d" % BATCH,
                      t_batch),
                     ("dask.bag (%d partitions), LocalCluster(10)" % nparts,
                      t_dask),
                     ("dask.bag (10 partitions), LocalCluster(10)",
                      t_dask10)):
        print("%-44s %8.2f %10.0f %12.2f %12.2f" % (
            label, t, N_TRIVIAL / t, t / t_sdk, t / t_batch))
    print("(vs troupe, vs batches: the runner's time over troupe's, an "
          "item each and in batches; dask's LocalCluster took %.2f s to "
          "start, not counted)" % t_dask_up)
    print("CPU seconds during troupe.map, by process: %s" % split)


def main():
    if not os.path.isfile(os.path.join(BUILD, "daemon", "troupe-scheduler")):
        sys.exit("no build in %s (give the build directory)" % BUILD)
    try:
        with open(os.path.join(BUILD, "CMakeCache.txt")) as f:
            if any(line.startswith("TROUPE_SANITIZE:STRING=") and
                   line.strip() != "TROUPE_SANITIZE:STRING=" for line in f):
                print("warning: %s is built with sanitizers; figures are not "
                      "representative" % BUILD, file=sys.stderr)
    except OSError:
        pass
    p, home = up()
    try:
        with troupe.Client() as c:
            seed(c)
            throughput(c, p.pid)
    finally:
        down(p, home)
    print("(%d CPUs; load average %s)" % (os.cpu_count(),
                                          " ".join("%.1f" % x for x in
                                                   os.getloadavg())))


if __name__ == "__main__":
    main()
