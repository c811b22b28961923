"""troupe.map and troupe.imap: a Python function over many items, on a cluster.

    results = troupe.map(detect_anomalies, data, concurrency=10)

submits one execution whose items are the encoded arguments (troupe._codec:
a header naming the function, then the value), waits for it, and returns
the decoded outputs in input order.  The items are read lazily from any
iterable and uploaded chunk by chunk (Client.submit), so a generator of
millions of items takes one chunk of memory on the way up.

Failures: an item whose function raised (or that timed out, or whose
process died too often) is FAILED with the traceback as its error.  With
min_success_ratio=1.0 (the default) any failure fails the map: MapError
says how many items failed and shows the first errors.  With a lower
ratio, the map succeeds when enough items do, and the failed items come
back as None (Flyte's map tasks do the same); below the ratio it raises
MapError too.  Ctrl-C (KeyboardInterrupt) while the map runs aborts the
execution, then re-raises.

Batches: with batch_size=k > 1, each troupe item carries k consecutive
arguments (troupe._codec's batch), which the replica or item process runs
one after another; the outputs come back one per argument, as without.
A batch is the unit the cluster sees, as a partition is in dask.bag: it
is retried, timed out and counted (status, min_success_ratio) as one
item, and when one of its arguments raises, the whole batch fails, its
arguments come back as None, and the error names the argument.
"""

import itertools
import re
import threading

from . import _codec
from .errors import TroupeError
from .tasks import Task, function_ref

__all__ = ["map", "imap", "MapError"]

_ITEM_SUCCEEDED = 2  # proto/api.proto ItemState
_ITEM_FAILED = 3
_PHASE_QUEUED, _PHASE_RUNNING, _PHASE_SUCCEEDED = 1, 2, 3  # api.proto Phase
_PHASE_NAMES = {0: "UNSPECIFIED", 1: "QUEUED", 2: "RUNNING", 3: "SUCCEEDED",
                4: "FAILED", 5: "ABORTED", 6: "TIMED_OUT"}
_FIRST_ERRORS = 3
_ELEMENT = re.compile(r"batch element (\d+):\n")  # replica.format_exc


class MapError(TroupeError):
    """A troupe.map that did not succeed.

    ``execution`` is its id, ``phase`` its final phase ("FAILED",
    "ABORTED", "TIMED_OUT"), ``failed`` how many items failed, ``total``
    how many there were, ``errors`` the first few (index, error text)
    pairs in index order, ``outputs`` the outputs (None for an item that
    did not succeed), ``reason`` the execution's own error.  ``code`` is
    "FAILED" (TroupeError's code) so one except clause catches both."""

    def __init__(self, execution, phase, failed, total, errors, outputs=None,
                 reason=""):
        self.execution = execution
        self.phase = phase
        self.failed = failed
        self.total = total
        self.errors = list(errors)
        self.outputs = outputs
        self.reason = reason
        msg = "map %s %s: %d of %d items failed" % (
            execution, phase.lower(), failed, total)
        if reason:
            msg += " (%s)" % reason
        for i, e in self.errors:
            msg += "\n--- item %d:\n%s" % (i, e.rstrip("\n"))
        super().__init__("FAILED", msg)

    def __reduce__(self):
        return (type(self), (self.execution, self.phase, self.failed,
                             self.total, self.errors, self.outputs,
                             self.reason))


def _as_task(fn):
    if isinstance(fn, Task):
        return fn
    if not callable(fn):
        raise TypeError("troupe.map needs a function, not %s"
                        % type(fn).__name__)
    return Task(fn)


_BLOCK = 1024  # arguments encoded at a time


def _name_unencodable(block, base):
    """Raises TypeError naming (by its index, base + i) the first argument
    of block that cannot be encoded; returns if there is none."""
    for i, x in enumerate(block):
        try:
            _codec.encode_value(x)
        except _codec.CodecError as exc:
            raise TypeError("item %d: %s" % (base + i, exc)) from None


