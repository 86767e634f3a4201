#!/usr/bin/env bash
# filter-bench.sh - how fast does mmq-filter queue mail, against the floor
# that any durable, one-process-per-message filter must pay?
#
# In one run, on one disk file system (never tmpfs: fsync would be free):
#
#   mmq-filter    N messages of SIZE bytes, each a fork+exec of mmq-filter
#                 with stdin from a file, exactly as an MTA's pipe transport
#                 runs it; started by bench/launch (C, posix_spawn), so the
#                 shell's own fork cost is not counted.
#   floor         (1) durable create: bench/floor.c does in one process, N
#                     times, what the spool does for one entry: create in
#                     tmp/ with O_EXCL, write SIZE bytes, fsync, rename into
#                     one of 256 buckets, fsync the bucket;
#                 (2) fork+exec: the same launcher starting a trivial static
#                     program that reads stdin to its end, N times.
#                 floor per message = (1) + (2).
#
# Each is measured sequentially (one writer) and in parallel (two writer
# loops at once; the parallel floor runs two create loops at once, then
# two launch loops at once).  Each figure is the median of REPEAT runs.
# The ratio mmq-filter / floor (time per message) should be <= 1.3.
# When it is above that, or with BENCH_PROFILE=1, a start-up ladder shows
# where mmq-filter's time goes (dynamic linking, libcrypto, OpenSSL init).
#
# Environment:
#   BUILD=DIR        an mmq build directory (with filter/mmq-filter and
#                    ctl/mmqctl); default: build one in build-bench/
#   N=2000 SIZE=4096 REPEAT=3
#   BENCH_DIR=DIR    where to make the temporary directory (default: the
#                    first of /var/tmp, /tmp that is not a RAM file system)
#   BENCH_PROFILE=1  always show the start-up ladder (0: never)
#   BENCH_KEEP=1     keep the temporary directory
#   BENCH_ENFORCE=1  exit 3 when a ratio is above the goal
#   CC=cc
set -euo pipefail

srcdir=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
N=${N:-2000}
SIZE=${SIZE:-4096}
REPEAT=${REPEAT:-3}
CC=${CC:-cc}
GOAL=1.3
JOBS=${JOBS:-$(nproc 2>/dev/null || echo 2)}

