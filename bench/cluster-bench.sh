#!/usr/bin/env bash
# cluster-bench.sh - what does a shared filesystem cost mmq?  In one run,
# the same measurements on local disk and on a GlusterFS volume (one brick
# on this machine's disk, FUSE-mounted, GlusterFS's shipped caching), as a
# cluster node would use it:
#
#  1. enqueue latency: mmq-filter run N times one after the other for a
#     4 KiB message (a fork+exec each, as the MTA does): median and 99th
#     percentile per message, messages/s;
#  2. delivery throughput, list post: 20,000 recipients queued in out/ as
#     entries of 500, drained by `mmq-deliver -1` (4 connections, 500
#     recipients per transaction) into smtp-sink on 127.0.0.1: RCPT/s;
#  3. delivery throughput, one-recipient stream: 1,000 entries of one
#     recipient: messages/s;
#  4. one lease round of a node holding 8 slices (heartbeat rename, a
#     directory listing, a probe per slice), timed from the agent's own
#     debug log.
# And the ratio Gluster / local for each.  Run as root (FUSE mount,
# smtp-sink); the volume is started here and removed at exit.
#
#   BUILD=DIR   an mmq build directory (default ./build)
#   N=300       mmq-filter runs per filesystem
set -u
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)
BUILD=${BUILD:-$top/build}
N=${N:-300}
export top_srcdir=$top MMQ_FILTER=$BUILD/filter/mmq-filter MMQCTL=$BUILD/ctl/mmqctl
# shellcheck source=t/lib.sh
. "$top/t/lib.sh"
# shellcheck source=t/gluster-lib.sh
. "$top/t/gluster-lib.sh"
# shellcheck source=t/smtp-sink-lib.sh
. "$top/t/smtp-sink-lib.sh"
FILTER=$BUILD/filter/mmq-filter
DELIVER=$BUILD/deliver/mmq-deliver
MMQCTL=$BUILD/ctl/mmqctl
MKENTRY=$BUILD/t/tools/mkentry
for p in "$FILTER" "$DELIVER" "$MMQCTL" "$MKENTRY"; do
    [ -x "$p" ] || { echo "cluster-bench: $p not built (BUILD=$BUILD)" >&2; exit 1; }
done

mk_tmpdir
W=$T
gl_up "$W/gluster" || { echo "cluster-bench: cannot run GlusterFS here: $GL_WHY" >&2; exit 1; }
mkdir -p "$W/lists" "$W/sinkdumps"
: >"$W/lists/bench.conf"
sink_start "$W/sinkdumps" || exit 1
at_exit kill "$SINK_PID"
head -c 4000 /dev/urandom | base64 -w 76 >"$W/body"
{
    printf 'From: bench@example.org\nTo: bench@lists.example.org\n'
    printf 'Subject: bench\n\n'
    cat "$W/body"
} >"$W/msg"

conf() { # conf NAME SPOOL
    cat >"$W/$1.conf" <<EOF
spool = "$2";
lists_dir = "$W/lists";
node = "bench";
relay_host = "127.0.0.1";
relay_port = $SINK_PORT;
connections = 4;
recipients_per_transaction = 500;
scan_interval = 1;
EOF
    "$MMQCTL" -c "$W/$1.conf" init >/dev/null || exit 1
}

