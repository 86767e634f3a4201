#!/bin/bash
# deliver-kill: crash safety of mmq-deliver.  Each round queues 5,000
# recipients in entries of 500 (connections = 4, recipients_per_transaction
# = 100, so progress is recorded 5 times per entry), starts the agent as a
# daemon against smtp-sink, kills the master with SIGKILL at a random instant
# between 0 and the time a clean run takes, or (every third round) once the
# sink holds a random number of the messages (its workers must die with it),
# restarts it with -1 and checks at the sink: every recipient at least once,
# duplicates only from the transactions in flight at the kill (at most
# connections * recipients_per_transaction = 400, nobody more than twice),
# and nothing left in out/, deferred/, bad/, tmp/ or claimed.
#
# The restart follows the kill at once, as a supervisor's would; if the
# killed workers still hold the slice locks it is retried (exit 75).  If it
# leaves entries claimed, that is reported, and once the killed workers are
# gone a second -1 run delivers the rest so that the duplicate bound is
# still checked.
#
# Odd rounds use a plain smtp-sink; even rounds one that delays the reply to
# "." by a second for about 1 transaction in 20 (-W .:1:5), so that kills
# also land while the server holds a complete message it has not yet
# acknowledged: the classic source of a duplicate.
#
# Then the same for a VERP post (DL_KILL_VERP_ROUNDS rounds, default 8):
# 400 recipients in entries of 50 (what mmq-process makes of a VERP post
# of 400 with 4 connections) marked verp 1, one transaction per
# recipient, progress recorded in each entry's journal: the duplicates
# are bounded by one transaction per connection (4), and no journal is
# left once the spool is clean.  The slow sink there delays about 1
# transaction in 100 (-W .:1:1).
#
# DL_KILL_ROUNDS (default 24), DL_KILL_VERP_ROUNDS and DL_SEED (bash
# RANDOM seed) override.
set -u
. "${top_srcdir:-$(dirname "$0")/..}/t/lib.sh"
. "${top_srcdir:-$(dirname "$0")/..}/t/deliver-lib2.sh"

ROUNDS=${DL_KILL_ROUNDS:-24}
VERP_ROUNDS=${DL_KILL_VERP_ROUNDS:-8}
NRCPT=5000
PER_ENTRY=500
PER_TXN=100
CONNECTIONS=4
BOUND=$((CONNECTIONS * PER_TXN))
SLOW_SINK=(-W .:1:5)
VERP=0
MODE=bulk
SEED=${DL_SEED:-$(($(date +%s%N) % 32768))}
RANDOM=$SEED
diag "seed $SEED (DL_SEED=$SEED reproduces the kill instants)"
test_start=$(now)

mk_tmpdir
W=$T # survives the rounds: message and recipients
M=$W/msg
{
    printf 'Date: Sun, 22 Nov 2026 10:00:00 +0000\nFrom: alice@example.org\n'
    printf 'Message-ID: <kill@mmq.test>\nSubject: killed at random\n\n'
    for ((i = 0; i < 60; i++)); do
        printf 'line %03d of a message whose delivery is killed at random.......\n' "$i"
    done
} >"$M"
dl_rcpts "$NRCPT" "$W/rcpts"
head -n 400 "$W/rcpts" >"$W/rcpts.verp"
RCPTS=$W/rcpts

# setup SINK_OPTIONS...: fresh spool, sink and queue
setup() {
    mk_spool
    dl_sink_start "$T/sink" "$@"
    dl_conf "recipients_per_transaction = $PER_TXN;" \
        "connections = $CONNECTIONS;"
    if [ "$VERP" = 1 ]; then
        QUEUED=$("$MMQ_MKENTRY" -c "$CONF" -f list-bounces@example.org \
            -l announce -n "$PER_ENTRY" -V "$RCPTS" <"$M" 2>&1) ||
            bail_out "mkentry -V failed: $QUEUED"
    else
        dl_queue "$RCPTS" "$PER_ENTRY" "$M"
    fi
}

# forget the round's directory now rather than at exit (inodes)
teardown() {
    dl_sink_stop "$SINK_PID"
    chmod -R u+rwx "$T" 2>/dev/null
    rm -rf -- "$T"
}

