#!/bin/bash
# deliver-signals: mmq-deliver and its signals.
#  - SIGTERM in the middle of a long delivery (a sink that waits a second
#    before answering DATA): the agent exits 0 within a few seconds, leaves
#    no entry claimed (no '#' name) and gives the unfinished entries back to
#    out/; a restart with -1 delivers the rest: every recipient at least
#    once, duplicates at most one transaction per connection.
#  - SIGHUP with relay_port changed: later deliveries go to the new port; a
#    broken configuration on SIGHUP (a syntax error, an unusable auth_file)
#    is logged and the old one stays in force; a good one is taken again.
set -u
. "${top_srcdir:-$(dirname "$0")/..}/t/lib.sh"
. "${top_srcdir:-$(dirname "$0")/..}/t/deliver-lib2.sh"

test_start=$(now)
CONNECTIONS=4
PER_TXN=50

message() {
    printf 'Date: Sun, 22 Nov 2026 10:00:00 +0000\nFrom: alice@example.org\nMessage-ID: <%s@mmq.test>\nSubject: %s\n\nbody\n' "$1" "$1"
}

# ================================================= SIGTERM mid-delivery
NRCPT=2000
mk_spool
dl_sink_start "$T/slow" -w 1 # each DATA answered after a second
SLOW_PID=$SINK_PID
dl_conf "recipients_per_transaction = $PER_TXN;" "connections = $CONNECTIONS;"
message term >"$T/msg"
dl_rcpts "$NRCPT" "$T/rcpts" term
dl_queue "$T/rcpts" 200 "$T/msg"
LOG=$T/term.log
dl_agent_start "$LOG"
A=$AGENT_PID
dl_wait_log "$LOG" 'status=sent' 30
ok $? "the agent delivers its first transactions to the slow sink"
sleep 0.4
nw=$(pgrep -P "$A" | wc -l)
t0=$(now)
dl_kill TERM "$A"
dl_wait_exit "$A" 30
ms=$(elapsed_ms "$t0" "$(now)")
diag "exit $DL_RC $ms ms after SIGTERM"
is "$DL_RC" 0 "SIGTERM: the agent exits 0"
if [ "$DL_RC" != timeout ] && [ "$ms" -le 5000 ]; then
    pass "SIGTERM: it exits within 5 s ($ms ms)"
else
    fail "SIGTERM: it exits within 5 s"
    diag "took $ms ms ($DL_RC)"
fi
is "$(dl_claimed)" "" "SIGTERM: no entry left claimed"
is "$(tmp_files)" "" "SIGTERM: tmp/ is empty"
is "$(dl_files deferred bad)" "" "SIGTERM: nothing deferred or in bad/ (a stop is not a failed attempt)"
dl_tally "$T/rcpts" "$T/slow"
before=$DL_GOT
nout=$(dl_files out | wc -l)
diag "$before of $NRCPT recipients delivered before the stop; $nout entries back in out/"
if [ "$before" -gt 0 ] && [ "$before" -lt "$NRCPT" ] && [ "$nout" -gt 0 ]; then
    pass "SIGTERM came in the middle of the delivery; the rest is ready in out/"
else
    fail "SIGTERM came in the middle of the delivery; the rest is ready in out/"
fi
is "$(grep -c 'stopping on SIGTERM after a recorded transaction' "$LOG")" "$nw" \
    "SIGTERM: each of the $nw workers stopped after recording its transaction"
grep -q 'mmq-deliver\[[0-9]*\]: stopped' "$LOG"
ok $? "SIGTERM: the log says stopped"

# the rest, to a sink without delays
dl_sink_start "$T/fast"
FAST_PID=$SINK_PID
dl_conf "recipients_per_transaction = $PER_TXN;" "connections = $CONNECTIONS;"
timeout 120 "$MMQ_DELIVER" -c "$CONF" -1 -e 2>>"$LOG"
is "$?" 0 "restart with -1 exits 0"
dl_tally "$T/rcpts" "$T/slow" "$T/fast"
diag "after the restart: $DL_GOT deliveries, $DL_DUPS duplicates"
is "$DL_MISSING" 0 "after the restart every recipient was delivered"
is "$DL_UNEXPECTED" 0 "no recipient that was not queued"
if [ "$DL_DUPS" -le $((CONNECTIONS * PER_TXN)) ] && [ "$DL_MAXC" -le 2 ]; then
    pass "duplicates: $DL_DUPS (at most one transaction per connection: $((CONNECTIONS * PER_TXN)))"
