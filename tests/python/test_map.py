"""Python functions as tasks (README, "Python SDK: functions as tasks"):
troupe.map, @troupe.task and ActorEnvironment against the REAL daemons of
the build (conftest.py), checking what a user would check: the outputs, the
replicas' pids, the errors they are shown."""

import os
import signal
import threading
import time

import pytest

import pysdk_funcs as funcs
import troupe
from conftest import wait_for
from troupe import _codec, tasks

WAIT_S = 60.0  # every wait is bounded; ASan daemons on a loaded machine
EXEC_S = 120  # and every map, whole


def _bounded(f):
    """f (troupe.map, troupe.imap) with execution_timeout=EXEC_S unless
    given: a map that hangs fails the test instead of holding it."""
    def g(*args, **kwargs):
        kwargs.setdefault("execution_timeout", EXEC_S)
        return f(*args, **kwargs)
    return g


tmap, timap = _bounded(troupe.map), _bounded(troupe.imap)


def replicas(c, name):
    """The live replicas of the actor environment name, as last reported."""
    for a in c.actors():
        if a.env.name == name:
            return list(a.replicas)
    return []


def settled(c, name, served):
    """The replicas of name once they report `served` items in all (the
    workers report with their next Pull)."""
    return wait_for(f"{name}'s replicas to report {served} items",
                    lambda: (lambda rs: rs if sum(r.items_served for r in rs)
                             >= served else None)(replicas(c, name)))


# -- values -------------------------------------------------------------------

JSON_VALUES = [0, -5, 2**70, 1.5, "é\n\x00", None, True, False, [], {},
               [1, "a", None], {"k": [1, 2.5, {"n": None}]}]
PICKLED_VALUES = [(1, 2), {1, 2}, {1: "int key"}, bytearray(b"ab"),
                  funcs.Point(1, 2), [(1,)], {"t": (1, 2)}]


def test_values_come_back_equal_and_bytes_untouched(cluster):
    env = troupe.ActorEnvironment(name="values", replica_count=1,
                                  ttl_seconds=60)
    ident = env.task(funcs.ident)
    raw = bytes(range(256)) + b"\n\r\x00"
    with cluster.client() as c:
        items = JSON_VALUES + PICKLED_VALUES + [raw, b""]
        out = tmap(ident, items, client=c)
        assert out == items
        assert [type(v) for v in out] == [type(v) for v in items]
        # What troupe itself holds: JSON as JSON text, bytes as themselves
        # behind one tag byte.
        eid = c.executions()[0].id
        stored = [r.output for r in c.outputs(eid)]
        assert stored[JSON_VALUES.index({"k": [1, 2.5, {"n": None}]})] == \
            b'{"k":[1,2.5,{"n":null}]}'
        assert stored[len(JSON_VALUES) + len(PICKLED_VALUES)] == b"\x00" + raw
        # The function sees the argument's own type.
        assert tmap(env.task(funcs.type_name), [b"x", (1,), 1.0, "s"],
                          client=c) == ["bytes", "tuple", "float", "str"]


def test_codec_round_trip_without_a_cluster():
    for v in JSON_VALUES + PICKLED_VALUES + [b"\x00\x01", "\ud800"]:
        b = _codec.encode_value(v)
        assert _codec.decode_value(b) == v
        assert type(_codec.decode_value(b)) is type(v)
    assert _codec.encode_value(b"abc") == b"\x00abc"
    assert _codec.encode_value([1, "x"]) == b'[1,"x"]'
    with pytest.raises(_codec.CodecError, match="generator"):
        _codec.encode_value(i for i in range(2))


def _serve_bytes(data):
    """What troupe.replica.serve writes for stdin holding data (run here,
    on pipes), and what it raised (None)."""
    import io
    import troupe_actor
    from troupe import replica

    r_in, w_in = os.pipe()
    r_out, w_out = os.pipe()
    os.write(w_in, data)
    os.close(w_in)
    raised = None
    try:
        replica.serve(r_in, w_out)
    except _codec.CodecError as exc:
        raised = exc
    os.close(r_in)
    os.close(w_out)
    with os.fdopen(r_out, "rb") as f:
        out = f.read()
    replies, f = [], io.BytesIO(out)
    while (m := troupe_actor.read_frame(f)) is not None:
        replies.append(troupe_actor.decode_reply(m))
    return replies, raised


