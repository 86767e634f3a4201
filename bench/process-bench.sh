#!/usr/bin/env bash
# process-bench.sh - how long does the list stage take to expand one post to
# a large list?  Goal: well under a second for 100,000 members.
#
# For each list size (100,000, 10,000 and 1,000 members by default), with
# recipients_per_entry = 500 (the default) and a SIZE-byte message, on one
# disk file system (never tmpfs: fsync would be free):
#
#   expand      wall clock of `mmq-process -1` for one post in in/: start-up,
#               recovery scan, reading the list file and the members file,
#               policy, list headers, and the durable two-phase expansion
#               into ceil(N/500) out/ entries (each written and fsync()ed in
#               stage/, the in/ entry marked, all renamed into out/, the
#               buckets fsync()ed, the in/ entry removed).  A fresh process
#               each time, so the members file is parsed every time (a
#               running mmq-process keeps it and re-reads it only when it
#               changed: its figure per post is lower).
#   load only   the same post from a non-member to a list with posters =
#               "members" and others = "discard": start-up + members file +
#               policy, no expansion.  expand - load only ~ the expansion.
#   idle        `mmq-process -1` with in/ empty: start-up and scan alone.
#   floor       bench/floor.c: durable create (write, fsync, rename, fsync
#               of the bucket) of as many files of the same size as the
#               out/ entries, one process, nothing else: what the disk
#               alone costs for that much durable output.
#
# Each figure is the median of REPEAT runs (min and max shown); out/ is
# emptied between runs and each run is checked: the right number of out/
# entries holding every member once.
#
# Environment:
#   BUILD=DIR      an mmq build directory (process/mmq-process, filter/
#                  mmq-filter, ctl/mmqctl); default: build one in build-bench/
#   SIZES="100000 10000 1000"  REPEAT=7  SIZE=4096  PER=500
#   BENCH_DIR=DIR  where to make the temporary directory (default: the first
#                  of /var/tmp, /tmp that is not a RAM file system)
#   BENCH_KEEP=1   keep the temporary directory
#   BENCH_ENFORCE=1  exit 3 when the 100,000-member median is 1,000 ms or more
#   CC=cc
set -euo pipefail

srcdir=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SIZES=${SIZES:-"100000 10000 1000"}
REPEAT=${REPEAT:-7}
SIZE=${SIZE:-4096}
PER=${PER:-500}
CC=${CC:-cc}
GOAL_MS=1000
JOBS=${JOBS:-$(nproc 2>/dev/null || echo 2)}
export LC_ALL=C

die() {
    echo "process-bench: error: $*" >&2
    exit 1
}
say() { printf '\n== %s ==\n' "$*"; }

# ------------------------------------------------------------------- mmq
if [ -z "${BUILD:-}" ]; then
    BUILD="$srcdir/build-bench"
    say "building mmq in $BUILD"
    if [ ! -x "$srcdir/configure" ] || [ "$srcdir/configure.ac" -nt "$srcdir/configure" ] ||
        [ "$srcdir/Makefile.am" -nt "$srcdir/Makefile.in" ]; then
        (cd "$srcdir" && ./autogen.sh) >/dev/null 2>&1 || die "./autogen.sh failed"
    fi
    mkdir -p "$BUILD"
    if [ ! -f "$BUILD/Makefile" ]; then
        (cd "$BUILD" && "$srcdir/configure" -q --sysconfdir=/etc) ||
            die "configure failed: see $BUILD/config.log"
    fi
    make -s -C "$BUILD" -j"$JOBS" filter/mmq-filter ctl/mmqctl process/mmq-process \
        >"$BUILD/bench-make.log" 2>&1 ||
        { cat "$BUILD/bench-make.log" >&2; die "the build failed"; }
fi
BUILD=$(cd "$BUILD" && pwd)
PROC="$BUILD/process/mmq-process"
FILTER="$BUILD/filter/mmq-filter"
MMQCTL="$BUILD/ctl/mmqctl"
for p in "$PROC" "$FILTER" "$MMQCTL"; do
    [ -x "$p" ] || die "no $p"
