#!/bin/bash
# cluster-misconfig: cluster misconfigurations that nothing reported
# (issue 15 items 9-11), with list stages (mmq-process) on one spool.
#
#   9   two hosts with one node name: the second host is made with a
#       private mount namespace whose /proc/sys/kernel/random/boot_id is
#       another id (the heartbeat's host identity); both agents refuse to
#       run (exit 78) and say why.  Two agents of one node on one host
#       with disjoint -s sets are fine.
#   10  no nodes list, two node names on one spool, both on all slices:
#       the second logs the overlap, mmqctl check reports every slice
#   11  two nodes whose nodes lists disagree: both log the slice map
#       mismatch, mmqctl check reports it until the configurations agree
set -u
. "${top_srcdir:-$(dirname "$0")/..}/t/lib.sh"
. "${top_srcdir:-$(dirname "$0")/..}/t/process-lib.sh"

pl_init
mk_tmpdir
W=$T
SPOOL=$T/spool
LISTS=$T/lists
mkdir "$LISTS"

common() { # common FILE NODES-LIST...: a cluster configuration
    local f=$1
    shift
    {
        printf 'spool = "%s";\nlists_dir = "%s";\nslices = 8;\n' "$SPOOL" "$LISTS"
        printf 'lease_time = 2;\nlease_margin = 1;\nscan_interval = 1;\n'
        printf '%s\n' "$@"
    } >"$f"
}
NODES_AB='nodes = ( { name = "a"; process = "0-3"; standby = "4-7"; },
  { name = "b"; process = "4-7"; standby = "0-3"; } );'
start() { # start NAME CONF [ARG...]: a background mmq-process; PID_NAME
    local name=$1 conf=$2
    shift 2
    "$MMQ_PROCESS" -c "$conf" -e "$@" 2>"$W/$name.log" &
    eval "PID_$name=\$!"
    at_exit kill_pid "$!"
}
# wait_exit PID SECS: RC is its exit status, 124 if it still runs
wait_exit() {
    local i
    for ((i = 0; i < $2 * 10; i++)); do
        if ! kill -0 "$1" 2>/dev/null; then
            wait "$1"
            RC=$?
            return 0
        fi
        sleep 0.1
    done
    RC=124
}
# wait_log FILE REGEX SECS
wait_log() {
    local i
    for ((i = 0; i < $3 * 10; i++)); do
        grep -Eq "$2" "$1" 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}
stop() { # stop PID: SIGTERM and wait; RC
    kill -TERM "$1" 2>/dev/null
    wait_exit "$1" 10
}

# ------------------------------------------------------------------ 9
common "$W/a.conf" 'node = "a";' "$NODES_AB"
"$MMQCTL" -c "$W/a.conf" init >/dev/null 2>&1 || bail_out "mmqctl init failed"
start a1 "$W/a.conf" -s 0-1
start a2 "$W/a.conf" -s 2-3
sleep 2.5
stop "$PID_a1"
r1=$RC
stop "$PID_a2"
is "$r1:$RC" "0:0" "one node, one host, two agents with disjoint -s: both run (then exit 0 on SIGTERM)"
if is_root && command -v unshare >/dev/null 2>&1; then
    printf '00000000-0000-4000-8000-00000000c10e\n' >"$W/boot_id"
    start a1 "$W/a.conf" -s 0-1
    unshare -m sh -c 'mount --bind "$1" /proc/sys/kernel/random/boot_id &&
        exec "$2" -c "$3" -e -s 2-3' sh "$W/boot_id" "$MMQ_PROCESS" "$W/a.conf" \
        2>"$W/a2.log" &
    PID_a2=$!
    at_exit kill_pid "$PID_a2"
    wait_exit "$PID_a1" 15
    r1=$RC
    wait_exit "$PID_a2" 15
    is "$r1:$RC" "78:78" "node a on two hosts: both agents refuse to run (exit 78)"
    check "node a on two hosts: the first says why" \
        grep -q "node name a is used by another host too (agent hb.process.a.[0-9.]* runs on the host with boot id 00000000-0000-4000-8000-00000000c10e" "$W/a1.log"
    check "node a on two hosts: the second says why" \
        grep -q "node name a is used by another host too .*we on 00000000-0000-4000-8000-00000000c10e" "$W/a2.log"
    kill_pid "$PID_a1"
    kill_pid "$PID_a2"
else
    skip "two hosts with one node name: needs root for a mount namespace" 3
fi

# ------------------------------------------------------------------ 11
common "$W/a.conf" 'node = "a";' "$NODES_AB"
common "$W/b.conf" 'node = "b";' 'nodes = ( { name = "a"; process = "0-7"; },
  { name = "b"; standby = "0-7"; } );'
start a "$W/a.conf"
start b "$W/b.conf"
check "nodes lists disagree: node a logs the slice map mismatch" \
    wait_log "$W/a.log" "slice map mismatch: agent hb.process.b.* of node b has slice map" 10
check "nodes lists disagree: node b logs it too" \
    wait_log "$W/b.log" "slice map mismatch: agent hb.process.a.* of node a" 10
"$MMQCTL" -c "$W/a.conf" check >"$W/check11" 2>&1
check "nodes lists disagree: mmqctl check reports it" \
    grep -q "node b runs with slice map .*the nodes lists disagree" "$W/check11"
n=$(grep -c "slice map mismatch" "$W/a.log")
check "nodes lists disagree: logged once, not every round ($n)" test "$n" -eq 1
stop "$PID_b"
common "$W/b.conf" 'node = "b";' "$NODES_AB"
start b "$W/b.conf"
sleep 1.5
"$MMQCTL" -c "$W/a.conf" check >"$W/check11b" 2>&1
check "the configurations agree again: mmqctl check no longer reports it" \
    bash -c "! grep -q 'nodes lists disagree' '$W/check11b'"
stop "$PID_a"
stop "$PID_b"

# ------------------------------------------------------------------ 10
common "$W/a.conf" 'node = "a";'
common "$W/b.conf" 'node = "b";'
start a "$W/a.conf"
sleep 0.5
start b "$W/b.conf"
check "no nodes list, both nodes on all slices: node b logs the overlap" \
    wait_log "$W/b.log" "8 of our slices of process \(slice 0 and more\) are also run by mmq-process on node a" 10
"$MMQCTL" -c "$W/a.conf" check >"$W/check10" 2>&1
is "$(grep -c 'run by mmq-process on this node (a) and on node b too' "$W/check10")" 8 \
    "no nodes list: mmqctl check reports each of the 8 slices"
stop "$PID_b"
"$MMQCTL" -c "$W/a.conf" check >"$W/check10b" 2>&1
is "$(grep -c 'and on node b too' "$W/check10b")" 0 "node b stopped: no overlap reported"
stop "$PID_a"

if [ "$_t_failed" -gt 0 ]; then
    for f in "$W"/*.log; do diag "== $f" "$(head -c 2000 "$f")"; done
fi
done_testing