else
    fail "duplicates at most one transaction per connection ($((CONNECTIONS * PER_TXN)))"
    diag "$DL_DUPS duplicates, a recipient received $DL_MAXC times"
fi
is "$(dl_files out deferred bad)$(dl_claimed)$(tmp_files)" "" "spool clean after the restart"
dl_sink_stop "$SLOW_PID"
dl_sink_stop "$FAST_PID"

# ============================================================== SIGHUP
mk_spool
dl_sink_start "$T/one"
P1=$SINK_PORT S1=$SINK_PID D1=$T/one
dl_sink_start "$T/two"
P2=$SINK_PORT S2=$SINK_PID D2=$T/two
base=("recipients_per_transaction = $PER_TXN;" "connections = 2;")
SINK_PORT=$P1 dl_conf "${base[@]}"
message hup >"$T/msg"
QCONF=$T/queue.conf # mkentry's: $CONF will be broken on purpose
cp "$CONF" "$QCONF"
LOG=$T/hup.log
dl_agent_start "$LOG"
A=$AGENT_PID
dl_wait_log "$LOG" "delivering slices .* to 127.0.0.1:$P1 " 10
ok $? "SIGHUP: agent started, relaying to the first sink"

# n_at DIR FILE: how many deliveries at the sink DIR are addresses of FILE
n_at() {
    sink_rcpts "$1" | grep -cxFf "$2"
}
# batch N: queue 100 recipients tagged bN, wait until out/ is empty
batch() {
    dl_rcpts 100 "$T/b$1" "b$1"
    dl_queue "$T/b$1" 50 "$T/msg"
    dl_wait_out_empty 30
}
# hup PATTERN: SIGHUP, wait until one more log line matches PATTERN
hup() {
    local n
    n=$(grep -cE -- "$1" "$LOG")
    dl_kill HUP "$A"
    for ((i = 0; i < 200; i++)); do
        [ "$(grep -cE -- "$1" "$LOG")" -gt "$n" ] && return 0
        sleep 0.05
    done
    return 1
}

batch 1
is "$(n_at "$D1" "$T/b1") $(n_at "$D2" "$T/b1")" "100 0" "batch 1: 100 recipients at the first sink, none at the second"

SINK_PORT=$P2 dl_conf "${base[@]}"
hup 'configuration reloaded'
ok $? "SIGHUP with relay_port changed: the log says the configuration was reloaded"
batch 2
is "$(n_at "$D1" "$T/b2") $(n_at "$D2" "$T/b2")" "0 100" "batch 2 (after SIGHUP): none at the first sink, 100 at the second"

# a syntax error: the old configuration stays
printf 'spool = "%s";\nrelay_port = %s\nthis is not libconfig\n' "$SPOOL" "$P1" >"$CONF"
hup 'SIGHUP: keeping the old configuration'
ok $? "SIGHUP with a syntax error: the log says the old configuration is kept"
diag "$(grep 'SIGHUP: keeping' "$LOG" | tail -n 1)"
check "the agent still runs" dl_running "$A"
batch 3
is "$(n_at "$D1" "$T/b3") $(n_at "$D2" "$T/b3")" "0 100" "batch 3: still delivered to the second sink"

# loads, but cannot be used (auth_file missing): the old configuration stays
SINK_PORT=$P1 dl_conf "${base[@]}" "auth_file = \"$T/no-such-file\";"
hup 'SIGHUP: keeping the old configuration'
ok $? "SIGHUP with an unusable auth_file: the log says the old configuration is kept"
diag "$(grep 'SIGHUP: keeping' "$LOG" | tail -n 1)"
check "the agent still runs" dl_running "$A"
batch 4
is "$(n_at "$D1" "$T/b4") $(n_at "$D2" "$T/b4")" "0 100" "batch 4: still delivered to the second sink"

# and a good configuration is taken again
SINK_PORT=$P1 dl_conf "${base[@]}"
hup 'configuration reloaded'
ok $? "SIGHUP back to the first port: reloaded"
batch 5
is "$(n_at "$D1" "$T/b5") $(n_at "$D2" "$T/b5")" "100 0" "batch 5: delivered to the first sink again"

is "$(dl_files out deferred bad)$(dl_claimed)" "" "SIGHUP: spool clean"
dl_kill TERM "$A"
dl_wait_exit "$A" 20
is "$DL_RC" 0 "SIGHUP: the agent exits 0 on SIGTERM at the end"
dl_sink_stop "$S1"
dl_sink_stop "$S2"

diag "deliver-signals took $(elapsed_ms "$test_start" "$(now)") ms"
done_testing