die() {
    echo "filter-bench: error: $*" >&2
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
    make -s -C "$BUILD" -j"$JOBS" filter/mmq-filter ctl/mmqctl >"$BUILD/bench-make.log" 2>&1 ||
        { cat "$BUILD/bench-make.log" >&2; die "the build failed"; }
fi
BUILD=$(cd "$BUILD" && pwd)
FILTER="$BUILD/filter/mmq-filter"
MMQCTL="$BUILD/ctl/mmqctl"
if [ ! -x "$FILTER" ] || [ ! -x "$MMQCTL" ]; then
    die "no filter/mmq-filter and ctl/mmqctl in $BUILD"
fi
if nm "$FILTER" 2>/dev/null | grep -q '__asan_init\|__ubsan_handle'; then
    die "$FILTER is a sanitizer build: its figures would mean nothing"
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
        tmpfs | ramfs) echo "filter-bench: $d is $t, not a disk: skipped" >&2 ;;
        *)
            echo "$d"
            return 0
            ;;
        esac
    done
    return 1
}
parent=$(pick_parent) || die "no disk file system among ${BENCH_DIR:-} /var/tmp /tmp (all RAM): set BENCH_DIR"
W=$(mktemp -d "$parent/mmq-bench.XXXXXX")
# shellcheck disable=SC2317
cleanup() {
    if [ "${BENCH_KEEP:-0}" = 1 ]; then
        echo "filter-bench: kept $W"
    else
        rm -rf "$W"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
fstype=$(stat -f -c %T "$W")
mnt=$(findmnt -n -o FSTYPE,SOURCE,TARGET -T "$W" 2>/dev/null | awk '{print $1 " on " $2 " (mounted at " $3 ")"}')
fsline="$W: $fstype${mnt:+, $mnt}"

# ---------------------------------------------------------------- tools
say "compiling the launcher and the floor"
mkdir -p "$W/bin"
CFL=(-O2 -Wall -Wextra)
"$CC" "${CFL[@]}" -o "$W/bin/launch" "$srcdir/bench/launch.c" || die "cannot compile bench/launch.c"
if "$CC" "${CFL[@]}" -static -o "$W/bin/floor" "$srcdir/bench/floor.c" 2>/dev/null; then
    floor_kind="static"
else
    "$CC" "${CFL[@]}" -o "$W/bin/floor" "$srcdir/bench/floor.c" || die "cannot compile bench/floor.c"
    floor_kind="dynamic (no static libc here)"
fi
"$CC" "${CFL[@]}" -o "$W/bin/floor-dyn" "$srcdir/bench/floor.c" || die "cannot compile bench/floor.c"
echo "launch, floor ($floor_kind), floor-dyn: ok"

# ----------------------------------------------------------- spool, mail
mkdir -p "$W/lists" "$W/floor"
cat >"$W/mmq.conf" <<EOF
spool = "$W/spool";
lists_dir = "$W/lists";
node = "bench";
EOF
: >"$W/lists/bench.conf"
"$MMQCTL" -c "$W/mmq.conf" init >/dev/null || die "mmqctl init failed"
{
    printf 'From: Bench <bench-sender@example.org>\nTo: bench@lists.example.org\n'
    printf 'Subject: benchmark message\nMessage-ID: <bench@example.org>\n\n'
    while :; do printf '%071d\n' 0; done
} 2>/dev/null | head -c "$SIZE" >"$W/msg" || true
[ "$(stat -c %s "$W/msg")" = "$SIZE" ] || die "cannot make a $SIZE-byte message"
FARGS=(-c "$W/mmq.conf" -f bench-sender@example.org -r bench@lists.example.org bench)

# ------------------------------------------------------------ measuring
# Each tool prints "n=N fail=F t0=S t1=S cpu=S" (t0, t1: CLOCK_MONOTONIC); with two
# instances, wall time = last end - first start.

clean_spool() {
    find "$W/spool/in" "$W/spool/tmp" "$W/floor" -type f -delete 2>/dev/null || true
    sync -f "$W" 2>/dev/null || sync
}

# run_once K CMD...: K (1 or 2) instances at once; prints the wall time
# and the CPU time (user + system) per message, in microseconds.
run_once() {
    local k=$1 i rc=0 pids=()
    shift
    clean_spool
    for ((i = 0; i < k; i++)); do
        "$@" >"$W/out.$i" 2>"$W/err.$i" &
        pids+=($!)
    done
    for i in "${pids[@]}"; do
        wait "$i" || rc=1
    done
    if [ $rc -ne 0 ]; then
        cat "$W"/err.* >&2
        die "a run of '$*' failed"
    fi
    cat "$W"/out.[0-9] | awk '
        { for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
          n += v["n"]; f += v["fail"]; c += v["cpu"]
          if (t0 == "" || v["t0"] < t0) t0 = v["t0"]
          if (t1 == "" || v["t1"] > t1) t1 = v["t1"] }
        END { if (f > 0 || n == 0) { print "bad"; exit }
              w = t1 - t0; printf "%.2f %.2f\n", w * 1e6 / n, c * 1e6 / n }'
    rm -f "$W"/out.* "$W"/err.*
}

# median of the arguments
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR] = $1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }

declare -A US CPU RUNS
# measure KEY K CMD...: REPEAT runs; US[KEY] = median wall time per message,
# CPU[KEY] = median CPU time per message (µs).
measure() {
    local key=$1 k=$2 r res all=() cpu=()
    shift 2
    for ((r = 0; r < REPEAT; r++)); do
        res=$(run_once "$k" "$@")
        [ "$res" != bad ] || die "$key: some runs failed"
        all+=("${res%% *}")
        cpu+=("${res##* }")
    done
    US[$key]=$(median "${all[@]}")
    CPU[$key]=$(median "${cpu[@]}")
    RUNS[$key]="${all[*]}"
}

rate() { awk -v u="$1" 'BEGIN {printf "%.0f", 1e6 / u}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; }
show() {
    printf '  %-34s %6s msg/s %8.1f us/msg %8.1f us CPU  (runs: %s)\n' "$1" \
        "$(rate "${US[$2]}")" "${US[$2]}" "${CPU[$2]}" "${RUNS[$2]}"
}
add() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a + b}'; }

L="$W/bin/launch"
F="$W/bin/floor"

