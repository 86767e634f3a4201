#!/bin/bash
# spool-recover: "mmqctl recover" restores entries left claimed
# (QUEUE/BB/NAME#NODE#PID#START) by dead processes of this node, counting
# recoveries; past max_recoveries (3) the entry goes to bad/BB/NAME@QUEUE.
# Claims of other nodes and of live processes are left alone; temporary
# files of dead writers (or too old ones) are removed.
set -u
. "${top_srcdir:-$(dirname "$0")/..}/t/lib.sh"

mk_spool
M=$T/msg
printf 'From: alice@example.org\nMessage-ID: <recover@mmq.test>\nSubject: recover me\n\nbody\n' >"$M"

# new_entry ARG...: store $M with mmq-filter ARG...; NEW is the new entry.
new_entry() {
    local before after
    entries
    before=" ${ENTRIES[*]} "
    run_filter "$M" "$@"
    [ "$RC" -eq 0 ] || bail_out "mmq-filter $* exited $RC: $OUT $ERR"
    entries
    NEW=
    for after in "${ENTRIES[@]}"; do
        [ "${before#* "$after" }" == "$before" ] && NEW=$after
    done
    [ -n "$NEW" ] || bail_out "no new entry after mmq-filter $*"
}

# dead_pid: DEAD is the pid of a process that has ended.
dead_pid() {
    sleep 0 &
    DEAD=$!
    wait "$DEAD"
    if kill -0 "$DEAD" 2>/dev/null; then
        bail_out "pid $DEAD reused at once"
    fi
}

# claim FILE NODE PID START: rename FILE as claimed; CLAIMED is the name.
claim() {
    CLAIMED="$1#$2#$3#$4"
    mv -- "$1" "$CLAIMED" || bail_out "rename $1"
}

recover() {
    ROUT=$("$MMQCTL" -c "$CONF" recover 2>"$T/recover.err")
    RRC=$?
}

envelope_of() { # the envelope lines of FILE, recoveries masked
    sed -n '/^$/q; s/^recoveries .*/recoveries N/; p' -- "$1"
}

exists() { [ -f "$1" ]; }
absent() { [ ! -e "$1" ]; }

# ------------------------------------------- dead process: restore, to bad

