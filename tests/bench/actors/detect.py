#!/usr/bin/env python3
"""The seed's anomaly detector as a troupe actor replica: for each item (an
integer), answers "true" when it is above the threshold, else "false".

--boot SECONDS sleeps once at start, standing for loading a model (the cost
actors exist to pay once); --work-ms N sleeps per item, standing for the
work.  Speaks the lines protocol, or frames with --frames (then an item that
is not an integer fails alone, with a per-item error).

usage: detect.py [--frames] [--boot S] [--work-ms N] [--threshold T]
"""

import argparse
import os
import sys
import time
from pathlib import Path

# The helper module ships in the source tree: client/python, three levels up,
# unless TROUPE_SOURCE_DIR says where the tree is.
_src = os.environ.get("TROUPE_SOURCE_DIR") or str(Path(__file__).resolve().parents[3])
sys.path.insert(0, os.path.join(_src, "client", "python"))
import troupe_actor  # noqa: E402


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--frames", action="store_true", help="frames protocol (default: lines)")
    p.add_argument("--boot", type=float, default=0.0, metavar="SECONDS")
    p.add_argument("--work-ms", type=float, default=0.0, metavar="N")
    p.add_argument("--threshold", type=int, default=11)
    a = p.parse_args()

    time.sleep(a.boot)
    work = a.work_ms / 1000.0

    def detect(item):
        point = int(item.strip())  # ValueError: a per-item error in frames
        if work > 0:
            time.sleep(work)
        return "true" if point > a.threshold else "false"

    if a.frames:
        troupe_actor.serve(detect)
    else:
        troupe_actor.serve_lines(detect)


if __name__ == "__main__":
    main()
