"""Write a troupe actor replica in Python, with no dependency.

A replica is started once and serves many items, reading them from stdin
and writing the results to stdout (docs/design.md, "How a task process talks").

    import troupe_actor

    def handle(item: bytes) -> bytes | str:
        return item.upper()

    troupe_actor.serve(handle)        # the `frames` protocol
    troupe_actor.serve_lines(handle)  # the `lines` protocol

``frames`` is binary-safe and has per-item errors: a handler that raises
fails that item with ``str(exc)`` and the replica goes on.  ``lines`` has no
error channel: an exception ends the replica (the worker then retries the
item elsewhere and, if it keeps failing, marks it failed).

While serving, ``print()`` and anything else written to stdout goes to
stderr instead, so it cannot corrupt the reply stream.

The protobuf encoding of ActorRequest and ActorReply is written out by
hand to stay dependency-free.  Field numbers follow proto/actor.proto; keep
them in step with it.
"""

import os
import sys

__all__ = [
    "serve",
    "serve_lines",
    "ProtocolError",
    "MAX_MSG",
    "encode_request",
    "decode_request",
    "encode_reply",
    "decode_reply",
    "read_frame",
    "frame",
]

# libtroupe's TROUPE_MAX_MSG (client/include/troupe/envelope.h).
MAX_MSG = 64 << 20
_REPLY_SLACK = 64

# proto/actor.proto field numbers.
_REQ_SEQ = 1  # ActorRequest.seq: uint64
_REQ_INPUT = 2  # ActorRequest.input: bytes
_REP_SEQ = 1  # ActorReply.seq: uint64
_REP_OUTPUT = 2  # ActorReply.output: bytes (oneof result)
_REP_ERROR = 3  # ActorReply.error: string (oneof result)

# Wire types.
_VARINT, _I64, _LEN, _SGROUP, _EGROUP, _I32 = 0, 1, 2, 3, 4, 5

_U64 = (1 << 64) - 1


class ProtocolError(Exception):
    """The peer sent bytes that are not a valid delimited message."""


def _varint(v):
    out = bytearray()
    while v >= 0x80:
        out.append((v & 0x7F) | 0x80)
        v >>= 7
    out.append(v)
    return bytes(out)


def _read_varint(buf, pos):
    """Returns (value, next position) of the varint at buf[pos]."""
    v = 0
    for i in range(10):
        if pos >= len(buf):
            raise ProtocolError("truncated varint")
        b = buf[pos]
        pos += 1
        v |= (b & 0x7F) << (7 * i)
        if b < 0x80:
            if v > _U64:
                raise ProtocolError("varint over 64 bits")
            return v, pos
    raise ProtocolError("varint over 10 bytes")


def _skip(buf, pos, wtype, fnum, depth=0):
    """Returns the position after a field's value of wire type wtype."""
    if wtype == _VARINT:
        return _read_varint(buf, pos)[1]
    if wtype == _I64:
        end = pos + 8
    elif wtype == _I32:
        end = pos + 4
    elif wtype == _LEN:
        n, pos = _read_varint(buf, pos)
        end = pos + n
    elif wtype == _SGROUP:
        # A (deprecated) group: fields up to the matching end tag.
        if depth > 64:
            raise ProtocolError("groups nested too deep")
        while True:
            key, pos = _read_varint(buf, pos)
            if key & 7 == _EGROUP:
                if key >> 3 != fnum:
                    raise ProtocolError("mismatched end of group")
                return pos
            pos = _skip(buf, pos, key & 7, key >> 3, depth + 1)
    else:
        raise ProtocolError("bad wire type %d" % wtype)
    if end > len(buf):
        raise ProtocolError("truncated field")
    return end


def _fields(buf):
    """Yields (field number, wire type, value) for each field of a message:
    value is an int for varints, a memoryview slice for length-delimited
    fields, and None for skipped (other) wire types."""
    pos = 0
    while pos < len(buf):
        key, pos = _read_varint(buf, pos)
        fnum, wtype = key >> 3, key & 7
        if fnum == 0:
            raise ProtocolError("field number 0")
        if wtype == _VARINT:
            v, pos = _read_varint(buf, pos)
            yield fnum, wtype, v
        elif wtype == _LEN:
            n, pos = _read_varint(buf, pos)
            if pos + n > len(buf):
                raise ProtocolError("truncated field")
            yield fnum, wtype, buf[pos : pos + n]
            pos += n
        elif wtype == _EGROUP:
            raise ProtocolError("end of group outside a group")
        else:
            pos = _skip(buf, pos, wtype, fnum)
            yield fnum, wtype, None


def _expect(fnum, wtype, want):
    if wtype != want:
        raise ProtocolError("field %d has wire type %d" % (fnum, wtype))


def encode_request(seq, data):
    """Packs an ActorRequest (the worker's side; for tests and tools)."""
    out = bytearray()
    if seq:
        out += _varint(_REQ_SEQ << 3 | _VARINT) + _varint(seq)
    if data:
        out += _varint(_REQ_INPUT << 3 | _LEN) + _varint(len(data)) + data
    return bytes(out)


