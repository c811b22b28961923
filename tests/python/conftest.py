"""pytest fixtures that run the REAL troupe daemons of the build tree.

As tests/integration/harness.c does: a fresh temporary directory is the
cluster's TROUPE_HOME; troupe-scheduler listens on ipc sockets there (or on
loopback TCP ports with a token file of mode 0600), troupe-worker daemons
(w1, w2, ...) join it, and every wait is bounded.  At the end each daemon
gets SIGTERM and must exit 0 (a crash, or an ASan/LSan report at exit,
fails the test with the daemons' logs).

The daemons come from $TROUPE_BIN_DIR (the CMake build directory:
daemon/troupe-scheduler, daemon/troupe-worker, client/troupe); the tests
import troupe from $TROUPE_BIN_DIR/python (ctest sets PYTHONPATH).

Fixtures:
  cluster        ipc, no token, one worker of 4 slots (per test)
  tcp_cluster    TCP on 127.0.0.1 with a token file (per test)
  tls_cluster    tls+tcp:// with a self-signed certificate (openssl)
  start_cluster  a factory: start_cluster(workers=2, slots=8, tcp=False,
                 sched_args=[...], worker_args=[...]) -> Cluster, stopped
                 (and checked) at the end of the test
"""

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

import pytest

READY_S = 60.0  # ASan-built daemons start slowly on a loaded machine
STOP_S = 20.0   # the longest a daemon may take to exit (harness's H_STOP_MS)


def wait_for(what, cond, timeout=60.0, every=0.05):
    """Polls cond() until it returns something true, and returns that;
    fails the test after timeout seconds (every wait in these tests is
    bounded: ASan daemons on a loaded machine can be slow, never stuck)."""
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(every)


def bin_dir():
    """The build directory holding the daemons ($TROUPE_BIN_DIR)."""
    b = os.environ.get("TROUPE_BIN_DIR")
    if not b or not os.path.isfile(os.path.join(b, "daemon",
                                                "troupe-scheduler")):
        pytest.fail("set TROUPE_BIN_DIR to the build directory (with "
                    f"daemon/troupe-scheduler); it is {b!r}")
    return b