done
if nm "$PROC" 2>/dev/null | grep -q '__asan_init\|__ubsan_handle'; then
    die "$PROC is a sanitizer build: its figures would mean nothing"
fi

# ------------------------------------------------------------- work dir
pick_parent() {
    local d t
    for d in ${BENCH_DIR:-} /var/tmp /tmp; do
        if [ ! -d "$d" ] || [ ! -w "$d" ]; then
            continue
        fi
        t=$(stat -f -c %T "$d")
        case $t in
        tmpfs | ramfs) echo "process-bench: $d is $t, not a disk: skipped" >&2 ;;
        *)
            echo "$d"
            return 0
            ;;
        esac
    done
    return 1
}
parent=$(pick_parent) || die "no disk file system among ${BENCH_DIR:-} /var/tmp /tmp (all RAM): set BENCH_DIR"
W=$(mktemp -d "$parent/mmq-pbench.XXXXXX")
# shellcheck disable=SC2317
cleanup() {
    if [ "${BENCH_KEEP:-0}" = 1 ]; then
        echo "process-bench: kept $W"
    else
        rm -rf "$W"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
fstype=$(stat -f -c %T "$W")
mnt=$(findmnt -n -o FSTYPE,SOURCE,TARGET -T "$W" 2>/dev/null | awk '{print $1 " on " $2 " (mounted at " $3 ")"}')

mkdir -p "$W/bin" "$W/lists"
"$CC" -O2 -o "$W/bin/floor" "$srcdir/bench/floor.c" 2>/dev/null || W_NOFLOOR=1
cat >"$W/mmq.conf" <<EOF
spool = "$W/spool";
lists_dir = "$W/lists";
node = "bench";
# every run posts the same message as a new post: not a duplicate
duplicate_window = 0;
EOF
"$MMQCTL" -c "$W/mmq.conf" init >/dev/null || die "mmqctl init failed"
{
    printf 'From: Bench <bench-sender@example.org>\nTo: bench@lists.example.org\n'
    printf 'Subject: benchmark message\nDate: Sun, 22 Nov 2026 10:00:00 +0000\n'
    printf 'Message-ID: <bench@example.org>\n\n'
    while :; do printf '%071d\n' 0; done
} 2>/dev/null | head -c "$SIZE" >"$W/msg" || true
[ "$(stat -c %s "$W/msg")" = "$SIZE" ] || die "cannot make a $SIZE-byte message"

# ------------------------------------------------------------- helpers
ms_since() { # ms_since START (an EPOCHREALTIME value)
    local s=${1/./} e=${EPOCHREALTIME/./}
    echo $(((10#$e - 10#$s) / 1000))
}
stats() { # stats V...: "median min max"
    printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END {
        m = NR % 2 ? v[(NR + 1) / 2] : int((v[NR / 2] + v[NR / 2 + 1]) / 2)
        print m, v[1], v[NR] }'
}
clear_out() { find "$W/spool/out" -type f -delete; }
post() { # post LIST SENDER
    "$FILTER" -c "$W/mmq.conf" -f "$2" "$1" <"$W/msg" 2>/dev/null || die "mmq-filter failed"
}
run_proc() { # run_proc: wall ms of one mmq-process -1 on stdout
    local s=$EPOCHREALTIME
    "$PROC" -c "$W/mmq.conf" -1 2>>"$W/process.log" || die "mmq-process exited $?"
    ms_since "$s"
}
out_check() { # out_check N ENTRIES: the out/ entries hold every member once
    local n=$1 want=$2 got entries
    entries=$(find "$W/spool/out" -type f | wc -l)
    got=$(find "$W/spool/out" -type f -print0 | xargs -0 -r awk '
        FNR == 1 { env = 1 } env && $0 == "" { env = 0; nextfile }
        env && /^rcpt / { print substr($0, 6) }' | sort -u | wc -l)
    if [ "$entries" -ne "$want" ] || [ "$got" -ne "$n" ]; then
        die "expected $want out/ entries and $n members, found $entries and $got"
    fi
    [ "$(find "$W/spool/in" "$W/spool/stage" "$W/spool/bad" -type f | wc -l)" -eq 0 ] ||
        die "in/, stage/ or bad/ not empty after a run"
}

say "setting"
echo "file system: $W: $fstype${mnt:+, $mnt}"
echo "machine:     $(nproc) CPUs, $(uname -sr)"
echo "build:       $BUILD"
echo "runs:        REPEAT=$REPEAT message=$SIZE bytes recipients_per_entry=$PER"

# idle
for ((i = 0; i < REPEAT; i++)); do idle+=("$(run_proc)"); done
read -r idle_med idle_min idle_max <<<"$(stats "${idle[@]}")"

declare -A RES=()
status=0
for n in $SIZES; do
    entries=$(((n + PER - 1) / PER))
    seq -f 'member%07g@example.net' 1 "$n" >"$W/lists/l$n.members"
    printf 'domain = "lists.example.org";\nposters = "anyone";\nrecipients_per_entry = %d;\n' \
        "$PER" >"$W/lists/l$n.conf"
    printf 'domain = "lists.example.org";\nmembers = "%s";\nothers = "discard";\n' \
        "$W/lists/l$n.members" >"$W/lists/g$n.conf"
    exp=()
    load=()
    for ((i = 0; i < REPEAT; i++)); do
        clear_out
        post "l$n" bench-sender@example.org
        exp+=("$(run_proc)")
        out_check "$n" "$entries"
        post "g$n" stranger@example.org
        load+=("$(run_proc)")
        [ "$(find "$W/spool/in" "$W/spool/out" -type f | wc -l)" -eq "$entries" ] ||
            die "the load-only post was not discarded"
    done
    esize=$(find "$W/spool/out" -type f -printf '%s\n' | awk '{ s += $1 } END { print int(s / NR) }')
    RES[$n.exp]=$(stats "${exp[@]}")
    RES[$n.load]=$(stats "${load[@]}")
    RES[$n.entries]=$entries
    RES[$n.esize]=$esize
    RES[$n.floor]=-
    if [ -z "${W_NOFLOOR:-}" ]; then
        fl=()
        for ((i = 0; i < REPEAT; i++)); do
            rm -rf "$W/floor"
            mkdir "$W/floor"
            line=$("$W/bin/floor" create "$W/floor" "$entries" "$esize")
            fl+=("$(awk '{ for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
                print int((v["t1"] - v["t0"]) * 1000 + 0.5) }' <<<"$line")")
        done
        rm -rf "$W/floor"
        RES[$n.floor]=$(stats "${fl[@]}" | awk '{ print $1 }')
    fi
    clear_out
done

say "results (ms, wall clock; median [min-max] of $REPEAT)"
printf '%-9s %8s %8s  %-20s %-20s %10s %12s\n' members entries "bytes/e" "expand" "load only" "floor" "us/member"
for n in $SIZES; do
    read -r med mn mx <<<"${RES[$n.exp]}"
    read -r lmed lmn lmx <<<"${RES[$n.load]}"
    printf '%-9s %8s %8s  %-20s %-20s %10s %12s\n' "$n" "${RES[$n.entries]}" "${RES[$n.esize]}" \
        "$med [$mn-$mx]" "$lmed [$lmn-$lmx]" "${RES[$n.floor]}" \
        "$(awk -v m="$med" -v n="$n" 'BEGIN { printf "%.2f", m * 1000 / n }')"
done
printf 'idle run (in/ empty): %s ms [%s-%s]\n' "$idle_med" "$idle_min" "$idle_max"

if [ -n "${RES[100000.exp]:-}" ]; then
    read -r med _ _ <<<"${RES[100000.exp]}"
    if [ "$med" -lt "$GOAL_MS" ]; then
        echo "goal: 100,000 members in well under ${GOAL_MS} ms: met (median $med ms)"
    else
        echo "goal: 100,000 members in well under ${GOAL_MS} ms: NOT met (median $med ms)"
        [ "${BENCH_ENFORCE:-0}" = 1 ] && status=3
    fi
fi
exit "$status"
