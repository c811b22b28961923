"""troupe.Client against the real daemons (conftest.py): every call a user
makes, over ipc, TCP with a token (and a wrong one) and TLS, the chunked
and lazy upload, results in order and as they land, abort, and the errors
a user gets for an unreachable scheduler or bad arguments."""

import os
import signal
import socket
import subprocess
import threading

import pytest

import troupe
from conftest import wait_for
from troupe import TroupeError, pb

WAIT_S = 120.0  # bound on each wait for an execution


def wait_done(c, eid):
    return c.watch(eid, timeout=WAIT_S)


def outputs_of(c, eid):
    return [r.output for r in c.outputs(eid)]


def wait_until(what, pred, timeout=WAIT_S):
    return wait_for(what, pred, timeout)


def abort_and_settle(c, eid, reason=""):
    """Aborts eid and waits until no item runs on any worker (the daemons
    must stop within the bound at the end of the test).  The caller waits
    until the items to abort are RUNNING first: an item aborted while on
    its way to the worker was seen to keep running there (the worker then
    waits for it on SIGTERM), which is also why such items sleep only
    10 s, well within the daemons' stop bound."""
    ex = c.abort(eid, reason)
    wait_until("the aborted items to stop",
               lambda: all(w.running == 0 for w in c.workers()))
    return ex


def gate_cmd(gate):
    """An item command that waits (bounded) for the file gate, then prints
    its item; other items print at once.  Item "hold" waits."""
    return (f"if [ {{}} = hold ]; then i=0; while [ ! -e {gate} ] && "
            f"[ $i -lt 2400 ]; do sleep 0.05; i=$((i+1)); done; fi; "
            f"echo {{}}")


# --- the package ------------------------------------------------------------

def test_generated_messages_import_inside_the_package():
    # link.proto and store.proto import api.proto: protoc's absolute
    # `import api_pb2` must have become package-relative.
    import troupe._pb.link_pb2 as link
    import troupe._pb.store_pb2 as store
    assert link.api__pb2 is pb
    assert store.api__pb2 is pb
    assert pb.ExecutionSpec(command="x").command == "x"
    assert troupe.Client.__module__ == "troupe.client"


# --- executions -------------------------------------------------------------

def test_submit_watch_outputs_status(cluster):
    with cluster.client() as c:
        seen = []
        ex = c.submit(["a", b"b", "c"], command="tr a-z A-Z", name="upper")
        assert ex.id.startswith("ex-")
        assert ex.total == 3 and ex.sealed
        final = c.watch(ex.id, callback=seen.append, timeout=WAIT_S)
        assert final.phase == pb.PHASE_SUCCEEDED
        assert final.counts.succeeded == 3
        # The callback saw the state first and the final state last.
        assert seen and seen[-1] == final
        assert all(a.version < b.version for a, b in zip(seen, seen[1:]))
        assert outputs_of(c, ex.id) == [b"A", b"B", b"C"]
        rs = c.outputs(ex.id)
        assert [r.index for r in rs] == [0, 1, 2]
        assert all(r.state == pb.ITEM_SUCCEEDED for r in rs)
        assert rs[0].worker == "w1"
        st = c.status(ex.id)
        assert st.phase == pb.PHASE_SUCCEEDED and st.spec.name == "upper"
        assert troupe.is_terminal(st.phase)