def free_ports(n):
    """n distinct free TCP ports on 127.0.0.1 (bound at once, then freed)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


class Proc:
    """One daemon: its argv, log file and Popen."""

    def __init__(self, name, argv, log):
        self.name, self.argv, self.log = name, argv, log
        self.popen = None
        self.killed = False  # by kill_worker, on purpose

    def alive(self):
        return self.popen is not None and self.popen.poll() is None


class Cluster:
    """A scheduler and its workers in a temporary directory.

    .dir    the directory (TROUPE_HOME of every daemon)
    .addr   the API address (ipc://DIR/api.sock or tcp://127.0.0.1:PORT)
    .wlink  the worker link's address
    .token  the token (None for the local, ipc cluster)
    .token_file  its file (mode 0600), or None
    .env    an environment for a program that should find this cluster
            as the CLI would: TROUPE_HOME, PATH with the build's binaries,
            and for TCP TROUPE_ADDR and TROUPE_TOKEN_FILE
    .bin    the build directory
    """

    def __init__(self, workers=1, slots=4, tcp=False, tls=False,
                 sched_args=(), worker_args=()):
        self.bin = bin_dir()
        self.dir = tempfile.mkdtemp(prefix="troupe-py-")
        tcp = tcp or tls
        self.tcp = tcp
        self.tls_ca = None
        self.slots = slots
        self.worker_args = list(worker_args)
        self.token = self.token_file = None
        self.workers = []
        self.stopped = False
        argv = [os.path.join(self.bin, "daemon", "troupe-scheduler"),
                "--home", self.dir]
        if tcp:
            api, wl = free_ports(2)
            self.token = os.urandom(24).hex()
            self.token_file = os.path.join(self.dir, "token")
            fd = os.open(self.token_file, os.O_WRONLY | os.O_CREAT, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(self.token + "\n")
            scheme = "tls+tcp" if tls else "tcp"
            self.addr = f"{scheme}://127.0.0.1:{api}"
            self.wlink = f"{scheme}://127.0.0.1:{wl}"
            argv += ["--listen", self.addr, "--worker-listen", self.wlink,
                     "--token-file", self.token_file]
            if tls:
                self.tls_ca = self._make_cert("cert")
                argv += ["--tls-cert", self.tls_ca, "--tls-key",
                         os.path.join(self.dir, "cert-key.pem")]
        else:
            # No --listen: the defaults under --home are under test too.
            self.addr = f"ipc://{self.dir}/api.sock"
            self.wlink = f"ipc://{self.dir}/worker.sock"
        argv += list(sched_args)
        self.sched = Proc("scheduler", argv,
                          os.path.join(self.dir, "h-scheduler.log"))
        self.env = self._env(for_cli=True)
        print(f"conftest: cluster in {self.dir}, API {self.addr}",
              file=sys.stderr)
        try:
            self._spawn(self.sched)
            self.wait_health()
            for _ in range(workers):
                self.add_worker()
            if workers:
                self.wait_workers(workers)
        except BaseException:
            self.dump_logs()
            self._destroy()
            raise

    def _make_cert(self, name):
        """A self-signed certificate for 127.0.0.1 (NAME.pem, NAME-key.pem)
        made by openssl, as tests/integration/test_tls.c makes its own."""
        pem = os.path.join(self.dir, f"{name}.pem")
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
             "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
             "-subj", "/CN=127.0.0.1", "-addext",
             "subjectAltName=IP:127.0.0.1", "-keyout",
             os.path.join(self.dir, f"{name}-key.pem"), "-out", pem],
            check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            timeout=60)
        return pem

    # -- processes --

    def _env(self, for_cli):
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("TROUPE_") and k != "PATH"}
        env["TROUPE_HOME"] = self.dir
        env["PATH"] = (f"{self.bin}/client:{self.bin}/daemon:"
                       + os.environ.get("PATH", "/usr/bin:/bin"))
        if for_cli and self.tcp:
            env["TROUPE_ADDR"] = self.addr
            env["TROUPE_TOKEN_FILE"] = self.token_file
        if for_cli and self.tls_ca:
            env["TROUPE_TLS_CA"] = self.tls_ca
        return env

    def _spawn(self, p):
        with open(p.log, "ab") as log:
            log.write(("== conftest: starting: " + " ".join(p.argv)
                       + "\n").encode())
            log.flush()
            p.popen = subprocess.Popen(
                p.argv, cwd=self.dir, env=self._env(False),
                stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                start_new_session=True)

    def add_worker(self, extra_args=()):
        """Starts one more worker (w1, w2, ...); returns its index."""
        i = len(self.workers)
        name = f"w{i + 1}"
        home = os.path.join(self.dir, name)
        os.mkdir(home, 0o700)
        argv = [os.path.join(self.bin, "daemon", "troupe-worker"),
                "--home", home, "--scheduler", self.wlink, "--name", name,
                "--slots", str(self.slots)]
        # CI runs as root, where a worker refuses to start without this.
        if os.geteuid() == 0:
            argv.append("--allow-root")
        if self.tcp:
            argv += ["--token-file", self.token_file]
        if self.tls_ca:
            argv += ["--tls-ca", self.tls_ca]
        argv += self.worker_args + list(extra_args)
        p = Proc(name, argv, os.path.join(self.dir, f"h-{name}.log"))
        self.workers.append(p)
        self._spawn(p)
        return i

    def _check_alive(self, p, waiting_for):
        if not p.alive():
            rc = p.popen.returncode if p.popen else None
            self.dump_logs()
            pytest.fail(f"{p.name} died (status {rc}) while waiting for "
                        f"{waiting_for}")

    def client(self, **kw):
        """A troupe.Client for this cluster (its address and token)."""
        import troupe
        kw.setdefault("token", self.token)
        if self.tls_ca:
            kw.setdefault("tls_ca", self.tls_ca)
        return troupe.Client(self.addr, **kw)

    def wait_health(self, timeout=READY_S):
        """Waits (bounded) until GetHealth answers."""
        import troupe
        deadline = time.monotonic() + timeout
        last = None
        while True:
            self._check_alive(self.sched, "GetHealth")
            try:
                with self.client(timeout=2.0) as c:
                    c.health()
                    return
            except troupe.TroupeError as e:
                last = e
            if time.monotonic() > deadline:
                self.dump_logs()
                pytest.fail(f"scheduler did not answer GetHealth on "
                            f"{self.addr} within {timeout} s: {last}")
            time.sleep(0.05)

    def wait_workers(self, n, timeout=READY_S):
        """Waits (bounded) until n workers are READY."""
        import troupe
        deadline = time.monotonic() + timeout
        have = 0
        with self.client() as c:
            while True:
                self._check_alive(self.sched, "workers")
                for w in self.workers:
                    if w.popen is not None and w.popen.returncode is None:
                        self._check_alive(w, "workers to be READY")
                have = sum(1 for w in c.workers()
                           if w.state == troupe.pb.WORKER_READY)
                if have >= n:
                    return
                if time.monotonic() > deadline:
                    self.dump_logs()
                    pytest.fail(f"{have} of {n} workers READY after "
                                f"{timeout} s")
                time.sleep(0.05)

    def worker_pids(self):
        """The pids of the worker daemons (0 for one not running)."""
        return [w.popen.pid if w.alive() else 0 for w in self.workers]

    def kill_worker(self, i, sig=signal.SIGKILL):
        """Sends sig to worker i and waits (bounded) for it to exit;
        returns its exit status (negative: the signal)."""
        w = self.workers[i]
        w.killed = True
        w.popen.send_signal(sig)
        try:
            rc = w.popen.wait(STOP_S)
        except subprocess.TimeoutExpired:
            pytest.fail(f"{w.name} did not exit within {STOP_S} s of "
                        f"signal {sig}")
        _killpg(w.popen.pid)
        return rc

    # -- the end --

    def dump_logs(self):
        """Prints the tail of every daemon's log to stderr."""
        for p in [self.sched] + self.workers:
            try:
                with open(p.log, "rb") as f:
                    f.seek(0, os.SEEK_END)
                    size = f.tell()
                    f.seek(max(0, size - 48 * 1024))
                    text = f.read().decode("utf-8", "replace")
            except OSError as e:
                text = f"(cannot read: {e})"
            print(f"----- {p.name} ({p.log}) -----\n{text}\n"
                  f"----- end of {p.name} -----", file=sys.stderr)

    def stop(self):
        """Stops every daemon with SIGTERM (workers first) and checks that
        each one exits with status 0; then removes the directory.  Fails
        the test, showing the logs, otherwise."""
        if self.stopped:
            return
        self.stopped = True
        bad = []
        for p in self.workers + [self.sched]:
            if p.popen is None or p.killed:
                continue
            rc = p.popen.poll()
            if rc is not None:
                bad.append(f"{p.name} had died before the end of the test "
                           f"(status {rc})")
                continue
            p.popen.send_signal(signal.SIGTERM)
            try:
                rc = p.popen.wait(STOP_S)
                if rc != 0:
                    bad.append(f"{p.name}: status {rc} after SIGTERM")
            except subprocess.TimeoutExpired:
                bad.append(f"{p.name} did not exit within {STOP_S} s of "
                           "SIGTERM")
                p.popen.kill()
                p.popen.wait(STOP_S)
            _killpg(p.popen.pid)
        if bad:
            self.dump_logs()
            self._destroy()
            pytest.fail("; ".join(bad))
        self._destroy()

    def _destroy(self):
        """Kills whatever still runs, removes the directory (kept when
        H_KEEP is set)."""
        for p in self.workers + [self.sched]:
            if p.popen is not None:
                _killpg(p.popen.pid)
                try:
                    p.popen.wait(STOP_S)
                except subprocess.TimeoutExpired:
                    pass
        if os.environ.get("H_KEEP"):
            print(f"conftest: kept {self.dir}", file=sys.stderr)
        else:
            shutil.rmtree(self.dir, ignore_errors=True)


def _killpg(pid):
    """Kills what is left of a daemon's process group (its item processes
    and replicas)."""
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


class _Starter:
    """Starts clusters and stops them all at the end."""

    def __init__(self):
        self.clusters = []

    def __call__(self, **kw):
        c = Cluster(**kw)
        self.clusters.append(c)
        return c

    def finish(self, failed):
        errors = []
        for c in self.clusters:
            if failed:
                c.dump_logs()
            try:
                c.stop()
            except pytest.fail.Exception as e:
                errors.append(str(e))
        if errors:
            pytest.fail("; ".join(errors))


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    # Lets fixtures see whether the test failed (to show the logs).
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)


def _failed(request):
    rep = getattr(request.node, "rep_call", None)
    return rep is not None and rep.failed


@pytest.fixture
def start_cluster(request):
    """A factory of clusters, each stopped and checked at the end."""
    s = _Starter()
    yield s
    s.finish(_failed(request))


@pytest.fixture
def cluster(start_cluster):
    """The local kind: ipc sockets, no token, one worker of 4 slots."""
    return start_cluster()


@pytest.fixture
def tcp_cluster(start_cluster):
    """TCP on 127.0.0.1 with a token file (mode 0600), one worker."""
    return start_cluster(tcp=True)


@pytest.fixture
def tls_cluster(start_cluster):
    """tls+tcp:// on 127.0.0.1 with a self-signed certificate (.tls_ca)
    and a token file, one worker joined over TLS."""
    return start_cluster(tls=True)
