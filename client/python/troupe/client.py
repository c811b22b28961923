"""``troupe.Client``: the scheduler's API (proto/api.proto) from Python.

Each method is one or a few calls of the ``Troupe`` service, made over nng
(see _nng.py) inside the envelope of proto/envelope.proto, and returns the
messages protoc generated from proto/api.proto (``troupe.pb``).  A refused
call raises :class:`troupe.TroupeError` with the reply's status code;
arguments that are wrong before any call raise ValueError or TypeError.

Threading: a Client may be shared by threads.  Each thread that calls gets
its own connection (a req0 socket dialed on its first call), so a thread
long-polling in ``watch`` or ``results`` never delays another thread's
upload; close() closes them all.
"""

import math
import os
import threading
import time

from . import _config, _nng
from ._pb import api_pb2 as pb
from ._pb import envelope_pb2
from .errors import TroupeError

__all__ = ["Client", "TERMINAL_PHASES", "FINISHED_STATES", "MAX_MSG",
           "CHUNK_BYTES", "parse_cpu", "parse_mem", "to_resources",
           "is_terminal"]

# client/include/troupe/envelope.h: the receive limit of every troupe
# socket, and the size of the chunks the CLI uploads items in.
MAX_MSG = 64 << 20
CHUNK_BYTES = 1 << 20
# Room kept in each upload request for the envelope around it (method,
# token, project, framing): client/cli/map_upload.h's value.
_ENVELOPE_SLACK = 2048
_U32 = 2**32 - 1

TERMINAL_PHASES = frozenset({pb.PHASE_SUCCEEDED, pb.PHASE_FAILED,
                             pb.PHASE_ABORTED, pb.PHASE_TIMED_OUT})
FINISHED_STATES = frozenset({pb.ITEM_SUCCEEDED, pb.ITEM_FAILED,
                             pb.ITEM_ABORTED})
_PROTOCOLS = {"lines": pb.PROTOCOL_LINES, "frames": pb.PROTOCOL_FRAMES}
_ROLES = {"read": pb.ROLE_READ, "submit": pb.ROLE_SUBMIT,
          "admin": pb.ROLE_ADMIN, "worker": pb.ROLE_WORKER}
# How long one WatchExecution waits on the scheduler (its default; at most
# 60 s there).  Ctrl-C interrupts the wait at once (see _nng.py).
_WATCH_POLL_S = 10.0


def is_terminal(phase):
    """Whether an execution in ``phase`` changes no more."""
    return phase in TERMINAL_PHASES


# --- argument checking -----------------------------------------------------

def _u32(name, v, minimum=0):
    if isinstance(v, bool) or not isinstance(v, int):
        raise TypeError(f"{name} must be an int, not {type(v).__name__}")
    if v < minimum or v > _U32:
        raise ValueError(f"{name} must be between {minimum} and {_U32}, "
                         f"not {v}")
    return v


def _secs(name, v, allow_zero=True):
    """Seconds (int or float) as a non-negative float."""
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise TypeError(f"{name} must be a number of seconds, not "
                        f"{type(v).__name__}")
    if not math.isfinite(v) or v < 0 or (v == 0 and not allow_zero):
        raise ValueError(f"{name} must be a positive number of seconds, "
                         f"not {v}")
    return float(v)


def _ms(name, v):
    """Seconds to whole milliseconds, rounded up as the CLI does."""
    ms = math.ceil(_secs(name, v) * 1000.0)
    if ms > _U32:
        raise ValueError(f"{name}: {v} s is too long")
    return ms


def _str(name, v):
    if not isinstance(v, str):
        raise TypeError(f"{name} must be a str, not {type(v).__name__}")
    return v


def _env_list(env):
    """A dict {KEY: VALUE} (or an iterable of "KEY=VALUE") as the proto's
    repeated KEY=VALUE strings, each KEY checked as the CLI's --env."""
    if env is None:
        return []
    if isinstance(env, dict):
        pairs = []
        for k, v in env.items():
            if not isinstance(k, str) or not isinstance(v, str):
                raise TypeError("env must map str to str, not "
                                f"{type(k).__name__} to {type(v).__name__}")
            pairs.append(f"{k}={v}")
    elif isinstance(env, (str, bytes)):
        raise TypeError("env must be a dict {KEY: VALUE}, not a string")
    else:
        pairs = [_str("env entries", e) for e in env]
    for p in pairs:
        key = p.split("=", 1)[0]
        if ("=" not in p or not key or key[0].isdigit()
                or not all(c.isalnum() or c == "_" for c in key)
                or not key.isascii()):
            raise ValueError(f"env: {p.split('=', 1)[0]!r} is not a "
                             "variable name (letters, digits, _)")
    return pairs