def test_replica_frames_without_a_cluster():
    import troupe_actor

    header = _codec.function_header("r", b"pysdk_funcs\0square")

    def req(seq, value):
        return troupe_actor.frame(troupe_actor.encode_request(
            seq, header + _codec.encode_value(value)))

    # Small and large sequence numbers and inputs (multi-byte varints),
    # a batch, and an error that names its element.
    big = "x" * 300
    batch = troupe_actor.frame(troupe_actor.encode_request(
        7, header + _codec.encode_batch([1, 2, 3])))
    bad = troupe_actor.frame(troupe_actor.encode_request(
        8, header + _codec.encode_batch([1, "s", 3])))
    replies, raised = _serve_bytes(req(1, 3) + req(300, 4) +
                                   req(2, [big]) + batch + bad)
    assert raised is None
    assert replies[0] == (1, b"9", None)
    assert replies[1] == (300, b"16", None)
    assert replies[2][0] == 2 and replies[2][1] is None
    assert "TypeError" in replies[2][2]
    assert replies[3] == (7, _codec.encode_batch([1, 4, 9]), None)
    assert replies[4][0] == 8 and replies[4][2].startswith(
        "batch element 1:\n")
    # A length prefix over 10 bytes, and EOF inside a frame: refused,
    # after answering what came before.
    replies, raised = _serve_bytes(req(1, 2) + b"\xff" * 11)
    assert replies == [(1, b"4", None)]
    assert "over 10 bytes" in str(raised)
    replies, raised = _serve_bytes(req(1, 2)[:-1])
    assert replies == [] and "EOF inside a frame" in str(raised)


# -- how functions travel -----------------------------------------------------

def test_by_reference_and_by_value(cluster):
    offset = 1000

    def local(x):  # a closure: by value, with offset captured
        return x + offset

    assert tasks.function_ref(funcs.square)[0] == "r"
    assert tasks.function_ref(local)[0] == "v"
    assert tasks.function_ref(lambda x: x)[0] == "v"
    assert tasks.function_ref(funcs.square, by_value=True)[0] == "v"
    env = troupe.ActorEnvironment(name="both", replica_count=2,
                                  ttl_seconds=60)
    with cluster.client() as c:
        assert tmap(env.task(funcs.square), range(20), client=c) == \
            [i * i for i in range(20)]
        assert tmap(env.task(local), range(20), client=c) == \
            [i + 1000 for i in range(20)]
        assert tmap(env.task(lambda s: s.upper()), ["a", "b"],
                          client=c) == ["A", "B"]
        # A plain function, no decorator: a process per item.
        assert tmap(local, [1, 2], client=c) == [1001, 1002]
        # print() in the function goes to stderr, not into the outputs.
        assert tmap(env.task(funcs.noisy), [1, "two"], client=c) == \
            [1, "two"]


def test_functions_decorated_first_travel_by_key(cluster):
    env = troupe.ActorEnvironment(name="keyed", replica_count=1,
                                  ttl_seconds=60)
    k = 3

    @env.task
    def triple(x):
        return x * k

    with cluster.client() as c:
        header, kw = triple.prepare(c)
        assert header[1] == ord("k")  # a key, not the pickle, in each item
        assert len(header) < 24
        assert tmap(triple, [1, 2], client=c) == [3, 6]
        # Decorated after the environment's first use: inline, still works.
        late = env.task(lambda x: x - k)
        assert late.prepare(c)[0][1] == ord("v")
        assert tmap(late, [5], client=c) == [2]


# -- failures -----------------------------------------------------------------

