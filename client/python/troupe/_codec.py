"""How Python values and functions travel as troupe items and outputs.

troupe moves items and outputs as opaque bytes.  This module is the one
place that decides what those bytes hold when the SDK runs a Python
function (troupe.map, @troupe.task, @env.task); the client side
(mapping.py) and the worker side (replica.py, run.py) both use it, so the
two ends cannot drift apart.

A value (an argument or a result) is encoded as:

- JSON text (UTF-8), when the value is exactly what JSON holds: None,
  bool, int, float, str, and lists and dicts (str keys) of those, with
  those exact types.  json.loads gives back an equal value of the same
  types.  JSON text never starts with a byte below 0x09, which leaves
  room for the tags below.  Such outputs read as JSON in `troupe outputs`.
- 0x00 then the bytes themselves, for `bytes`: passed through untouched.
- 0x01 then a pickle, for anything else picklable: tuples, sets,
  dicts with non-str keys, bytearray, datetime, Decimal, numpy arrays,
  instances of the user's classes...  cloudpickle (Debian's
  python3-cloudpickle) writes it when present, so classes defined in
  __main__ travel too; plain pickle otherwise.

An item (the bytes troupe stores for one input) is a header naming the
function, then the encoded argument:

    0xF5  kind  varint(n)  blob[n]  value

or, for a map with batch_size > 1, 0x02 then the encoded list of the
batch's arguments (one value: a list of JSON values is one json.dumps);
its output is 0x02 then the encoded list of the results, in order.

kind is b"r" (by reference: blob is b"module\\0qualname", imported on the
worker), b"v" (by value: blob is zlib(cloudpickle(fn))) or b"k" (by value
through the environment: blob is a 16-byte key, the BLAKE2b digest of the
b"v" blob, which the process finds in its environment variable
TROUPE_PY_FN_<hex key> holding the base64 of that blob).  The header is the
same for every item of a map, so the client builds it once and the worker
resolves each distinct header once (a dict keyed by its bytes).

Why b"k": the pickle of a small function is some 300 bytes, and every byte
of an item is stored by the scheduler and piped to a replica: inline, it
made a map of trivial items twice as slow.  The environment of an actor
environment (or of a per-item execution) carries each pickle once instead.

Unpickling runs code: the pickle path trusts the other end, as anything
with a token that can submit maps can already run code on the workers.
"""

import json
import os
import pickle
import zlib

# Debian's python3-cloudpickle, imported when first needed (it takes 30 ms,
# which every replica and item process would pay); None when absent.
_cloudpickle = False

__all__ = [
    "MAGIC",
    "encode_value",
    "decode_value",
    "function_header",
    "split_item",
    "load_function",
    "is_json_exact",
    "CodecError",
    "get_cloudpickle",
    "function_key",
    "ENV_PREFIX",
    "is_batch",
    "encode_batch",
    "decode_batch",
]

MAGIC = 0xF5
_TAG_BYTES = b"\x00"
_TAG_PICKLE = b"\x01"
_TAG_BATCH = b"\x02"  # an item or output holding a batch, never a value
_KIND_REF = ord("r")
_KIND_VALUE = ord("v")
_KIND_KEY = ord("k")
_KINDS = {"r": _KIND_REF, "v": _KIND_VALUE, "k": _KIND_KEY}
ENV_PREFIX = "TROUPE_PY_FN_"

_json_dumps = json.JSONEncoder(
    ensure_ascii=False, separators=(",", ":"), allow_nan=True
).encode
# What JSONEncoder(ensure_ascii=False).encode does for a str, minus its
# Python layers.
_json_str = getattr(json.encoder, "c_encode_basestring", None) or \
    json.encoder.py_encode_basestring
_json_decode = json.JSONDecoder().decode
_json_raw = json.JSONDecoder().raw_decode
_SCALARS = (str, int, float, bool, type(None))


class CodecError(ValueError):
    """Bytes that are not an item or value this SDK wrote, or a value or
    function that cannot be encoded."""


def is_json_exact(v, _depth=0):
    """True when json.loads(json.dumps(v)) == v with the same types: only
    the exact types JSON maps back to (a tuple would come back a list, an
    int key a str, an IntEnum an int)."""
    t = type(v)
    if t in _SCALARS:
        return True
    if _depth > 200:
        return False
    if t is list:
        return all(is_json_exact(x, _depth + 1) for x in v)
    if t is dict:
        return all(
            type(k) is str and is_json_exact(x, _depth + 1) for k, x in v.items()
        )
    return False


def get_cloudpickle():
    """The cloudpickle module, or None when it is not installed."""
    global _cloudpickle
    if _cloudpickle is False:
        try:
            import cloudpickle as m
        except ImportError:
            m = None
        _cloudpickle = m
    return _cloudpickle


def _pickle_dumps(v):
    cp = get_cloudpickle()
    if cp is not None:
        return cp.dumps(v, protocol=pickle.HIGHEST_PROTOCOL)
    return pickle.dumps(v, protocol=pickle.HIGHEST_PROTOCOL)


def encode_value(v):
    """Returns the bytes for v (see the module's docstring).  Raises
    CodecError naming the type when v can be neither JSON nor pickled."""
    t = type(v)
    if t is int:
        # What json.dumps writes for an int (int.__repr__), without its
        # encoder's Python layers: the commonest value of a map.
        return b"%d" % v
    if t is str:
        try:
            return _json_str(v).encode("utf-8")
        except UnicodeEncodeError:
            pass  # a lone surrogate: UTF-8 cannot hold it, pickle can
    elif t is bytes:
        return _TAG_BYTES + v
    elif t is bool or v is None or t is float:
        # The common case of a map over numbers or strings, without the walk.
        try:
            return _json_dumps(v).encode("utf-8")
        except UnicodeEncodeError:
            pass  # a lone surrogate: UTF-8 cannot hold it, pickle can
    elif is_json_exact(v):
        try:
            return _json_dumps(v).encode("utf-8")
        except (UnicodeEncodeError, ValueError, RecursionError):
            pass
    try:
        return _TAG_PICKLE + _pickle_dumps(v)
    except Exception as exc:
        raise CodecError(
            "cannot encode a value of type %s: neither JSON nor picklable (%s)"
            % (t.__name__, exc)
        ) from exc