def test_logs_of_each_attempt(cluster):
    # Item 1 fails its first attempt and succeeds its second (a marker
    # file tells them apart); every attempt's stderr is kept apart.
    mark = os.path.join(cluster.dir, "logs-mark")
    cmd = (f'read x; echo "err-$x-$TROUPE_ATTEMPT" >&2; '
           f'if [ "$x" = b ] && [ ! -e {mark} ]; then : > {mark}; exit 3; '
           f'fi; echo "$x"')
    with cluster.client() as c:
        ex = c.submit(["a", "b", "c"], command=cmd, retries=1)
        assert c.watch(ex.id, timeout=WAIT_S).phase == pb.PHASE_SUCCEEDED
        logs = c.logs(ex.id)
        assert [(g.index, g.attempt, g.data) for g in logs] == [
            (0, 1, b"err-a-1\n"), (1, 1, b"err-b-1\n"),
            (1, 2, b"err-b-2\n"), (2, 1, b"err-c-1\n")]
        assert all(g.dropped == 0 for g in logs)
        assert [g.data for g in c.logs(ex.id, item=1)] == [
            b"err-b-1\n", b"err-b-2\n"]
        assert [g.data for g in c.logs(ex.id, item=1, attempt=1)] == [
            b"err-b-1\n"]
        with pytest.raises(TroupeError) as e:
            c.logs(ex.id, item=7)
        assert e.value.code == "OUT_OF_RANGE"
        with pytest.raises(TroupeError) as e:
            c.logs("ex-nosuchthing")
        assert e.value.code == "NOT_FOUND"
        with pytest.raises(ValueError):
            c.logs(ex.id, attempt=1)