new_entry -f bob@example.org -r announce@example.org announce
E=$NEW
NAME=${E##*/}
BUCKET=${E%/*}
# An envelope line of a future version must survive the rewrites.
entry_parse "$E"
{
    head -c "$((ENV_OFF - 1))" -- "$E"
    printf 'x-future some%%20value\n\n'
    tail -c +"$((ENV_OFF + 1))" -- "$E"
} >"$T/edited"
cat "$T/edited" >"$E"
check "entry with an unknown envelope line is still well formed" entry_matches "$E" "$M"
ENV_BEFORE=$(envelope_of "$E")

for r in 1 2 3; do
    dead_pid
    claim "$E" testnode "$DEAD" 12345
    recover
    is "$RRC" 0 "recovery $r: mmqctl recover exits 0"
    is "$ROUT" "restored 1, moved to bad 0, temporary files removed 0" "recovery $r: one entry restored"
    check "recovery $r: back under its ready name" exists "$E"
    check "recovery $r: claimed name gone" absent "$CLAIMED"
    is "$(ls -A "$BUCKET")" "$NAME" "recovery $r: nothing else in the bucket"
    is "$(entry_field "$E" recoveries)" "$r" "recovery $r: envelope says recoveries $r"
    check "recovery $r: message and size intact" entry_matches "$E" "$M"
    is "$(envelope_of "$E")" "$ENV_BEFORE" "recovery $r: rest of the envelope unchanged (unknown line kept)"
    is "$(stat -c %a -- "$E")" 640 "recovery $r: entry mode 0640"
    is "$(tmp_files)" "" "recovery $r: tmp/ empty"
done

dead_pid
claim "$E" testnode "$DEAD" 12345
recover
is "$RRC" 0 "fourth crash: mmqctl recover exits 0"
is "$ROUT" "restored 0, moved to bad 1, temporary files removed 0" "fourth crash: moved to bad"
BAD=$SPOOL/bad/${BUCKET##*/}/$NAME@in
check "fourth crash: entry is bad/BB/NAME@in" exists "$BAD"
check "fourth crash: gone from in/" absent "$E"
check "fourth crash: claimed name gone" absent "$CLAIMED"
if exists "$BAD"; then
    check "fourth crash: message intact in bad/" entry_matches "$BAD" "$M"
    is "$(entry_field "$BAD" recoveries)" 3 "fourth crash: recoveries still 3"
else
    skip "no entry in bad/" 2
fi
recover
is "$ROUT" "restored 0, moved to bad 0, temporary files removed 0" "recover again: nothing to do"
check "recover again: bad/ entry stays" exists "$BAD"
rm -f -- "$BAD"

# ------------------------------------------------------ other queues

new_entry -R bounces announce
E=$NEW
case $E in "$SPOOL"/bounces/*) pass "bounce entry in bounces/" ;; *) fail "bounce entry in bounces/" ;; esac
dead_pid
claim "$E" testnode "$DEAD" 777
recover
is "$ROUT" "restored 1, moved to bad 0, temporary files removed 0" "bounces/: claimed entry restored"
check "bounces/: back under its ready name" exists "$E"
is "$(entry_field "$E" recoveries)" 1 "bounces/: recoveries 1"
rm -f -- "$E"

new_entry announce
B=${NEW%/*}
HELD=$SPOOL/hold/${B##*/}/${NEW##*/}@in
mv -- "$NEW" "$HELD"
dead_pid
claim "$HELD" testnode "$DEAD" 888
recover
is "$ROUT" "restored 1, moved to bad 0, temporary files removed 0" "hold/NAME@in: claimed entry restored"
check "hold/NAME@in: back under hold/BB/NAME@in" exists "$HELD"
rm -f -- "$HELD"

# A claimed entry that is not readable as an entry goes to bad/ at once.
new_entry announce
E=$NEW
truncate -s -1 -- "$E"
dead_pid
claim "$E" testnode "$DEAD" 999
recover
is "$ROUT" "restored 0, moved to bad 1, temporary files removed 0" "truncated entry of a dead process: moved to bad"
B=${E%/*}
check "truncated entry: bad/BB/NAME@in" exists "$SPOOL/bad/${B##*/}/${E##*/}@in"
check "truncated entry: claimed name gone" absent "$CLAIMED"
find "$SPOOL/bad" -type f -delete

# ------------------------------------------------- claims left alone

new_entry announce
E=$NEW
dead_pid
claim "$E" othernode "$DEAD" 1
cp -- "$CLAIMED" "$T/copy"
recover
is "$ROUT" "restored 0, moved to bad 0, temporary files removed 0" "claim of another node: nothing restored"
check "claim of another node: left as it is" exists "$CLAIMED"
check "claim of another node: unchanged" cmp -s -- "$CLAIMED" "$T/copy"
check "claim of another node: no ready entry" absent "$E"
rm -f -- "$CLAIMED"

sleep 60 &
LIVE=$!
kill_live() { # ours, still running: end it (by its pid)
    [ -n "${LIVE:-}" ] && kill "$LIVE" 2>/dev/null
    LIVE=
}
at_exit kill_live
LIVE_START=$(awk '{ print $22 }' "/proc/$LIVE/stat")
diag "live process $LIVE started at $LIVE_START"
new_entry announce
E=$NEW
claim "$E" testnode "$LIVE" "$LIVE_START"
cp -- "$CLAIMED" "$T/copy"
recover
is "$ROUT" "restored 0, moved to bad 0, temporary files removed 0" "claim of a live process: nothing restored"
check "claim of a live process: left as it is" exists "$CLAIMED"
check "claim of a live process: unchanged" cmp -s -- "$CLAIMED" "$T/copy"
check "claim of a live process: no ready entry" absent "$E"

# The same pid with another start time is a dead process whose pid was reused.
mv -- "$CLAIMED" "$E#testnode#$LIVE#$((LIVE_START + 1))"
CLAIMED="$E#testnode#$LIVE#$((LIVE_START + 1))"
recover
is "$ROUT" "restored 1, moved to bad 0, temporary files removed 0" "live pid, other start time: restored"
check "live pid, other start time: back under its ready name" exists "$E"
check "live pid, other start time: claimed name gone" absent "$CLAIMED"
rm -f -- "$E"

# ------------------------------------------------------ temporary files

dead_pid
t0="$(date +%s).000001"
printf 'partial' >"$SPOOL/tmp/$t0#testnode#$DEAD#4242#1"
printf 'partial' >"$SPOOL/tmp/$t0#othernode#$DEAD#4242#1"
printf 'partial' >"$SPOOL/tmp/$t0#testnode#$LIVE#$LIVE_START#1"
printf 'partial' >"$SPOOL/tmp/$t0#othernode#$DEAD#4242#2"
touch -d '2 days ago' "$SPOOL/tmp/$t0#othernode#$DEAD#4242#2"
recover
is "$RRC" 0 "temporary files: recover exits 0"
is "$ROUT" "restored 0, moved to bad 0, temporary files removed 2" "temporary files: two removed"
check "temporary file of a dead writer of this node removed" absent "$SPOOL/tmp/$t0#testnode#$DEAD#4242#1"
check "fresh temporary file of another node kept" exists "$SPOOL/tmp/$t0#othernode#$DEAD#4242#1"
check "temporary file of a live writer kept" exists "$SPOOL/tmp/$t0#testnode#$LIVE#$LIVE_START#1"
check "temporary file older than tmp_max_age removed" absent "$SPOOL/tmp/$t0#othernode#$DEAD#4242#2"

LIVE_PID=$LIVE
kill_live
wait "$LIVE_PID" 2>/dev/null
recover
is "$ROUT" "restored 0, moved to bad 0, temporary files removed 1" "writer ended: its temporary file removed"
is "$(tmp_files)" "$t0#othernode#$DEAD#4242#1" "only the other node's fresh file is left"

done_testing