def test_exception_fails_its_item_alone_with_traceback(cluster):
    env = troupe.ActorEnvironment(name="errs", replica_count=1,
                                  ttl_seconds=60)
    f = env.task(funcs.fail_on)
    with cluster.client() as c:
        out = tmap(f, range(10), min_success_ratio=0.8, client=c)
        assert out == [1, 2, 3, 4, 5, 6, 7, None, 9, 10]
        with pytest.raises(troupe.MapError) as e:
            tmap(f, range(10), client=c)
        err = e.value
        assert isinstance(err, troupe.TroupeError)
        assert err.failed == 1 and err.total == 10
        assert err.phase == "FAILED"
        i, text = err.errors[0]
        assert i == 7
        assert "Traceback" in text and "fail_on" in text
        assert "ValueError: seven is right out" in text
        assert "pysdk_funcs.py" in text
        assert "1 of 10 items failed" in str(err)
        # Below the ratio: raises too, with the ratio's reason.
        with pytest.raises(troupe.MapError, match="min success ratio"):
            tmap(f, range(10), min_success_ratio=0.95, client=c)
        # The replica went on: one process served all three maps (items
        # 0..7 of each at least; 8 and 9 of the failing maps may have been
        # aborted first).
        rs = settled(c, "errs", 26)
        assert len(rs) == 1


def test_output_that_cannot_be_encoded_fails_the_item(cluster):
    env = troupe.ActorEnvironment(name="enc", replica_count=1, ttl_seconds=60)
    with cluster.client() as c:
        with pytest.raises(troupe.MapError, match="cannot encode a value of "
                           "type generator"):
            tmap(env.task(funcs.unencodable), [1], client=c)


def test_retries(cluster, tmp_path):
    env = troupe.ActorEnvironment(name="retry", replica_count=2,
                                  ttl_seconds=60)
    f = env.task(funcs.fail_first_attempt)
    with cluster.client() as c:
        paths = [str(tmp_path / f"a{i}") for i in range(6)]
        assert tmap(f, paths, retries=1, client=c) == ["ok"] * 6
        fresh = [str(tmp_path / f"b{i}") for i in range(3)]
        with pytest.raises(troupe.MapError) as e:
            tmap(f, fresh, client=c)
        assert "first attempt fails on purpose" in e.value.errors[0][1]
        # A task's own default, overridden by map's argument.
        g = env.task(funcs.fail_first_attempt, retries=1)
        assert tmap(g, [str(tmp_path / "c")], client=c) == ["ok"]


def test_timeout_per_item(cluster):
    env = troupe.ActorEnvironment(name="timeout", replica_count=1,
                                  ttl_seconds=60)
    with cluster.client() as c:
        # Warm first: a booting replica's start-up can count against the
        # timeout of the first item written to it.
        assert tmap(env.task(funcs.ident), [1], client=c) == [1]
        with pytest.raises(troupe.MapError) as e:
            tmap(env.task(funcs.sleep_for), [0, 30], timeout=3,
                       client=c)
        assert e.value.failed == 1 and e.value.errors[0][0] == 1
        assert "timed out" in e.value.errors[0][1]
        assert tmap(env.task(funcs.sleep_for), [0, 30], timeout=3,
                          min_success_ratio=0.5, client=c) == [0, None]


# -- actor environments -------------------------------------------------------

def test_warm_replicas_serve_another_function(cluster):
    env = troupe.ActorEnvironment(name="warm", replica_count=1,
                                  ttl_seconds=120)
    by_ref = env.task(funcs.pid)
    by_value = env.task(lambda _x: os.getpid())
    with cluster.client() as c:
        first = set(tmap(by_ref, range(30), client=c))
        assert len(first) == 1
        # (The worker's replica pid is the process it started; the
        # function's os.getpid() is the Python process under it.)
        before = [r.pid for r in settled(c, "warm", 30)]
        assert len(before) == 1
        second = set(tmap(by_value, range(30), client=c))
        assert second == first  # no process started for the second map
        after = settled(c, "warm", 60)
        assert [r.pid for r in after] == before
        # The environment was registered once, with its definition.
        a = c.actor("warm")
        assert a.env.replica_count == 1 and a.env.ttl_seconds == 120
        assert a.env.protocol == troupe.pb.PROTOCOL_FRAMES
        assert "-m troupe.replica" in a.env.command