def test_the_local_cluster_is_found_as_the_cli_finds_it(cluster,
                                                          monkeypatch):
    for k in ("TROUPE_ADDR", "TROUPE_TOKEN", "TROUPE_TOKEN_FILE",
              "TROUPE_PROJECT"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("TROUPE_HOME", cluster.dir)
    with troupe.Client() as c:
        assert c.addr == f"ipc://{cluster.dir}/api.sock"
        assert c.health().state_dir == cluster.dir
    # XDG_STATE_HOME/troupe, then HOME/.local/state/troupe.
    monkeypatch.delenv("TROUPE_HOME")
    monkeypatch.setenv("XDG_STATE_HOME", "/nonexistent-xdg")
    with pytest.raises(TroupeError) as e:
        troupe.Client()
    assert "ipc:///nonexistent-xdg/troupe/api.sock" in e.value.message
    monkeypatch.delenv("XDG_STATE_HOME")
    monkeypatch.setenv("HOME", "/nonexistent-home")
    with pytest.raises(TroupeError) as e:
        troupe.Client()
    assert "/nonexistent-home/.local/state/troupe/api.sock" in str(e.value)
    monkeypatch.setenv("TROUPE_ADDR", cluster.addr)
    with troupe.Client() as c:
        assert c.health().state_dir == cluster.dir


def test_large_upload_goes_in_chunks_in_order(cluster):
    # 12,000 items in ~30 requests of 4 KiB, then 3 MiB in the default
    # 1 MiB chunks; a `cat` replica echoes each line, so every output
    # shows that its item arrived whole and at its index.  The 12,000
    # outputs also take two GetOutputs pages (10,000 at most a page).
    n = 12000
    items = [f"item-{i:05d}" for i in range(n)]
    with cluster.client() as c:
        calls = []
        real = c.call

        def counting(method, *a, **kw):
            calls.append(method)
            return real(method, *a, **kw)

        c.call = counting
        ex = c.submit(items, command="cat", replicas=2, ttl=30,
                      chunk_bytes=4096)
        assert ex.total == n and ex.sealed
        assert calls[0] == "CreateExecution"
        assert calls.count("AppendItems") >= 20
        assert calls[-1] == "SealExecution"
        assert wait_done(c, ex.id).phase == pb.PHASE_SUCCEEDED
        calls.clear()
        out = c.outputs(ex.id)
        assert calls.count("GetOutputs") >= 2
        assert [r.index for r in out] == list(range(n))
        assert [r.output.decode() for r in out] == items

        big = ["%04d" % i + "x" * 996 for i in range(3000)]
        calls.clear()
        ex = c.submit(big, command="cat", replicas=2, ttl=30)
        assert ex.total == 3000
        assert calls.count("AppendItems") >= 2
        assert wait_done(c, ex.id).phase == pb.PHASE_SUCCEEDED
        got = c.outputs(ex.id, page_size=7)
        assert [r.output.decode() for r in got] == big


def test_a_generator_is_read_lazily(cluster):
    n = 40000
    pulled = [0]
    at_create = []

    def gen():
        for i in range(n):
            pulled[0] += 1
            yield b"%d" % i

    with cluster.client() as c:
        # concurrency=1 and an abort: the point is the upload, not the run.
        ex = c.submit(gen(), command="exec sleep 5", concurrency=1,
                      chunk_bytes=8192,
                      on_created=lambda e: at_create.append(
                          (e.id, pulled[0])))
        # When the execution was created only its first chunk (and one
        # item of look-ahead) had been read from the generator.
        assert len(at_create) == 1
        assert at_create[0][0] == ex.id
        assert at_create[0][1] < 8192 // 2
        assert ex.total == n and ex.sealed and pulled[0] == n
        assert abort_and_settle(c, ex.id, "done").phase == pb.PHASE_ABORTED


def test_results_ordered_waits_for_the_prefix(cluster):
    gate = os.path.join(cluster.dir, "gate-ordered")
    items = ["hold"] + [f"x{i}" for i in range(7)]
    with cluster.client() as c:
        ex = c.submit(items, command=gate_cmd(gate))
        # Every item but the first finishes while item 0 holds.
        wait_until("7 items to succeed",
                   lambda: c.status(ex.id).counts.succeeded == 7)
        calls = []
        real = c.call

        def counting(method, *a, **kw):
            calls.append(method)
            if len(calls) == 3:
                open(gate, "w").close()
            return real(method, *a, **kw)

        c.call = counting
        got = list(c.results(ex.id))
        assert [r.index for r in got] == list(range(8))
        assert [r.output for r in got] == [i.encode() + b"\n" for i in items]
        assert all(r.state == pb.ITEM_SUCCEEDED for r in got)


def test_results_unordered_yields_items_as_they_land(cluster):
    gate = os.path.join(cluster.dir, "gate-unordered")
    items = ["hold"] + [f"x{i}" for i in range(5)]
    with cluster.client() as c:
        ex = c.submit(items, command=gate_cmd(gate))
        it = c.results(ex.id, ordered=False)
        first = next(it)
        # Item 0 cannot finish before the gate opens, so whatever came
        # first is another one, and it came while item 0 was held.
        assert first.index != 0 and first.state == pb.ITEM_SUCCEEDED
        rest = []
        calls = []
        real = c.call

        def counting(method, *a, **kw):
            calls.append(method)
            return real(method, *a, **kw)

        c.call = counting
        for r in it:
            rest.append(r)
            if len(rest) == 4:
                # The others are in; item 0 is still held.  The iterator
                # must wait on WatchExecution, not spin on GetOutputs.
                n_before = len(calls)
                t = threading.Timer(1.0, lambda: open(gate, "w").close())
                t.start()
        t.join()
        idx = [first.index] + [r.index for r in rest]
        assert sorted(idx) == list(range(6))
        assert idx[-1] == 0
        waited = calls[n_before:]
        assert "WatchExecution" in waited
        assert len(waited) < 40, f"{len(waited)} calls in 1 s: {waited}"


def test_results_of_failed_items_carry_the_error(cluster):
    with cluster.client() as c:
        ex = c.submit(["ok", "bad", "ok"],
                      command="if [ {} = bad ]; then echo boom >&2; "
                              "exit 3; fi; echo {}",
                      min_success_ratio=0.5, retries=0)
        got = sorted(c.results(ex.id, ordered=False), key=lambda r: r.index)
        assert [r.state for r in got] == [pb.ITEM_SUCCEEDED, pb.ITEM_FAILED,
                                          pb.ITEM_SUCCEEDED]
        assert "boom" in got[1].error and got[1].exit_code == 3
        assert wait_done(c, ex.id).phase == pb.PHASE_SUCCEEDED


def test_abort(cluster):
    with cluster.client() as c:
        ex = c.submit(["1", "2", "3"], command="exec sleep 10")
        # All running before the abort (see abort_and_settle).
        wait_until("the items to run",
                   lambda: c.status(ex.id).counts.running == 3)
        ab = abort_and_settle(c, ex.id, reason="changed my mind")
        assert ab.phase == pb.PHASE_ABORTED
        assert "changed my mind" in ab.error
        got = list(c.results(ex.id))
        assert [r.state for r in got] == [pb.ITEM_ABORTED] * 3
        with pytest.raises(TroupeError) as e:
            c.abort(ex.id)
        assert e.value.code == "FAILED_PRECONDITION"
        assert "already finished" in e.value.message


def test_watch_timeout_and_unknown_ids(cluster):
    with cluster.client() as c:
        ex = c.submit(["1"], command="exec sleep 10")
        # Running before the abort below (see abort_and_settle).
        wait_until("the item to run",
                   lambda: c.status(ex.id).counts.running == 1)
        with pytest.raises(TroupeError) as e:
            c.watch(ex.id, timeout=0.3)
        assert e.value.code == "DEADLINE_EXCEEDED"
        assert ex.id in e.value.message
        abort_and_settle(c, ex.id)
        for call in (c.status, c.watch, c.outputs, c.abort,
                     lambda i: list(c.results(i))):
            with pytest.raises(TroupeError) as e:
                call("ex-doesnotexist")
            assert e.value.code == "NOT_FOUND", call


def test_executions_listing_and_filters(cluster):
    with cluster.client() as c:
        ids = []
        for i in range(3):
            ex = c.submit([str(i)], command="echo {}", name=f"n{i}")
            wait_done(c, ex.id)
            ids.append(ex.id)
        held = c.submit(["1"], command="exec sleep 10")
        wait_until("the sleeper to run",
                   lambda: c.status(held.id).counts.running == 1)
        # All pages: page_size=1 makes one page per execution.
        every = c.executions(page_size=1)
        assert [e.id for e in every] == [held.id] + ids[::-1]
        assert [e.id for e in c.executions(phase="succeeded")] == ids[::-1]
        assert [e.id for e in c.executions("RUNNING")] == [held.id]
        assert [e.id for e in c.executions(pb.PHASE_RUNNING)] == [held.id]
        assert [e.id for e in c.executions(project="default")] == \
            [held.id] + ids[::-1]
        abort_and_settle(c, held.id)
        assert [e.id for e in c.executions(phase="aborted")] == [held.id]


def test_env_and_settings_reach_the_spec(cluster):
    with cluster.client() as c:
        ex = c.submit(["x"], command='printf "%s-%s" "$FOO" {}',
                      env={"FOO": "bar"}, concurrency=3, retries=2,
                      timeout=1.5, min_success_ratio=0.25,
                      execution_timeout=100.2,
                      resources={"cpu": "250m", "mem": "64Mi"})
        assert wait_done(c, ex.id).phase == pb.PHASE_SUCCEEDED
        assert outputs_of(c, ex.id) == [b"bar-x"]
        s = c.status(ex.id).spec
        assert list(s.env) == ["FOO=bar"]
        assert s.concurrency == 3 and s.retries == 2
        assert s.timeout_ms == 1500 and s.min_success_ratio == 0.25
        assert s.execution_timeout_s == 101
        assert s.resources.cpu_milli == 250
        assert s.resources.mem_bytes == 64 << 20
        # Unset oneofs stay unset (a task's own settings then apply).
        ex = c.submit(["y"], command="echo {}")
        s = c.status(ex.id).spec
        assert not s.HasField("retries") and not s.HasField("timeout_ms")
        assert not s.HasField("min_success_ratio")
        wait_done(c, ex.id)


# --- workers, actors, tasks -------------------------------------------------

def test_workers_and_drain(cluster):
    with cluster.client() as c:
        ws = c.workers()
        assert [w.name for w in ws] == ["w1"]
        assert ws[0].slots == 4 and ws[0].state == pb.WORKER_READY
        assert ws[0].pid == cluster.worker_pids()[0]
        h = c.health()
        assert h.workers == 1 and h.version
        assert c.drain_worker("w1").state == pb.WORKER_DRAINING
        with pytest.raises(TroupeError) as e:
            c.drain_worker("w9")
        assert e.value.code == "NOT_FOUND"


def test_actor_environments(cluster):
    with cluster.client() as c:
        env = c.register_actor("echo", "cat", 2, ttl_seconds=30,
                               resources={"cpu": 0.1})
        assert env.name == "echo" and env.replica_count == 2
        assert env.ttl_seconds == 30 and env.resources.cpu_milli == 100
        with pytest.raises(TroupeError) as e:
            c.register_actor("echo", "cat", 2)
        assert e.value.code == "ALREADY_EXISTS"
        env = c.register_actor("echo", "cat", 3, ttl_seconds=30,
                               replace=True)
        assert env.replica_count == 3
        ex = c.submit(["p", "q", "r"], actor="echo")
        assert wait_done(c, ex.id).phase == pb.PHASE_SUCCEEDED
        assert outputs_of(c, ex.id) == [b"p", b"q", b"r"]
        st = c.actor("echo")
        assert st.key == "echo" and st.env.command == "cat"
        assert st.replicas and all(r.pid > 0 for r in st.replicas)
        assert "echo" in [a.key for a in c.actors()]
        c.delete_actor("echo")
        # Gone from the registry (its warm replicas live out their TTL):
        # a second delete finds nothing, a new one needs no replace.
        with pytest.raises(TroupeError) as e:
            c.delete_actor("echo")
        assert e.value.code == "NOT_FOUND"
        assert c.register_actor("echo", "cat", 1).replica_count == 1
        with pytest.raises(TroupeError) as e:
            c.actor("nobody")
        assert e.value.code == "NOT_FOUND"


def test_ad_hoc_replicas_and_frames(cluster):
    with cluster.client() as c:
        ex = c.submit(["a", "b"], command="cat", replicas=2, ttl=30)
        assert wait_done(c, ex.id).phase == pb.PHASE_SUCCEEDED
        assert outputs_of(c, ex.id) == [b"a", b"b"]
        a = c.status(ex.id).spec.adhoc_actor
        assert a.replica_count == 2 and a.ttl_seconds == 30
        assert a.command == "cat" and a.protocol == pb.PROTOCOL_LINES
        assert any(x.key.startswith("adhoc-") for x in c.actors())
        # frames: binary-safe items through the dependency-free helper.
        pypath = os.environ["PYTHONPATH"]
        ex = c.submit([b"x\ny", b"\x00\xff"], replicas=1, protocol="frames",
                      command="/usr/bin/python3 -c 'import troupe_actor; "
                              "troupe_actor.serve(lambda b: b[::-1])'",
                      env={"PYTHONPATH": pypath})
        assert wait_done(c, ex.id).phase == pb.PHASE_SUCCEEDED
        assert outputs_of(c, ex.id) == [b"y\nx", b"\xff\x00"]
        assert c.status(ex.id).spec.adhoc_actor.protocol == \
            pb.PROTOCOL_FRAMES


def test_registered_tasks(cluster):
    with cluster.client() as c:
        t = c.register_task("up", "tr a-z A-Z", retries=1, timeout=5,
                            env={"A": "1"})
        assert t.name == "up" and t.retries == 1 and t.timeout_ms == 5000
        assert c.task("up").command == "tr a-z A-Z"
        assert [x.name for x in c.tasks()] == ["up"]
        with pytest.raises(TroupeError) as e:
            c.register_task("up", "cat")
        assert e.value.code == "ALREADY_EXISTS"
        ex = c.submit(["hi"], task="up")
        assert wait_done(c, ex.id).phase == pb.PHASE_SUCCEEDED
        assert outputs_of(c, ex.id) == [b"HI"]
        assert c.status(ex.id).task.retries == 1
        c.delete_task("up")
        assert c.tasks() == []
        with pytest.raises(TroupeError) as e:
            c.task("up")
        assert e.value.code == "NOT_FOUND"


def test_projects_and_tokens(cluster):
    with cluster.client() as c:
        p = c.create_project("p1", max_running=2)
        assert p.name == "p1" and p.max_running == 2
        assert "p1" in [x.name for x in c.projects()]
        tok = c.create_token("p1", "read", expires=3600)
        assert len(tok.secret) >= 16 and tok.token.role == pb.ROLE_READ
        assert tok.token.project == "p1" and tok.token.expires_ms > 0
        assert tok.token.id in [t.id for t in c.tokens()]
        c.revoke_token(tok.token.id)
        assert [t.revoked for t in c.tokens() if t.id == tok.token.id] == \
            [True]
        c.delete_project("p1")
        assert "p1" not in [x.name for x in c.projects()]


# --- TCP, tokens, TLS -------------------------------------------------------

def test_tcp_with_a_token(tcp_cluster, monkeypatch):
    with tcp_cluster.client() as c:
        ex = c.submit(["t"], command="echo {}")
        assert wait_done(c, ex.id).phase == pb.PHASE_SUCCEEDED
        assert outputs_of(c, ex.id) == [b"t\n"]
    # The token from TROUPE_TOKEN_FILE and the address from TROUPE_ADDR,
    # as the CLI reads them.
    for k, v in tcp_cluster.env.items():
        if k.startswith("TROUPE_"):
            monkeypatch.setenv(k, v)
    with troupe.Client() as c:
        assert c.health().workers == 1
    monkeypatch.delenv("TROUPE_TOKEN_FILE")
    monkeypatch.setenv("TROUPE_TOKEN", tcp_cluster.token)
    with troupe.Client() as c:
        assert c.health().workers == 1
    # A token of the read role may read, not submit.
    with troupe.Client() as c:
        sec = c.create_token("default", "read").secret
    with troupe.Client(token=sec) as c:
        assert [e.id for e in c.executions()] == [ex.id]
        with pytest.raises(TroupeError) as e:
            c.submit(["x"], command="true")
        assert e.value.code == "PERMISSION_DENIED"


def test_tcp_wrong_and_missing_token(tcp_cluster, monkeypatch):
    for k in ("TROUPE_TOKEN", "TROUPE_TOKEN_FILE"):
        monkeypatch.delenv(k, raising=False)
    with troupe.Client(tcp_cluster.addr, token="w" * 32) as c:
        with pytest.raises(TroupeError) as e:
            c.health()
        assert e.value.code in ("UNAUTHENTICATED", "PERMISSION_DENIED")
        assert e.value.addr == tcp_cluster.addr
        with pytest.raises(TroupeError) as e:
            c.submit(["x"], command="true")
        assert e.value.code in ("UNAUTHENTICATED", "PERMISSION_DENIED")
    with troupe.Client(tcp_cluster.addr) as c:
        with pytest.raises(TroupeError) as e:
            c.executions()
        assert e.value.code in ("UNAUTHENTICATED", "PERMISSION_DENIED")


def test_token_file_rules(tmp_path, monkeypatch):
    # Checked before any call: no scheduler is needed.
    monkeypatch.delenv("TROUPE_TOKEN", raising=False)
    f = tmp_path / "token"
    f.write_text("s" * 32 + "\n")
    os.chmod(f, 0o644)
    monkeypatch.setenv("TROUPE_TOKEN_FILE", str(f))
    with pytest.raises(TroupeError) as e:
        troupe.Client("ipc:///nonexistent/api.sock")
    assert e.value.code == "PERMISSION_DENIED"
    assert f"chmod 600 {f}" in e.value.message
    os.chmod(f, 0o600)
    f.write_text("short\n")
    with pytest.raises(TroupeError) as e:
        troupe.Client("ipc:///nonexistent/api.sock")
    assert e.value.code == "INVALID_ARGUMENT"
    assert "5 characters" in e.value.message and str(f) in e.value.message
    f.write_text("")
    with pytest.raises(TroupeError) as e:
        troupe.Client("ipc:///nonexistent/api.sock")
    assert "is empty" in e.value.message
    monkeypatch.setenv("TROUPE_TOKEN_FILE", str(tmp_path / "none"))
    with pytest.raises(TroupeError) as e:
        troupe.Client("ipc:///nonexistent/api.sock")
    assert "cannot read the token file" in e.value.message
    monkeypatch.setenv("TROUPE_TOKEN", "tiny")
    with pytest.raises(TroupeError) as e:
        troupe.Client("ipc:///nonexistent/api.sock")
    assert "TROUPE_TOKEN is 4 characters" in e.value.message


def test_tls(tls_cluster, tmp_path):
    with tls_cluster.client() as c:
        assert c.addr.startswith("tls+tcp://")
        ex = c.submit(["s"], command="echo {}")
        assert wait_done(c, ex.id).phase == pb.PHASE_SUCCEEDED
        assert outputs_of(c, ex.id) == [b"s\n"]
    # A CA file that cannot be used is named in the error.
    with pytest.raises(TroupeError) as e:
        troupe.Client(tls_cluster.addr, token=tls_cluster.token,
                      tls_ca="/nonexistent/ca.pem")
    assert e.value.code == "UNAVAILABLE"
    assert tls_cluster.addr in e.value.message
    assert "/nonexistent/ca.pem" in e.value.message


# --- failures a user meets --------------------------------------------------

def test_unreachable_scheduler_names_the_address():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    addr = f"tcp://127.0.0.1:{port}"
    with pytest.raises(TroupeError) as e:
        troupe.Client(addr, token="t" * 32)
    assert e.value.code == "UNAVAILABLE"
    assert addr in e.value.message and e.value.addr == addr
    assert "connection refused" in e.value.message
    with pytest.raises(TroupeError) as e:
        troupe.Client("ipc:///nonexistent-dir/api.sock")
    assert "ipc:///nonexistent-dir/api.sock" in str(e.value)


def test_a_scheduler_gone_mid_session(start_cluster):
    cl = start_cluster(workers=0)
    c = cl.client(timeout=2.0)
    assert c.health().workers == 0
    cl.stop()
    with pytest.raises(TroupeError) as e:
        c.health()
    assert e.value.code in ("DEADLINE_EXCEEDED", "UNAVAILABLE")
    assert cl.addr in e.value.message
    c.close()
    with pytest.raises(TroupeError) as e:
        c.health()
    assert e.value.code == "FAILED_PRECONDITION"


def test_threads_do_not_wait_on_each_others_long_poll(cluster):
    gate = os.path.join(cluster.dir, "gate-threads")
    with cluster.client(timeout=20.0) as c:
        ex = c.submit(["hold"], command=gate_cmd(gate))
        box = []
        t = threading.Thread(target=lambda: box.append(
            c.watch(ex.id, timeout=WAIT_S)))
        t.start()
        # While the other thread long-polls, this one's calls are answered
        # (a shared socket would have to wait for the watch to end, which
        # only the gate below can make happen).
        wait_until("the item to run",
                   lambda: c.status(ex.id).counts.running == 1)
        assert c.health().workers == 1
        open(gate, "w").close()
        t.join(WAIT_S)
        assert box and box[0].phase == pb.PHASE_SUCCEEDED


def test_bad_arguments_fail_before_any_call(cluster):
    with cluster.client() as c:
        bad = [
            (ValueError, dict(command="x", protocol="udp", replicas=1),
             "protocol"),
            (ValueError, dict(command="x", concurrency=-1), "concurrency"),
            (TypeError, dict(command="x", concurrency=1.5), "concurrency"),
            (ValueError, dict(command="x", retries=-2), "retries"),
            (ValueError, dict(command="x", timeout=-1), "timeout"),
            (ValueError, dict(command="x", min_success_ratio=1.5),
             "min_success_ratio"),
            (ValueError, dict(command="x", ttl=5), "ttl needs replicas"),
            (ValueError, dict(command="x", protocol="frames"),
             "protocol needs replicas"),
            (ValueError, dict(task="t", replicas=2), "replicas needs"),
            (ValueError, dict(command="x", replicas=0), "replicas"),
            (ValueError, dict(command="x", task="t"), "exclude"),
            (ValueError, dict(), "needs command"),
            (ValueError, dict(command=""), "command is empty"),
            (ValueError, dict(command="x", env={"1X": "y"}), "env"),
            (TypeError, dict(command="x", env={"X": 1}), "env"),
            (ValueError, dict(command="x", resources={"cpu": "lots"}),
             "cpu"),
            (ValueError, dict(command="x", resources={"gpu": 1}),
             "unknown keys"),
            (ValueError, dict(command="x", chunk_bytes=0), "chunk_bytes"),
        ]
        for exc, kw, words in bad:
            with pytest.raises(exc) as e:
                c.submit(["1"], **kw)
            assert words in str(e.value), (kw, str(e.value))
        with pytest.raises(TypeError, match="not one str"):
            c.submit("abc", command="x")
        with pytest.raises(TypeError, match="not int"):
            c.submit(5, command="x")
        with pytest.raises(TypeError, match="item 1 is int"):
            c.submit(["a", 2], command="x")
        with pytest.raises(ValueError, match="phase"):
            c.executions(phase="sleeping")
        with pytest.raises(ValueError, match="role"):
            c.create_token("default", "boss")
        with pytest.raises(ValueError, match="replica_count"):
            c.register_actor("a", "cat")
        # None of these reached the scheduler.
        assert c.executions() == []
    with pytest.raises(ValueError, match="timeout"):
        troupe.Client(cluster.addr, timeout=0)
    with pytest.raises(TypeError, match="addr"):
        troupe.Client(5)


def test_a_bad_item_after_the_first_chunk_aborts_the_upload(cluster):
    def gen():
        for i in range(5000):
            yield b"%d" % i
        yield 3.5

    with cluster.client() as c:
        with pytest.raises(TypeError, match="item 5000 is float"):
            c.submit(gen(), command="exec sleep 5", concurrency=1,
                     chunk_bytes=4096)
        (ex,) = c.executions()
        assert ex.phase == pb.PHASE_ABORTED
        assert "upload" in ex.error
        assert not ex.sealed
        wait_until("the aborted items to stop",
                   lambda: all(w.running == 0 for w in c.workers()))


def test_interrupt_while_waiting(cluster):
    # Ctrl-C during a long poll interrupts at once, and the client is
    # usable afterwards (the next request abandons the old one).
    with cluster.client() as c:
        ex = c.submit(["1"], command="exec sleep 10")
        wait_until("the item to run",
                   lambda: c.status(ex.id).counts.running == 1)
        t = threading.Timer(0.5, lambda: os.kill(os.getpid(),
                                                 signal.SIGINT))
        t.start()
        with pytest.raises(KeyboardInterrupt):
            c.watch(ex.id, timeout=WAIT_S)
        t.join()
        assert abort_and_settle(c, ex.id).phase == pb.PHASE_ABORTED
        assert c.status(ex.id).phase == pb.PHASE_ABORTED


def test_tls_refuses_a_certificate_it_does_not_trust(tls_cluster,
                                                    tmp_path):
    other = str(tmp_path / "other.pem")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
         "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2", "-subj",
         "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(tmp_path / "other-key.pem"), "-out", other],
        check=True, capture_output=True, timeout=60)
    with pytest.raises(TroupeError) as e:
        with troupe.Client(tls_cluster.addr, token=tls_cluster.token,
                           tls_ca=other, timeout=5.0) as c:
            c.health()
    assert e.value.code in ("UNAVAILABLE", "DEADLINE_EXCEEDED")
    assert tls_cluster.addr in e.value.message
