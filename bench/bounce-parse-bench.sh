#!/usr/bin/env bash
# bounce-parse-bench.sh - how many bounces per second does the bounce
# parser recognise on one core, against the floor of reading the same
# files and against a peer (Python's email package parsing them)?
#
# Corpus: every sample of t/bounce-samples (real Postfix and Exim bounces,
# mmq-deliver's DSNs, qmail, Exchange, Gmail, ..., auto-replies and
# receipts), copied N/#samples times into a temporary directory; a second
# corpus "+64K" is the same with 64 KB of returned-message text appended to
# each file, as real bounces carry the original message.
#
#   mmq-bounce -p   the parser (one process per 2,000 files, pinned to
#                   one core with taskset when there is one)
#   floor           cat of the same files to /dev/null (reading them)
#   peer            python3: email.message_from_binary_file + walk() of
#                   every part of the same files (a parse, no detection)
#
# Figures: bounces/s by CPU time (user + system, robust on a loaded
# machine) and by wall time, each the best of REPEAT runs; the ratios
# parser/peer and parser/floor in the same run.  Goal: >= 5,000 bounces/s
# on one core.
#
# Environment: BUILD=DIR (an mmq build with bounce/mmq-bounce; default
# build/), N=20000, REPEAT=3, BENCH_ENFORCE=1 (exit 3 below the goal).
set -euo pipefail

srcdir=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${BUILD:-$srcdir/build}
N=${N:-20000}
REPEAT=${REPEAT:-3}
B=$BUILD/bounce/mmq-bounce
[ -x "$B" ] || { echo "bounce-parse-bench: $B not built" >&2; exit 2; }
T=$(mktemp -d /tmp/mmq-bpbench.XXXXXX)
trap 'rm -rf "$T"' EXIT
PIN=()
command -v taskset >/dev/null 2>&1 && PIN=(taskset -c 0)

mkcorpus() { # DIR PAD: sets EXPECT, the lines the corpus should print
    EXPECT=$(python3 - "$1" "$2" "$N" "$srcdir"/t/bounce-samples/*.eml <<'PY'
import base64, os, sys
d, pad, n, samples = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4:]
os.makedirs(d, exist_ok=True)
tail = base64.encodebytes(os.urandom(pad * 3 // 4)) if pad else b""
per = -(-n // len(samples))
i = expect = 0
for f in samples:
    data = open(f, "rb").read() + tail
    lines = sum(1 for _ in open(f[:-4] + ".expect"))
    for _ in range(per):
        if i >= n:
            break
        with open(os.path.join(d, "%d.eml" % i), "wb") as out:
            out.write(data)
        i += 1
        expect += lines
print(expect)
PY
)
}

# run CMD... over every file of DIR (2,000 per process); print the CPU
# seconds (user + sys of the children) and the wall seconds
measure() { # DIR CMD...
    local dir=$1
    shift
    python3 - "$dir" "$@" <<'PY'
import os, resource, subprocess, sys, time
d, cmd = sys.argv[1], sys.argv[2:]
files = sorted(os.listdir(d), key=lambda n: int(n.split(".")[0]))
paths = [os.path.join(d, f) for f in files]
r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
t0 = time.monotonic()
for i in range(0, len(paths), 2000):
    subprocess.run(cmd + paths[i:i + 2000], check=True, stdout=subprocess.DEVNULL)
t1 = time.monotonic()
r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
print("%.6f %.6f" % (cpu, t1 - t0))
PY
}

cat >"$T/peer.py" <<'PY'
import email, email.policy, sys
n = 0
for path in sys.argv[1:]:
    with open(path, "rb") as f:
        m = email.message_from_binary_file(f, policy=email.policy.compat32)
    for part in m.walk():
        part.get_content_type()
        n += 1
PY

best() { # DIR CMD...: the best CPU and wall time of REPEAT runs
    local bc= bw= c w r
    for ((r = 0; r < REPEAT; r++)); do
        read -r c w < <(measure "$@")
        if [ -z "$bc" ] || awk "BEGIN{exit !($c < $bc)}"; then bc=$c; fi
        if [ -z "$bw" ] || awk "BEGIN{exit !($w < $bw)}"; then bw=$w; fi
    done
    echo "$bc $bw"
}

rate() { awk -v n="$N" -v t="$1" 'BEGIN{printf "%.0f", (t > 0 ? n / t : 0)}'; }

echo "bounce-parse-bench: N=$N files per corpus, REPEAT=$REPEAT, $(nproc) CPUs, pinned: ${PIN[*]:-no}"
printf '%-8s %-10s %14s %14s %10s\n' corpus program "bounces/s cpu" "bounces/s wall" "KB/file"
status=0
for pad in 0 65536; do
    name=plain
    [ "$pad" -gt 0 ] && name=+64K
    mkcorpus "$T/c$pad" "$pad"
    kb=$(du -sk "$T/c$pad" | awk -v n="$N" '{printf "%.1f", $1 / n}')
    # sanity: the parser names as many recipients in the corpus as the
    # samples' .expect files say it should
    named=$("$B" -p "$T/c$pad"/*.eml | wc -l)
    if [ "$named" -ne "$EXPECT" ]; then
        echo "$name: the parser named $named recipients, the samples expect $EXPECT" >&2
        status=3
    fi
    read -r pc pw < <(best "$T/c$pad" "${PIN[@]}" "$B" -p)
    read -r fc fw < <(best "$T/c$pad" "${PIN[@]}" cat)
    read -r yc yw < <(best "$T/c$pad" "${PIN[@]}" python3 "$T/peer.py")
    printf '%-8s %-10s %14s %14s %10s\n' "$name" mmq-bounce "$(rate "$pc")" "$(rate "$pw")" "$kb"
    printf '%-8s %-10s %14s %14s %10s\n' "$name" "floor:cat" "$(rate "$fc")" "$(rate "$fw")" "$kb"
    printf '%-8s %-10s %14s %14s %10s\n' "$name" "peer:py" "$(rate "$yc")" "$(rate "$yw")" "$kb"
    awk -v p="$pc" -v f="$fc" -v y="$yc" -v c="$name" 'BEGIN{
        printf "%-8s ratios (cpu): mmq-bounce is %.1fx the peer'"'"'s speed, %.2fx the floor'"'"'s time\n",
            c, (p > 0 ? y / p : 0), (f > 0 ? p / f : 0) }'

    if awk -v n="$N" -v p="$pc" 'BEGIN{exit !(n / p < 5000)}'; then
        echo "$name: below the goal of 5,000 bounces/s on one core"
        status=3
    fi
done
[ "${BENCH_ENFORCE:-0}" = 1 ] && exit $status
exit 0
