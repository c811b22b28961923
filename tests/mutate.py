#!/usr/bin/python3
"""Mutation run: break one line of the code at a time and check that the
suite notices.

Each mutation in tests/mutations/*.txt (one list per theme: security,
recovery, items, cli) names a file, an exact text that must
occur in it once, its replacement, and the ctest tests that must go red.
For each one this script copies the source tree to a scratch directory
(once), applies the mutation there, rebuilds the scratch build (only the
touched file recompiles), runs the named tests, and restores the file.  A
mutation is CAUGHT when at least one named test fails, MISSED when they
all pass, and BROKEN when the text is not found exactly once or the
mutated tree does not build (a BROKEN mutation is a mistake in the list,
not a success).  The working tree is never touched.

    tests/mutate.py [--keep DIR] [--jobs N] [--list] [NAME ...]

NAMEs select mutations (substring match); none means all.  Exit status 0
when every selected mutation was caught.  Not part of ctest: a full run
rebuilds once per mutation and takes tens of minutes.

Each list's format, one block per mutation, blocks separated by blank
lines, `#` lines are comments:

    name: auth-worker-token-unchecked
    promise: a worker with a wrong token never registers
    file: daemon/scheduler/rpc.c
    from: if (!rpc_token_ok(r, env->token))
    to:   if (0)
    tests: integ_test_auth

`from` and `to` are taken from after the first ':' with the surrounding
whitespace stripped; `\\n` in them stands for a newline and `\\t` for a
tab.  `tests` is a regular expression for `ctest -R`.
"""

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LISTS = os.path.join(ROOT, "tests", "mutations")
KEYS = ("name", "promise", "file", "from", "to", "tests")


def parse(path):
    muts, cur = [], {}
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if line.startswith("#"):
                continue
            if not line.strip():
                if cur:
                    muts.append(cur)
                    cur = {}
                continue
            key, sep, val = line.partition(":")
            key = key.strip()
            if not sep or key not in KEYS:
                sys.exit(f"{path}:{lineno}: expected one of {', '.join(KEYS)}")
            if key in cur:
                sys.exit(f"{path}:{lineno}: {key} given twice")
            cur[key] = val.strip().replace("\\n", "\n").replace("\\t",
                                                                "\t")
            cur.setdefault("line", lineno)
    if cur:
        muts.append(cur)
    names = set()
    for m in muts:
        missing = [k for k in KEYS if k not in m]
        if missing:
            sys.exit(f"{path}:{m['line']}: missing {', '.join(missing)}")
        if m["name"] in names:
            sys.exit(f"{path}:{m['line']}: duplicate name {m['name']}")
        names.add(m["name"])
    return muts


def run(cmd, cwd, log, env=None):
    with open(log, "ab") as f:
        f.write(("\n$ " + " ".join(cmd) + "\n").encode())
        f.flush()
        return subprocess.call(cmd, cwd=cwd, stdout=f, stderr=subprocess.STDOUT,
                               env=env)


