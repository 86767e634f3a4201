#!/usr/bin/env bash
# deliver-bench.sh - how fast does mmq-deliver relay list mail to the MTA,
# against the floor of Postfix's own SMTP load generator into the same
# server?  A manual benchmark (not part of make check); run it as root (the
# sink and tcpdump need it).
#
# In one run, on 127.0.0.1, with Postfix's smtp-sink as the SMTP server
# (started here on a free port as root with -u nobody, listen backlog
# 1024, one dump file per transaction on a RAM file system so that the
# sink's own disk writes cost little and the same for everybody):
#
#  1. mmq, one list post: 10,000 recipients queued as entries of 500
#     (t/tools/mkentry), a 4 KiB message, delivered by `mmq-deliver -1`
#     (drain out/ and exit) with the default settings (connections = 10,
#     recipients_per_transaction = 500): wall time from start to exit and
#     RCPT/s; the sink's dumps must hold exactly 10,000 recipients.
#  2. mmq, a stream of 1,000 one-recipient messages (1,000 entries): msg/s;
#     and a VERP post (1,000 recipients, entries of 500 marked verp 1 with
#     mkentry -V): one transaction per recipient, RCPT/s.
#  2b. VERP posts of 1,000 and 10,000 members (mkentry -V), in entries of
#     the size mmq-process makes for a VERP post (recipients_per_entry 500,
#     at most members / (2 x connections), at least 20: 50 for 1,000
#     with the default 10 connections; VERP_SPLIT=0: entries of 500, as
#     before that rule);
#     RCPT/s, against the one-recipient floor (smtp-source -d -s 10 -r 1),
#     and how many connections (workers) had entries to send.
#  2c. a stream arriving one at a time: 1,000 one-recipient entries made
#     one after the other (one mkentry each) while the agent runs as a
#     daemon: wall time and the number of SMTP sessions that carried them.
#  3. the floor, smtp-source into the same sink (see man smtp-source):
#       smtp-source -s 10 -m 200 -r 1000 -l 4096      RCPT/s
#         (-s 10: 10 sessions in parallel; -m 200: 200 messages in all;
#          -r 1000: 1000 recipients per transaction; -l 4096: 4096 bytes
#          of message; a new connection for every message)
#       smtp-source -d -s 10 -m 1000 -r 1 -l 4096    msg/s
#         (-d: the next message over the same connection)
#     smtp-source does not pipeline: every command waits for its reply.
#     For reference only, the same with -s 1 (one session: what one of
#     mmq's connections could do without pipelining).
#  4. the ratios mmq / floor and the goal: mmq >= 0.5 x floor.
#  5. mmq as in 1. against a sink that does not announce PIPELINING
#     (smtp-sink -p; libESMTP pipelines whenever it is offered and has no
#     switch to stop it); the EHLO reply is checked here, and on the wire
#     in 8.
#  6. memory: peak RSS (VmHWM at exit, recorded exactly by the LD_PRELOAD
#     shim bench/rss-at-exit.c) of the mmq-deliver master and of each of
#     its workers, for queues of 10,000 and 100,000 recipients (50,000 if
#     100,000 would take more than 60 s), plus one larger than the
#     master's listing window (connections x 64 x 2 entries) to show where
#     the per-worker bound sets in; /usr/bin/time's maximum RSS of the
#     whole tree as a cross-check.
#  7. a table: connections (1, 4, 8) x recipients_per_transaction (100,
#     500, 1000) for 10,000 recipients queued as entries of 1000 (with
#     entries of 500 the column 1000 would be the column 500: a
#     transaction never spans two entries).
#  8. the wire (when tcpdump and python3 are there, BENCH_WIRE=0 skips):
#     one captured session of mmq (connections = 1) for 2 x 500 recipients,
#     the same without PIPELINING, 5 one-recipient messages, and
#     smtp-source for comparison; bench/wire-summary.py shows what each
#     client segment carried and every quiet gap >= 30 ms (Nagle waiting
#     for a delayed ACK: 40 ms on Linux).
#
# Throughput figures are the median of REPEAT runs (all runs are shown).
# The machine is shared: the load average is printed at the start and end.
#
# Environment:
#   BUILD=DIR        an mmq build directory (deliver/mmq-deliver,
#                    ctl/mmqctl, t/tools/mkentry); default: configure and
#                    build one out of tree in the temporary directory
#   REPEAT=3         runs per throughput figure
#   BENCH_DIR=DIR    where to make the temporary directory (default: the
#                    first of /var/tmp, /tmp that is not a RAM file system:
#                    the spool's fsyncs must cost what they cost)
#   BENCH_WIRE=auto  section 8: auto (if tcpdump and python3), 1, 0
#   BENCH_KEEP=1     keep the temporary directory
#   BENCH_ENFORCE=1  exit 3 when a goal ratio is below 0.5
#   BENCH_QUICK=1    sections 1 to 4 only (skip 5 to 8)
#   VERP_SPLIT=1     section 2b: entries as mmq-process cuts a VERP post
#   SMTP_SINK=/usr/sbin/smtp-sink SMTP_SOURCE=/usr/sbin/smtp-source CC=cc
set -euo pipefail

srcdir=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
REPEAT=${REPEAT:-3}
CC=${CC:-cc}
SMTP_SINK=${SMTP_SINK:-/usr/sbin/smtp-sink}
SMTP_SOURCE=${SMTP_SOURCE:-/usr/sbin/smtp-source}
GOAL=0.5
JOBS=${JOBS:-$(nproc 2>/dev/null || echo 2)}
BENCH_WIRE=${BENCH_WIRE:-auto}
SENDER=bench-sender@example.org

die() {
    echo "deliver-bench: error: $*" >&2
    exit 1
}
say() { printf '\n== %s ==\n' "$*"; }

