"""Python functions as troupe tasks: @troupe.task, ActorEnvironment, Resources.

    env = troupe.ActorEnvironment(name="my-actor", replica_count=10,
                                  ttl_seconds=30,
                                  requests=troupe.Resources(cpu="125m",
                                                            mem="256Mi"))

    @env.task
    def detect_anomalies(data_point: int) -> bool:
        return data_point > threshold

    troupe.map(detect_anomalies, data, concurrency=10)

A Task is the function plus where it runs: with no environment
(@troupe.task, or a plain function given to troupe.map) each item is a
process of its own (`python3 -m troupe.run`); with an environment each item
goes to one of its warm replicas (`python3 -m troupe.replica`), which
serve items of every function of that environment, one after the other,
for as long as they are not idle ttl_seconds.  Calling a Task directly
runs the function here, as a plain call.

Each item names the function it runs (troupe._codec): by reference
(module and qualified name) when the worker can import it, which is tried
first; by value (cloudpickle) for functions of __main__, a script, a
notebook, lambdas and closures.  The environment's replicas and the
per-item processes run the client's own interpreter with PYTHONPATH set to
this SDK's directory, the client's working directory and the client's
sys.path entries outside the standard library and site-packages, so that a
local cluster finds both the SDK and the user's modules with nothing
installed.

This module loads no protobuf at import time: replicas import the package
and must start fast.
"""

import functools
import os
import shlex
import sys
import zlib

from . import _codec

__all__ = ["Resources", "ActorEnvironment", "Task", "task",
           "function_ref", "function_header"]

