"""A req0 socket of nng, through ctypes on the system's libnng.

Why ctypes: the SDK then needs no compiler, no Python headers and no build
step when it is installed, only Debian's libnng1 (libnng.so.1), the very
library the troupe CLI and daemons link, so both speak the same transport
with the same TLS and ipc behaviour.  The handful of calls used here are
nng's stable C API (nng 1.x).

Waiting for a reply selects on the socket's receive descriptor
(NNG_OPT_RECVFD) from Python rather than blocking inside nng_recv, so that
Ctrl-C (KeyboardInterrupt) interrupts a long wait at once instead of after
the reply comes.  A request left without its reply is abandoned by the next
send on the same socket (req0's semantics).

Threading: a Socket is used by one thread at a time (the Client holds a
lock around each exchange).
"""

import ctypes
import ctypes.util
import os
import select
import time

__all__ = ["NngError", "Socket", "ETIMEDOUT", "ECONNREFUSED", "ENOENT",
           "EADDRINVAL", "ECLOSED", "EPERM", "strerror"]

# nng.h's error numbers that the SDK tells apart.
ETIMEDOUT = 5
ECONNREFUSED = 6
ECLOSED = 7
EAGAIN = 8
ENOENT = 12
EADDRINVAL = 15
EPERM = 16
ECRYPTO = 26
EPEERAUTH = 27

_FLAG_ALLOC = 1
_FLAG_NONBLOCK = 2
_TLS_MODE_CLIENT = 0
_DURATION_INFINITE = -1


class _Sock(ctypes.Structure):
    _fields_ = [("id", ctypes.c_uint32)]


class _Dialer(ctypes.Structure):
    _fields_ = [("id", ctypes.c_uint32)]


def _load():
    name = ctypes.util.find_library("nng") or "libnng.so.1"
    try:
        lib = ctypes.CDLL(name)
    except OSError:
        lib = ctypes.CDLL("libnng.so.1")
    c_int, c_char_p, c_void_p = ctypes.c_int, ctypes.c_char_p, ctypes.c_void_p
    P = ctypes.POINTER
    sigs = {
        "nng_req0_open": (c_int, [P(_Sock)]),
        "nng_close": (c_int, [_Sock]),
        "nng_dial": (c_int, [_Sock, c_char_p, P(_Dialer), c_int]),
        "nng_dialer_create": (c_int, [P(_Dialer), _Sock, c_char_p]),
        "nng_dialer_start": (c_int, [_Dialer, c_int]),
        "nng_dialer_set_ptr": (c_int, [_Dialer, c_char_p, c_void_p]),
        "nng_dialer_close": (c_int, [_Dialer]),
        "nng_socket_set_ms": (c_int, [_Sock, c_char_p, ctypes.c_int32]),
        "nng_socket_set_size": (c_int, [_Sock, c_char_p, ctypes.c_size_t]),
        "nng_socket_get_int": (c_int, [_Sock, c_char_p, P(c_int)]),
        "nng_send": (c_int, [_Sock, c_char_p, ctypes.c_size_t, c_int]),
        "nng_recv": (c_int, [_Sock, P(c_void_p), P(ctypes.c_size_t), c_int]),
        "nng_free": (None, [c_void_p, ctypes.c_size_t]),
        "nng_strerror": (c_char_p, [c_int]),
        "nng_tls_config_alloc": (c_int, [P(c_void_p), c_int]),
        "nng_tls_config_ca_file": (c_int, [c_void_p, c_char_p]),
        "nng_tls_config_free": (None, [c_void_p]),
    }
    for fn, (res, args) in sigs.items():
        f = getattr(lib, fn)
        f.restype = res
        f.argtypes = args
    return lib


_lib = _load()

# Where the CLI looks for the system's CA bundle (client/client.c).
SYSTEM_CA = "/etc/ssl/certs/ca-certificates.crt"


def strerror(rv):
    """nng's text for error number rv."""
    return _lib.nng_strerror(rv).decode("utf-8", "replace")


class NngError(Exception):
    """An nng call failed: ``rv`` is nng's error number."""

    def __init__(self, rv, what):
        self.rv = rv
        self.what = what
        super().__init__(f"{what}: {strerror(rv)}")