load_before=$(cut -d' ' -f1 /proc/loadavg 2>/dev/null || echo '?')
say "setup"
echo "file system:  $fsline"
echo "load average: $load_before (1 min) before the first measurement"
echo "mmq-filter:   $FILTER"
echo "messages:     N=$N of $SIZE bytes, median of REPEAT=$REPEAT runs; $(nproc) CPUs"
echo "warming up (page cache, the spool's buckets)..."
run_once 1 "$L" 100 "$W/msg" "$FILTER" "${FARGS[@]}" >/dev/null
run_once 1 "$L" 100 "$W/msg" "$F" drain >/dev/null
run_once 1 "$F" create "$W/floor" 100 "$SIZE" >/dev/null

say "sequential: one writer"
measure seq_create 1 "$F" create "$W/floor" "$N" "$SIZE"
show "floor: durable create" seq_create
measure seq_spawn 1 "$L" "$N" "$W/msg" "$F" drain
show "floor: fork+exec (static, drain)" seq_spawn
measure seq_mmq 1 "$L" "$N" "$W/msg" "$FILTER" "${FARGS[@]}"
show "mmq-filter" seq_mmq
US[seq_floor]=$(add "${US[seq_create]}" "${US[seq_spawn]}")
CPU[seq_floor]=$(add "${CPU[seq_create]}" "${CPU[seq_spawn]}")
n_in=$(find "$W/spool/in" -type f | wc -l)
[ "$n_in" -eq "$N" ] || die "the spool holds $n_in entries after $N messages"

say "parallel: two writers at once"
measure par_create 2 "$F" create "$W/floor" "$N" "$SIZE"
show "floor: durable create x2" par_create
measure par_spawn 2 "$L" "$N" "$W/msg" "$F" drain
show "floor: fork+exec x2" par_spawn
measure par_mmq 2 "$L" "$N" "$W/msg" "$FILTER" "${FARGS[@]}"
show "mmq-filter x2" par_mmq
US[par_floor]=$(add "${US[par_create]}" "${US[par_spawn]}")
CPU[par_floor]=$(add "${CPU[par_create]}" "${CPU[par_spawn]}")
n_in=$(find "$W/spool/in" -type f | wc -l)
[ "$n_in" -eq $((2 * N)) ] || die "the spool holds $n_in entries after $((2 * N)) messages"

seq_ratio=$(ratio "${US[seq_mmq]}" "${US[seq_floor]}")
par_ratio=$(ratio "${US[par_mmq]}" "${US[par_floor]}")
seq_cratio=$(ratio "${CPU[seq_mmq]}" "${CPU[seq_floor]}")
par_cratio=$(ratio "${CPU[par_mmq]}" "${CPU[par_floor]}")
above=$(awk -v a="$seq_ratio" -v b="$par_ratio" -v g="$GOAL" 'BEGIN {print (a > g || b > g) ? 1 : 0}')

# ------------------------------------------------------- start-up ladder
# Programs that each add one piece of what mmq-filter does, so that the
# differences show what each piece costs.
if [ "${BENCH_PROFILE:-auto}" = 1 ] || { [ "${BENCH_PROFILE:-auto}" = auto ] && [ "$above" = 1 ]; }; then
    say "where mmq-filter's time goes (sequential start-up ladder)"
    PN=$(((N + 3) / 4))
    cat >"$W/libs.c" <<'EOF'
/* drain stdin, linked against libconfig and libcrypto (never called) */
#include <unistd.h>
int main(void) { char b[65536]; while (read(0, b, sizeof b) > 0) ; return 0; }
EOF
    cat >"$W/sha.c" <<'EOF'