# enqueue CONF: per-message latencies in microseconds, one a line
enqueue() {
    local i s e
    for ((i = 0; i < N; i++)); do
        s=$(now)
        "$FILTER" -c "$1" -f bench@example.org bench <"$W/msg" || exit 1
        e=$(now)
        echo $(((10#${e/./} - 10#${s/./})))
    done
}

pct() { # pct P: the P-th percentile of the numbers on stdin
    sort -n | awk -v p="$1" '{ v[NR] = $1 } END {
        i = int((NR - 1) * p / 100) + 1; print v[i] }'
}

# drain CONF NRCPT PER: queue and time mmq-deliver -1; prints seconds
drain() {
    local cfg=$1 nr=$2 per=$3 s e
    seq -f 'r%06g@example.net' 1 "$nr" >"$W/rcpts"
    "$MKENTRY" -c "$cfg" -f bench@example.org -n "$per" "$W/rcpts" \
        <"$W/msg" >/dev/null || exit 1
    s=$(now)
    "$DELIVER" -c "$cfg" -1 2>"$W/deliver.log" || {
        echo "mmq-deliver failed: $(tail -3 "$W/deliver.log")" >&2
        exit 1
    }
    e=$(now)
    echo "scale=3; ($(elapsed_ms "$s" "$e")) / 1000" | bc
}

declare -A R
for fs in local gluster; do
    if [ "$fs" = local ]; then conf local "$W/spool"; else conf gluster "$GL_MNT_A/spool"; fi
    cfg=$W/$fs.conf
    enqueue "$cfg" >"$W/lat.$fs"
    R[$fs.p50]=$(pct 50 <"$W/lat.$fs")
    R[$fs.p99]=$(pct 99 <"$W/lat.$fs")
    R[$fs.mps]=$(awk '{ t += $1 } END { printf "%.0f", NR * 1e6 / t }' "$W/lat.$fs")
    find "$(sed -n 's/^spool = "\(.*\)";/\1/p' "$cfg")/in" -type f -delete
    t=$(drain "$cfg" 20000 500)
    R[$fs.post]=$(echo "20000 / $t" | bc)
    t=$(drain "$cfg" 1000 1)
    R[$fs.stream]=$(echo "1000 / $t" | bc)
done

# 4. one lease round on each filesystem (two nodes, 16 slices, node a
#    holding 8), from the agent's own timing
lease_round() { # lease_round SPOOL: median round in ms
    local cfg=$W/lease.conf pid
    cat >"$cfg" <<EOF
spool = "$1";
lists_dir = "$W/lists";
node = "a";
slices = 16;
lease_time = 2;
lease_margin = 1;
relay_port = $SINK_PORT;
nodes = ( { name = "a"; deliver = "0-7"; standby = "8-15"; },
          { name = "b"; deliver = "8-15"; standby = "0-7"; } );
EOF
    "$DELIVER" -c "$cfg" -e -v 2>"$W/lease.log" &
    pid=$!
    sleep 6
    kill -TERM "$pid"
    wait "$pid"
    sed -n 's/.*lease round \([0-9.]*\) ms.*/\1/p' "$W/lease.log" | pct 50
}
R[local.lease]=$(lease_round "$W/spool")
R[gluster.lease]=$(lease_round "$GL_MNT_A/spool")

ratio() { echo "scale=2; $1 / $2" | bc; }
printf '\n%-40s %12s %12s %8s\n' "" local gluster "g/l"
printf '%-40s %12s %12s %8s\n' "enqueue, median us/msg" "${R[local.p50]}" "${R[gluster.p50]}" "$(ratio "${R[gluster.p50]}" "${R[local.p50]}")"
printf '%-40s %12s %12s %8s\n' "enqueue, p99 us/msg" "${R[local.p99]}" "${R[gluster.p99]}" "$(ratio "${R[gluster.p99]}" "${R[local.p99]}")"
printf '%-40s %12s %12s %8s\n' "enqueue, msg/s (sequential)" "${R[local.mps]}" "${R[gluster.mps]}" "$(ratio "${R[gluster.mps]}" "${R[local.mps]}")"
printf '%-40s %12s %12s %8s\n' "delivery, list post RCPT/s" "${R[local.post]}" "${R[gluster.post]}" "$(ratio "${R[gluster.post]}" "${R[local.post]}")"
printf '%-40s %12s %12s %8s\n' "delivery, 1-rcpt stream msg/s" "${R[local.stream]}" "${R[gluster.stream]}" "$(ratio "${R[gluster.stream]}" "${R[local.stream]}")"
printf '%-40s %12s %12s %8s\n' "lease round, 8 slices held, median ms" "${R[local.lease]}" "${R[gluster.lease]}" "$(ratio "${R[gluster.lease]}" "${R[local.lease]}")"
echo "(N=$N enqueues; load average $(cut -d' ' -f1-3 /proc/loadavg))"