def _check(rv, what):
    if rv != 0:
        raise NngError(rv, what)


class Socket:
    """A req0 socket dialed to one address.

    ``max_msg`` bounds a reply's size (NNG_OPT_RECVMAXSZ; a bigger one is
    dropped by nng and the call times out, as in the C client).  nng never
    resends a request by itself: requests such as CreateExecution are not
    idempotent, so a call fails instead.
    """

    def __init__(self, addr, max_msg, tls_ca=None):
        self._s = _Sock()
        self._open = False
        self._fd = None
        _check(_lib.nng_req0_open(ctypes.byref(self._s)), "nng_req0_open")
        self._open = True
        try:
            _lib.nng_socket_set_size(self._s, b"recv-size-max", max_msg)
            _lib.nng_socket_set_ms(self._s, b"req:resend-time",
                                   _DURATION_INFINITE)
            url = addr.encode()
            if addr.lower().startswith("tls+"):
                self._dial_tls(url, tls_ca)
            else:
                # Synchronous: an unreachable scheduler is reported now.
                _check(_lib.nng_dial(self._s, url, None, 0), "dial")
            fd = ctypes.c_int(-1)
            if _lib.nng_socket_get_int(self._s, b"recv-fd",
                                       ctypes.byref(fd)) == 0:
                self._fd = fd.value
        except BaseException:
            self.close()
            raise

    def _dial_tls(self, url, ca):
        """Dials tls+tcp://, checking the scheduler's certificate against
        ca (TROUPE_TLS_CA), else the system's bundle, as the CLI does."""
        if not ca and os.access(SYSTEM_CA, os.R_OK):
            ca = SYSTEM_CA
        d = _Dialer()
        cfg = ctypes.c_void_p()
        _check(_lib.nng_dialer_create(ctypes.byref(d), self._s, url), "dial")
        try:
            _check(_lib.nng_tls_config_alloc(ctypes.byref(cfg),
                                             _TLS_MODE_CLIENT),
                   "TLS configuration")
            if ca:
                rv = _lib.nng_tls_config_ca_file(cfg, ca.encode())
                if rv != 0:
                    raise NngError(rv, f"cannot use CA file {ca}")
            _check(_lib.nng_dialer_set_ptr(d, b"tls-config", cfg),
                   "TLS configuration")
            _check(_lib.nng_dialer_start(d, 0), "dial")
        except BaseException:
            _lib.nng_dialer_close(d)
            raise
        finally:
            # The dialer holds its own reference.
            if cfg:
                _lib.nng_tls_config_free(cfg)

    def close(self):
        """Closes the socket (idempotent)."""
        if self._open:
            self._open = False
            _lib.nng_close(self._s)

    def send(self, data, timeout):
        """Sends one request (bytes); timeout in seconds."""
        if not self._open:
            raise NngError(ECLOSED, "send")
        _lib.nng_socket_set_ms(self._s, b"send-timeout", _ms(timeout))
        _check(_lib.nng_send(self._s, data, len(data), 0), "send")

    def recv(self, timeout):
        """Waits at most timeout seconds for the reply and returns it."""
        if not self._open:
            raise NngError(ECLOSED, "recv")
        deadline = time.monotonic() + timeout
        if self._fd is not None:
            # select() lets Python's signal handlers run while waiting.
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise NngError(ETIMEDOUT, "recv")
                try:
                    r, _, _ = select.select([self._fd], [], [], left)
                except (OSError, ValueError):
                    # Closed by another thread (Client.close).
                    raise NngError(ECLOSED, "recv") from None
                if r:
                    break
        left = max(deadline - time.monotonic(), 0.001)
        _lib.nng_socket_set_ms(self._s, b"recv-timeout", _ms(left))
        ptr = ctypes.c_void_p()
        size = ctypes.c_size_t()
        _check(_lib.nng_recv(self._s, ctypes.byref(ptr), ctypes.byref(size),
                             _FLAG_ALLOC), "recv")
        try:
            return ctypes.string_at(ptr, size.value)
        finally:
            _lib.nng_free(ptr, size)

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass


def _ms(seconds):
    if seconds is None:
        return _DURATION_INFINITE
    return max(1, min(int(seconds * 1000), 2**31 - 1))