def _items(header, items):
    """The encoded items; an argument that cannot be encoded is a
    TypeError naming its index.  Encodes a block of arguments at a time
    in one comprehension (a third of the per-item cost of a generator
    step each), reading the iterable no more than a block ahead."""
    enc = _codec.encode_value
    it = iter(items)
    base = 0
    while True:
        block = list(itertools.islice(it, _BLOCK))
        if not block:
            return
        try:
            out = [header + enc(x) for x in block]
        except _codec.CodecError:
            _name_unencodable(block, base)
            raise
        yield from out
        base += len(block)


def _decode(r):
    try:
        return _codec.decode_value(r.output)
    except Exception as exc:
        raise TroupeError(
            "DATA_LOSS", "the output of item %d cannot be decoded here: %s: "
            "%s" % (r.index, type(exc).__name__, exc)) from exc


class _Run:
    """One map: its client, its execution, what came back so far."""

    def __init__(self, fn, items, *, concurrency, retries, timeout,
                 min_success_ratio, client, name, by_value, execution_timeout,
                 batch_size):
        self.task = _as_task(fn)
        if isinstance(items, (str, bytes, bytearray, memoryview, dict)):
            raise TypeError("items must be an iterable of arguments, not "
                            "one %s" % type(items).__name__)
        try:
            self.items = iter(items)
        except TypeError:
            raise TypeError("items must be an iterable, not %s"
                            % type(items).__name__) from None
        if isinstance(min_success_ratio, bool) or not isinstance(
                min_success_ratio, (int, float)) or \
                not 0.0 <= min_success_ratio <= 1.0:
            raise ValueError("min_success_ratio must be a number between 0 "
                             "and 1, not %r" % (min_success_ratio,))
        self.ratio = float(min_success_ratio)
        # Says now, before any call, when fn cannot travel at all.
        function_ref(self.task.__troupe_fn__,
                     self.task.by_value if by_value is None else by_value)
        self.by_value = by_value
        self.kw = {
            "concurrency": concurrency,
            "retries": retries if retries is not None else
            (self.task.retries or 0),
            "timeout": timeout if timeout is not None else self.task.timeout,
            "min_success_ratio": self.ratio,
            "name": name,
            "execution_timeout": execution_timeout,
        }
        self.own_client = client is None
        self.client = client
        self.id = None
        self.uploader = None
        self.upload_error = None
        self.cancelled = False
        self.failed = 0
        self.errors = []
        self.batch = _batch_size(batch_size)
        self.n_args = 0  # arguments read so far (batches only)
        self.failed_args = 0  # of them, in FAILED batches

    def start(self):
        """Submits the execution and returns once it exists, while a thread
        goes on uploading the items (so results come back during a long
        upload); False when there are no items at all."""
        try:
            first = next(self.items)
        except StopIteration:
            return False
        if self.client is None:
            from .client import Client

            self.client = Client()
        self.header, where = self.task.prepare(self.client, self.by_value)
        kw = dict(self.kw)
        kw.update(where)

        def chained():
            yield first
            yield from self.items

        created = threading.Event()

        def on_created(ex):
            if self.cancelled:
                raise KeyboardInterrupt  # submit aborts it and re-raises
            self.id, self.total = ex.id, ex.total
            created.set()

        def upload():
            try:
                items = (_items(self.header, chained()) if self.batch == 1
                         else self._batches(chained()))
                self.client.submit(items, on_created=on_created, **kw)
            except BaseException as exc:  # handed to the main thread
                self.upload_error = exc
            finally:
                created.set()

        self.uploader = threading.Thread(target=upload, daemon=True,
                                         name="troupe.map upload")
        self.uploader.start()
        try:
            while not created.wait(0.2):
                pass
        except KeyboardInterrupt:
            self.cancelled = True
            raise
        if self.id is None:
            self.uploader.join()
            raise self.upload_error
        return True

    def upload_done(self):
        """Waits for the upload; raises what made it fail."""
        if self.uploader is not None:
            while self.uploader.is_alive():
                self.uploader.join(0.2)
        if self.upload_error is not None:
            raise self.upload_error

    def results(self, ordered):
        """Yields (index, value or None) as Client.results gives them;
        records the failures.  A failed upload's error wins over what it
        did to the execution."""
        try:
            for r in self._results(ordered):
                yield r
        except TroupeError:
            self.upload_done()
            raise
        self.upload_done()

    def _results(self, ordered):
        if self.batch == 1:
            for r in self.client.results(self.id, ordered=ordered):
                yield self._one(r)
            return
        for r in self.client.results(self.id, ordered=ordered):
            yield from self._expand(r)

    def all_results(self):
        """Waits for the end (long polls), then reads every output once, in
        input order: for a list, far fewer calls than following each item
        as it lands (a 100,000-item map: 3 calls instead of ~400), which
        leaves the CPU to the replicas on a small machine."""
        self.client.watch(self.id)
        self.upload_done()
        out = []
        if self.batch > 1:
            for r in self.client.outputs(self.id):
                out.extend(v for _, v in self._expand(r))
            return out
        add, dec, one = out.append, _codec.decode_value, self._one
        for r in self.client.outputs(self.id):
            if r.state == _ITEM_SUCCEEDED:
                try:
                    add(dec(r.output))
                    continue
                except Exception:
                    pass  # _one says which item, as a TroupeError
            add(one(r)[1])
        return out

    def _one(self, r):
        """(index, value or None) of an ItemResult; records failures."""
        if r.state == _ITEM_SUCCEEDED:
            return r.index, _decode(r)
        self.failed += 1
        if r.state == _ITEM_FAILED and len(self.errors) < _FIRST_ERRORS:
            self.errors.append((r.index, r.error or "(no error text)"))
        return r.index, None

    def _batches(self, items):
        """The items of a map with batch_size > 1: batch_size arguments
        each (the last may hold fewer), as _items encodes them."""
        it, k = iter(items), self.batch
        while True:
            block = list(itertools.islice(it, k))
            if not block:
                return
            try:
                item = self.header + _codec.encode_batch(block)
            except _codec.CodecError:
                _name_unencodable(block, self.n_args)
                raise
            self.n_args += len(block)
            yield item

    def _expand(self, r):
        """(argument index, value or None) of each argument of the batch
        an ItemResult holds; records the failures."""
        base = r.index * self.batch
        if r.state == _ITEM_SUCCEEDED:
            try:
                values = _codec.decode_batch(r.output)
            except Exception as exc:
                raise TroupeError(
                    "DATA_LOSS", "the output of batch %d cannot be decoded "
                    "here: %s: %s" % (r.index, type(exc).__name__, exc)
                ) from exc
            for j, v in enumerate(values):
                yield base + j, v
            return
        # Only the last batch may be short, and it was read (n_args
        # counts it) before it could have a result.
        size = min(self.batch, self.n_args - base)
        self.failed += size
        if r.state == _ITEM_FAILED:
            self.failed_args += size
        if r.state == _ITEM_FAILED and len(self.errors) < _FIRST_ERRORS:
            err = r.error or "(no error text)"
            m = _ELEMENT.search(err)
            at = base + int(m.group(1)) if m and int(m.group(1)) < size \
                else base
            self.errors.append((at, err))
        for j in range(size):
            yield base + j, None

    def finish(self, outputs=None):
        """Raises MapError unless the execution succeeded; aborts it first
        if it is still running (an iterator that stops at a failure)."""
        ex = self.client.status(self.id)
        if ex.phase == _PHASE_SUCCEEDED:
            return
        if ex.phase in (_PHASE_QUEUED, _PHASE_RUNNING):
            self.abort("an item failed")
            ex = self.client.status(self.id)
        failed, total = ex.counts.failed, ex.total
        if self.batch > 1:  # the cluster counted batches
            failed, total = self.failed_args, self.n_args
        raise MapError(self.id, _PHASE_NAMES.get(ex.phase, str(ex.phase)),
                       failed, total, sorted(self.errors), outputs, ex.error)

    def abort(self, why):
        self.cancelled = True
        if self.id is None or self.client is None:
            return
        try:
            self.client.abort(self.id, why)
        except TroupeError:
            pass  # already finished, or the scheduler is gone: nothing to stop

    def close(self):
        """Lets a still running upload see the end (it fails at once
        when the execution was aborted), then closes our own client."""
        self.cancelled = True
        if self.uploader is not None:
            self.uploader.join(10)
        if self.own_client and self.client is not None:
            self.client.close()
            self.client = None