def targets(build, m):
    """The build targets a mutation needs: the daemons, the CLI and the
    test programs its `tests` regex names (not every test of the tree,
    which would relink them all for each mutation)."""
    out = subprocess.run(["ctest", "-N", "-R", m["tests"]], cwd=build,
                         capture_output=True, text=True).stdout
    names = re.findall(r"Test +#\d+: (\S+)", out)
    progs = sorted({re.sub(r"^(unit|integ)_", "", n) for n in names
                    if n.startswith(("unit_", "integ_"))})
    base = ["troupe", "troupe-scheduler", "troupe-worker", "troupe-shim",
            "troupe-detect"]
    return ["--target"] + base + progs


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--keep", help="scratch directory to (re)use and keep")
    ap.add_argument("--jobs", type=int, default=2, help="ctest -j (2)")
    ap.add_argument("--list", action="store_true", help="list and exit")
    ap.add_argument("names", nargs="*")
    a = ap.parse_args()

    muts = []
    for f in sorted(os.listdir(LISTS)):
        if f.endswith(".txt"):
            muts += parse(os.path.join(LISTS, f))
    seen = set()
    for m in muts:
        if m["name"] in seen:
            sys.exit(f"mutate: duplicate name {m['name']}")
        seen.add(m["name"])
    if a.names:
        muts = [m for m in muts if any(n in m["name"] for n in a.names)]
        if not muts:
            sys.exit("mutate: no mutation matches " + " ".join(a.names))
    if a.list:
        for m in muts:
            print(f"{m['name']:40} {m['file']}: {m['promise']}")
        return 0

    scratch = a.keep or tempfile.mkdtemp(prefix="troupe-mutate-")
    src, build = os.path.join(scratch, "src"), os.path.join(scratch, "build")
    log = os.path.join(scratch, "mutate.log")
    os.makedirs(scratch, exist_ok=True)
    # A copy of the committed and uncommitted sources, without build trees.
    files = subprocess.check_output(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT).decode().split("\0")
    for rel in filter(None, files):
        if not os.path.isfile(os.path.join(ROOT, rel)):
            continue
        dst = os.path.join(src, rel)
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        shutil.copy2(os.path.join(ROOT, rel), dst)
    # The dashboard's npm packages are not sources (web/.gitignore): the
    # build embeds one and the browser test runs another, so link them in.
    modules = os.path.join(ROOT, "web", "node_modules")
    if os.path.isdir(modules) and not os.path.exists(
            os.path.join(src, "web", "node_modules")):
        os.symlink(modules, os.path.join(src, "web", "node_modules"))
    print(f"mutate: scratch {scratch} (log: {log})", flush=True)
    if run(["cmake", "-S", src, "-B", build, "-DCMAKE_BUILD_TYPE=Debug",
            "-DTROUPE_SANITIZE=address;undefined", "-DTROUPE_WERROR=OFF"],
           scratch, log) != 0 or \
       run(["cmake", "--build", build, "-j2"], scratch, log) != 0:
        sys.exit(f"mutate: the unmutated tree does not build; see {log}")

    env = dict(os.environ)
    env["ASAN_OPTIONS"] = "detect_leaks=1:abort_on_error=1"
    env["LSAN_OPTIONS"] = (f"suppressions={src}/tests/lsan.supp:"
                           "print_suppressions=0")
    env["UBSAN_OPTIONS"] = "print_stacktrace=1:halt_on_error=1"
    results = []
    for m in muts:
        path = os.path.join(src, m["file"])
        t0 = time.time()
        with open(path, encoding="utf-8") as f:
            orig = f.read()
        n = orig.count(m["from"])
        if n != 1:
            results.append((m, "BROKEN", f"text found {n} times", 0))
            print(f"BROKEN  {m['name']}: text found {n} times", flush=True)
            continue
        with open(path, "w", encoding="utf-8") as f:
            f.write(orig.replace(m["from"], m["to"]))
        try:
            if run(["cmake", "--build", build, "-j2"] + targets(build, m),
                   scratch, log) != 0:
                verdict, why = "BROKEN", "does not build"
            else:
                rc = run(["ctest", "-j", str(a.jobs), "--timeout", "300",
                          "-R", m["tests"], "--output-on-failure"],
                         build, log, env)
                verdict = "CAUGHT" if rc != 0 else "MISSED"
                why = m["tests"]
        finally:
            with open(path, "w", encoding="utf-8") as f:
                f.write(orig)
            # Same mtime as before would hide the restore from make.
            os.utime(path, None)
        secs = time.time() - t0
        results.append((m, verdict, why, secs))
        print(f"{verdict}  {m['name']} ({why}, {secs:.0f} s)", flush=True)

    # Leave the scratch build as the unmutated tree.
    run(["cmake", "--build", build, "-j2"], scratch, log)
    caught = sum(1 for r in results if r[1] == "CAUGHT")
    print(f"\nmutate: {caught} of {len(results)} caught")
    for m, verdict, why, _ in results:
        if verdict != "CAUGHT":
            print(f"  {verdict}: {m['name']} — {m['promise']} ({why})")
    if not a.keep:
        shutil.rmtree(scratch, ignore_errors=True)
    return 0 if caught == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