def parse_cpu(v):
    """CPU as thousandths: an int or float of CPUs (0.5), or a string in
    thousandths as the CLI's --cpu takes it ("500" or "500m")."""
    if isinstance(v, bool):
        raise TypeError("cpu must be a number of CPUs or a string like "
                        "'500m'")
    if isinstance(v, (int, float)):
        if not math.isfinite(v) or v < 0:
            raise ValueError(f"cpu must be a positive number, not {v}")
        return _u32("cpu", math.ceil(v * 1000))
    if isinstance(v, str):
        s = v[:-1] if v.endswith("m") else v
        if not s.isdigit():
            raise ValueError(f"cpu: {v!r} is not thousandths of a CPU "
                             "(e.g. 500 or 500m for half a CPU)")
        return _u32("cpu", int(s))
    raise TypeError(f"cpu must be a number or a str, not {type(v).__name__}")


def parse_mem(v):
    """Memory in bytes: an int, or a string with K, M, G or T (powers of
    1024, "256Mi", "1G", "512MB") as the CLI's --mem takes it."""
    if isinstance(v, bool):
        raise TypeError("mem must be bytes or a string like '256Mi'")
    if isinstance(v, int):
        if v < 0:
            raise ValueError(f"mem must be positive, not {v}")
        return v
    if not isinstance(v, str):
        raise TypeError(f"mem must be an int or a str, not "
                        f"{type(v).__name__}")
    i = 0
    while i < len(v) and (v[i].isdigit() or v[i] == "."):
        i += 1
    num, unit = v[:i], v[i:]
    mult = 1
    if unit:
        u = unit[0].upper()
        rest = unit[1:]
        if u not in "KMGT" or rest not in ("", "i", "B", "b", "iB", "ib"):
            num = ""
        else:
            mult = 1024 ** ("KMGT".index(u) + 1)
    try:
        n = float(num)
    except ValueError:
        raise ValueError(f"mem: {v!r} is not a size (bytes, or with K, M, "
                         "G or T)") from None
    return math.ceil(n * mult)


def to_resources(r):
    """A Resources message from None, a Resources message, a dict with
    cpu/mem (or cpu_milli/mem_bytes), or any object with ``to_proto()`` or
    ``cpu``/``mem`` attributes.  None when no resource is requested."""
    if r is None:
        return None
    if isinstance(r, pb.Resources):
        return r
    if hasattr(r, "to_proto"):
        return r.to_proto()
    if isinstance(r, dict):
        unknown = set(r) - {"cpu", "mem", "cpu_milli", "mem_bytes"}
        if unknown:
            raise ValueError("resources: unknown keys "
                             + ", ".join(sorted(unknown)))
        get = r.get
    elif hasattr(r, "cpu") or hasattr(r, "mem"):
        def get(k, obj=r):
            return getattr(obj, k, None)
    else:
        raise TypeError("resources must be a dict {'cpu': ..., 'mem': ...} "
                        f"or troupe.Resources, not {type(r).__name__}")
    msg = pb.Resources()
    if get("cpu_milli") is not None:
        msg.cpu_milli = _u32("cpu_milli", get("cpu_milli"))
    elif get("cpu") is not None:
        msg.cpu_milli = parse_cpu(get("cpu"))
    if get("mem_bytes") is not None:
        msg.mem_bytes = parse_mem(get("mem_bytes"))
    elif get("mem") is not None:
        msg.mem_bytes = parse_mem(get("mem"))
    return msg


def _protocol(p):
    if isinstance(p, int) and not isinstance(p, bool) and \
            p in _PROTOCOLS.values():
        return p
    if isinstance(p, str) and p in _PROTOCOLS:
        return _PROTOCOLS[p]
    raise ValueError(f"protocol must be 'lines' or 'frames', not {p!r}")


def _phase(p):
    if p is None:
        return pb.PHASE_UNSPECIFIED
    if isinstance(p, int) and not isinstance(p, bool) and \
            p in pb.Phase.values():
        return p
    if isinstance(p, str):
        name = p.upper()
        if not name.startswith("PHASE_"):
            name = "PHASE_" + name
        if name in pb.Phase.keys():
            return pb.Phase.Value(name)
    raise ValueError(f"phase must be one of queued, running, succeeded, "
                     f"failed, aborted, timed_out, not {p!r}")


