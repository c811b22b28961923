#!/usr/bin/python3
"""The scheduler's layers, checked at link level (docs/design.md, "The
scheduler's layers").

    tests/layers.py OBJECT...

Given the scheduler library's object files, reads with `nm` which
functions each defines and which it calls, and fails when a file calls a
function defined in a file of the same or a higher layer: calls only go
down.  Also fails when a file outside the execution layer includes
chunk.h, whose item and chunk are private to that layer.  Prints the
calls between files, one line per pair, so a failure says which call
broke the rule.
"""
import os
import re
import subprocess
import sys

# Lowest first.  A file may call only files of a lower layer.
LAYERS = [
    ["wirecheck", "metrics"],     # bytes checked on the wire; counters
    ["store", "names", "rpc"],    # SQLite, name rules, the nng endpoints
    ["store_exec", "store_registry", "store_logs"],  # rows of executions,
                                  # of names, of per-item logs
    ["chunk", "auth", "projects"],  # chunk tiers, tokens, projects' use
    ["exec"],                     # the item state machine
    ["exec_store"],               # executions in the store
    ["worker"],                   # assignments: what runs where
    ["actors"],                   # environments, replicas, placement
    ["core"],                     # dispatch, flush, timers
    ["api_check"],                # the API's checks and resolution
    ["api_exec", "api_registry", "api_admin", "api_logs", "link"],  # the
                                  # handlers
    ["api"],                      # the API's method table and hook
    ["http"],                     # the HTTP listener: /api, /metrics
]
RANK = {m: i for i, layer in enumerate(LAYERS) for m in layer}
CHUNK_H_USERS = {"chunk", "exec", "exec_store"}


def module(path):
    return re.sub(r"\.c\.o(bj)?$|\.o$", "", os.path.basename(path))


def nm(path, flag):
    out = subprocess.check_output(["nm", flag, path], text=True)
    syms = set()
    for line in out.splitlines():
        parts = line.split()
        if flag == "--undefined-only" and len(parts) >= 2:
            syms.add(parts[-1])
        elif len(parts) == 3 and parts[1] in "TtDdBbRr":
            syms.add(parts[2])
    return syms


def main(objs):
    errors = []
    defs, uses = {}, {}
    for o in objs:
        m = module(o)
        if m not in RANK:
            errors.append(f"{m}.c is in no layer: add it to tests/layers.py "
                          "and docs/design.md")
            continue
        defs[m] = nm(o, "--defined-only")
        uses[m] = nm(o, "--undefined-only")
    owner = {s: m for m, ss in defs.items() for s in ss}
    edges = {}
    for m, ss in uses.items():
        for s in ss:
            d = owner.get(s)
            if d is not None and d != m:
                edges.setdefault((m, d), []).append(s)
    for (m, d), syms in sorted(edges.items()):
        ok = RANK[d] < RANK[m]
        print(f"{'  ' if ok else '!!'} {m} -> {d}: {', '.join(sorted(syms))}")
        if not ok:
            errors.append(f"{m}.c (layer {RANK[m]}) calls {d}.c (layer "
                          f"{RANK[d]}): {', '.join(sorted(syms))}")
    src = os.environ.get("TROUPE_SOURCE_DIR")
    if src:
        sdir = os.path.join(src, "daemon", "scheduler")
        for f in sorted(os.listdir(sdir)):
            if not f.endswith((".c", ".h")) or f == "chunk.h":
                continue
            with open(os.path.join(sdir, f), encoding="utf-8") as fh:
                if '#include "chunk.h"' in fh.read() and \
                        f[:-2] not in CHUNK_H_USERS:
                    errors.append(f"{f} includes chunk.h, private to "
                                  "the execution layer")
    for e in errors:
        print("layers: " + e, file=sys.stderr)
    if not errors:
        print(f"layers: {len(defs)} files, {len(edges)} pairs of files "
              "calling each other, every call going down")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