[ "$(id -u)" -eq 0 ] || die "run as root (smtp-sink is started with -u nobody; tcpdump)"
[ -x "$SMTP_SINK" ] || die "no $SMTP_SINK (Debian package postfix)"
[ -x "$SMTP_SOURCE" ] || die "no $SMTP_SOURCE (Debian package postfix)"
id nobody >/dev/null 2>&1 || die "no user nobody"
[ -n "${EPOCHREALTIME:-}" ] || die "bash 5 or later is needed (EPOCHREALTIME)"

# ------------------------------------------------------------- work dirs
pick_parent() {
    local d t
    for d in ${BENCH_DIR:-} /var/tmp /tmp; do
        if [ ! -d "$d" ] || [ ! -w "$d" ]; then
            continue
        fi
        t=$(stat -f -c %T "$d")
        case $t in
        tmpfs | ramfs) echo "deliver-bench: $d is $t, not a disk: skipped" >&2 ;;
        *)
            echo "$d"
            return 0
            ;;
        esac
    done
    return 1
}
parent=$(pick_parent) || die "no disk file system among ${BENCH_DIR:-} /var/tmp /tmp: set BENCH_DIR"
W=$(mktemp -d "$parent/mmq-dbench.XXXXXX")
# the sink's dumps: on a RAM file system when there is one
if [ -d /dev/shm ] && [ -w /dev/shm ] && [ "$(stat -f -c %T /dev/shm)" = tmpfs ]; then
    D=$(mktemp -d /dev/shm/mmq-dbench-sink.XXXXXX)
else
    D=$(mktemp -d "$W/sink.XXXXXX")
fi
chmod 755 "$W" "$D"
mkdir "$D/a" "$D/p"
chown nobody "$D/a" "$D/p"