# restart: mmq-deliver -1, again every 0.1 s (for at most 20 s) as long as
# it exits 75 because its slices are still locked; sets rc and tries.
restart() {
    local err
    for ((tries = 1; tries <= 200; tries++)); do
        err=$T/restart.err
        timeout 120 "$MMQ_DELIVER" -c "$CONF" -1 -e 2>"$err"
        rc=$?
        cat "$err" >>"$LOG"
        if [ "$rc" -ne 75 ] || ! grep -q 'is already delivered by another' "$err"; then
            break
        fi
        sleep 0.1
    done
    [ "$tries" -eq 1 ] || diag "restart: $tries tries (slices locked by the dying workers)"
}

spool_state() { # what is left, in one line; empty when clean
    local o d b c t
    o=$(dl_files out | wc -l)
    d=$(dl_files deferred | wc -l)
    b=$(dl_files bad | wc -l)
    c=$(dl_claimed | wc -l)
    t=$(tmp_files | wc -l)
    j=$(dl_files journal | wc -l)
    [ "$o$d$b$c$t$j" == 000000 ] || echo "out $o, deferred $d, bad $b, claimed $c, tmp $t, journals $j"
}

# kill_after_messages K: wait until the sink holds K messages (at most
# 120 s).  Every third round kills this way rather than at a random instant:
# on a loaded machine (or under ASan) the start-up can take most of the clean
# run's time, and the instants alone then miss the middle of the delivery.
kill_after_messages() {
    local i
    for ((i = 0; i < 6000; i++)); do
        [ "$(sink_dumps "$T/sink" | wc -l)" -ge "$1" ] && return 0
        sleep 0.02
    done
}

