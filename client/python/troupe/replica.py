"""`python3 -m troupe.replica`: an actor replica that runs Python functions.

The command of every ActorEnvironment the SDK defines.  It speaks the
`frames` protocol (proto/actor.proto; the format troupe_actor.py documents)
on stdin/stdout and serves items of any function of its environment: each
item names its function in a header (troupe._codec), which the replica
imports or unpickles the first time it sees it and keeps for the next
items, so a warm replica serves a second map, of another function, with
no start-up at all.

An exception in the function fails that item alone, with the traceback as
the item's error; the replica goes on.  While serving, anything written to
stdout (print) goes to stderr, so it cannot corrupt the reply stream.

Throughput: the worker writes up to --actor-prefetch items ahead, so the
loop reads whatever stdin holds (one read for many frames) and serves
every complete frame in it; a writer thread sends the replies in batches
(_Writer), without ever holding a reply back behind a slow item.  Requests in the layout the worker writes (seq then input) are
parsed inline; anything else goes through troupe_actor's general decoder.
"""

import os
import queue
import sys
import threading
import traceback

from . import _codec

try:
    import troupe_actor as _ta  # installed beside the package
except ImportError:  # pragma: no cover - the build and install put it there
    _ta = None

__all__ = ["serve", "main"]

MAX_MSG = 64 << 20  # libtroupe's TROUPE_MAX_MSG
_LIMIT = MAX_MSG - 64
_READ = 1 << 18


_varint, _read_varint = _codec.varint, _codec.read_varint


def _reply(seq, output=None, error=None):
    """A framed ActorReply (proto/actor.proto: seq = 1, output = 2,
    error = 3), written out by hand on this hot path."""
    if error is None:
        n = len(output)
        if seq < 0x80 and n < 0x70:
            # The common small reply in one step: every varint one byte.
            return bytes((n + 4, 8, seq, 0x12, n)) + output if seq else \
                bytes((n + 2, 0x12, n)) + output
        body = b"\x12" + _varint(n) + output
    else:
        e = error.encode("utf-8", "replace")
        body = b"\x1a" + _varint(len(e)) + e
    if seq:
        body = b"\x08" + _varint(seq) + body
    return _varint(len(body)) + body


def _decode_request(msg):
    """(seq, input) of an ActorRequest; the common layout inline."""
    n = len(msg)
    if n and msg[0] == 0x08:
        seq, pos = _read_varint(msg, 1)
        if 0 < pos < n and msg[pos] == 0x12:
            size, pos = _read_varint(msg, pos + 1)
            if pos > 0 and pos + size == n:
                return seq, msg[pos:]
    if _ta is None:
        raise _codec.CodecError("unexpected request layout")
    return _ta.decode_request(msg)


def _trim(text):
    # At most 4 bytes a character in UTF-8; keep the end (where it failed).
    cap = _LIMIT // 4
    return text if len(text) <= cap else "..." + text[-(cap - 3) :]


def format_exc(exc, skip):
    """The traceback of exc without its leading frames of the file skip
    or of this one (the serving machinery: the user wants to see their own
    frames).  A batch element's failure reads "batch element J:" then the
    traceback of what the function raised (troupe.map finds J there)."""
    if isinstance(exc, BatchElementError) and exc.__cause__ is not None:
        return "batch element %d:\n%s" % (
            exc.element, format_exc(exc.__cause__, skip))
    tb = exc.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename in (skip,
                                                                 __file__):
        tb = tb.tb_next
    return "".join(traceback.format_exception(type(exc), exc, tb)).rstrip("\n")


class Functions:
    """The functions this process has resolved, keyed by item header, so
    each is imported or unpickled once."""

    def __init__(self):
        self.cache = {}
        # The last item's header and function: the items of one map come
        # in a row, and a prefix test is cheaper than parsing the header.
        self.last, self.last_fn = b"\xff", None

    def call(self, item):
        """Runs the item's function on its argument; returns the encoded
        result.  Raises what the function (or resolving it) raises."""
        if item.startswith(self.last):
            fn, value = self.last_fn, item[len(self.last):]
        else:
            header, value = _codec.split_item(item)
            fn = self.cache.get(header)
            if fn is None:
                fn = _codec.load_function(header)
                self.cache[header] = fn
            self.last, self.last_fn = header, fn
        return apply(fn, value)