SINK_PIDS=()
BG_PID=      # a running mmq-deliver, for the trap
TCPDUMP_PID= # a running tcpdump, for the trap
# shellcheck disable=SC2317
cleanup() {
    local p
    for p in $BG_PID $TCPDUMP_PID; do
        kill -TERM "$p" 2>/dev/null || true
        wait "$p" 2>/dev/null || true
    done
    for p in "${SINK_PIDS[@]}"; do
        kill -TERM "$p" 2>/dev/null || true
    done
    for p in "${SINK_PIDS[@]}"; do
        for _ in 1 2 3 4 5 6 7 8 9 10; do
            kill -0 "$p" 2>/dev/null || break
            sleep 0.05
        done
        kill -KILL "$p" 2>/dev/null || true
        wait "$p" 2>/dev/null || true
    done
    rm -rf "$D"
    if [ "${BENCH_KEEP:-0}" = 1 ]; then
        echo "deliver-bench: kept $W"
    else
        rm -rf "$W"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ------------------------------------------------------------------ mmq
if [ -z "${BUILD:-}" ]; then
    BUILD="$W/build"
    say "building mmq in $BUILD (out of tree)"
    if [ ! -x "$srcdir/configure" ]; then
        (cd "$srcdir" && ./autogen.sh) >/dev/null 2>&1 || die "./autogen.sh failed"
    fi
    mkdir -p "$BUILD"
    (cd "$BUILD" && "$srcdir/configure" -q --sysconfdir=/etc) ||
        die "configure failed: see $BUILD/config.log"
    make -s -C "$BUILD" -j"$JOBS" deliver/mmq-deliver ctl/mmqctl t/tools/mkentry \
        >"$BUILD/bench-make.log" 2>&1 ||
        { cat "$BUILD/bench-make.log" >&2; die "the build failed"; }
fi
BUILD=$(cd "$BUILD" && pwd)
DELIVER="$BUILD/deliver/mmq-deliver"
MMQCTL="$BUILD/ctl/mmqctl"
MKENTRY="$BUILD/t/tools/mkentry"
for p in "$DELIVER" "$MMQCTL" "$MKENTRY"; do
    [ -x "$p" ] || die "no $p (BUILD=$BUILD)"
done
if nm "$DELIVER" 2>/dev/null | grep -q '__asan_init\|__ubsan_handle'; then
    die "$DELIVER is a sanitizer build: its figures would mean nothing"
fi

# ---------------------------------------------------------------- sinks
# _listening PID PORT: is PID listening on 127.0.0.1:PORT?  (/proc only:
# no probe connection)
_listening() {
    local pid=$1 port=$2 hex inode f
    hex=$(printf '0100007F:%04X' "$port")
    inode=$(awk -v a="$hex" '$2 == a && $4 == "0A" { print $10; exit }' /proc/net/tcp 2>/dev/null)
    [ -n "$inode" ] || return 1
    for f in /proc/"$pid"/fd/*; do
        [ "$(readlink "$f" 2>/dev/null)" = "socket:[$inode]" ] && return 0
    done
    return 1
}

_port_taken() {
    local hex
    hex=$(printf ':%04X' "$1")
    awk -v h="$hex" 'NR > 1 && substr($2, length($2) - 4) == h { found = 1 } END { exit !found }' \
        /proc/net/tcp /proc/net/tcp6 2>/dev/null
}

# sink_start VAR DUMPDIR [smtp-sink options]: start a sink on a free port;
# VAR_PORT and VAR_PID are set.
sink_start() {
    local var=$1 dir=$2 try port pid
    shift 2
    for try in 1 2 3 4 5 6 7 8 9 10; do
        port=$((20000 + RANDOM % 40000))
        _port_taken "$port" && continue
        "$SMTP_SINK" -u nobody -d "$dir/d." "$@" "127.0.0.1:$port" 1024 \
            >"$W/sink-$var.out" 2>"$W/sink-$var.err" &
        pid=$!
        SINK_PIDS+=("$pid")
        for _ in $(seq 100); do
            if _listening "$pid" "$port"; then
                printf -v "${var}_PORT" '%s' "$port"
                printf -v "${var}_PID" '%s' "$pid"
                return 0
            fi
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.05
        done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
        grep -qi 'address already in use\|bind' "$W/sink-$var.err" ||
            { cat "$W/sink-$var.err" >&2; die "smtp-sink did not start (try $try)"; }
    done
    die "no free port for smtp-sink after $try tries"
}

# ehlo_probe PORT: the EHLO keywords the server announces, on one line
ehlo_probe() {
    local fd line out=""
    exec {fd}<>"/dev/tcp/127.0.0.1/$1" || return 1
    IFS= read -r -t 5 line <&"$fd" || true
    printf 'EHLO probe.example\r\n' >&"$fd"
    while IFS= read -r -t 5 line <&"$fd"; do
        line=${line%$'\r'}
        case $line in
        250-*) out="$out ${line#250-}" ;;
        250\ *)
            out="$out ${line#250 }"
            break
            ;;
        *) break ;;
        esac
    done
    printf 'QUIT\r\n' >&"$fd"
    IFS= read -r -t 5 line <&"$fd" || true
    exec {fd}>&-
    # the first 250 line is the host name
    echo "$out" | awk '{ $1 = ""; sub(/^ /, ""); print }'
}

# dump_counts DIR: "MESSAGES RECIPIENTS" the sink recorded in DIR
dump_counts() {
    local m r
    m=$(find "$1" -maxdepth 1 -type f -name 'd.*' | wc -l)
    if [ "$m" -gt 0 ]; then
        r=$(find "$1" -maxdepth 1 -type f -name 'd.*' -exec cat {} + |
            awk '/^X-Rcpt-Args:/ { n++ } END { print n + 0 }')
    else
        r=0
    fi
    echo "$m $r"
}
clear_dumps() { find "$1" -maxdepth 1 -type f -name 'd.*' -delete; }

# --------------------------------------------------------------- spool
mkdir -p "$W/lists"
# conf NAME PORT [setting = value; ...]: a configuration file
conf() {
    local name=$1 port=$2
    shift 2
    {
        echo "spool = \"$W/spool\";"
        echo "lists_dir = \"$W/lists\";"
        echo "node = \"bench\";"
        echo "relay_host = \"127.0.0.1\";"
        echo "relay_port = $port;"
        for s in "$@"; do echo "$s"; done
    } >"$W/$name.conf"
    echo "$W/$name.conf"
}

# a 4 KiB message with the headers a list post has (Date and Message-ID:
# libESMTP adds them when missing); LF line ends, as in the spool
{
    printf 'From: Bench <%s>\nTo: bench@lists.example.org\n' "$SENDER"
    printf 'Subject: delivery benchmark\nDate: Mon, 01 Jan 2024 00:00:00 +0000\n'
    printf 'Message-ID: <deliver-bench@example.org>\nList-Id: <bench.lists.example.org>\n\n'
    while :; do printf '%071d\n' 0; done
} 2>/dev/null | head -c 4096 >"$W/msg" || true
[ "$(stat -c %s "$W/msg")" = 4096 ] || die "cannot make a 4096-byte message"

# rcptfile N: a file of N distinct recipient addresses
rcptfile() {
    local f="$W/rcpts.$1"
    [ -f "$f" ] || seq -f 'member%06g@example.net' 1 "$1" >"$f"
    echo "$f"
}

# queue CONF N PER [mkentry options]: N recipients as entries of PER
queue() {
    local n cfg=$1 nr=$2 per=$3
    shift 3
    n=$("$MKENTRY" -c "$cfg" -f "$SENDER" -n "$per" "$@" "$(rcptfile "$nr")" <"$W/msg" | wc -l) ||
        die "mkentry failed"
    [ "$n" -eq $(((nr + per - 1) / per)) ] || die "mkentry queued $n entries"
}

spool_left() { find "$W/spool/out" "$W/spool/deferred" "$W/spool/bad" -type f 2>/dev/null | wc -l; }

# deliver CONF DUMPDIR WANT_MSGS WANT_RCPTS [env...]: run mmq-deliver -1 on
# what is queued; LAST = wall seconds.  Dies unless the queue drained and
# the sink recorded exactly what was expected.
LAST=
deliver() {
    local cfg=$1 dir=$2 wm=$3 wr=$4 t0 t1 rc=0 got
    shift 4
    clear_dumps "$dir"
    t0=$EPOCHREALTIME
    env "$@" "$DELIVER" -c "$cfg" -1 -e 2>"$W/deliver.log" &
    BG_PID=$!
    wait "$BG_PID" || rc=$?
    t1=$EPOCHREALTIME
    BG_PID=
    LAST=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.4f", b - a }')
    if [ "$rc" -ne 0 ] || [ "$(spool_left)" -ne 0 ]; then
        tail -n 20 "$W/deliver.log" >&2
        die "mmq-deliver exited with $rc, $(spool_left) entries left in out/, deferred/, bad/"
    fi
    got=$(dump_counts "$dir")
    [ "$got" = "$wm $wr" ] ||
        die "the sink recorded ${got% *} messages and ${got#* } recipients, expected $wm and $wr"
}

# source DUMPDIR PORT WANT_MSGS WANT_RCPTS smtp-source options: LAST = wall s
source_run() {
    local dir=$1 port=$2 wm=$3 wr=$4 t0 t1 got
    shift 4
    clear_dumps "$dir"
    t0=$EPOCHREALTIME
    "$SMTP_SOURCE" "$@" "127.0.0.1:$port" >"$W/source.log" 2>&1 ||
        { cat "$W/source.log" >&2; die "smtp-source $* failed"; }
    t1=$EPOCHREALTIME
    LAST=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.4f", b - a }')
    got=$(dump_counts "$dir")
    [ "$got" = "$wm $wr" ] ||
        die "smtp-source $*: the sink recorded ${got% *} messages and ${got#* } recipients, expected $wm and $wr"
}

median() { printf '%s\n' "$@" | sort -g | awk '{a[NR] = $1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }
rate() { awk -v n="$1" -v s="$2" 'BEGIN { printf "%.0f", n / s }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }

declare -A T RUNS
# measure_mmq KEY CONF DUMPDIR N PER RCPT_PER_TXN [mkentry options]
measure_mmq() {
    local key=$1 cfg=$2 dir=$3 n=$4 per=$5 rpt=$6 r all=() msgs
    shift 6
    # messages the sink sees: transactions = sum over entries of
    # ceil(entry size / rpt)
    msgs=$(awk -v n="$n" -v p="$per" -v t="$rpt" 'BEGIN {
        e = int(n / p); last = n - e * p; tt = (p < t) ? p : t
        m = e * int((p + tt - 1) / tt)
        if (last > 0) m += int((last + t - 1) / t)
        print m }')
    for ((r = 0; r < REPEAT; r++)); do
        queue "$cfg" "$n" "$per" "$@"
        sync -f "$W/spool" 2>/dev/null || sync
        deliver "$cfg" "$dir" "$msgs" "$n"
        all+=("$LAST")
    done
    T[$key]=$(median "${all[@]}")
    RUNS[$key]="${all[*]}"
}

# measure_source KEY DUMPDIR PORT WANT_MSGS WANT_RCPTS options
measure_source() {
    local key=$1 dir=$2 port=$3 wm=$4 wr=$5 r all=()
    shift 5
    for ((r = 0; r < REPEAT; r++)); do
        source_run "$dir" "$port" "$wm" "$wr" "$@"
        all+=("$LAST")
    done
    T[$key]=$(median "${all[@]}")
    RUNS[$key]="${all[*]}"
}

runs_list() { printf '%s' "${RUNS[$1]}" | awk '{ for (i = 1; i <= NF; i++) printf "%s%.3f", (i > 1 ? " " : ""), $i }'; }

# ----------------------------------------------------------------- setup
say "setup"
sink_start A "$D/a"
sink_start P "$D/p" -p
# shellcheck disable=SC2154 # set by sink_start
{
    echo "machine:      $(nproc) CPUs, $(uname -sr); load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "mmq-deliver:  $DELIVER (libESMTP $(pkg-config --modversion libesmtp-1.0 2>/dev/null || echo '?'))"
    echo "spool:        $W/spool on $(stat -f -c %T "$W")"
    echo "sink:         $SMTP_SINK -u nobody -d DIR/d. 127.0.0.1:$A_PORT 1024 (pid $A_PID), dumps on $(stat -f -c %T "$D")"
    echo "              $SMTP_SINK -u nobody -d DIR/d. -p 127.0.0.1:$P_PORT 1024 (pid $P_PID): no PIPELINING"
    echo "message:      4096 bytes (LF; CRLF on the wire); figures: median of REPEAT=$REPEAT runs"
}
EHLO_A=$(ehlo_probe "$A_PORT") || die "cannot probe the sink"
EHLO_P=$(ehlo_probe "$P_PORT") || die "cannot probe the -p sink"
echo "EHLO (sink):     $EHLO_A"
echo "EHLO (sink -p):  $EHLO_P"
case " $EHLO_A " in *" PIPELINING "*) ;; *) die "the sink does not announce PIPELINING" ;; esac
case " $EHLO_P " in *" PIPELINING "*) die "smtp-sink -p still announces PIPELINING" ;; esac
CONF_DEF=$(conf default "$A_PORT")
CONF_NOPIPE=$(conf nopipe "$P_PORT")
"$MMQCTL" -c "$CONF_DEF" init >/dev/null || die "mmqctl init failed"
echo "warming up (page cache, the spool's buckets, the sink)..."
queue "$CONF_DEF" 1000 500
deliver "$CONF_DEF" "$D/a" 2 1000
source_run "$D/a" "$A_PORT" 10 10 -d -s 10 -m 10 -r 1 -l 4096

# ------------------------------------------------------------- 1, 2, 3
say "1. mmq: one post of 10,000 recipients (entries of 500), default settings"
measure_mmq post "$CONF_DEF" "$D/a" 10000 500 500
printf '  %-44s %7.3f s %8s RCPT/s   (runs: %s s)\n' "mmq-deliver -1, connections 10, rcpt/txn 500" \
    "${T[post]}" "$(rate 10000 "${T[post]}")" "$(runs_list post)"
echo "  sink: 20 transactions, 10000 recipients recorded (checked on every run)"

say "2. mmq: a stream of 1,000 one-recipient messages (1,000 entries)"
measure_mmq stream "$CONF_DEF" "$D/a" 1000 1 500
printf '  %-44s %7.3f s %8s msg/s    (runs: %s s)\n' "mmq-deliver -1, connections 10" \
    "${T[stream]}" "$(rate 1000 "${T[stream]}")" "$(runs_list stream)"

# VERP: each recipient is its own transaction (own envelope sender)
if { "$MKENTRY" -V </dev/null 2>&1 || true; } | grep -qi 'invalid option'; then
    HAVE_VERP=0
    echo "  (VERP post skipped: this build's t/tools/mkentry has no -V)"
else
    HAVE_VERP=1
    SENDER_SAVE=$SENDER
    SENDER=bench-bounces@lists.example.org
    measure_mmq verp "$CONF_DEF" "$D/a" 1000 500 1 -V
    SENDER=$SENDER_SAVE
    printf '  %-44s %7.3f s %8s RCPT/s   (runs: %s s)\n' "VERP post: 1,000 rcpts, entries of 500, verp 1" \
        "${T[verp]}" "$(rate 1000 "${T[verp]}")" "$(runs_list verp)"
    echo "  (VERP: one transaction per recipient, each with its own sender, whatever recipients_per_transaction says)"
fi

# verp_entry_size N: recipients per entry for a VERP post of N members
# (process/post.c entry_size(); CONF_DEF has the default connections, 10)
verp_entry_size() {
    local n=$1 c=10 s
    if [ "${VERP_SPLIT:-1}" = 0 ]; then
        echo 500
        return
    fi
    s=$(((n + 2 * c - 1) / (2 * c)))
    [ "$s" -lt 20 ] && s=20
    [ "$s" -lt 500 ] && echo "$s" || echo 500
}
if [ "$HAVE_VERP" = 1 ]; then
    say "2b. VERP posts: one transaction per member, entries as the list stage cuts them"
    "$CC" -O2 -Wall -Wextra -shared -fPIC -o "$W/rss-at-exit.so" "$srcdir/bench/rss-at-exit.c" ||
        die "cannot compile bench/rss-at-exit.c"
    SENDER_SAVE=$SENDER
    SENDER=bench-bounces@lists.example.org
    for nv in 1000 10000; do
        pv=$(verp_entry_size "$nv")
        measure_mmq "verp$nv" "$CONF_DEF" "$D/a" "$nv" "$pv" 1 -V
        # one more run under bench/rss-at-exit.c, which logs every process
        # of the tree at its exit: the workers are the master's children
        queue "$CONF_DEF" "$nv" "$pv" -V
        rm -f "$W/verp-procs"
        deliver "$CONF_DEF" "$D/a" "$nv" "$nv" RSS_AT_EXIT_LOG="$W/verp-procs" LD_PRELOAD="$W/rss-at-exit.so"
        nwk=$(awk '{ split($1, a, "="); split($2, b, "="); pid[a[2]] = 1; par[a[2]] = b[2] }
            END { for (p in pid) if (!(par[p] in pid)) m = p; for (p in pid) n += (par[p] == m); print n + 0 }' "$W/verp-procs")
        printf '  %-44s %7.3f s %8s RCPT/s   (runs: %s s)\n' "VERP $nv members, entries of $pv" \
            "${T[verp$nv]}" "$(rate "$nv" "${T[verp$nv]}")" "$(runs_list "verp$nv")"
        echo "  worker processes (one more run, under bench/rss-at-exit.c): $nwk, for 10 connections"
    done
    SENDER=$SENDER_SAVE
fi

# 2c. a stream arriving one at a time: the agent runs as a daemon while
# 1,000 one-recipient entries are made one after the other (one mkentry
# process each, as one mmq-filter per message would); how many SMTP
# sessions (worker processes, logged by bench/rss-at-exit.c) carried them
say "2c. a stream arriving one at a time: 1,000 one-recipient entries, one mkentry each, agent running"
"$CC" -O2 -Wall -Wextra -shared -fPIC -o "$W/rss-at-exit.so" "$srcdir/bench/rss-at-exit.c" ||
    die "cannot compile bench/rss-at-exit.c"
clear_dumps "$D/a"
rm -f "$W/stream-procs"
env RSS_AT_EXIT_LOG="$W/stream-procs" LD_PRELOAD="$W/rss-at-exit.so" \
    "$DELIVER" -c "$CONF_DEF" -e 2>"$W/daemon.log" &
BG_PID=$!
sleep 0.5
t0=$EPOCHREALTIME
for ((i = 1; i <= 1000; i++)); do
    printf 'member%06d@example.net\n' "$i" >"$W/one"
    "$MKENTRY" -c "$CONF_DEF" -f "$SENDER" -n 1 "$W/one" <"$W/msg" >/dev/null || die "mkentry failed"
done
t_made=$EPOCHREALTIME
for ((i = 0; i < 1200; i++)); do
    [ "$(dump_counts "$D/a")" = "1000 1000" ] && break
    sleep 0.1
done
t1=$EPOCHREALTIME
[ "$(dump_counts "$D/a")" = "1000 1000" ] || die "stream: the sink recorded $(dump_counts "$D/a") after 120 s"
kill -TERM "$BG_PID"
wait "$BG_PID" || true
BG_PID=
STREAM_SESSIONS=$(awk '{ split($1, a, "="); split($2, b, "="); pid[a[2]] = 1; par[a[2]] = b[2] }
    END { for (p in pid) if (!(par[p] in pid)) m = p; for (p in pid) n += (par[p] == m); print n + 0 }' "$W/stream-procs")
STREAM_WALL=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
printf '  %-44s %7.3f s (arrivals over %.3f s) %6s msg/s\n' "1,000 entries made one at a time" \
    "$STREAM_WALL" "$(awk -v a="$t0" -v b="$t_made" 'BEGIN { print b - a }')" "$(rate 1000 "$STREAM_WALL")"
echo "  SMTP sessions (worker processes): $STREAM_SESSIONS, $(awk -v s="$STREAM_SESSIONS" 'BEGIN { printf "%.2f", 1000 / (s ? s : 1) }') entries per session"

say "3. the floor: smtp-source into the same sink"
measure_source floor_rcpt "$D/a" "$A_PORT" 200 200000 -s 10 -m 200 -r 1000 -l 4096
printf '  %-44s %7.3f s %8s RCPT/s   (runs: %s s)\n' "smtp-source -s 10 -m 200 -r 1000 -l 4096" \
    "${T[floor_rcpt]}" "$(rate 200000 "${T[floor_rcpt]}")" "$(runs_list floor_rcpt)"
measure_source floor_msg "$D/a" "$A_PORT" 1000 1000 -d -s 10 -m 1000 -r 1 -l 4096
printf '  %-44s %7.3f s %8s msg/s    (runs: %s s)\n' "smtp-source -d -s 10 -m 1000 -r 1 -l 4096" \
    "${T[floor_msg]}" "$(rate 1000 "${T[floor_msg]}")" "$(runs_list floor_msg)"

echo "  for reference (not the floor): the same with -s 1, one session"
measure_source ref_rcpt "$D/a" "$A_PORT" 200 200000 -s 1 -m 200 -r 1000 -l 4096
printf '  %-44s %7.3f s %8s RCPT/s   (runs: %s s)\n' "smtp-source -s 1 -m 200 -r 1000 -l 4096" \
    "${T[ref_rcpt]}" "$(rate 200000 "${T[ref_rcpt]}")" "$(runs_list ref_rcpt)"
measure_source ref_msg "$D/a" "$A_PORT" 1000 1000 -d -s 1 -m 1000 -r 1 -l 4096
printf '  %-44s %7.3f s %8s msg/s    (runs: %s s)\n' "smtp-source -d -s 1 -m 1000 -r 1 -l 4096" \
    "${T[ref_msg]}" "$(rate 1000 "${T[ref_msg]}")" "$(runs_list ref_msg)"

say "4. ratios mmq / floor (goal: >= $GOAL)"
R_RCPT=$(ratio "$(rate 10000 "${T[post]}")" "$(rate 200000 "${T[floor_rcpt]}")")
R_MSG=$(ratio "$(rate 1000 "${T[stream]}")" "$(rate 1000 "${T[floor_msg]}")")
met() { awk -v r="$1" -v g="$GOAL" 'BEGIN { print (r >= g) ? "met" : "NOT MET" }'; }
printf '  %-30s %8s / %8s RCPT/s = %5s   goal %s: %s\n' "list post (RCPT/s)" \
    "$(rate 10000 "${T[post]}")" "$(rate 200000 "${T[floor_rcpt]}")" "$R_RCPT" "$GOAL" "$(met "$R_RCPT")"
printf '  %-30s %8s / %8s msg/s  = %5s   goal %s: %s\n' "one-recipient stream (msg/s)" \
    "$(rate 1000 "${T[stream]}")" "$(rate 1000 "${T[floor_msg]}")" "$R_MSG" "$GOAL" "$(met "$R_MSG")"

printf '  %-30s %8s / %8s           = %5s   (against smtp-source -s 1)\n' "list post (RCPT/s)" \
    "$(rate 10000 "${T[post]}")" "$(rate 200000 "${T[ref_rcpt]}")" "$(ratio "$(rate 10000 "${T[post]}")" "$(rate 200000 "${T[ref_rcpt]}")")"
printf '  %-30s %8s / %8s           = %5s   (against smtp-source -d -s 1)\n' "one-recipient stream (msg/s)" \
    "$(rate 1000 "${T[stream]}")" "$(rate 1000 "${T[ref_msg]}")" "$(ratio "$(rate 1000 "${T[stream]}")" "$(rate 1000 "${T[ref_msg]}")")"
printf '  %-30s %8.1f ms per transaction per connection (10 connections)\n' "mmq, one-recipient stream" \
    "$(awk -v t="${T[stream]}" 'BEGIN { print t * 10 / 1000 * 1000 }')"

if [ "${BENCH_QUICK:-0}" = 1 ]; then
    say "summary (BENCH_QUICK=1: sections 5 to 8 skipped)"
    echo "mmq-deliver vs smtp-source into smtp-sink on 127.0.0.1, median of $REPEAT runs"
    echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
    printf '%-30s %8s %8s %6s\n' "" mmq floor ratio
    printf '%-30s %8s %8s %6s\n' "list post, RCPT/s" "$(rate 10000 "${T[post]}")" "$(rate 200000 "${T[floor_rcpt]}")" "$R_RCPT"
    printf '%-30s %8s %8s %6s\n' "one-recipient stream, msg/s" "$(rate 1000 "${T[stream]}")" "$(rate 1000 "${T[floor_msg]}")" "$R_MSG"
    printf '%-30s %8s sessions for 1,000 entries (%s s)\n' "stream arriving one at a time" "$STREAM_SESSIONS" "$STREAM_WALL"
    if [ "$HAVE_VERP" = 1 ]; then
        for nv in 1000 10000; do
            printf '%-30s %8s %8s %6s\n' "VERP $nv (entries of $(verp_entry_size $nv)), RCPT/s" "$(rate "$nv" "${T[verp$nv]}")" \
                "$(rate 1000 "${T[floor_msg]}")" "$(ratio "$(rate "$nv" "${T[verp$nv]}")" "$(rate 1000 "${T[floor_msg]}")")"
        done
    fi
    exit 0
fi

say "5. mmq without PIPELINING (smtp-sink -p): one post of 10,000 recipients"
"$MMQCTL" -c "$CONF_NOPIPE" init >/dev/null 2>&1 || true
measure_mmq nopipe "$CONF_NOPIPE" "$D/p" 10000 500 500
printf '  %-44s %7.3f s %8s RCPT/s   (runs: %s s)\n' "mmq-deliver -1, no PIPELINING offered" \
    "${T[nopipe]}" "$(rate 10000 "${T[nopipe]}")" "$(runs_list nopipe)"
printf '  %-44s %7s x the pipelined rate\n' "" "$(ratio "$(rate 10000 "${T[nopipe]}")" "$(rate 10000 "${T[post]}")")"

# ---------------------------------------------------------------- memory
say "6. memory: peak RSS of the master and of the workers (VmHWM at exit)"
"$CC" -O2 -Wall -Wextra -shared -fPIC -o "$W/rss-at-exit.so" "$srcdir/bench/rss-at-exit.c" ||
    die "cannot compile bench/rss-at-exit.c"
have_time=0
[ -x /usr/bin/time ] && have_time=1
# mem_run N: queue N recipients in entries of 500, deliver under the shim
mem_run() {
    local n=$1 log="$W/rss.$1" t0 t1 rc=0 got master maxrss="-"
    queue "$CONF_DEF" "$n" 500
    rm -f "$log" "$W/time.out"
    clear_dumps "$D/a"
    t0=$EPOCHREALTIME
    if [ "$have_time" = 1 ]; then
        # time(1) is the parent: mmq-deliver is its child; the shim is not
        # preloaded into time(1) itself
        /usr/bin/time -f '%M' -o "$W/time.out" env RSS_AT_EXIT_LOG="$log" \
            LD_PRELOAD="$W/rss-at-exit.so" "$DELIVER" -c "$CONF_DEF" -1 -e 2>"$W/deliver.log" &
    else
        env RSS_AT_EXIT_LOG="$log" LD_PRELOAD="$W/rss-at-exit.so" \
            "$DELIVER" -c "$CONF_DEF" -1 -e 2>"$W/deliver.log" &
    fi
    BG_PID=$!
    wait "$BG_PID" || rc=$?
    BG_PID=
    t1=$EPOCHREALTIME
    if [ "$rc" -ne 0 ] || [ "$(spool_left)" -ne 0 ]; then
        tail -n 20 "$W/deliver.log" >&2
        die "memory run $n failed"
    fi
    got=$(dump_counts "$D/a")
    [ "${got#* }" = "$n" ] || die "memory run $n: the sink recorded ${got#* } recipients"
    [ "$have_time" = 1 ] && maxrss=$(tail -n 1 "$W/time.out")
    # the master is the one process whose parent is not in the log
    master=$(awk '{ split($1, a, "="); split($2, b, "="); pid[a[2]] = 1; par[a[2]] = b[2] }
        END { for (p in pid) if (!(par[p] in pid)) print p }' "$log")
    [ "$(echo "$master" | wc -w)" = 1 ] || die "memory run $n: cannot tell the master in $log"
    awk -v m="$master" -v n="$n" -v e=$(((n + 499) / 500)) -v wall="$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')" -v tm="$maxrss" -v sum="$W/mem.summary" '
        { split($1, a, "="); split($2, b, "="); split($3, h, "=")
          if (a[2] == m) mh = h[2]
          else if (b[2] == m) { nw++; s += h[2]; if (h[2] > wmax) wmax = h[2]; if (wmin == "" || h[2] < wmin) wmin = h[2] } }
        END { printf "  %7d rcpts %4d entries %7.2f s   master %6d KiB   workers: %3d, peak max %6d KiB, min %6d KiB, mean %6.0f KiB   time(1) max RSS %s KiB\n",
              n, e, wall, mh, nw, wmax, wmin, (nw ? s / nw : 0), tm
              printf "%d rcpts: master %d KiB, worker max %d KiB\n", n, mh, wmax >> sum }' "$log"
    MEM_LAST_WALL=$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')
}
MEM_LAST_WALL=0
mem_run 10000
big=100000
if awk -v w="$MEM_LAST_WALL" 'BEGIN { exit !(w * 10 > 60) }'; then
    big=50000
    echo "  (100,000 recipients would take about $(awk -v w="$MEM_LAST_WALL" 'BEGIN { printf "%.0f", w * 10 }') s > 60 s: using 50,000)"
fi
mem_run "$big"
# past the master's listing window: every worker gets its full 64 entries
window=$((4 * 64 * 2))
huge=$(((window + 88) * 500))
if awk -v w="$MEM_LAST_WALL" -v b="$big" -v h="$huge" 'BEGIN { exit !(w * h / b <= 60) }'; then
    mem_run "$huge"
else
    echo "  ($huge recipients would take more than 60 s: skipped)"
fi
cat <<EOF
  Reading: the master lists at most connections x 64 x 2 = $window entries at a
  time; a worker gets at most min(transactions_per_connection, 64) entries
  and holds all their recipients in one libESMTP session, so a worker's
  peak grows with (entries per worker) x (recipients per entry) up to
  64 x entry size, then stays flat however long the queue is.
EOF

# ----------------------------------------------------------------- table
say "7. connections x recipients_per_transaction: 10,000 recipients in entries of 1000"
printf '  %-12s' "connections"
for rpt in 100 500 1000; do printf '  %22s' "rcpt/txn $rpt"; done
echo
for c in 1 4 8; do
    printf '  %-12s' "$c"
    for rpt in 100 500 1000; do
        cfg=$(conf "t-$c-$rpt" "$A_PORT" "connections = $c;" "recipients_per_transaction = $rpt;")
        measure_mmq "t$c-$rpt" "$cfg" "$D/a" 10000 1000 "$rpt"
        printf '  %8s RCPT/s %6.3f s' "$(rate 10000 "${T[t$c-$rpt]}")" "${T[t$c-$rpt]}"
    done
    echo
done
echo "  (median of $REPEAT runs each; the sink's dumps checked on every run)"

# ------------------------------------------------------------------ wire
wire=0
case $BENCH_WIRE in
0) ;;
1) wire=1 ;;
*) command -v tcpdump >/dev/null && command -v python3 >/dev/null && wire=1 ;;
esac
if [ "$wire" = 1 ]; then
    command -v tcpdump >/dev/null || die "BENCH_WIRE=1 but no tcpdump (apt-get install tcpdump)"
    command -v python3 >/dev/null || die "BENCH_WIRE=1 but no python3"
    say "8. the wire: one session each, captured on lo (filter: the sink's port)"
    # capture PORT FILE CMD...: run CMD while tcpdump records the port
    # (--immediate-mode: without it, packets still in libpcap's ring when
    # tcpdump is stopped are lost; -s 32768 -B 131072: a ring of 4096
    # frames, where -s 0 gives one of a few frames only and drops packets;
    # what tcpdump says about drops is shown)
    capture() {
        local port=$1 file=$2
        shift 2
        tcpdump -i lo --immediate-mode -U -s 32768 -B 131072 -w "$file" "tcp port $port" 2>"$file.err" &
        TCPDUMP_PID=$!
        for _ in $(seq 100); do
            grep -q 'listening on' "$file.err" 2>/dev/null && break
            kill -0 "$TCPDUMP_PID" 2>/dev/null || { cat "$file.err" >&2; die "tcpdump did not start"; }
            sleep 0.05
        done
        sleep 0.2
        "$@"
        sleep 0.3 # let the last packets reach tcpdump
        kill -TERM "$TCPDUMP_PID" 2>/dev/null || true
        wait "$TCPDUMP_PID" 2>/dev/null || true
        TCPDUMP_PID=
        echo "  tcpdump, $(basename "$file"): $(grep -h 'captured\|dropped by kernel' "$file.err" | paste -sd, - | sed 's/,/, /g')"
    }
    CONF_W1=$(conf wire1 "$A_PORT" "connections = 1;")
    CONF_WP=$(conf wirep "$P_PORT" "connections = 1;")
    # shellcheck disable=SC2317 # called through capture
    w_post() { queue "$1" 1000 500 && deliver "$1" "$2" 2 1000; }
    # shellcheck disable=SC2317
    w_stream() { queue "$CONF_W1" 5 1 && deliver "$CONF_W1" "$D/a" 5 5; }
    # shellcheck disable=SC2317
    w_source() { source_run "$D/a" "$A_PORT" 2 2 -d -s 1 -m 2 -r 1 -l 4096; }
    capture "$A_PORT" "$W/w-post.pcap" w_post "$CONF_W1" "$D/a"
    capture "$P_PORT" "$W/w-nopipe.pcap" w_post "$CONF_WP" "$D/p"
    capture "$A_PORT" "$W/w-stream.pcap" w_stream
    capture "$A_PORT" "$W/w-source.pcap" w_source
    echo "-- mmq, 1000 recipients in 2 entries of 500, connections = 1, PIPELINING offered"
    python3 "$srcdir/bench/wire-summary.py" "$W/w-post.pcap" "$A_PORT" --show 2 --max-events 30
    echo
    echo "-- mmq, the same against smtp-sink -p (no PIPELINING)"
    python3 "$srcdir/bench/wire-summary.py" "$W/w-nopipe.pcap" "$P_PORT" --show 1 --max-events 16
    echo
    echo "-- mmq, 5 one-recipient messages, connections = 1"
    python3 "$srcdir/bench/wire-summary.py" "$W/w-stream.pcap" "$A_PORT" --show 2 | tee "$W/w-stream.txt"
    WIRE_STREAM=$(grep '^summary:' "$W/w-stream.txt" | sed 's/^summary: //')
    WIRE_POST=$(python3 "$srcdir/bench/wire-summary.py" "$W/w-post.pcap" "$A_PORT" | grep '^summary:' | sed 's/^summary: //')
    echo
    echo "-- the floor: smtp-source -d -s 1 -m 2 -r 1 -l 4096"
    python3 "$srcdir/bench/wire-summary.py" "$W/w-source.pcap" "$A_PORT" --show 2
else
    WIRE_POST=''
    WIRE_STREAM=''
    say "8. the wire: skipped (needs tcpdump and python3; BENCH_WIRE=$BENCH_WIRE)"
fi

# --------------------------------------------------------------- summary
say "summary"
cat <<EOF
mmq-deliver vs smtp-source into smtp-sink on 127.0.0.1, median of $REPEAT runs
load average at the end: $(cut -d' ' -f1-3 /proc/loadavg) ($(nproc) CPUs; the machine may be shared)
                                   mmq            floor          ratio   goal >= $GOAL
list post, RCPT/s            $(printf '%8s' "$(rate 10000 "${T[post]}")")       $(printf '%8s' "$(rate 200000 "${T[floor_rcpt]}")")       $(printf '%5s' "$R_RCPT")   $(met "$R_RCPT")
one-recipient stream, msg/s  $(printf '%8s' "$(rate 1000 "${T[stream]}")")       $(printf '%8s' "$(rate 1000 "${T[floor_msg]}")")       $(printf '%5s' "$R_MSG")   $(met "$R_MSG")
list post without PIPELINING $(printf '%8s' "$(rate 10000 "${T[nopipe]}")") RCPT/s
$(if [ "$HAVE_VERP" = 1 ]; then printf 'VERP post (1 rcpt/txn)       %8s       %8s       %5s   (against the msg/s floor; no goal set)' "$(rate 1000 "${T[verp]}")" "$(rate 1000 "${T[floor_msg]}")" "$(ratio "$(rate 1000 "${T[verp]}")" "$(rate 1000 "${T[floor_msg]}")")"; fi)
memory (peak RSS, VmHWM):    $(paste -sd';' "$W/mem.summary" | sed 's/;/; /g')
wire, 2 x 500 recipients:    ${WIRE_POST:-not captured}
wire, 5 x 1 recipient:       ${WIRE_STREAM:-not captured}
EOF
if [ "${BENCH_ENFORCE:-0}" = 1 ] && { [ "$(met "$R_RCPT")" != met ] || [ "$(met "$R_MSG")" != met ]; }; then
    exit 3
fi
exit 0