def _role(r):
    if isinstance(r, int) and not isinstance(r, bool) and \
            r in _ROLES.values():
        return r
    if isinstance(r, str) and r.lower() in _ROLES:
        return _ROLES[r.lower()]
    raise ValueError(f"role must be one of read, submit, admin, worker, "
                     f"not {r!r}")


def _item_bytes(x, index):
    if isinstance(x, bytes):
        return x
    if isinstance(x, str):
        return x.encode("utf-8")
    if isinstance(x, (bytearray, memoryview)):
        return bytes(x)
    raise TypeError(f"item {index} is {type(x).__name__}; items must be "
                    "bytes or str")


def _varint_len(n):
    k = 1
    while n >= 0x80:
        n >>= 7
        k += 1
    return k


def _wire(n):
    """Bytes one item of n bytes takes in a `repeated bytes` field."""
    return 1 + _varint_len(n) + n


# --- the client ------------------------------------------------------------

class Client:
    """A connection to a troupe scheduler.

    ``addr`` is the scheduler's API address (``ipc://...``, ``tcp://host:
    port``, ``tls+tcp://host:port``); None finds it as the CLI does
    (TROUPE_ADDR, else the local cluster under TROUPE_HOME).  ``token`` is
    the secret to present; None reads TROUPE_TOKEN or the file named by
    ``token_file`` (else TROUPE_TOKEN_FILE).  ``timeout`` bounds each call
    in seconds.  ``project`` is the project calls act in (None:
    TROUPE_PROJECT, else the token's own).  ``tls_ca`` is the CA file that
    signs a tls+tcp:// scheduler's certificate (None: TROUPE_TLS_CA, else
    the system's bundle).

    The address is dialed at once, so an unreachable scheduler raises
    TroupeError("UNAVAILABLE") here, naming the address.  Use it as a
    context manager, or call close().
    """

    def __init__(self, addr=None, token=None, timeout=30.0, *,
                 project=None, token_file=None, tls_ca=None):
        self._socks = []
        self._timeout = _secs("timeout", timeout, allow_zero=False)
        if addr is not None:
            _str("addr", addr)
            if not addr:
                raise ValueError("addr is empty")
        if token is not None:
            _str("token", token)
            if len(token) < _config.TOKEN_MIN:
                raise ValueError(f"token is {len(token)} characters long; "
                                 f"at least {_config.TOKEN_MIN} are "
                                 "required")
        if project is not None:
            _str("project", project)
        self.addr = addr if addr else _config.default_addr()
        self._token = token if token is not None else \
            _config.read_token(token_file)
        self.project = project if project is not None else \
            _config.default_project()
        ca = tls_ca if tls_ca is not None else \
            os.environ.get("TROUPE_TLS_CA")
        self._tls_ca = ca
        self._lock = threading.Lock()
        self._local = threading.local()
        self._socks = []
        self._closed = False
        self._socket()

    def _socket(self):
        """The calling thread's socket, dialed on its first call."""
        sock = getattr(self._local, "sock", None)
        if sock is not None:
            return sock
        with self._lock:
            if self._closed:
                raise TroupeError("FAILED_PRECONDITION",
                                  "the client is closed", self.addr)
            try:
                sock = _nng.Socket(self.addr, MAX_MSG, tls_ca=self._tls_ca)
            except _nng.NngError as e:
                raise TroupeError(_connect_code(e.rv),
                                  "cannot reach the scheduler at "
                                  f"{self.addr}: {_connect_reason(e)} (is "
                                  "`troupe up` running?)",
                                  self.addr) from None
            self._socks.append(sock)
        self._local.sock = sock
        return sock

    # -- plumbing --

    def close(self):
        """Closes every connection of this client (idempotent); a later
        call raises TroupeError("FAILED_PRECONDITION")."""
        with self._lock:
            self._closed = True
            socks, self._socks = self._socks, []
        for sock in socks:
            sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self):
        return f"troupe.Client({self.addr!r})"

    @property
    def timeout(self):
        """The bound on each call, in seconds."""
        return self._timeout

    def call(self, method, request, reply_type=None, timeout=None):
        """Calls ``method`` of the Troupe service with ``request`` (its
        input message) and returns the reply message (``reply_type``, by
        default api_pb2's ``<method>Reply``).  Raises TroupeError when the
        scheduler refuses or does not answer within ``timeout`` seconds
        (default: the client's)."""
        if reply_type is None:
            reply_type = getattr(pb, method + "Reply")
        t = self._timeout if timeout is None else timeout
        env = envelope_pb2.Request(method=method, token=self._token or "",
                                   body=request.SerializeToString(),
                                   project=self.project or "")
        data = env.SerializeToString()
        sock = self._socket()
        try:
            sock.send(data, t)
            raw = sock.recv(t)
        except _nng.NngError as e:
            if self._closed:
                raise TroupeError("FAILED_PRECONDITION",
                                  "the client is closed",
                                  self.addr) from None
            if e.rv == _nng.ETIMEDOUT:
                raise TroupeError(
                    "DEADLINE_EXCEEDED",
                    f"no reply from {self.addr} to {method} within "
                    f"{t:g} s", self.addr) from None
            raise TroupeError("UNAVAILABLE",
                              f"no reply from {self.addr} to {method}: "
                              f"{_nng.strerror(e.rv)}",
                              self.addr) from None
        try:
            rep = envelope_pb2.Reply.FromString(raw)
        except Exception:
            raise TroupeError("INTERNAL",
                              f"malformed reply from {self.addr}",
                              self.addr) from None
        if rep.code != envelope_pb2.OK:
            try:
                name = envelope_pb2.Code.Name(rep.code)
            except ValueError:
                name = f"CODE_{rep.code}"
            raise TroupeError(name, rep.message or name, self.addr)
        try:
            return reply_type.FromString(rep.body)
        except Exception:
            raise TroupeError("INTERNAL", f"malformed {method} reply from "
                              f"{self.addr}", self.addr) from None

    # -- executions --

    def submit(self, items, *, command=None, task=None, actor=None,
               replicas=None, ttl=None, protocol=None, env=None,
               concurrency=0, retries=None, timeout=None,
               min_success_ratio=None, resources=None, name=None,
               execution_timeout=None, project=None,
               chunk_bytes=CHUNK_BYTES, on_created=None):
        """Starts a map of ``command`` (or registered ``task``, or
        registered ``actor``) over ``items`` and returns the Execution.

        ``items`` is any iterable of bytes or str (str is sent as UTF-8),
        read lazily: it is uploaded in requests of about ``chunk_bytes``
        (CreateExecution with the first chunk, AppendItems with each next
        one, then SealExecution), so a generator of millions of items takes
        one chunk of memory.  Items start running as soon as their chunk is
        stored.  If reading the items or an upload fails after the
        execution was created, the execution is aborted and the error
        raised.

        ``replicas`` (with ``ttl`` seconds and ``protocol`` "lines" or
        "frames") runs ``command`` on an ad hoc actor environment of that
        many warm replicas, as the CLI's --replicas/--ttl/--protocol.
        ``timeout`` is per item and ``execution_timeout`` for the whole
        execution, in seconds; ``retries``, ``timeout`` and
        ``min_success_ratio`` override a task's settings when given.
        ``env`` is a dict of environment variables for each item process.
        ``on_created(execution)``, when given, is called as soon as the
        execution exists (after the first chunk), so that another thread
        may start reading its results while the upload goes on.
        """
        spec = self._spec(command=command, task=task, actor=actor,
                          replicas=replicas, ttl=ttl, protocol=protocol,
                          env=env, concurrency=concurrency, retries=retries,
                          timeout=timeout,
                          min_success_ratio=min_success_ratio,
                          resources=resources, name=name,
                          execution_timeout=execution_timeout,
                          project=project)
        chunk = _u32("chunk_bytes", chunk_bytes, minimum=1)
        if isinstance(items, (str, bytes, bytearray, memoryview)):
            raise TypeError("items must be an iterable of items (bytes or "
                            f"str), not one {type(items).__name__}")
        try:
            it = iter(items)
        except TypeError:
            raise TypeError("items must be an iterable of bytes or str, not "
                            f"{type(items).__name__}") from None
        if on_created is not None and not callable(on_created):
            raise TypeError("on_created must be callable")
        return self._upload(spec, it, chunk, on_created)

    @staticmethod
    def _spec(*, command, task, actor, replicas, ttl, protocol, env,
              concurrency, retries, timeout, min_success_ratio, resources,
              name, execution_timeout, project):
        """ExecutionSpec from submit's arguments, checked as the CLI
        checks its flags (client/cli/args.c)."""
        spec = pb.ExecutionSpec()
        for n, v in (("command", command), ("task", task), ("actor", actor),
                     ("name", name), ("project", project)):
            if v is not None:
                _str(n, v)
                if n in ("command", "task") and not v:
                    raise ValueError(f"{n} is empty")
        if command is not None and task is not None:
            raise ValueError("command and task exclude each other")
        if not command and not task and not actor:
            raise ValueError("submit needs command='CMD', task=NAME or "
                             "actor=ENV")
        if replicas is not None and actor:
            raise ValueError("replicas and actor exclude each other: actor "
                             "names a registered environment")
        if replicas is not None and not command:
            raise ValueError("replicas needs command (a registered task "
                             "uses actor=ENV)")
        if ttl is not None and replicas is None:
            raise ValueError("ttl needs replicas=N")
        if protocol is not None and replicas is None:
            raise ValueError("protocol needs replicas=N (a registered actor "
                             "has its own protocol)")
        if command:
            spec.command = command
        if task:
            spec.task = task
        if actor:
            spec.actor = actor
        if name:
            spec.name = name
        if project:
            spec.project = project
        spec.concurrency = _u32("concurrency", concurrency)
        if retries is not None:
            spec.retries = _u32("retries", retries)
        if timeout is not None:
            spec.timeout_ms = _ms("timeout", timeout)
        if min_success_ratio is not None:
            r = min_success_ratio
            if isinstance(r, bool) or not isinstance(r, (int, float)):
                raise TypeError("min_success_ratio must be a number")
            if not 0.0 <= r <= 1.0:
                raise ValueError("min_success_ratio must be between 0 and "
                                 f"1, not {r}")
            spec.min_success_ratio = float(r)
        if execution_timeout is not None:
            spec.execution_timeout_s = math.ceil(
                _ms("execution_timeout", execution_timeout) / 1000)
        pairs = _env_list(env)
        spec.env.extend(pairs)
        res = to_resources(resources)
        if res is not None and (res.cpu_milli or res.mem_bytes):
            spec.resources.CopyFrom(res)
        if replicas is not None:
            # The ad hoc environment is keyed by a hash of what defines it,
            # so the same command finds the same warm replicas.
            a = spec.adhoc_actor
            a.replica_count = _u32("replicas", replicas, minimum=1)
            if ttl is not None:
                a.ttl_seconds = _u32("ttl", ttl)
            a.command = command
            a.protocol = _protocol("lines" if protocol is None
                                   else protocol)
            a.env.extend(pairs)
            if spec.HasField("resources"):
                a.resources.CopyFrom(spec.resources)
        return spec

    @staticmethod
    def _chunks(it, budget):
        """Yields (list of bytes, is_last) from iterator ``it``: each list
        fits in budget[0] bytes of `items` (at least one item; the caller
        may change budget[0] between chunks), and ``is_last`` is known
        without reading past the chunk: a chunk is sent when the next item
        does not fit in it, or at the end.  (One loop, no call per item:
        this runs for each of millions of items.)"""
        limit = MAX_MSG - 2 * _ENVELOPE_SLACK
        chunk, used, index = [], 0, 0
        for x in it:
            b = x if type(x) is bytes else _item_bytes(x, index)
            n = len(b)
            s = n + 2 if n < 0x80 else n + 3 if n < 0x4000 else _wire(n)
            if s > limit:
                raise ValueError(f"item {index} is {n} bytes; one item may "
                                 f"be at most about {MAX_MSG >> 20} MiB")
            if chunk and used + s > budget[0]:
                yield chunk, False
                chunk, used = [], 0
            chunk.append(b)
            used += s
            index += 1
        yield chunk, True

    def _upload(self, spec, it, chunk_bytes, on_created):
        creq = pb.CreateExecutionRequest(spec=spec, seal=True)
        fixed = creq.ByteSize()
        budget = [max(chunk_bytes - fixed - _ENVELOPE_SLACK, 1)]
        chunks = self._chunks(it, budget)
        first, last = next(chunks)
        creq.items.extend(first)
        creq.seal = last
        ex = self.call("CreateExecution", creq).execution
        if not ex.id:
            raise TroupeError("INTERNAL", "CreateExecution returned no id",
                              self.addr)
        eid, offset = ex.id, len(first)
        fixed = pb.AppendItemsRequest(id=eid, offset=2**64 - 1).ByteSize()
        budget[0] = max(chunk_bytes - fixed - _ENVELOPE_SLACK, 1)
        try:
            if on_created is not None:
                on_created(ex)
            if last:
                return ex
            return self._upload_rest(eid, offset, chunks)
        except BaseException as e:
            # Do not leave a half-uploaded execution waiting for a seal
            # that will never come.
            try:
                self.abort(eid, "the upload of its items failed")
            except Exception:
                pass
            if isinstance(e, TroupeError):
                raise TroupeError(
                    e.code, f"uploading the items of {eid} failed (it was "
                    f"aborted): {e.message}", e.addr) from None
            raise

    def _upload_rest(self, eid, offset, chunks):
        for items, _last in chunks:
            self.call("AppendItems", pb.AppendItemsRequest(
                id=eid, offset=offset, items=items))
            offset += len(items)
        return self.call("SealExecution",
                         pb.SealExecutionRequest(id=eid)).execution

    def status(self, id):
        """The execution ``id`` now (GetExecution)."""
        return self.call("GetExecution",
                         pb.GetExecutionRequest(id=_str("id", id))).execution

    def _watch_once(self, id, since, wait):
        """One WatchExecution: returns as soon as the version passes
        ``since``, the execution is finished, or ``wait`` seconds pass."""
        ms = max(1, min(int(wait * 1000), 60000))
        return self.call("WatchExecution",
                         pb.WatchExecutionRequest(id=id, since_version=since,
                                                  timeout_ms=ms),
                         timeout=ms / 1000 + self._timeout).execution

    def watch(self, id, callback=None, timeout=None):
        """Waits until execution ``id`` finishes and returns it, calling
        ``callback(execution)`` with its state now and after each change
        (WatchExecution long polls: no busy loop).  ``timeout`` (seconds;
        None waits as long as it takes) raises TroupeError
        ("DEADLINE_EXCEEDED") when the execution has not finished by
        then."""
        _str("id", id)
        if callback is not None and not callable(callback):
            raise TypeError("callback must be callable")
        deadline = None if timeout is None else \
            time.monotonic() + _secs("timeout", timeout)
        ex = self.status(id)
        if callback is not None:
            callback(ex)
        while not is_terminal(ex.phase):
            wait = _WATCH_POLL_S
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TroupeError(
                        "DEADLINE_EXCEEDED",
                        f"execution {id} is still "
                        f"{pb.Phase.Name(ex.phase)[6:]} after {timeout:g} s",
                        self.addr)
                wait = min(wait, left)
            new = self._watch_once(id, ex.version, wait)
            if new.version != ex.version or new.phase != ex.phase:
                ex = new
                if callback is not None:
                    callback(ex)
        return ex

    def outputs(self, id, *, page_size=0):
        """Every item's ItemResult now, in input order (GetOutputs, page by
        page; ``page_size`` items a page, 0 = as many as the scheduler
        sends).  Items not finished yet come back PENDING or RUNNING."""
        _str("id", id)
        _u32("page_size", page_size)
        out, start = [], 0
        while True:
            rep = self._outputs_page(id, start, page_size)
            out.extend(rep.items)
            if rep.next >= rep.total:
                return out
            start = rep.next

    def _outputs_page(self, id, start, count):
        rep = self.call("GetOutputs", pb.GetOutputsRequest(
            id=id, start=start, count=count))
        if rep.next <= start and rep.next < rep.total:
            raise TroupeError("INTERNAL", f"GetOutputs of {id} from {start} "
                              "made no progress", self.addr)
        return rep

    def results(self, id, ordered=True, *, page_size=0):
        """Yields each item's ItemResult as it finishes (SUCCEEDED, FAILED
        or ABORTED), until every item of the sealed execution has come.

        ``ordered=True`` yields by index: item i once items 0..i have
        finished.  ``ordered=False`` yields any finished item as soon as
        it is seen.  Between fetches it long-polls WatchExecution for the
        next version, so it never busy-loops; items are fetched again only
        when the execution's counts say more have finished.
        """
        _str("id", id)
        _u32("page_size", page_size)
        return self._results(id, bool(ordered), page_size)

    def _results(self, id, ordered, page_size):
        ex = self.status(id)
        low = 0            # every item below has been yielded
        seen = set()       # items >= low already yielded (unordered)
        yielded = 0
        while True:
            done = ex.counts.succeeded + ex.counts.failed + ex.counts.aborted
            final = is_terminal(ex.phase)
            if done > yielded or final:
                start = low
                while start < ex.total or start == low:
                    rep = self._outputs_page(id, start, page_size)
                    stop = False
                    for r in rep.items:
                        fin = r.state in FINISHED_STATES or final
                        if r.index == low and fin:
                            low += 1
                            if r.index in seen:
                                seen.discard(r.index)
                                continue
                        elif not fin or ordered or r.index in seen:
                            if ordered:
                                stop = True
                                break
                            continue
                        else:
                            seen.add(r.index)
                        yielded += 1
                        yield r
                    if stop or rep.next >= rep.total:
                        break
                    start = rep.next
            if ex.sealed and low >= ex.total:
                return
            if final:
                # A finished execution whose items did not all come: say so
                # rather than wait for changes that will not happen.
                raise TroupeError("INTERNAL", f"execution {id} finished "
                                  f"with items {low}.. not reported",
                                  self.addr)
            ex = self._watch_once(id, ex.version, _WATCH_POLL_S)

    def logs(self, id, item=None, attempt=None):
        """The stderr kept of execution ``id``'s attempts (GetLogs, all
        pages): a list of ItemLog (index, attempt from 1, data as bytes,
        dropped: the bytes cut from its middle past the 64 KiB cap), by
        item then attempt; attempts that wrote nothing are absent.  With
        ``item``, only that item's attempts, or with ``attempt`` too, only
        that one.  NOT_FOUND / OUT_OF_RANGE name what does not exist."""
        req = pb.GetLogsRequest(id=_str("id", id))
        if item is not None:
            if isinstance(item, bool) or not isinstance(item, int) or \
                    item < 0:
                raise ValueError(f"item must be an index >= 0, not {item!r}")
            req.item = item
        if attempt is not None:
            if item is None:
                raise ValueError("attempt needs an item")
            req.attempt = _u32("attempt", attempt, minimum=1)
        out = []
        while True:
            rep = self.call("GetLogs", req)
            out.extend(rep.logs)
            if not rep.next_page_token:
                return out
            req.page_token = rep.next_page_token

    def abort(self, id, reason=""):
        """Aborts execution ``id`` (its running items are stopped) and
        returns it.  FAILED_PRECONDITION when it had already finished."""
        return self.call("AbortExecution", pb.AbortExecutionRequest(
            id=_str("id", id), reason=_str("reason", reason))).execution

    def executions(self, phase=None, project=None, *, page_size=0):
        """Every execution, newest first (ListExecutions, all pages);
        ``phase`` ("running", "succeeded", ... or a troupe.pb.Phase)
        and ``project`` filter."""
        req = pb.ListExecutionsRequest(
            phase=_phase(phase), page_size=_u32("page_size", page_size))
        if project is not None:
            req.project = _str("project", project)
        out = []
        while True:
            rep = self.call("ListExecutions", req)
            out.extend(rep.executions)
            if not rep.next_page_token:
                return out
            req.page_token = rep.next_page_token

    # -- workers, actors, tasks --

    def workers(self):
        """Every worker the scheduler knows (WorkerInfo)."""
        return list(self.call("ListWorkers",
                              pb.ListWorkersRequest()).workers)

    def drain_worker(self, id):
        """Stops giving work to the worker ``id`` (id or name); returns
        its WorkerInfo."""
        return self.call("DrainWorker", pb.DrainWorkerRequest(
            id=_str("id", id))).worker

    def actors(self):
        """Every actor environment with its replicas (ActorStatus)."""
        return list(self.call("ListActors", pb.ListActorsRequest()).actors)

    def actor(self, name):
        """The actor environment ``name`` and its replicas (ActorStatus)."""
        return self.call("GetActor", pb.GetActorRequest(
            name=_str("name", name))).actor

    def register_actor(self, name, command=None, replica_count=None, *,
                       ttl_seconds=0, protocol="lines", resources=None,
                       env=None, max_items=0, replace=False):
        """Registers the actor environment ``name``: up to
        ``replica_count`` replicas of ``command``, each kept ``ttl_seconds``
        when idle (0 = the scheduler's default), speaking ``protocol``;
        returns the ActorEnv.  ``name`` may instead be a whole ActorEnv
        message.  ALREADY_EXISTS unless ``replace``."""
        if isinstance(name, pb.ActorEnv):
            a = name
        else:
            a = pb.ActorEnv(name=_str("name", name))
            if not name:
                raise ValueError("name is empty")
            if not command:
                raise ValueError("register_actor needs command")
            a.command = _str("command", command)
            if replica_count is None:
                raise ValueError("register_actor needs replica_count")
            a.replica_count = _u32("replica_count", replica_count, 1)
            a.ttl_seconds = _u32("ttl_seconds", ttl_seconds)
            a.protocol = _protocol(protocol)
            res = to_resources(resources)
            if res is not None:
                a.resources.CopyFrom(res)
            a.env.extend(_env_list(env))
            a.max_items = _u32("max_items", max_items)
        return self.call("RegisterActor", pb.RegisterActorRequest(
            env=a, replace=bool(replace))).env

    def delete_actor(self, name):
        """Deletes the actor environment ``name`` (its replicas stop)."""
        self.call("DeleteActor", pb.DeleteActorRequest(
            name=_str("name", name)))

    def register_task(self, name, command=None, *, retries=0, timeout=None,
                      resources=None, actor="", env=None, replace=False):
        """Registers the task ``name``: ``command`` with its default
        ``retries``, per-item ``timeout`` (seconds), ``resources``,
        ``env`` and ``actor`` environment; returns the TaskSpec.  ``name``
        may instead be a whole TaskSpec message.  ALREADY_EXISTS unless
        ``replace``."""
        if isinstance(name, pb.TaskSpec):
            t = name
        else:
            t = pb.TaskSpec(name=_str("name", name))
            if not name:
                raise ValueError("name is empty")
            if not command:
                raise ValueError("register_task needs command")
            t.command = _str("command", command)
            t.retries = _u32("retries", retries)
            if timeout is not None:
                t.timeout_ms = _ms("timeout", timeout)
            res = to_resources(resources)
            if res is not None:
                t.resources.CopyFrom(res)
            t.actor = _str("actor", actor)
            t.env.extend(_env_list(env))
        return self.call("RegisterTask", pb.RegisterTaskRequest(
            task=t, replace=bool(replace))).task

    def task(self, name):
        """The registered task ``name`` (TaskSpec)."""
        return self.call("GetTask", pb.GetTaskRequest(
            name=_str("name", name))).task

    def tasks(self):
        """Every registered task (TaskSpec)."""
        return list(self.call("ListTasks", pb.ListTasksRequest()).tasks)

    def delete_task(self, name):
        """Deletes the registered task ``name``."""
        self.call("DeleteTask", pb.DeleteTaskRequest(
            name=_str("name", name)))

    def health(self):
        """The scheduler's GetHealthReply: version, uptime, workers, ..."""
        return self.call("GetHealth", pb.GetHealthRequest())

    # -- projects and tokens (an admin token, or the local cluster) --

    def create_project(self, name, *, max_running=0, max_replicas=0,
                       replace=False):
        """Creates (or with ``replace``, updates) project ``name`` with
        its quotas (0 = none); returns the Project."""
        p = pb.Project(name=_str("name", name),
                       max_running=_u32("max_running", max_running),
                       max_replicas=_u32("max_replicas", max_replicas))
        return self.call("CreateProject", pb.CreateProjectRequest(
            project=p, replace=bool(replace))).project

    def projects(self):
        """Every project (Project)."""
        return list(self.call("ListProjects",
                              pb.ListProjectsRequest()).projects)

    def delete_project(self, name):
        """Deletes project ``name``."""
        self.call("DeleteProject", pb.DeleteProjectRequest(
            name=_str("name", name)))

    def create_token(self, project="", role="submit", *, expires=None):
        """Makes a token of ``role`` ("read", "submit", "admin") in
        ``project`` ("" with role admin: every project), expiring after
        ``expires`` seconds (None: never).  Returns the CreateTokenReply:
        ``.secret`` is shown only this once, ``.token`` describes it."""
        req = pb.CreateTokenRequest(project=_str("project", project),
                                    role=_role(role))
        if expires is not None:
            req.expires_s = math.ceil(_ms("expires", expires) / 1000)
        return self.call("CreateToken", req)

    def tokens(self):
        """Every token (TokenInfo; never the secrets)."""
        return list(self.call("ListTokens", pb.ListTokensRequest()).tokens)

    def revoke_token(self, id):
        """Revokes the token ``id`` (TokenInfo.id)."""
        self.call("RevokeToken", pb.RevokeTokenRequest(id=_str("id", id)))


def _connect_reason(e):
    """Why a dial failed, in the CLI's words (client/cli/connect.c)."""
    if e.what != "dial":
        return str(e)  # the TLS set-up, which names what it used
    return {
        _nng.ENOENT: "no such socket",
        _nng.ECONNREFUSED: "connection refused",
        _nng.EADDRINVAL: "invalid address",
        _nng.EPERM: "permission denied",
    }.get(e.rv, str(e))


def _connect_code(rv):
    return "INVALID_ARGUMENT" if rv == _nng.EADDRINVAL else "UNAVAILABLE"
