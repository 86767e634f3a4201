#!/usr/bin/env python3
# fsync-check.py - read strace -ff -y output (one file per process) and
# check the spool's crash rule: every rename into QUEUE/BB (or stage/) is
# followed, before the process reports the entry done, by an fsync(2) of
# a descriptor opened on that directory.  A rename is only on disk once
# its directory is; without the fsync a power loss can lose or revive an
# entry, and nothing else can see that.
#
# Usage: fsync-check.py SPOOL TRACEFILE...
#
# "Done" is the process's exit, or the list stage's removal of its in/
# entry (unlinkat of in/BB/...): pending renames must be synced by then.
# Claims (a rename within a bucket to a name with a "#NODE#PID#START"
# suffix, not from tmp/) need no fsync: a claim lost to a power loss only
# makes the entry ready again.
#
# Prints one "renames PATH-KIND N" line per kind seen (e.g.
# "renames tmp->in 1"), then one "violation ..." line per rename not
# synced in time; exits 1 if there is any violation, 2 on bad usage.
import os
import re
import sys

QUEUES = ("in", "out", "deferred", "hold", "bad", "bounces")
ARG = r'(?:(\d+)<([^>]*)>|AT_FDCWD), "([^"]*)"'
RENAME = re.compile(r'^renameat2?\(' + ARG + ', ' + ARG + r'(?:, \w+)?\) = 0')
FSYNC = re.compile(r'^f(?:data)?sync\((\d+)<([^>]*)>\) = 0')
UNLINK = re.compile(r'^unlinkat\(' + ARG + r', 0\) = 0')


def rel(spool, dirpath, name):
    if dirpath is None:
        return None
    p = os.path.normpath(os.path.join(dirpath, name))
    if p != spool and not p.startswith(spool + "/"):
        return None
    return os.path.relpath(p, spool)


def durable_dir(d):
    """The directory of a rename target that needs an fsync, or None."""
    if d == "stage":
        return d
    parts = d.split("/")
    if len(parts) == 2 and parts[0] in QUEUES and re.fullmatch(r"[0-9a-f]{2}", parts[1]):
        return d
    return None


def kind(src, dst):
    s = src.split("/")[0]
    return "%s->%s" % (s, dst.split("/")[0])


def main():
    if len(sys.argv) < 3:
        print("usage: fsync-check.py SPOOL TRACEFILE...", file=sys.stderr)
        return 2
    spool = os.path.realpath(sys.argv[1])
    counts = {}
    violations = []
    for path in sys.argv[2:]:
        pending = {}  # directory -> (line number, rename text)
        prog = "?"

        def settle(event, lineno):
            for d, (ln, text) in sorted(pending.items()):
                violations.append("%s:%d: %s: rename into %s not followed by an fsync of it before %s (line %d)"
                                  % (os.path.basename(path), ln, prog, d, event, lineno))
            pending.clear()

        with open(path, errors="replace") as f:
            lines = f.read().split("\n")
        for n, line in enumerate(lines, 1):
            if line.startswith("execve("):
                m = re.match(r'execve\("([^"]*)"', line)
                if m:
                    prog = os.path.basename(m.group(1))
            m = RENAME.match(line)
            if m:
                src = rel(spool, m.group(2), m.group(3))
                dst = rel(spool, m.group(5), m.group(6))
                if src is None or dst is None:
                    continue
                d = durable_dir(os.path.dirname(dst))
                if d is None:
                    continue
                if "#" in os.path.basename(dst) and not src.startswith("tmp/"):
                    continue  # a claim
                k = kind(src, dst)
                counts[k] = counts.get(k, 0) + 1
                pending.setdefault(d, (n, line))
                continue
            m = FSYNC.match(line)
            if m:
                d = rel(spool, m.group(2), ".")
                if d in pending:
                    del pending[d]
                continue
            m = UNLINK.match(line)
            if m:
                r = rel(spool, m.group(2), m.group(3))
                if r and r.startswith("in/"):
                    settle("removing " + r, n)
                continue
            if line.startswith("exit_group(") or line.startswith("+++ "):
                settle("its exit", n)
        settle("the end of the trace", len(lines))
    for k in sorted(counts):
        print("renames %s %d" % (k, counts[k]))
    for v in violations:
        print("violation " + v)
    return 1 if violations else 0


if __name__ == "__main__":
    sys.exit(main())
