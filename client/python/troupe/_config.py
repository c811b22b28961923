"""Finding the cluster and the token, exactly as the ``troupe`` CLI does.

The rules are those of client/home.c and client/cli/connect.c, so that a
program and the CLI run in the same shell reach the same scheduler with
the same credentials:

* address: the ``addr`` argument, else ``TROUPE_ADDR``, else the local
  cluster's socket ``ipc://HOME/api.sock`` where HOME is ``TROUPE_HOME``,
  else ``$XDG_STATE_HOME/troupe``, else ``$HOME/.local/state/troupe``;
* token: the ``token`` argument, else ``TROUPE_TOKEN``, else the first line
  of the file named by ``TROUPE_TOKEN_FILE``; a file its group or others
  may read or write is refused (``chmod 600``), as is an empty file or a
  token shorter than 16 characters;
* project: the ``project`` argument, else ``TROUPE_PROJECT``, else none
  (the scheduler then uses the token's own project, or "default").
"""

import os
import stat

from .errors import TroupeError

__all__ = ["TOKEN_MIN", "home", "default_addr", "read_token",
           "default_project", "is_local"]

# client/include/troupe/home.h's TROUPE_TOKEN_MIN.
TOKEN_MIN = 16


def home():
    """The local cluster's state directory, or None when neither
    TROUPE_HOME, XDG_STATE_HOME nor HOME is set."""
    h = os.environ.get("TROUPE_HOME")
    if h:
        return h
    xdg = os.environ.get("XDG_STATE_HOME")
    if xdg:
        return os.path.join(xdg, "troupe")
    hm = os.environ.get("HOME")
    if hm:
        return hm + "/.local/state/troupe"
    return None


def default_addr():
    """TROUPE_ADDR, else the local cluster's API socket.  Raises
    TroupeError (FAILED_PRECONDITION) when there is no way to find it."""
    a = os.environ.get("TROUPE_ADDR")
    if a:
        return a
    h = home()
    if h is None:
        raise TroupeError("FAILED_PRECONDITION",
                          "cannot find the local cluster: set TROUPE_HOME "
                          "(or HOME), or give addr=URL")
    return f"ipc://{h}/api.sock"


def is_local(addr):
    """Whether addr is an ipc:// (or inproc://) address, in any case."""
    a = addr.lower()
    return a.startswith("ipc://") or a.startswith("inproc://")


def _check_len(token, source):
    if len(token) < TOKEN_MIN:
        raise TroupeError(
            "INVALID_ARGUMENT",
            f"the token from {source} is {len(token)} characters long; at "
            f"least {TOKEN_MIN} are required (make one with `head -c 32 "
            f"/dev/urandom | base64`)")
    return token


def read_token(file=None):
    """The token the CLI would present: TROUPE_TOKEN, else the first line
    of ``file`` (or of TROUPE_TOKEN_FILE); None when none is configured.
    ``file``, when given, wins over TROUPE_TOKEN as the CLI's --token-file
    does.  Raises TroupeError naming the file when it cannot be used."""
    env = os.environ.get("TROUPE_TOKEN")
    if file is None and env:
        return _check_len(env, "TROUPE_TOKEN")
    if file is None:
        file = os.environ.get("TROUPE_TOKEN_FILE")
    if not file:
        return None
    try:
        with open(file, "rb") as f:
            # Checked on the open file, so that it is the file we read.
            mode = os.fstat(f.fileno()).st_mode
            if mode & 0o077:
                raise TroupeError(
                    "PERMISSION_DENIED",
                    f"the token file {file} may be read or written by its "
                    f"group or others (mode {stat.S_IMODE(mode):04o}): run "
                    f"`chmod 600 {file}`")
            line = f.readline(1023)
    except OSError as e:
        raise TroupeError(
            "PERMISSION_DENIED" if isinstance(e, PermissionError)
            else "NOT_FOUND",
            f"cannot read the token file {file}: {e.strerror}") from None
    token = line.split(b"\n", 1)[0].split(b"\r", 1)[0].decode(
        "utf-8", "replace")
    if not token:
        raise TroupeError("INVALID_ARGUMENT",
                          f"the token file {file} is empty")
    return _check_len(token, file)


def default_project():
    """TROUPE_PROJECT, or None."""
    return os.environ.get("TROUPE_PROJECT") or None