/* drain stdin into an OpenSSL SHA-1, as queue.c names an entry */
#include <openssl/evp.h>
#include <unistd.h>
int main(void)
{
    char b[65536]; ssize_t n; unsigned char md[EVP_MAX_MD_SIZE]; unsigned l;
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    if (!c || !EVP_DigestInit_ex(c, EVP_sha1(), NULL)) return 1;
    while ((n = read(0, b, sizeof b)) > 0) EVP_DigestUpdate(c, b, (size_t)n);
    EVP_DigestFinal_ex(c, md, &l); EVP_MD_CTX_free(c); return 0;
}
EOF
    LIBS=$(pkg-config --libs libconfig libcrypto)
    # shellcheck disable=SC2086
    "$CC" -O2 -o "$W/bin/libs" "$W/libs.c" -Wl,--no-as-needed $LIBS -Wl,--as-needed || die "cannot compile the ladder"
    # shellcheck disable=SC2086
    "$CC" -O2 -o "$W/bin/sha" "$W/sha.c" -Wl,--no-as-needed $LIBS -Wl,--as-needed || die "cannot compile the ladder"
    measure l_static 1 "$L" "$PN" "$W/msg" "$F" drain
    measure l_dyn 1 "$L" "$PN" "$W/msg" "$W/bin/floor-dyn" drain
    measure l_libs 1 "$L" "$PN" "$W/msg" "$W/bin/libs"
    measure l_sha 1 "$L" "$PN" "$W/msg" "$W/bin/sha"
    measure l_nolist 1 "$L" -x 67 "$PN" "$W/msg" "$FILTER" -c "$W/mmq.conf" -f bench-sender@example.org nosuchlist
    measure l_mmq 1 "$L" "$PN" "$W/msg" "$FILTER" "${FARGS[@]}"
    measure l_create 1 "$F" create "$W/floor" "$PN" "$SIZE"
    # rung LABEL KEY [BASE-KEY [NOTE]]
    rung() {
        local step='' cstep=''
        if [ -n "${3:-}" ]; then
            step=$(awk -v a="${US[$2]}" -v b="${US[$3]}" 'BEGIN {printf "%+.1f", a - b}')
            cstep=$(awk -v a="${CPU[$2]}" -v b="${CPU[$3]}" 'BEGIN {printf "%+.1f", a - b}')
        fi
        printf '  %-50s %8.1f %8s %8.1f %8s %s\n' "$1" "${US[$2]}" "$step" "${CPU[$2]}" "$cstep" "${4:-}"
    }
    printf '  %-50s %8s %8s %8s %8s\n' "N=$PN runs each, median of $REPEAT" "wall us" "step" "CPU us" "step"
    rung "static trivial program reading stdin (floor)" l_static
    rung "+ dynamically linked (libc only)" l_dyn l_static
    rung "+ libconfig and libcrypto loaded, not called" l_libs l_dyn
    rung "+ OpenSSL initialised, SHA-1 of the message" l_sha l_libs
    rung "mmq-filter, unknown list (exit 67, no spool)" l_nolist l_libs "(vs libs loaded)"
    rung "mmq-filter, message queued" l_mmq l_nolist "(vs unknown list)"
    rung "(floor: durable create alone, no process)" l_create
    echo "  Reading: mmq-filter's queueing step minus the durable create is its"
    echo "  own work (spool checks, envelope, OpenSSL's first use, syslog);"
    echo "  'libcrypto loaded' and 'OpenSSL initialised' are paid on every message."
fi

# ---------------------------------------------------------------- summary
say "summary"
cat <<EOF
mmq-filter benchmark: $N messages of $SIZE bytes each, median of $REPEAT runs
file system: $fsline
                            sequential (1 writer)        parallel (2 writers)
                            msg/s  us/msg  CPU us/msg    msg/s  us/msg  CPU us/msg
EOF
row() {
    printf '%-26s %7s %7.1f %11.1f  %7s %7.1f %11.1f\n' "$1" "$(rate "${US[$2]}")" "${US[$2]}" \
        "${CPU[$2]}" "$(rate "${US[$3]}")" "${US[$3]}" "${CPU[$3]}"
}
row "mmq-filter" seq_mmq par_mmq
row "floor: durable create" seq_create par_create
row "floor: fork+exec (static)" seq_spawn par_spawn
row "floor: total" seq_floor par_floor
printf '%-26s %15s %11s  %15s %11s\n' "ratio mmq-filter / floor" "$seq_ratio" "$seq_cratio" "$par_ratio" "$par_cratio"
load_after=$(cut -d' ' -f1 /proc/loadavg 2>/dev/null || echo '?')
echo "load average (1 min): $load_before before, $load_after after (2 writers add about 2)"
if awk -v l="$load_before" 'BEGIN {exit !(l + 0 > 0.5)}'; then
    echo "warning: the machine was busy before the run: other work disturbs these figures"
fi
if [ "$above" = 1 ]; then
    echo "goal: ratio <= $GOAL: NOT MET"
else
    echo "goal: ratio <= $GOAL: met"
fi
if [ "${BENCH_ENFORCE:-0}" = 1 ] && [ "$above" = 1 ]; then
    exit 3
fi
exit 0