def _batch_size(k):
    if isinstance(k, bool) or not isinstance(k, int):
        raise TypeError("batch_size must be an int, not %s"
                        % type(k).__name__)
    if k < 1:
        raise ValueError("batch_size must be at least 1, not %d" % k)
    return k


def _kwargs(concurrency, retries, timeout, min_success_ratio, client, name,
            by_value, execution_timeout, batch_size):
    return dict(concurrency=concurrency, retries=retries, timeout=timeout,
                min_success_ratio=min_success_ratio, client=client, name=name,
                by_value=by_value, execution_timeout=execution_timeout,
                batch_size=batch_size)


def map(fn, items, concurrency=0, retries=None, timeout=None,
        min_success_ratio=1.0, ordered=True, client=None, *, name=None,
        by_value=None, execution_timeout=None, batch_size=1):
    """Runs fn over items on the cluster; returns the outputs in input
    order (ordered=True), or, with ordered=False, an iterator of
    (index, output) pairs in the order the items finish.

    fn is a function, a @troupe.task or an @env.task (on its actor
    environment's replicas).  concurrency bounds the items running at once
    (0: the cluster's capacity or the environment's replicas bound it);
    retries (default: the task's, else 0) re-runs a failed item; timeout
    is per item and execution_timeout for the whole map, in seconds;
    min_success_ratio below 1 lets the map succeed with failed items,
    which come back as None.  client is a troupe.Client (default: one
    found as the CLI finds the cluster, closed at the end); name labels
    the execution; by_value forces how fn is sent (True: cloudpickle;
    False: by reference, else TypeError); batch_size > 1 sends that many
    arguments in each item (see the module's docstring: a batch is
    retried, timed out and fails as one).

    Raises MapError when the map does not succeed, TypeError or
    ValueError for bad arguments (an argument that can be neither JSON
    nor pickled names its index), TroupeError when the cluster refuses.
    """
    kw = _kwargs(concurrency, retries, timeout, min_success_ratio, client,
                 name, by_value, execution_timeout, batch_size)
    if not ordered:
        return imap(fn, items, ordered=False, **kw)
    run = _Run(fn, items, **kw)
    try:
        if not run.start():
            return []
        out = run.all_results()
        run.finish(out)
        return out
    except KeyboardInterrupt:
        run.abort("interrupted (Ctrl-C in troupe.map)")
        raise
    finally:
        run.close()


def imap(fn, items, ordered=True, concurrency=0, retries=None, timeout=None,
         min_success_ratio=1.0, client=None, *, name=None, by_value=None,
         execution_timeout=None, batch_size=1):
    """troupe.map as an iterator: ordered=True yields the outputs in input
    order, each as soon as it and every item before it have finished;
    ordered=False yields (index, output) pairs as items finish.  A failed
    item yields None; with min_success_ratio=1.0 the first failure raises
    MapError (the execution has failed), otherwise MapError comes at the
    end if too few succeeded.  Leaving the loop early (break, an
    exception, Ctrl-C) aborts the execution."""
    run = _Run(fn, items, **_kwargs(concurrency, retries, timeout,
                                   min_success_ratio, client, name, by_value,
                                   execution_timeout, batch_size))
    return _iterate(run, ordered)


def _iterate(run, ordered):
    done = False
    try:
        if not run.start():
            done = True
            return
        for i, v in run.results(ordered):
            if run.failed and run.ratio >= 1.0:
                # The execution fails at its first failed item: say so now.
                run.finish()
            yield v if ordered else (i, v)
        run.finish()
        done = True
    finally:
        if not done:
            run.abort("its troupe.imap was left before the end")
        run.close()