def test_same_definition_is_not_replaced(cluster):
    # Two ActorEnvironment objects with the same definition (two runs of
    # one script): the second finds the first's replicas.
    def make():
        return troupe.ActorEnvironment(
            name="again", replica_count=1, ttl_seconds=120,
            requests=troupe.Resources(cpu="125m", mem="256Mi"))

    with cluster.client() as c:
        a = set(tmap(make().task(funcs.pid), range(5), client=c))
        b = set(tmap(make().task(funcs.pid), range(5), client=c))
        assert a == b
        res = c.actor("again").env.resources
        assert (res.cpu_milli, res.mem_bytes) == (125, 256 << 20)
        # A changed definition replaces it: new replicas.
        other = troupe.ActorEnvironment(name="again", replica_count=1,
                                        ttl_seconds=60)
        d = set(tmap(other.task(funcs.pid), range(5), client=c))
        assert d.isdisjoint(a)
        assert c.actor("again").env.ttl_seconds == 60


def test_replacing_keeps_the_functions_it_carried(cluster):
    # Two programs share an environment's name with different functions:
    # the second replaces the definition (its pickle is not there), and
    # the first, which registered before, still finds its own.
    k = 1

    def plus(x):
        return x + k

    def minus(x):
        return x - k

    first = troupe.ActorEnvironment(name="shared", replica_count=1,
                                    ttl_seconds=120)
    second = troupe.ActorEnvironment(name="shared", replica_count=1,
                                     ttl_seconds=120)
    p, m = first.task(plus), second.task(minus)
    with cluster.client() as c:
        assert tmap(p, [1], client=c) == [2]
        assert tmap(m, [1], client=c) == [0]
        assert tmap(p, [1, 2], client=c) == [2, 3]
        assert p.prepare(c)[0][1] == ord("k")  # by key, found there


def test_ttl_expiry(cluster):
    env = troupe.ActorEnvironment(name="brief", replica_count=1,
                                  ttl_seconds=1)
    with cluster.client() as c:
        (p,) = set(tmap(env.task(funcs.pid), range(3), client=c))
        wait_for("the replica to go after its TTL",
                 lambda: not replicas(c, "brief"), timeout=WAIT_S)

        def gone():
            try:
                os.kill(p, 0)
            except ProcessLookupError:
                return True
            return False

        wait_for(f"replica pid {p} to exit", gone)
        # The next map starts a new one.
        (q,) = set(tmap(env.task(funcs.pid), range(3), client=c))
        assert q != p


def test_replica_killed_mid_item(cluster, tmp_path):
    env = troupe.ActorEnvironment(name="victim", replica_count=1,
                                  ttl_seconds=60)
    f = env.task(funcs.die_once)
    victim = tmp_path / "victim"
    killed = []

    def killer():
        deadline = time.monotonic() + WAIT_S
        while not victim.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        if victim.exists():
            pid = int(victim.read_text())
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)

    t = threading.Thread(target=killer)
    t.start()
    try:
        with cluster.client() as c:
            out = tmap(f, [str(tmp_path)], client=c)
    finally:
        t.join(WAIT_S)
    assert killed, "the first attempt never started"
    # The item completed, on a new replica.
    assert len(out) == 1 and out[0] not in (-1, killed[0])


# -- per-item processes (@troupe.task) ----------------------------------------

def test_task_runs_a_process_per_item(cluster):
    pid = troupe.task(funcs.pid)
    with cluster.client() as c:
        pids = tmap(pid, range(4), concurrency=2, client=c)
        assert len(set(pids)) == 4
        with pytest.raises(troupe.MapError) as e:
            tmap(troupe.task(funcs.fail_on), [6, 7], client=c)
        assert e.value.errors[0][0] == 1
        assert "ValueError: seven is right out" in e.value.errors[0][1]
        k = 5
        assert tmap(troupe.task(lambda x: (x, k)), [b"\x00"],
                          client=c) == [(b"\x00", 5)]
    # Calling a task calls the function, here.
    assert pid(0) == os.getpid()


# -- batches ------------------------------------------------------------------