def decode_request(buf):
    """Returns (seq, input bytes) of a packed ActorRequest; unknown fields
    are skipped, and the last of a repeated field wins, as in protobuf."""
    seq, data = 0, b""
    view = memoryview(buf)
    for fnum, wtype, v in _fields(view):
        if fnum == _REQ_SEQ:
            _expect(fnum, wtype, _VARINT)
            seq = v
        elif fnum == _REQ_INPUT:
            _expect(fnum, wtype, _LEN)
            data = bytes(v)
    return seq, data


def encode_reply(seq, output=None, error=None):
    """Packs an ActorReply with either output (bytes) or error (str).  The
    oneof member is written even when empty: that is what marks it set."""
    out = bytearray()
    if seq:
        out += _varint(_REP_SEQ << 3 | _VARINT) + _varint(seq)
    if error is not None:
        e = error.encode("utf-8", "replace")
        out += _varint(_REP_ERROR << 3 | _LEN) + _varint(len(e)) + e
    else:
        o = output or b""
        out += _varint(_REP_OUTPUT << 3 | _LEN) + _varint(len(o)) + o
    return bytes(out)


def decode_reply(buf):
    """Returns (seq, output bytes or None, error str or None) of a packed
    ActorReply."""
    seq, output, error = 0, None, None
    for fnum, wtype, v in _fields(memoryview(buf)):
        if fnum == _REP_SEQ:
            _expect(fnum, wtype, _VARINT)
            seq = v
        elif fnum == _REP_OUTPUT:
            _expect(fnum, wtype, _LEN)
            output, error = bytes(v), None
        elif fnum == _REP_ERROR:
            _expect(fnum, wtype, _LEN)
            output, error = None, bytes(v).decode("utf-8", "replace")
    return seq, output, error


def frame(msg):
    """Returns msg preceded by its length as a varint."""
    return _varint(len(msg)) + msg


def read_frame(f, max_len=MAX_MSG):
    """Reads one delimited frame from the binary file f.  Returns its bytes,
    or None at a clean EOF between frames."""
    v = 0
    for i in range(10):
        b = f.read(1)
        if not b:
            if i == 0:
                return None
            raise ProtocolError("EOF inside a length prefix")
        v |= (b[0] & 0x7F) << (7 * i)
        if b[0] < 0x80:
            break
    else:
        raise ProtocolError("length prefix over 10 bytes")
    if v > max_len:
        raise ProtocolError("frame of %d bytes over the limit of %d" % (v, max_len))
    msg = f.read(v) if v else b""
    if len(msg) != v:
        raise ProtocolError("EOF inside a frame")
    return msg


class _Stdio:
    """Moves stdout aside while serving: replies go to a private duplicate
    of fd 1, and fd 1 and sys.stdout point at stderr meanwhile."""

    def __enter__(self):
        sys.stdout.flush()
        self.saved = os.dup(1)
        self.out = os.fdopen(os.dup(1), "wb")
        self.sys_stdout = sys.stdout
        try:
            os.dup2(2, 1)
        except OSError:
            pass  # no stderr: leave fd 1 alone
        sys.stdout = sys.stderr
        return self.out

    def __exit__(self, *exc):
        try:
            self.out.flush()
        finally:
            self.out.close()
            sys.stdout.flush()
            sys.stdout = self.sys_stdout
            os.dup2(self.saved, 1)
            os.close(self.saved)
        return False


def _as_bytes(v):
    if v is None:
        return b""
    if isinstance(v, str):
        return v.encode("utf-8")
    if isinstance(v, (bytes, bytearray, memoryview)):
        return bytes(v)
    raise TypeError("handler returned %s, not bytes or str" % type(v).__name__)


def serve(handler):
    """Serves the frames protocol on stdin/stdout until EOF.

    handler(input: bytes) returns bytes or str (str is sent as UTF-8; None
    as empty).  An Exception it raises fails that item with str(exc) (or the
    exception's type name when that is empty); the replica goes on.  Raises
    ProtocolError on a malformed request, which ends the replica."""
    inp = sys.stdin.buffer
    limit = MAX_MSG - _REPLY_SLACK
    with _Stdio() as out:
        while True:
            msg = read_frame(inp)
            if msg is None:
                return
            seq, data = decode_request(msg)
            try:
                result = _as_bytes(handler(data))
                if len(result) > limit:
                    raise ValueError(
                        "output too large: %d bytes (limit %d)" % (len(result), limit)
                    )
                rep = encode_reply(seq, output=result)
            except Exception as exc:
                text = str(exc) or type(exc).__name__
                # At most 4 bytes a character in UTF-8.
                rep = encode_reply(seq, error=text[: limit // 4])
            out.write(frame(rep))
            out.flush()


def serve_lines(handler):
    """Serves the lines protocol on stdin/stdout until EOF: for each line
    (without its newline), writes handler(line) and a newline, and flushes.

    handler takes bytes and returns bytes or str, as for serve(), so one
    handler serves both protocols.  An output holding a newline raises
    ValueError; exceptions end the replica (lines has no error channel)."""
    inp = sys.stdin.buffer
    with _Stdio() as out:
        for line in inp:
            if line.endswith(b"\n"):
                line = line[:-1]
            result = _as_bytes(handler(line))
            if b"\n" in result:
                raise ValueError("lines protocol: output holds a newline")
            out.write(result + b"\n")
            out.flush()