def decode_value(b):
    """Returns the value encoded in b (bytes or a memoryview)."""
    if not b:
        raise CodecError("empty value")
    tag = b[0]
    if tag == 0:
        return bytes(b[1:])
    if tag == 1:
        return pickle.loads(b[1:])
    if type(b) is bytes and b.isdigit() and (tag != 0x30 or len(b) == 1):
        # A JSON int (ASCII digits, no leading zero): int() reads the same
        # value json.loads would, several times faster.
        return int(b)
    # Our JSON is UTF-8: decoding it first skips json.loads's sniffing of
    # the encoding, a third of the cost of a small value.
    s = bytes(b).decode("utf-8") if type(b) is not bytes else b.decode("utf-8")
    # raw_decode skips decode's two regex matches for white space, which
    # our JSON never has; anything else goes the long way (and raises).
    try:
        v, end = _json_raw(s)
    except ValueError:
        end = -1
    return v if end == len(s) else _json_decode(s)


def is_batch(b):
    """Whether the bytes of an item or output hold a batch."""
    return b[:1] == _TAG_BATCH


def encode_batch(values):
    """The bytes of a batch: its tag, then the list of values encoded as
    one value (see the module's docstring)."""
    return _TAG_BATCH + encode_value(list(values))


def decode_batch(b):
    """The list of values of a batch encode_batch wrote."""
    if not is_batch(b):
        raise CodecError("not a batch")
    v = decode_value(b[1:])
    if type(v) is not list:
        raise CodecError("a batch that does not hold a list")
    return v


def varint(v):
    """The protobuf varint of v >= 0 (item headers, replica.py's frames);
    a value under 0x80, the common case, from a table."""
    if v < 0x80:
        return _BYTE[v]
    out = bytearray()
    while v >= 0x80:
        out.append((v & 0x7F) | 0x80)
        v >>= 7
    out.append(v)
    return bytes(out)


_BYTE = [bytes((i,)) for i in range(0x80)]


def read_varint(buf, pos):
    """(value, position after it) of the varint at buf[pos]; position -1
    when buf ends first (more bytes to come, or a truncated message).
    Raises CodecError past 10 bytes."""
    v, shift, n = 0, 0, len(buf)
    while pos < n:
        c = buf[pos]
        pos += 1
        v |= (c & 0x7F) << shift
        if c < 0x80:
            return v, pos
        shift += 7
        if shift >= 70:
            raise CodecError("a varint over 10 bytes")
    return v, -1


def function_header(kind, blob):
    """Returns the item header for a function sent by reference (kind "r",
    blob b"module\\0qualname"), by value (kind "v", blob the compressed
    pickle) or by key (kind "k", blob function_key(pickle blob))."""
    return bytes([MAGIC, _KINDS[kind]]) + varint(len(blob)) + blob


def function_key(blob):
    """(key, environment variable name, value) that carry the compressed
    pickle blob in a process environment."""
    import base64
    import hashlib

    key = hashlib.blake2b(blob, digest_size=16).digest()
    return key, ENV_PREFIX + key.hex(), base64.b64encode(blob).decode("ascii")


def split_item(msg):
    """Returns (header, value bytes) of an item: header is the bytes that
    name the function (the cache key), value what follows it."""
    n = len(msg)
    if n < 3 or msg[0] != MAGIC or msg[1] not in (_KIND_REF, _KIND_VALUE,
                                                  _KIND_KEY):
        raise CodecError(
            "not an item of the troupe Python SDK (run it with troupe.map, "
            "not the CLI)"
        )
    size, pos = read_varint(msg, 2)
    end = pos + size
    if pos < 0 or end > n:
        raise CodecError("truncated item header")
    return msg[:end], msg[end:]


def _header_blob(header):
    _, pos = header[1], 2
    while header[pos] & 0x80:
        pos += 1
    return header[1], header[pos + 1 :]


def load_function(header):
    """Returns the callable an item header names: imports module and
    walks qualname (by reference), or unpickles it (by value).  A
    troupe Task found there is unwrapped to its function."""
    kind, blob = _header_blob(header)
    if kind == _KIND_REF:
        module, _, qualname = bytes(blob).decode("utf-8").partition("\0")
        import importlib

        obj = importlib.import_module(module)
        for part in qualname.split("."):
            obj = getattr(obj, part)
    else:
        if get_cloudpickle() is None:
            raise CodecError(
                "this function was sent by value and needs cloudpickle on "
                "the worker (Debian: apt-get install python3-cloudpickle)"
            )
        if kind == _KIND_KEY:
            import base64

            name = ENV_PREFIX + bytes(blob).hex()
            b64 = os.environ.get(name)
            if b64 is None:
                raise CodecError(
                    "%s is not in this process's environment (its actor "
                    "environment was replaced since the map started?)" % name
                )
            blob = base64.b64decode(b64)
        obj = pickle.loads(zlib.decompress(blob))
    fn = getattr(obj, "__troupe_fn__", obj)
    if not callable(fn):
        raise CodecError("%r is not callable" % (fn,))
    return fn
