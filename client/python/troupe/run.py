"""`python3 -m troupe.run`: one item, one process (@troupe.task).

The command of a map of a function with no actor environment: the worker
starts one process per item, with the item (troupe._codec's header, then
the argument, or a batch of them) on stdin.  The result goes to stdout, exit 0; an exception
prints its traceback to stderr and exits 1, so the item fails with that
traceback as its error (the stderr tail) and --retries applies.  While the
function runs, print() goes to stderr so it cannot corrupt the output.
"""

import os
import sys

from . import _codec
from .replica import _enter_client_cwd, apply, format_exc

__all__ = ["main"]


def main():
    """Runs the item on stdin; returns the exit status."""
    _enter_client_cwd()
    item = sys.stdin.buffer.read()
    sys.stdout.flush()
    out = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    try:
        try:
            header, value = _codec.split_item(item)
            fn = _codec.load_function(header)
            result = apply(fn, value)
        except (Exception, SystemExit) as exc:
            sys.stderr.write(format_exc(exc, __file__) + "\n")
            sys.stderr.flush()
            return 1
        while result:
            result = result[os.write(out, result) :]
        return 0
    finally:
        os.close(out)


if __name__ == "__main__":
    sys.exit(main())
