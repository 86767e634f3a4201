#!/usr/bin/env bash
# verp-bench.sh - VERP posts (one transaction per member, each with its own
# envelope sender): mmq-deliver against Postfix's `sendmail -XV` and against
# the wire floor, in one run, into one smtp-sink (issue 16).  A manual
# benchmark (not part of make check); run it as root.
#
# In one run, on 127.0.0.1, with Postfix's smtp-sink as the members' server
# (started here on a free port with -u nobody, one dump file per
# transaction on a RAM file system), for N = 1,000 and 10,000 members:
#
#  mmq      N recipients queued with t/tools/mkentry -V in entries of the
#           size mmq-process cuts a VERP post into (process/post.c
#           entry_size(): ceil(N / (2 x connections)), at least 20, at most
#           recipients_per_entry 500; 50 and 500 with the default 10
#           connections), delivered by `mmq-deliver -1` (drain out/ and
#           exit) with the default settings: wall time from start to exit.
#  Postfix  a private Postfix instance (postfix -c DIR start: its own
#           config, queue and data directories; no smtpd, relayhost =
#           the sink; otherwise Postfix's defaults) gets one message for N
#           recipients by `sendmail -XV` (VERP: one transaction per
#           recipient); wall time from the start of sendmail until the
#           sink holds N transactions.  Skipped, with the reason, when
#           Postfix cannot be run.
#  floor    smtp-source -d -s 10 -m N -r 1 -l 4096 (10 sessions, N
#           one-recipient messages, the next one over the same connection;
#           smtp-source does not pipeline) and, for reference, -s 1.
#
# Every figure is checked: the sink must record exactly N transactions and
# N recipients.  Figures are the median of REPEAT runs (all runs shown);
# the ratios mmq/floor and mmq/Postfix are printed with the goals of issue
# 16 (>= 0.5 of the -s 10 floor, >= 10 x Postfix).
#
# Environment:
#   BUILD=DIR       an mmq build directory (default: ../build beside this
#                   script's tree)
#   REPEAT=3        runs per figure (BENCH_QUICK=1: 1)
#   BENCH_DIR=DIR   where the spool goes (default: /var/tmp or /tmp, not a
#                   RAM file system: the spool's fsyncs must cost what they
#                   cost)
#   VERP_SIZES="1000 10000"
#   BENCH_KEEP=1    keep the temporary directory
#   BENCH_POSTFIX=0 no Postfix runs
#   BUILD_BASE=DIR  a second mmq build (e.g. the branch's base) measured in
#                   the same run, beside BUILD: the ratio new/base
#   BENCH_PERF=CMD  run mmq-deliver under CMD for one more 10,000 run
#                   (e.g. "perf record -g -o /tmp/verp.data --"; output
#                   kept in $W, see BENCH_KEEP)
set -euo pipefail

srcdir=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
REPEAT=${REPEAT:-3}
[ "${BENCH_QUICK:-0}" = 1 ] && REPEAT=${BENCH_REPEAT:-1}
SMTP_SINK=${SMTP_SINK:-/usr/sbin/smtp-sink}
SMTP_SOURCE=${SMTP_SOURCE:-/usr/sbin/smtp-source}
POSTFIX=${POSTFIX:-/usr/sbin/postfix}
SENDMAIL=${SENDMAIL:-/usr/sbin/sendmail}
VERP_SIZES=${VERP_SIZES:-1000 10000}
SENDER=bench-bounces@lists.example.org
CONNECTIONS=10

die() {
    echo "verp-bench: error: $*" >&2
    exit 1
}
say() { printf '\n== %s ==\n' "$*"; }

