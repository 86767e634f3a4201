#!/bin/bash
# deliver-reuse: connection reuse across entries that arrive over time
# (connection_reuse_time), counted by smtp-sink's own session counter.
#  - 24 one-recipient entries queued one by one 0.1 s apart, while the
#    agent runs as a daemon with connection_reuse_time = 2: all reach the
#    sink over one connection (sess=1), exactly once each (more than 16
#    transactions in one session: the worker's arrays grow meanwhile).
#  - 2 more entries, each queued after the window has run out (3 s of
#    quiet): each gets a session of its own (sess=3).
#  - connection_reuse_time = 0: 3 entries 0.2 s apart, 3 sessions.
#  - kill -9 of a worker waiting for more work (window 30 s): nothing was
#    claimed, nothing deferred, nothing sent twice; the next entry goes out
#    over a new session; SIGTERM then stops the agent within 5 s although
#    its worker waits for 30.
#  No delivery process may crash or fail (the log says so when one does).
set -u
. "${top_srcdir:-$(dirname "$0")/..}/t/lib.sh"
. "${top_srcdir:-$(dirname "$0")/..}/t/deliver-lib2.sh"

message() {
    printf 'Date: Sun, 22 Nov 2026 10:00:00 +0000\nFrom: alice@example.org\nMessage-ID: <%s@mmq.test>\nSubject: %s\n\nbody\n' "$1" "$1"
}

# queue_one N TAG: one entry for rcptN.TAG@example.org
queue_one() {
    printf 'rcpt%s.%s@example.org\n' "$1" "$2" >"$T/one"
    printf 'rcpt%s.%s@example.org\n' "$1" "$2" >>"$T/expected"
    dl_queue "$T/one" 1 "$T/msg"
}

# wait_rcpts DIR N: wait up to 20 s for N delivered recipients
wait_rcpts() {
    local i
    for ((i = 0; i < 400; i++)); do
        [ "$(sink_count_rcpts "$1")" -ge "$2" ] && return 0
        sleep 0.05
    done
    return 1
}

# sessions DIR: sessions the sink saw end (its counter counts at the end)
sessions() {
    sink_counters "$1" | sed -n 's/.*sess=\([0-9]*\).*/\1/p'
}

# workers LOG: delivery processes that logged a delivery (one session each)
workers() {
    sed -n 's/.*mmq-deliver\[\([0-9]*\)\]: .*status=sent.*/\1/p' "$1" | sort -u | wc -l
}

stop_agent() {
    dl_kill TERM "$1"
    dl_wait_exit "$1" 10 || dl_kill KILL "$1"
}

# ===================================== within and beyond the window
mk_spool
dl_sink_start "$T/a"
dl_conf "connections = 2;" "connection_reuse_time = 2;"
message reuse >"$T/msg"
: >"$T/expected"
LOG=$T/a.log
dl_agent_start "$LOG"
A=$AGENT_PID
sleep 0.3
for ((i = 1; i <= 24; i++)); do
    queue_one "$i" a
    sleep 0.1
done
wait_rcpts "$T/a" 24
ok $? "24 entries queued 0.1 s apart are delivered"
is "$(grep -c 'status=sent' "$LOG")" 24 "24 deliveries logged"
is "$(workers "$LOG")" 1 "all 24 by one delivery process"
sleep 3 # the window (2 s) runs out: the worker quits
is "$(sessions "$T/a")" 1 "they went over one SMTP session (smtp-sink: sess=1 after the window)"
for i in 25 26; do
    queue_one "$i" a
    wait_rcpts "$T/a" "$i"
    sleep 3
done
is "$(sink_count_rcpts "$T/a")" 26 "2 more entries, 3 s apart, are delivered"
is "$(sessions "$T/a")" 3 "each came after the window and got a session of its own (sess=3)"
is "$(workers "$LOG")" 3 "3 delivery processes in all"
stop_agent "$A"
is "$DL_RC" 0 "the agent exits 0 on SIGTERM"
dl_tally "$T/expected" "$T/a"
is "$DL_GOT $DL_MISSING $DL_DUPS" "26 0 0" "every recipient exactly once"
is "$(dl_files out deferred bad)" "" "nothing left in out/, deferred/ or bad/"
is "$(dl_claimed)" "" "nothing left claimed"
is "$(grep -E 'killed by signal|exited with status' "$LOG")" "" "no delivery process crashed or failed"

# ================================================= reuse turned off
mk_spool
dl_sink_start "$T/b"
dl_conf "connections = 2;" "connection_reuse_time = 0;"
message noreuse >"$T/msg"
: >"$T/expected"
LOG=$T/b.log
dl_agent_start "$LOG"
B=$AGENT_PID
sleep 0.3
for i in 1 2 3; do
    queue_one "$i" b
    wait_rcpts "$T/b" "$i"
    sleep 0.2
done
is "$(sink_count_rcpts "$T/b")" 3 "connection_reuse_time = 0: 3 entries delivered"
is "$(sessions "$T/b")" 3 "connection_reuse_time = 0: one session each (sess=3)"
stop_agent "$B"
is "$(grep -E 'killed by signal|exited with status' "$LOG")" "" "connection_reuse_time = 0: no delivery process crashed or failed"

# ================================= kill -9 of a worker waiting for work
mk_spool
dl_sink_start "$T/c"
dl_conf "connections = 2;" "connection_reuse_time = 30;"
message kill >"$T/msg"
: >"$T/expected"
LOG=$T/c.log
dl_agent_start "$LOG"
C=$AGENT_PID
sleep 0.3
queue_one 1 c
wait_rcpts "$T/c" 1
ok $? "the first entry is delivered"
dl_wait_log "$LOG" ': removed' 10
sleep 0.3 # it reports idle and waits
W=$(pgrep -P "$C" | head -n 1)
if [ -n "$W" ]; then
    pass "a worker waits for more work after its entry (pid $W)"
    kill -KILL "$W"
else
    fail "a worker waits for more work after its entry"
fi
dl_wait_log "$LOG" 'killed by signal 9' 10
ok $? "the agent sees its idle worker killed"
is "$(dl_files out deferred bad)" "" "kill -9 while idle: nothing in out/, deferred/ or bad/"
is "$(dl_claimed)" "" "kill -9 while idle: nothing claimed"
queue_one 2 c
wait_rcpts "$T/c" 2
ok $? "the next entry is delivered after the kill"
is "$(workers "$LOG")" 2 "by a new delivery process"
t0=$(now)
stop_agent "$C"
ms=$(elapsed_ms "$t0" "$(now)")
sleep 0.2
is "$(sessions "$T/c")" 2 "over a new session (smtp-sink: sess=2 at the end)"
is "$DL_RC" 0 "SIGTERM with a worker waiting (window 30 s): exit 0"
check "SIGTERM: the agent stops within 5 s ($ms ms)" test "$ms" -le 5000
dl_tally "$T/expected" "$T/c"
is "$DL_GOT $DL_MISSING $DL_DUPS" "2 0 0" "kill -9 while idle: every recipient exactly once"
is "$(dl_files out deferred bad)" "" "nothing left in out/, deferred/ or bad/"
is "$(grep -E 'killed by signal|exited with status' "$LOG" | grep -cv 'signal 9')" 0 "no other delivery process crashed or failed"
done_testing