campaign() {


# ------------------------------------------------------ clean runs
declare -A CLEAN_MS
for kind in fast slow; do
    if [ "$kind" == fast ]; then setup; else setup "${SLOW_SINK[@]}"; fi
    LOG=$T/clean.log
    t0=$(now)
    dl_agent_start "$LOG"
    apid=$AGENT_PID
    dl_wait_out_empty 120
    ms=$(elapsed_ms "$t0" "$(now)")
    CLEAN_MS[$kind]=$ms
    dl_kill TERM "$apid"
    dl_wait_exit "$apid" 30
    rc=$DL_RC
    dl_tally "$RCPTS" "$T/sink"
    left=$(spool_state)
    if [ "$rc" == 0 ] && [ "$DL_MISSING$DL_DUPS$DL_UNEXPECTED" == 000 ] &&
        [ -z "$left" ]; then
        pass "$MODE clean run, $kind sink: $NRCPT recipients exactly once in $ms ms"
    else
        fail "$MODE clean run, $kind sink: $NRCPT recipients exactly once"
        diag "exit $rc; received $DL_GOT, missing $DL_MISSING, duplicates $DL_DUPS, unexpected $DL_UNEXPECTED; ${left:-spool clean}"
        diag "$(tail -n 20 "$LOG")"
    fi
    teardown
done

# ------------------------------------------------------------ rounds
mid=0
dups_all=()
for ((round = 1; round <= ROUNDS; round++)); do
    if ((round % 2)); then
        kind=fast
        setup
    else
        kind=slow
        setup "${SLOW_SINK[@]}"
    fi
    LOG=$T/deliver.log
    span=${CLEAN_MS[$kind]}
    dl_agent_start "$LOG"
    apid=$AGENT_PID
    t_start=$(now)
    if ((round % 3)); then
        delay=$(((RANDOM * 32768 + RANDOM) % (span + 1)))
        sleep "$(printf '%d.%03d' $((delay / 1000)) $((delay % 1000)))"
    else
        # messages at the sink in a whole run: one per transaction
        msgs=$((VERP ? NRCPT : NRCPT / PER_TXN))
        kill_after_messages $((1 + RANDOM % (msgs - 1)))
        delay=$(elapsed_ms "$t_start" "$(now)")
    fi
    workers=$(pgrep -P "$apid" | tr '\n' ' ')
    kill -KILL "$apid"
    wait "$apid" 2>/dev/null
    echo "--- killed with SIGKILL after $delay ms" >>"$LOG"
    dl_tally "$RCPTS" "$T/sink"
    before=$DL_GOT

    # restart at once, as a supervisor would: while the killed workers are
    # still dying they hold the slice locks (inherited from the master), and
    # the agent exits 75 saying the slices are taken: try again then
    restart
    dl_tally "$RCPTS" "$T/sink"
    left=$(spool_state)
    recovered=$(grep -c 'restored to out/' "$LOG")
    if [ "$rc" -eq 0 ] && [ "$DL_MISSING" -eq 0 ] && [ -z "$left" ]; then
        pass "$MODE round $round: the restart at once delivers the rest and leaves the spool clean"
        again=
    else
        fail "$MODE round $round: the restart at once delivers the rest and leaves the spool clean"
        diag "exit $rc; missing $DL_MISSING; ${left:-spool clean}; $recovered entries recovered"
        diag "$(dl_claimed | sed 's,.*/,,' | head -n 5)"
        # what the old workers were when it ran is not known any more; what
        # they are now:
        for w in $workers; do
            st=$(sed 's/.*) //' "/proc/$w/stat" 2>/dev/null | cut -d' ' -f1-2)
            diag "killed worker $w now (state, parent): ${st:-gone}"
        done
        again=1
    fi

    # the killed workers must be gone; then a second run sees the rest
    alive=
    for w in $workers; do
        for ((i = 0; i < 200; i++)); do
            [ -e "/proc/$w" ] || break
            sleep 0.05
        done
        dl_running "$w" && alive="$alive $w"
    done
    is "${alive# }" "" "$MODE round $round: the workers died with the master"
    if [ -n "$again" ]; then
        echo "--- second restart" >>"$LOG"
        restart
        dl_tally "$RCPTS" "$T/sink"
        left=$(spool_state)
        recovered=$(grep -c 'restored to out/' "$LOG")
    fi
    if [ "$before" -gt 0 ] && [ "$before" -lt "$NRCPT" ]; then
        mid=$((mid + 1))
    fi
    dups_all+=("$DL_DUPS")
    diag "$MODE round $round ($kind sink): killed after $delay of $span ms with workers [${workers% }]; $before deliveries before the kill; $recovered entries recovered${again:+ (by a second restart)}; duplicates $DL_DUPS"

    if [ "$rc" -eq 0 ] && [ "$DL_MISSING" -eq 0 ] && [ "$DL_UNEXPECTED" -eq 0 ]; then
        pass "$MODE round $round: every recipient received${again:+ (after a second restart)}"
    else
        fail "$MODE round $round: every recipient received${again:+ (after a second restart)}"
        diag "exit $rc; missing $DL_MISSING, unexpected $DL_UNEXPECTED"
    fi
    if [ "$DL_DUPS" -le "$BOUND" ] && [ "$DL_MAXC" -le 2 ]; then
        pass "$MODE round $round: $DL_DUPS duplicates (at most $BOUND, nobody more than twice)"
    else
        fail "$MODE round $round: at most $BOUND duplicates, nobody more than twice"
        diag "duplicates $DL_DUPS, a recipient received $DL_MAXC times"
    fi
    if [ -z "$left" ]; then
        pass "$MODE round $round: nothing left in out/ deferred/ bad/ tmp/ or claimed"
    else
        fail "$MODE round $round: nothing left in out/ deferred/ bad/ tmp/ or claimed"
        diag "$left"
        diag "$(dl_claimed)"
    fi
    if [ "$rc" -ne 0 ] || [ "$DL_MISSING" -ne 0 ] || [ -n "$left" ] ||
        [ "$DL_DUPS" -gt "$BOUND" ]; then
        diag "$(tail -n 30 "$LOG")"
    fi
    teardown
done

diag "$MODE: duplicates per round: ${dups_all[*]}"
if [ "$mid" -ge $((ROUNDS / 3)) ]; then
    pass "$MODE: $mid of $ROUNDS kills fell in the middle of a delivery"
else
    fail "at least a third of the kills fell in the middle of a delivery"
    diag "only $mid of $ROUNDS: the random instants do not fit the delivery time"
fi
}

campaign
# VERP: one transaction per recipient, progress in the journal
VERP=1
MODE=verp
NRCPT=400
PER_ENTRY=50
BOUND=$CONNECTIONS
SLOW_SINK=(-W .:1:1)
RCPTS=$W/rcpts.verp
ROUNDS=$VERP_ROUNDS
campaign
diag "deliver-kill took $(elapsed_ms "$test_start" "$(now)") ms"
done_testing