def _execution(c, name):
    """The execution troupe.map ran under the name given to it."""
    return next(e for e in c.executions() if e.spec.name == name)


def test_batches_carry_many_arguments_an_item(cluster):
    env = troupe.ActorEnvironment(name="batches", replica_count=2,
                                  ttl_seconds=60)
    sq = env.task(funcs.square)
    with cluster.client() as c:
        # 25 arguments in batches of 10: 3 items on the cluster, 25
        # outputs in input order (the last batch holds 5).
        assert tmap(sq, range(25), batch_size=10, client=c,
                    name="sq-batched") == [i * i for i in range(25)]
        ex = _execution(c, "sq-batched")
        assert ex.total == 3 and ex.counts.succeeded == 3
        # Values keep their types inside a batch (a pickled batch when one
        # argument is not JSON), bytes untouched.
        vals = JSON_VALUES + PICKLED_VALUES + [b"\x00\xffraw"]
        got = tmap(env.task(funcs.ident), vals, batch_size=4, client=c)
        assert got == vals
        assert [type(v) for v in got] == [type(v) for v in vals]
        # Streamed, either order, from a generator.
        assert list(timap(sq, (i for i in range(23)), batch_size=5,
                          client=c)) == [i * i for i in range(23)]
        pairs = list(tmap(sq, range(23), batch_size=5, ordered=False,
                          client=c))
        assert sorted(pairs) == [(i, i * i) for i in range(23)]
    # A process per batch, not per argument.
    pid = troupe.task(funcs.pid)
    with cluster.client() as c:
        pids = tmap(pid, range(6), batch_size=3, client=c)
        assert len(set(pids)) == 2
        assert pids[0:3] == [pids[0]] * 3 and pids[3:6] == [pids[3]] * 3


def test_a_failing_argument_fails_its_batch(cluster):
    env = troupe.ActorEnvironment(name="batch-errs", replica_count=1,
                                  ttl_seconds=60)
    for f in (env.task(funcs.fail_on), troupe.task(funcs.fail_on)):
        with cluster.client() as c:
            # 7 is element 2 of the batch 5..9: that batch alone fails.
            out = tmap(f, range(12), batch_size=5, min_success_ratio=0.5,
                       client=c)
            assert out == [1, 2, 3, 4, 5] + [None] * 5 + [11, 12]
            with pytest.raises(troupe.MapError) as e:
                tmap(f, range(12), batch_size=5, client=c)
            err = e.value
            assert err.failed == 5 and err.total == 12
            i, text = err.errors[0]
            assert i == 7
            assert text.startswith("batch element 2:\n")
            assert "ValueError: seven is right out" in text
            assert "pysdk_funcs.py" in text and "replica.py" not in text
            assert "5 of 12 items failed" in str(err)
            # The short last batch: 7 alone in a batch of 3 (6, 7, 8).
            with pytest.raises(troupe.MapError) as e:
                tmap(f, range(9), batch_size=6, client=c)
            assert e.value.failed == 3 and e.value.errors[0][0] == 7


def test_batch_size_must_be_a_positive_int(cluster):
    sq = troupe.task(funcs.square)
    with pytest.raises(ValueError, match="batch_size must be at least 1"):
        troupe.map(sq, [1], batch_size=0)
    for bad in ("3", 2.0, True):
        with pytest.raises(TypeError, match="batch_size must be an int"):
            troupe.map(sq, [1], batch_size=bad)
    with cluster.client() as c, \
            pytest.raises(TypeError, match="item 4: cannot encode"):
        tmap(sq, [1, 2, 3, 4, (x for x in [])], batch_size=3, client=c)


# -- streaming, order, Ctrl-C -------------------------------------------------

def test_generator_and_unordered_results(cluster):
    env = troupe.ActorEnvironment(name="stream", replica_count=2,
                                  ttl_seconds=60)
    sq = env.task(funcs.square)
    with cluster.client() as c:
        n = 3000
        assert tmap(sq, (i for i in range(n)), client=c) == \
            [i * i for i in range(n)]
        pairs = list(tmap(sq, (i for i in range(100)), ordered=False,
                                client=c))
        assert sorted(pairs) == [(i, i * i) for i in range(100)]
        assert list(timap(sq, range(50), client=c)) == \
            [i * i for i in range(50)]
        assert tmap(sq, iter([]), client=c) == []


