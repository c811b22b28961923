"""Functions the Python SDK's tests (test_map.py) run on the cluster BY
REFERENCE: this module is importable on the worker because troupe.map
passes the client's sys.path (which pytest puts this directory on) to the
replicas and item processes."""

import os
import time


def square(x):
    return x * x


def ident(x):
    return x


def type_name(x):
    return type(x).__name__


def pid(_x):
    return os.getpid()


def noisy(x):
    # print() on a replica must not corrupt the frames on its stdout.
    print("noise for", x)
    print("more noise", flush=True)
    return x


def fail_on(x):
    """Fails item 7 with a ValueError; the rest come back as x + 1."""
    if x == 7:
        raise ValueError("seven is right out")
    return x + 1


def fail_first_attempt(path):
    """Fails the first time it runs for path (a file it creates), then
    succeeds: a task that needs one retry."""
    if not os.path.exists(path):
        with open(path, "w") as f:
            f.write("attempt 1\n")
        raise RuntimeError("first attempt fails on purpose")
    return "ok"


def die_once(d):
    """The first attempt writes its pid to d/victim and waits (at most
    60 s) to be killed; a later attempt returns its own pid."""
    victim = os.path.join(d, "victim")
    if not os.path.exists(victim):
        with open(victim + ".tmp", "w") as f:
            f.write(str(os.getpid()))
        os.rename(victim + ".tmp", victim)
        time.sleep(60)
        return -1
    return os.getpid()


def sleep_for(s):
    time.sleep(s)
    return s


def unencodable(_x):
    return (i for i in range(3))  # a generator: neither JSON nor picklable


class Point:
    """A user class: its instances travel pickled."""

    def __init__(self, x, y):
        self.x, self.y = x, y

    def __eq__(self, other):
        return isinstance(other, Point) and (self.x, self.y) == (other.x, other.y)

    def __repr__(self):
        return "Point(%r, %r)" % (self.x, self.y)


def mark_and_sleep(arg):
    """arg = [path, seconds]: creates path (the item has started), then
    sleeps."""
    path, s = arg
    with open(path, "a") as f:
        f.write("%d\n" % os.getpid())
    time.sleep(s)
    return s