[ "$(id -u)" -eq 0 ] || die "run as root (smtp-sink -u nobody, a private Postfix)"
[ -x "$SMTP_SINK" ] && [ -x "$SMTP_SOURCE" ] || die "no $SMTP_SINK or $SMTP_SOURCE (Debian package postfix)"
[ -n "${EPOCHREALTIME:-}" ] || die "bash 5 or later is needed (EPOCHREALTIME)"
BUILD=$(cd "${BUILD:-$srcdir/build}" && pwd) || die "no build directory: set BUILD"
DELIVER=$BUILD/deliver/mmq-deliver
MMQCTL=$BUILD/ctl/mmqctl
MKENTRY=$BUILD/t/tools/mkentry
for p in "$DELIVER" "$MMQCTL" "$MKENTRY"; do [ -x "$p" ] || die "no $p (BUILD=$BUILD)"; done
[ -x /usr/bin/time ] || die "no /usr/bin/time (Debian package time)"
if [ -n "${BUILD_BASE:-}" ]; then
    BUILD_BASE=$(cd "$BUILD_BASE" && pwd) && [ -x "$BUILD_BASE/deliver/mmq-deliver" ] ||
        die "no deliver/mmq-deliver in BUILD_BASE"
fi
if nm "$DELIVER" 2>/dev/null | grep -q '__asan_init\|__ubsan_handle'; then
    die "$DELIVER is a sanitizer build: its figures would mean nothing"
fi

parent=
for d in ${BENCH_DIR:-} /var/tmp /tmp; do
    [ -d "$d" ] && [ -w "$d" ] || continue
    case $(stat -f -c %T "$d") in tmpfs | ramfs) continue ;; esac
    parent=$d
    break
done
[ -n "$parent" ] || die "no disk file system among ${BENCH_DIR:-} /var/tmp /tmp: set BENCH_DIR"
W=$(mktemp -d "$parent/mmq-vbench.XXXXXX")
D=$(mktemp -d /dev/shm/mmq-vbench-sink.XXXXXX 2>/dev/null) || D=$(mktemp -d "$W/sink.XXXXXX")
chmod 755 "$W" "$D"
chown nobody "$D"