# proto/api.proto / README: 1..100000 replicas, a TTL up to 7 days.
_MAX_REPLICAS = 100000
_MAX_TTL = 7 * 24 * 3600
# Pickles carried in an environment: each, and all of an environment's.
_TABLE_ONE = 64 << 10
_TABLE_ALL = 512 << 10
# The package's parent directory: what makes `import troupe` work.
_SDK_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _parse_cpu_k8s(v):
    """CPU as Kubernetes writes it: "125m" (thousandths), "0.5" or 2
    (CPUs).  Returns thousandths."""
    if isinstance(v, bool) or not isinstance(v, (int, float, str)):
        raise TypeError("cpu must be a number of CPUs or a string like "
                        "'125m' or '0.5', not %s" % type(v).__name__)
    if isinstance(v, str):
        s = v.strip()
        if s.endswith("m") and s[:-1].isdigit():
            return int(s[:-1])
        try:
            v = float(s)
        except ValueError:
            raise ValueError("cpu: %r is not a CPU amount (e.g. '125m' or "
                             "'0.5')" % v) from None
    if not v >= 0 or v == float("inf"):
        raise ValueError("cpu must be a positive number, not %r" % v)
    milli = -(-int(round(v * 1e6)) // 1000)  # ceil, without float noise
    if milli > 0xFFFFFFFF:
        raise ValueError("cpu: %r is too large" % v)
    return milli


class Resources:
    """What each replica (or item process) requests of its worker.

    cpu as Kubernetes writes it ("125m" = 0.125 CPU; "0.5" or 0.5 = half a
    CPU); mem in bytes or with K, M, G, T (powers of 1024: "256Mi",
    "1G").  Checked when made, so a typo fails here and not at the first
    map."""

    __slots__ = ("cpu", "mem", "cpu_milli", "mem_bytes")

    def __init__(self, cpu=None, mem=None):
        from .client import parse_mem

        self.cpu, self.mem = cpu, mem
        self.cpu_milli = 0 if cpu is None else _parse_cpu_k8s(cpu)
        self.mem_bytes = 0 if mem is None else parse_mem(mem)

    def to_proto(self):
        """The troupe.pb.Resources message."""
        from ._pb import api_pb2

        return api_pb2.Resources(cpu_milli=self.cpu_milli,
                                 mem_bytes=self.mem_bytes)

    def __eq__(self, other):
        return (isinstance(other, Resources)
                and (self.cpu_milli, self.mem_bytes)
                == (other.cpu_milli, other.mem_bytes))

    def __hash__(self):
        return hash((self.cpu_milli, self.mem_bytes))

    def __repr__(self):
        return "troupe.Resources(cpu=%r, mem=%r)" % (self.cpu, self.mem)


def _resources(r):
    if r is None or isinstance(r, Resources):
        return r
    if isinstance(r, dict):
        unknown = set(r) - {"cpu", "mem"}
        if unknown:
            raise ValueError("requests: unknown keys " + ", ".join(sorted(unknown)))
        return Resources(**r)
    raise TypeError("requests must be troupe.Resources(cpu=..., mem=...), "
                    "not %s" % type(r).__name__)


def _default_paths():
    """Directories every interpreter of this installation already has on
    its path: the standard library and site-packages."""
    import site
    import sysconfig

    out = set()
    for k in ("stdlib", "platstdlib", "purelib", "platlib"):
        p = sysconfig.get_paths().get(k)
        if p:
            out.add(os.path.realpath(p))
    try:
        out.update(os.path.realpath(p) for p in site.getsitepackages())
    except AttributeError:  # pragma: no cover - old virtualenvs
        pass
    try:
        out.add(os.path.realpath(site.getusersitepackages()))
    except AttributeError:  # pragma: no cover
        pass
    return out


def python_path():
    """The PYTHONPATH given to replicas and item processes: the SDK, the
    client's working directory, then the client's own sys.path entries
    that are directories outside the standard library and site-packages
    (the script's directory, PYTHONPATH, a pytest rootdir...)."""
    cwd = os.getcwd()
    skip = _default_paths()
    out, seen = [], set()
    for p in [_SDK_DIR, cwd] + list(sys.path):
        a = os.path.abspath(p or cwd)
        r = os.path.realpath(a)
        if r in seen or r in skip or not os.path.isdir(a):
            continue
        if r.endswith(("dist-packages", "site-packages", "lib-dynload")):
            continue
        seen.add(r)
        out.append(a)
    return ":".join(out)


def process_env(extra=None):
    """The environment of a replica or item process (see python_path)."""
    env = {"PYTHONPATH": python_path(), "TROUPE_PY_CWD": os.getcwd()}
    if extra:
        env.update(extra)
    return env


def function_ref(fn, by_value=None):
    """How fn travels: ("r", b"module\\0qualname") when fn is found under
    its module and qualified name in this process (so the worker finds it
    by importing), else ("v", zlib(cloudpickle(fn))).  by_value=True
    forces value, False forces reference.  Raises TypeError with the
    reason when fn can be sent neither way."""
    target = getattr(fn, "__troupe_fn__", fn)
    if not callable(target):
        raise TypeError("troupe.map needs a function, not %s"
                        % type(target).__name__)
    module = getattr(target, "__module__", None)
    qualname = getattr(target, "__qualname__", None)
    why = None
    if by_value is not True:
        if not module or not qualname:
            why = "it has no module and qualified name"
        elif module == "__main__":
            why = "it is defined in __main__ (a script or a notebook)"
        elif "<" in qualname:
            why = "it is a lambda or a function defined inside another"
        else:
            obj = sys.modules.get(module)
            for part in qualname.split("."):
                obj = getattr(obj, part, None)
            if obj is target or getattr(obj, "__troupe_fn__", None) is target:
                return "r", ("%s\0%s" % (module, qualname)).encode("utf-8")
            why = "%s.%s is not this function" % (module, qualname)
        if by_value is False:
            raise TypeError("cannot send %s by reference: %s"
                            % (_name(target), why))
    cp = _codec.get_cloudpickle()
    if cp is None:
        raise TypeError(
            "cannot send %s to the workers: %s, so it must go by value, "
            "which needs cloudpickle (Debian: apt-get install "
            "python3-cloudpickle); or define it in a module the workers "
            "can import" % (_name(target), why or "by_value=True"))
    try:
        blob = cp.dumps(target, protocol=5)
    except Exception as exc:
        raise TypeError("cannot send %s by value: cloudpickle failed: %s"
                        % (_name(target), exc)) from exc
    return "v", zlib.compress(blob)


def function_header(fn, by_value=None, keys=()):
    """The item header naming fn (troupe._codec): by reference, or by
    value; by key when its pickle's key is in keys (the pickles the
    processes' environment carries)."""
    kind, blob = function_ref(fn, by_value)
    if kind == "v":
        key = _codec.function_key(blob)[0]
        if key in keys:
            return _codec.function_header("k", key)
    return _codec.function_header(kind, blob)


def _table_entry(blob):
    """{variable: base64} carrying a by-value function in a process
    environment, or {} when it is too large for one (Linux takes at most
    128 KiB a variable; the scheduler 1 MiB an environment)."""
    _, name, b64 = _codec.function_key(blob)
    return {name: b64} if len(b64) <= _TABLE_ONE else {}


def _keys_of(env_pairs):
    """The function keys a list of KEY=VALUE pairs carries."""
    out = set()
    for p in env_pairs:
        k = p.split("=", 1)[0]
        if k.startswith(_codec.ENV_PREFIX):
            try:
                out.add(bytes.fromhex(k[len(_codec.ENV_PREFIX):]))
            except ValueError:
                pass
    return out


def _name(fn):
    return getattr(fn, "__qualname__", None) or repr(fn)


def _interpreter(python):
    p = python or sys.executable
    if not p:
        raise RuntimeError("cannot tell this interpreter's path "
                           "(sys.executable is empty): pass python=")
    return p


class Task:
    """A Python function that troupe.map runs on a cluster.  Calling it
    calls the function here."""

    def __init__(self, fn, env=None, *, retries=None, timeout=None,
                 resources=None, by_value=None, python=None):
        if isinstance(fn, Task):
            fn = fn.__troupe_fn__
        if not callable(fn):
            raise TypeError("a task must be a function, not %s"
                            % type(fn).__name__)
        if env is not None and not isinstance(env, ActorEnvironment):
            raise TypeError("env must be a troupe.ActorEnvironment")
        if by_value not in (None, True, False):
            raise TypeError("by_value must be None, True or False")
        functools.update_wrapper(self, fn)
        self.__troupe_fn__ = fn
        self.env = env
        self.retries = retries
        self.timeout = timeout
        self.resources = _resources(resources)
        self.by_value = by_value
        self.python = python

    def __call__(self, *args, **kwargs):
        return self.__troupe_fn__(*args, **kwargs)

    def __repr__(self):
        where = ("actor environment %r" % self.env.name) if self.env else \
            "a process per item"
        return "<troupe.Task %s on %s>" % (_name(self.__troupe_fn__), where)

    def map(self, items, **kwargs):
        """troupe.map(self, items, **kwargs)."""
        from .mapping import map as _map

        return _map(self, items, **kwargs)

    def prepare(self, client, by_value=None):
        """(item header, Client.submit keywords) of a map of this task on
        client's cluster: a process per item, or the environment's
        replicas (registering the environment first when needed).  A
        by-value function goes by key when the processes' environment
        can carry its pickle."""
        bv = self.by_value if by_value is None else by_value
        kind, blob = function_ref(self.__troupe_fn__, bv)
        if self.env is not None:
            kw, keys = self.env.prepare(client)
        else:
            env = process_env()
            if kind == "v":
                env.update(_table_entry(blob))
            keys = _keys_of("%s=" % k for k in env)
            kw = {"command": "exec %s -m troupe.run"
                  % shlex.quote(_interpreter(self.python)), "env": env}
            if self.resources is not None:
                kw["resources"] = self.resources
        if kind == "v":
            key = _codec.function_key(blob)[0]
            if key in keys:
                return _codec.function_header("k", key), kw
        return _codec.function_header(kind, blob), kw


def task(fn=None, *, retries=None, timeout=None, resources=None,
         by_value=None, python=None):
    """@troupe.task: each item of a troupe.map of it runs in a process of
    its own.  retries and timeout (seconds, per item) are defaults that
    troupe.map's own arguments override; resources (troupe.Resources) is
    what each process requests; by_value forces how the function is sent;
    python is the interpreter on the workers (default: this one)."""

    def wrap(f):
        return Task(f, None, retries=retries, timeout=timeout,
                    resources=resources, by_value=by_value, python=python)

    return wrap if fn is None else wrap(fn)


class ActorEnvironment:
    """A pool of up to replica_count warm Python replicas on the cluster.

    name registers the environment under that name (None: ad hoc, keyed by
    its definition); replicas start lazily as items arrive and exit when
    idle ttl_seconds; requests is what each replica holds of its worker
    (troupe.Resources); env adds environment variables; max_items recycles
    a replica after that many items (0: never); python is the interpreter
    the replicas run (default: this one).  Every function decorated with
    @env.task runs on the same replicas.
    """

    def __init__(self, name=None, replica_count=1, ttl_seconds=90,
                 requests=None, *, env=None, max_items=0, python=None):
        if name is not None and (not isinstance(name, str) or not name):
            raise ValueError("name must be a non-empty str (or None for an "
                             "ad hoc environment)")
        for what, v, lo, hi in (("replica_count", replica_count, 1, _MAX_REPLICAS),
                                ("ttl_seconds", ttl_seconds, 1, _MAX_TTL),
                                ("max_items", max_items, 0, 0xFFFFFFFF)):
            if isinstance(v, bool) or not isinstance(v, int):
                raise TypeError("%s must be an int, not %s"
                                % (what, type(v).__name__))
            if not lo <= v <= hi:
                raise ValueError("%s must be between %d and %d, not %d"
                                 % (what, lo, hi, v))
        if env is not None and not isinstance(env, dict):
            raise TypeError("env must be a dict {KEY: VALUE}")
        if name is None and max_items:
            raise ValueError("max_items needs a named environment (an ad "
                             "hoc one cannot carry it)")
        self.name = name
        self.replica_count = replica_count
        self.ttl_seconds = ttl_seconds
        self.requests = _resources(requests)
        self.env = dict(env or {})
        self.max_items = max_items
        self.python = python
        # The tasks decorated with env.task, whose pickles (by-value ones)
        # the environment carries; fixed at its first use (_table).
        self._tasks = []
        self._table_cache = None
        # (address, project) -> the function keys of the definition found
        # or registered there by this object.
        self._registered = {}

    def __repr__(self):
        return ("troupe.ActorEnvironment(name=%r, replica_count=%d, "
                "ttl_seconds=%d)" % (self.name, self.replica_count,
                                     self.ttl_seconds))

    def __getstate__(self):
        # A by-value function may refer to its environment: send the
        # definition, not what this process registered.
        s = dict(self.__dict__)
        s["_registered"] = {}
        s["_tasks"] = []
        s["_table_cache"] = None
        return s

    def task(self, fn=None, *, retries=None, timeout=None, by_value=None):
        """@env.task: runs the function on this environment's replicas."""

        def wrap(f):
            t = Task(f, self, retries=retries, timeout=timeout,
                     by_value=by_value, python=self.python)
            self._tasks.append(t)
            return t

        return wrap if fn is None else wrap(fn)

    def _table(self):
        """{TROUPE_PY_FN_<key>: base64 pickle} of the by-value functions
        decorated with env.task before the environment's first use, so that
        their items carry a key, not the pickle.  Computed once: the
        definition stays the same for every map of this process (functions
        decorated later, or whose globals changed, go inline)."""
        if self._table_cache is None:
            table, size = {}, 0
            for t in self._tasks:
                try:
                    kind, blob = function_ref(t.__troupe_fn__, t.by_value)
                except TypeError:
                    continue  # its own map will say why
                if kind != "v":
                    continue
                e = _table_entry(blob)
                n = sum(len(k) + len(v) + 2 for k, v in e.items())
                if size + n <= _TABLE_ALL:
                    table.update(e)
                    size += n
            self._table_cache = table
        return self._table_cache

    @property
    def command(self):
        """The replicas' command line."""
        return "exec %s -m troupe.replica" % shlex.quote(
            _interpreter(self.python))

    def definition(self):
        """The troupe.pb.ActorEnv this environment registers."""
        from ._pb import api_pb2
        from .client import _env_list

        a = api_pb2.ActorEnv(
            name=self.name or "", replica_count=self.replica_count,
            ttl_seconds=self.ttl_seconds, command=self.command,
            protocol=api_pb2.PROTOCOL_FRAMES, max_items=self.max_items)
        a.env.extend(sorted(_env_list(self._process_env())))
        if self.requests is not None and (self.requests.cpu_milli
                                          or self.requests.mem_bytes):
            a.resources.CopyFrom(self.requests.to_proto())
        return a

    def _process_env(self):
        user = {k: v for k, v in self.env.items()
                if not k.startswith(_codec.ENV_PREFIX)}
        env = process_env(user)
        env.update(self._table())
        return env

    @staticmethod
    def _same_but_functions(have, want):
        """Whether two ActorEnvs differ at most in the pickles they carry
        (and the project the scheduler sets)."""
        a, b = type(have)(), type(want)()
        a.CopyFrom(have)
        b.CopyFrom(want)
        for m in (a, b):
            m.project = ""
            keep = [e for e in m.env if not e.startswith(_codec.ENV_PREFIX)]
            del m.env[:]
            m.env.extend(keep)
        return a == b

    def register(self, client):
        """Registers the environment on the cluster of client unless it is
        there already with the same definition and every function pickle
        this process would have it carry; otherwise registers it, or
        replaces it (its running replicas stop: a cold start), carrying
        the pickles it had as well as ours, so that maps of other
        processes still running on it find theirs.  Returns the function
        keys the registered environment carries."""
        from .errors import TroupeError

        where = (client.addr, client.project)
        if where in self._registered:
            return self._registered[where]
        want = self.definition()
        ours = _keys_of(want.env)
        keys = None
        for _ in range(3):
            try:
                have = client.actor(self.name).env
            except TroupeError as e:
                if e.code != "NOT_FOUND":
                    raise
                have = None
            if have is not None and self._same_but_functions(have, want):
                theirs = _keys_of(have.env)
                if ours <= theirs:
                    keys = theirs
                    break
                # Keep what it carried, within the bound on the size.
                size = sum(len(e) for e in want.env)
                for e in have.env:
                    if e.startswith(_codec.ENV_PREFIX) and e not in want.env \
                            and size + len(e) <= _TABLE_ALL:
                        want.env.append(e)
                        size += len(e)
                want.env.sort()
            try:
                client.register_actor(want, replace=have is not None)
                keys = _keys_of(want.env)
                break
            except TroupeError as e:
                # Another client registered it between our two calls: look
                # again.
                if e.code != "ALREADY_EXISTS":
                    raise
        if keys is None:
            raise TroupeError("ABORTED", "actor environment %r keeps "
                              "changing under us" % self.name, client.addr)
        self._registered[where] = keys
        return keys

    def prepare(self, client):
        """(Client.submit keywords that run on this environment, the
        function keys its replicas' environment carries)."""
        if self.name is None:
            env = self._process_env()
            kw = {"command": self.command, "replicas": self.replica_count,
                  "ttl": self.ttl_seconds, "protocol": "frames", "env": env}
            if self.requests is not None:
                kw["resources"] = self.requests
            return kw, _keys_of("%s=" % k for k in env)
        return {"actor": self.name}, self.register(client)
