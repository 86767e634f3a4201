#!/bin/bash
# bounce-kill: kill -9 at random instants while a storm of bounces is
# processed, restart, repeat until bounces/ is empty; then every bounce is
# counted exactly once (one event file each, 3 per member), every member
# is disabled once (bounce_score_threshold = 1), and each gets exactly one
# warning and the owners one notice per member: nothing lost, nothing
# applied twice.  Then SIGHUP (re-read) and SIGTERM (clean exit).
set -u
. "${top_srcdir:-$(dirname "$0")/..}/t/lib.sh"
. "${top_srcdir:-$(dirname "$0")/..}/t/process-lib.sh"
. "${top_srcdir:-$(dirname "$0")/..}/t/bounce-lib.sh"

pl_init
bl_init
# an entry may be killed in hand several times in a row (the oldest is
# taken first after each restart): that is not a poison entry here
mk_spool "max_recoveries = 1000;"
N=100
pl_list dev 'owners = ["owner@example.org"];' 'bounce_score_threshold = 1;'
pl_gen_members $N "$LISTS/dev.members"
for r in 1 2 3; do
    for i in $(seq 1 $N); do
        bl_bounce dev "$(printf 'm%06d@example.org' "$i")" 5.1.1 || bail_out "filter"
    done
done
is "$(count_files "$SPOOL/bounces")" $((3 * N)) "$((3 * N)) bounces queued"

kills=0
for round in $(seq 1 60); do
    [ "$(count_files "$SPOOL/bounces")" -eq 0 ] && break
    "$MMQ_BOUNCE" -c "$CONF" -e 2>>"$T/bounce.log" &
    pid=$!
    at_exit kill_pid_b "$pid"
    sleep "0.0$((RANDOM % 9 + 1))"
    kill -KILL "$pid" 2>/dev/null && kills=$((kills + 1))
    wait "$pid" 2>/dev/null
done
# the last run drains what is left
diag "$(count_files "$SPOOL/bounces") bounces left for the last, clean run; $(grep -c 'recovery:' "$T/bounce.log") recoveries logged"
bl_run
is "$(count_files "$SPOOL/bounces")" 0 "bounces/ drained after $kills kills"
is "$(count_files "$SPOOL/bad")" 0 "nothing in bad/"
is "$(find "$SPOOL/members/dev" -name '*.F.*' | wc -l)" $((3 * N)) \
    "every bounce recorded exactly once"
"$MMQCTL" -c "$CONF" members dev --json >"$T/m.json"
is "$(python3 -c '
import json,sys
m=json.load(open(sys.argv[1]))
print(len(m), sorted(set((x["state"], x["failed"], x["warnings"]) for x in m)))' "$T/m.json")" \
    "$N [('disabled', 3, 1)]" "every member disabled once, 3 bounces, 1 warning"
is "$(find "$SPOOL/members/dev" -name '*.D.*' | wc -l)" $N "one disable event per member"
is "$(find "$SPOOL/members/dev/disabled" -type f | wc -l)" $N "the index holds every disabled member"
dup=0
for f in $(find "$SPOOL/out" -type f); do pl_rcpts "$f"; done | sort | uniq -c |
    awk -v n=$N '$2 == "owner@example.org" { if ($1 != n) print "owner", $1 } $2 != "owner@example.org" && $1 != 1 { print }' >"$T/dups"
is "$(cat "$T/dups")" "" "one warning per member and one owner notice per member in out/"
is "$(ls -A "$SPOOL/members/dev/tmp" | wc -l)" 0 "no temporary files left after the clean run"

# SIGHUP re-reads the configuration, SIGTERM stops cleanly
: >"$T/sig.log"
"$MMQ_BOUNCE" -c "$CONF" -e 2>"$T/sig.log" &
pid=$!
at_exit kill_pid_b "$pid"
for _ in $(seq 1 50); do grep -q "processing slices" "$T/sig.log" && break; sleep 0.1; done
kill -HUP "$pid"
for _ in $(seq 1 50); do grep -q "SIGHUP" "$T/sig.log" && break; sleep 0.1; done
check "SIGHUP: configuration re-read" grep -q "SIGHUP: configuration re-read" "$T/sig.log"
kill -TERM "$pid"
wait "$pid"
is "$?" 0 "SIGTERM: exit 0"
check "SIGTERM: stopped logged" grep -q "stopped" "$T/sig.log"
done_testing