SINK_PID=
BG_PID=
PF=
# shellcheck disable=SC2317
cleanup() {
    local pid
    if [ -n "$BG_PID" ]; then
        kill -TERM "$BG_PID" 2>/dev/null || true
        wait "$BG_PID" 2>/dev/null || true
    fi
    if [ -n "$PF" ]; then
        "$POSTFIX" -c "$PF" stop >/dev/null 2>&1 || true
        pid=$(tr -dc 0-9 <"$W/pfq/pid/master.pid" 2>/dev/null || true)
        for _ in $(seq 50); do
            [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        [ -n "$pid" ] && [ "$(readlink "/proc/$pid/exe" 2>/dev/null)" = /usr/lib/postfix/sbin/master ] &&
            kill -KILL "$pid" 2>/dev/null
    fi
    if [ -n "$SINK_PID" ]; then
        kill -TERM "$SINK_PID" 2>/dev/null || true
        wait "$SINK_PID" 2>/dev/null || true
    fi
    rm -rf "$D"
    if [ "${BENCH_KEEP:-0}" = 1 ]; then echo "verp-bench: kept $W"; else rm -rf "$W"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_port() {
    for _ in $(seq 100); do
        python3 -c "import socket; socket.create_connection(('127.0.0.1', $1), 1).close()" 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}

# the sink's transactions (dump files) and recipients
ndumps() { find "$D" -maxdepth 1 -type f -name 'd.*' | wc -l; }
nrcpts() { find "$D" -maxdepth 1 -type f -name 'd.*' -exec cat {} + | awk '/^X-Rcpt-Args:/ { n++ } END { print n + 0 }'; }
clear_dumps() { find "$D" -maxdepth 1 -type f -name 'd.*' -delete; }
# check_sink N WHAT: exactly N transactions and N recipients, or die
check_sink() {
    local m r
    m=$(ndumps)
    r=$(nrcpts)
    [ "$m $r" = "$1 $1" ] || die "$2: the sink recorded $m transactions and $r recipients, expected $1 and $1"
}
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.4f", b - a }'; }
median() { printf '%s\n' "$@" | sort -g | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
rate() { awk -v n="$1" -v s="$2" 'BEGIN { printf "%.0f", n / s }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }

# ------------------------------------------------------------------ sink
SINK_PORT=$(free_port)
"$SMTP_SINK" -u nobody -d "$D/d." "127.0.0.1:$SINK_PORT" 1024 >"$W/sink.out" 2>&1 &
SINK_PID=$!
wait_port "$SINK_PORT" || { cat "$W/sink.out" >&2; die "smtp-sink did not start"; }

# ------------------------------------------------------------------- mmq
mkdir "$W/lists"
cat >"$W/mmq.conf" <<EOF
spool = "$W/spool";
lists_dir = "$W/lists";
node = "bench";
relay_host = "127.0.0.1";
relay_port = $SINK_PORT;
EOF
"$MMQCTL" -c "$W/mmq.conf" init >/dev/null || die "mmqctl init failed"
# a 4 KiB list post with Date and Message-ID (LF, as in the spool)
{
    printf 'From: Bench <bench@example.org>\nTo: bench@lists.example.org\n'
    printf 'Subject: VERP benchmark\nDate: Mon, 01 Jan 2024 00:00:00 +0000\n'
    printf 'Message-ID: <verp-bench@example.org>\nList-Id: <bench.lists.example.org>\n\n'
    while :; do printf '%071d\n' 0; done
} 2>/dev/null | head -c 4096 >"$W/msg" || true
rcptfile() {
    [ -f "$W/rcpts.$1" ] || seq -f 'member%06g@example.net' 1 "$1" >"$W/rcpts.$1"
    echo "$W/rcpts.$1"
}
# entry_size N: recipients per entry of a VERP post (process/post.c)
entry_size() {
    local s=$((($1 + 2 * CONNECTIONS - 1) / (2 * CONNECTIONS)))
    [ "$s" -lt 20 ] && s=20
    [ "$s" -gt 500 ] && s=500
    echo "$s"
}
# mmq_run N [wrapper...]: LAST = wall seconds of mmq-deliver -1, LAST_CPU
# = CPU seconds (user + system) of its whole process tree
DELIVER_NOW=$DELIVER
mmq_run() {
    local n=$1 t0 rc=0
    shift
    "$MKENTRY" -c "$W/mmq.conf" -f "$SENDER" -n "$(entry_size "$n")" -V "$(rcptfile "$n")" <"$W/msg" >/dev/null ||
        die "mkentry failed"
    sync -f "$W/spool" 2>/dev/null || sync
    clear_dumps
    t0=$EPOCHREALTIME
    "$@" /usr/bin/time -f '%U %S' -o "$W/cpu" "$DELIVER_NOW" -c "$W/mmq.conf" -1 -e 2>"$W/deliver.log" &
    BG_PID=$!
    wait "$BG_PID" || rc=$?
    LAST=$(elapsed "$t0" "$EPOCHREALTIME")
    LAST_CPU=$(awk 'END { printf "%.3f", $1 + $2 }' "$W/cpu")
    BG_PID=
    [ "$rc" -eq 0 ] || { tail -n 20 "$W/deliver.log" >&2; die "mmq-deliver exited with $rc"; }
    [ -z "$(find "$W/spool/out" "$W/spool/deferred" "$W/spool/bad" -type f 2>/dev/null)" ] ||
        die "mmq-deliver left entries in the spool"
    check_sink "$n" "mmq VERP $n"
}

# ------------------------------------------------------------- Postfix
PF_WHY=
postfix_start() {
    local c
    for c in "$POSTFIX" "$SENDMAIL" /usr/sbin/postconf; do
        [ -x "$c" ] || { PF_WHY="no $c (Debian package postfix)"; return 1; }
    done
    id postfix >/dev/null 2>&1 && getent group postdrop >/dev/null ||
        { PF_WHY="no user postfix or group postdrop"; return 1; }
    mkdir -p "$W/pf" "$W/pfq" "$W/pfdata"
    chown postfix "$W/pfdata"
    cat >"$W/pf/main.cf" <<EOF
compatibility_level = 3.6
queue_directory = $W/pfq
data_directory = $W/pfdata
mail_owner = postfix
setgid_group = postdrop
myhostname = mx.bench.invalid
mydomain = bench.invalid
myorigin = \$myhostname
mydestination =
local_recipient_maps =
alias_maps =
alias_database =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
relayhost = [127.0.0.1]:$SINK_PORT
smtp_dns_support_level = disabled
smtp_host_lookup = native
smtp_tls_security_level = none
smtputf8_enable = no
biff = no
maillog_file = $W/pf/maillog
maillog_file_prefixes = $W
delay_warning_time = 0
EOF
    # Postfix's stock services, no smtpd: mail enters by sendmail/postdrop
    cat >"$W/pf/master.cf" <<'EOF'
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
EOF
    PF=$W/pf
    "$POSTFIX" -c "$PF" check >"$W/pf/check.out" 2>&1 || true
    if ! "$POSTFIX" -c "$PF" start >"$W/pf/start.out" 2>&1; then
        PF_WHY="postfix -c DIR start failed: $(tail -n 3 "$W/pf/start.out" | tr '\n' ' ')"
        return 1
    fi
    for _ in $(seq 100); do
        [ -S "$W/pfq/public/pickup" ] || [ -p "$W/pfq/public/pickup" ] && return 0
        sleep 0.1
    done
    PF_WHY="Postfix started but its pickup service did not appear"
    return 1
}
# postfix_run N: LAST = seconds from sendmail -XV until the sink holds N
postfix_run() {
    local n=$1 t0 i rcpts
    mapfile -t rcpts <"$(rcptfile "$n")"
    clear_dumps
    t0=$EPOCHREALTIME
    # one message for all N (xargs would split the command line)
    "$SENDMAIL" -C "$PF" -XV -i -f "$SENDER" "${rcpts[@]}" <"$W/msg" || die "sendmail -XV failed"
    for ((i = 0; i < 6000; i++)); do
        [ "$(ndumps)" -ge "$n" ] && break
        sleep 0.02
    done
    LAST=$(elapsed "$t0" "$EPOCHREALTIME")
    [ "$(ndumps)" -ge "$n" ] || die "Postfix: $(ndumps) of $n transactions at the sink after 120 s"
    sleep 0.1 # the last dump file complete
    check_sink "$n" "Postfix sendmail -XV $n"
}

# ------------------------------------------------------------- floors
# floor_run N SESSIONS: LAST = wall seconds of smtp-source -d -s S -m N -r 1
floor_run() {
    local t0
    clear_dumps
    t0=$EPOCHREALTIME
    "$SMTP_SOURCE" -d -s "$2" -m "$1" -r 1 -l 4096 "127.0.0.1:$SINK_PORT" >"$W/source.log" 2>&1 ||
        { cat "$W/source.log" >&2; die "smtp-source failed"; }
    LAST=$(elapsed "$t0" "$EPOCHREALTIME")
    check_sink "$1" "smtp-source -s $2 -m $1"
}

declare -A T RUNS CPU
# measure KEY FUNCTION ARGS...: the median of REPEAT runs
measure() {
    local key=$1 all=() cpu=() r
    shift
    for ((r = 0; r < REPEAT; r++)); do
        LAST_CPU=
        "$@"
        all+=("$LAST")
        cpu+=("${LAST_CPU:-0}")
    done
    T[$key]=$(median "${all[@]}")
    CPU[$key]=$(median "${cpu[@]}")
    RUNS[$key]=$(printf '%s\n' "${all[@]}" | awk '{ printf "%s%.3f", (NR > 1 ? " " : ""), $1 }')
}
show() { printf '  %-46s %7.3f s %7s RCPT/s  (runs: %s)\n' "$1" "${T[$2]}" "$(rate "$3" "${T[$2]}")" "${RUNS[$2]}"; }

say "setup"
echo "machine:   $(nproc) CPUs, $(uname -sr); load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "mmq:       $DELIVER (libESMTP $(pkg-config --modversion libesmtp-1.0 2>/dev/null || echo '?')), spool on $(stat -f -c %T "$W")"
echo "sink:      $SMTP_SINK -u nobody -d DIR/d. 127.0.0.1:$SINK_PORT 1024, dumps on $(stat -f -c %T "$D")"
echo "message:   4096 bytes; figures: median of REPEAT=$REPEAT runs"
HAVE_PF=0
if [ "${BENCH_POSTFIX:-1}" = 0 ]; then
    echo "Postfix:   SKIPPED: BENCH_POSTFIX=0"
elif postfix_start; then
    HAVE_PF=1
    echo "Postfix:   $(/usr/sbin/postconf -c "$PF" -h mail_version) (postfix -c $PF start), relayhost the sink"
else
    echo "Postfix:   SKIPPED: $PF_WHY"
fi
echo "warming up..."
mmq_run 1000
floor_run 100 10
[ "$HAVE_PF" = 1 ] && postfix_run 100

for n in $VERP_SIZES; do
    say "VERP post to $n members"
    measure "mmq$n" mmq_run "$n"
    show "mmq-deliver -1, entries of $(entry_size "$n")" "mmq$n" "$n"
    printf '  %-46s %7.3f s CPU (user + system, all processes), %.0f us per transaction\n' "" \
        "${CPU[mmq$n]}" "$(awk -v c="${CPU[mmq$n]}" -v n="$n" 'BEGIN { print c / n * 1e6 }')"
    if [ -n "${BUILD_BASE:-}" ]; then
        DELIVER_NOW=$BUILD_BASE/deliver/mmq-deliver
        measure "base$n" mmq_run "$n"
        DELIVER_NOW=$DELIVER
        show "BUILD_BASE's mmq-deliver -1, same entries" "base$n" "$n"
        printf '  %-46s %7.3f s CPU, %.0f us per transaction\n' "" "${CPU[base$n]}" \
            "$(awk -v c="${CPU[base$n]}" -v n="$n" 'BEGIN { print c / n * 1e6 }')"
    fi
    if [ "$HAVE_PF" = 1 ]; then
        measure "pf$n" postfix_run "$n"
        show "Postfix sendmail -XV (until the sink has all)" "pf$n" "$n"
    fi
    measure "f10_$n" floor_run "$n" 10
    show "floor: smtp-source -d -s 10 -m $n -r 1" "f10_$n" "$n"
    measure "f1_$n" floor_run "$n" 1
    show "reference: smtp-source -d -s 1 -m $n -r 1" "f1_$n" "$n"
done

if [ -n "${BENCH_PERF:-}" ]; then
    say "mmq-deliver under: $BENCH_PERF"
    # shellcheck disable=SC2086 # a command line
    mmq_run 10000 $BENCH_PERF
    echo "  $LAST s; output in $W"
fi

say "summary: VERP, RCPT/s (median of $REPEAT), load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-8s %8s %8s %8s %8s %10s %10s %10s\n' members mmq Postfix "-s 10" "-s 1" "mmq/-s10" "mmq/-s1" "mmq/Postfix"
for n in $VERP_SIZES; do
    m=$(rate "$n" "${T[mmq$n]}")
    f10=$(rate "$n" "${T[f10_$n]}")
    f1=$(rate "$n" "${T[f1_$n]}")
    if [ "$HAVE_PF" = 1 ]; then
        p=$(rate "$n" "${T[pf$n]}")
        rp=$(ratio "$m" "$p")
    else
        p=skipped
        rp=-
    fi
    printf '%-8s %8s %8s %8s %8s %10s %10s %10s\n' "$n" "$m" "$p" "$f10" "$f1" "$(ratio "$m" "$f10")" "$(ratio "$m" "$f1")" "$rp"
done
if [ -n "${BUILD_BASE:-}" ]; then
    for n in $VERP_SIZES; do
        printf 'against BUILD_BASE, %s members: %s x the RCPT/s, %s x the CPU per transaction\n' "$n" \
            "$(ratio "${T[base$n]}" "${T[mmq$n]}")" "$(ratio "${CPU[mmq$n]}" "${CPU[base$n]}")"
    done
fi
echo "goals (issue 16, 10,000 members): mmq/-s10 >= 0.5, mmq/Postfix >= 10"