class BatchElementError(Exception):
    """Raised (from the original exception) when element `element` of a
    batch raised: the item fails as a whole, its error naming the
    element."""

    def __init__(self, element):
        super().__init__("batch element %d" % element)
        self.element = element


def apply(fn, value):
    """Runs fn on an item's encoded argument (or on each of a batch's, in
    order) and returns the encoded output, at most _LIMIT bytes.  Raises
    what fn raises; in a batch, BatchElementError from it."""
    if _codec.is_batch(value):
        out = []
        add = out.append
        for j, arg in enumerate(_codec.decode_batch(value)):
            try:
                add(fn(arg))
            except (Exception, SystemExit) as exc:
                raise BatchElementError(j) from exc
        out = _codec.encode_batch(out)
    else:
        out = _codec.encode_value(fn(_codec.decode_value(value)))
    if len(out) > _LIMIT:
        raise ValueError(
            "output too large: %d bytes (limit %d)" % (len(out), _LIMIT)
        )
    return out


def _enter_client_cwd():
    """Runs in the client's working directory when this host has it (a
    local cluster), so relative paths in the user's code mean the same."""
    d = os.environ.get("TROUPE_PY_CWD")
    if d:
        try:
            os.chdir(d)
        except OSError:
            pass


class _Writer:
    """Writes replies from a thread of its own, each batch of the replies
    made meanwhile in one write: while the main thread serves cheap items
    back to back it holds the GIL, so replies pile up for a few ms and go
    out together; while it waits in a slow function (sleep, I/O, C code
    releasing the GIL) the replies made before it go out at once, so a fast
    item never waits for the slow one after it."""

    def __init__(self, fd):
        self.fd = fd
        self.q = queue.SimpleQueue()
        self.t = threading.Thread(target=self._run, name="troupe.replica writer",
                                  daemon=True)
        self.t.start()

    def put(self, rep):
        self.q.put(rep)

    def close(self):
        """Writes what is left and waits for the thread."""
        self.q.put(None)
        self.t.join()

    def _run(self):
        q, end = self.q, False
        while not end:
            parts = [q.get()]
            while True:
                try:
                    parts.append(q.get_nowait())
                except queue.Empty:
                    break
            if parts[-1] is None:
                parts.pop()
                end = True
            data = b"".join(parts)
            try:
                while data:
                    data = data[os.write(self.fd, data) :]
            except OSError as exc:
                # The worker closed our stdout: it has let this replica go.
                sys.stderr.write("troupe.replica: writing replies: %s\n" % exc)
                os._exit(1)


def serve(inp=0, out=1):
    """Serves frames on file descriptors inp and out until EOF on inp."""
    funcs = Functions()
    writer = _Writer(out)
    try:
        _serve(inp, writer, funcs)
    finally:
        writer.close()


def _serve(inp, writer, funcs):
    buf = bytearray()
    put, call = writer.put, funcs.call
    while True:
        chunk = os.read(inp, _READ)
        if not chunk:
            if buf:
                raise _codec.CodecError("EOF inside a frame")
            return
        buf += chunk
        view = memoryview(buf)
        n, pos = len(buf), 0
        while pos < n:
            # The length prefix of the next frame, if it is all here
            # (one byte for a small item).
            size = buf[pos]
            p = pos + 1
            if size >= 0x80:
                size, p = _read_varint(buf, pos)
                if p < 0:
                    break
            if size > MAX_MSG:
                raise _codec.CodecError("frame of %d bytes over the limit" % size)
            if p + size > n:
                break
            msg = bytes(view[p : p + size])
            pos = p + size
            seq, data = _decode_request(msg)
            try:
                put(_reply(seq, output=call(data)))
            except (Exception, SystemExit) as exc:
                put(_reply(seq, error=_trim(format_exc(exc, __file__))))
        view.release()
        if pos:
            del buf[:pos]


def main():
    """Entry point: moves stdout aside (print goes to stderr), then
    serves until the worker closes stdin."""
    _enter_client_cwd()
    sys.stdout.flush()
    out = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    try:
        serve(0, out)
    except _codec.CodecError as exc:
        sys.stderr.write("troupe.replica: %s\n" % exc)
        return 1
    finally:
        os.close(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