def test_ctrl_c_aborts_the_execution(start_cluster, tmp_path):
    # --drain-timeout 5: after this abort the worker has been seen to count
    # the items written ahead to the killed replica as still running, so
    # that its SIGTERM at the end waits out the drain (30 s by default).
    # A worker matter, reported; not what this test is about.
    cluster = start_cluster(worker_args=["--drain-timeout", "5"])
    env = troupe.ActorEnvironment(name="slow", replica_count=1,
                                  ttl_seconds=60)
    started = tmp_path / "started"
    with cluster.client() as c:
        def interrupt():
            wait_for("the first item to start", started.exists)
            os.kill(os.getpid(), signal.SIGINT)

        t = threading.Thread(target=interrupt)
        t.start()
        try:
            with pytest.raises(KeyboardInterrupt):
                tmap(env.task(funcs.mark_and_sleep),
                           [[str(started), 30]] * 3, client=c)
        finally:
            t.join(WAIT_S)
        (ex,) = c.executions()
        assert ex.phase == troupe.pb.PHASE_ABORTED
        assert "Ctrl-C" in ex.error


# -- TCP and tokens -----------------------------------------------------------

def test_tcp_with_token_and_wrong_token(tcp_cluster):
    env = troupe.ActorEnvironment(name="tcp", replica_count=1,
                                  ttl_seconds=60)
    sq = env.task(funcs.square)
    with tcp_cluster.client() as c:
        assert tmap(sq, range(5), client=c) == [0, 1, 4, 9, 16]
        assert tmap(troupe.task(funcs.square), [3], client=c) == [9]
    with troupe.Client(tcp_cluster.addr, token="w" * 32) as bad:
        with pytest.raises(troupe.TroupeError) as e:
            tmap(troupe.ActorEnvironment(name="tcp2").task(
                funcs.square), range(5), client=bad)
        assert e.value.code in ("UNAUTHENTICATED", "PERMISSION_DENIED")
        with pytest.raises(troupe.TroupeError) as e:
            tmap(troupe.task(funcs.square), range(5), client=bad)
        assert e.value.code in ("UNAUTHENTICATED", "PERMISSION_DENIED")


# -- bad arguments ------------------------------------------------------------

def test_bad_arguments_get_clear_errors(cluster, monkeypatch):
    with pytest.raises(ValueError, match="replica_count"):
        troupe.ActorEnvironment(name="x", replica_count=0)
    with pytest.raises(ValueError, match="ttl_seconds"):
        troupe.ActorEnvironment(name="x", ttl_seconds=0)
    with pytest.raises(ValueError, match="name"):
        troupe.ActorEnvironment(name="", replica_count=1)
    with pytest.raises(TypeError, match="replica_count"):
        troupe.ActorEnvironment(name="x", replica_count="10")
    with pytest.raises(ValueError, match="cpu"):
        troupe.Resources(cpu="lots")
    with pytest.raises(ValueError, match="mem"):
        troupe.Resources(mem="12 parsecs")
    with cluster.client() as c:
        with pytest.raises(TypeError, match="needs a function"):
            tmap(42, [1], client=c)
        with pytest.raises(TypeError, match="iterable"):
            tmap(funcs.square, "abc", client=c)
        with pytest.raises(ValueError, match="min_success_ratio"):
            tmap(funcs.square, [1], min_success_ratio=1.5, client=c)
        with pytest.raises(TypeError, match="item 1: cannot encode a value "
                           "of type lock"):
            tmap(funcs.square, [1, threading.Lock()], client=c)
        with pytest.raises(TypeError, match="by reference"):
            tmap(lambda x: x, [1], by_value=False, client=c)
        monkeypatch.setattr(_codec, "_cloudpickle", None)
        with pytest.raises(TypeError, match="python3-cloudpickle"):
            tmap(lambda x: x, [1], client=c)
        # None of these left an execution behind.
        assert c.executions() == []
