#!/bin/bash
# deliver-slices: two mmq-deliver daemons share one spool of 8 slices, one
# on slices 0-3 and one on 4-7, running at the same time.  3,000 recipients
# in entries of 50 (half queued before they start, half while they run) are
# delivered exactly once each, and each agent delivered only entries of its
# own slices: slice = floor(key * 8 / 2^64), key = the first 16 hex digits
# of the digest in the queue ID.  Both are stopped with SIGTERM once out/ is
# empty and exit 0.
set -u
. "${top_srcdir:-$(dirname "$0")/..}/t/lib.sh"
. "${top_srcdir:-$(dirname "$0")/..}/t/deliver-lib2.sh"

NRCPT=3000
PER_ENTRY=50
SLICES=8
test_start=$(now)

mk_spool
dl_sink_start "$T/sink"
dl_conf "slices = $SLICES;" "recipients_per_transaction = 20;" \
    "connections = 2;"
M=$T/msg
printf 'Date: Sun, 22 Nov 2026 10:00:00 +0000\nFrom: alice@example.org\nMessage-ID: <slices@mmq.test>\nSubject: sliced\n\nbody\n' >"$M"
dl_rcpts "$NRCPT" "$T/rcpts"
head -n $((NRCPT / 2)) "$T/rcpts" >"$T/rcpts.1"
tail -n +$((NRCPT / 2 + 1)) "$T/rcpts" >"$T/rcpts.2"

dl_queue "$T/rcpts.1" "$PER_ENTRY" "$M"
printf '%s\n' "$QUEUED" >"$T/ids"

LA=$T/agent-0-3.log
LB=$T/agent-4-7.log
dl_agent_start "$LA" -s 0-3
A=$AGENT_PID
dl_agent_start "$LB" -s 4-7
B=$AGENT_PID
dl_wait_log "$LA" "delivering slices 0-3 of $SLICES" 10
ok $? "agent A started on slices 0-3 of $SLICES"
dl_wait_log "$LB" "delivering slices 4-7 of $SLICES" 10
ok $? "agent B started on slices 4-7 of $SLICES"

# the second half while they run (found through inotify or the scan)
dl_queue "$T/rcpts.2" "$PER_ENTRY" "$M"
printf '%s\n' "$QUEUED" >>"$T/ids"
sort -o "$T/ids" "$T/ids"
is "$(wc -l <"$T/ids")" $((NRCPT / PER_ENTRY)) "$((NRCPT / PER_ENTRY)) entries queued"

dl_wait_out_empty 90
ok $? "out/ is empty"
dl_kill TERM "$A"
dl_kill TERM "$B"
dl_wait_exit "$A" 30
is "$DL_RC" 0 "agent A exits 0 on SIGTERM"
dl_wait_exit "$B" 30
is "$DL_RC" 0 "agent B exits 0 on SIGTERM"
diag "delivery took $(elapsed_ms "$test_start" "$(now)") ms"

# ------------------------------------------------------------ at the sink
dl_tally "$T/rcpts" "$T/sink"
is "$DL_GOT" "$NRCPT" "the sink received $NRCPT recipients"
is "$DL_MISSING" 0 "no recipient missing"
is "$DL_DUPS" 0 "no recipient received twice"
is "$DL_UNEXPECTED" 0 "no recipient that was not queued"
is "$(dl_files out deferred bad)" "" "nothing in out/, deferred/ or bad/"
is "$(dl_claimed)" "" "no entry left claimed"
is "$(tmp_files)" "" "tmp/ is empty"

# ------------------------------------------------- who delivered what
dl_log_ids "$LA" >"$T/ids.A"
dl_log_ids "$LB" >"$T/ids.B"
nA=$(wc -l <"$T/ids.A")
nB=$(wc -l <"$T/ids.B")
diag "agent A delivered $nA entries, agent B $nB"
if [ "$nA" -gt 0 ] && [ "$nB" -gt 0 ]; then
    pass "both agents delivered entries"
else
    fail "both agents delivered entries"
fi
is "$(comm -12 "$T/ids.A" "$T/ids.B")" "" "no entry was delivered by both agents"
is "$(sort -u "$T/ids.A" "$T/ids.B" | diff - "$T/ids")" "" \
    "the agents delivered exactly the entries queued"

mapfile -t ida <"$T/ids.A"
mapfile -t idb <"$T/ids.B"
if [ "$nA" -gt 0 ]; then
    wrong=$(dl_slice_of "$SLICES" "${ida[@]}" | awk '$2 < 0 || $2 > 3')
else
    wrong=
fi
is "$wrong" "" "agent A (slices 0-3) delivered only entries of slices 0-3"
if [ "$nB" -gt 0 ]; then
    wrong=$(dl_slice_of "$SLICES" "${idb[@]}" | awk '$2 < 4 || $2 > 7')
else
    wrong=
fi
is "$wrong" "" "agent B (slices 4-7) delivered only entries of slices 4-7"

# every entry removed once, by the agent of its slice
mapfile -t all <"$T/ids"
dl_slice_of "$SLICES" "${all[@]}" >"$T/ids.slice"
bad=0
while read -r id s; do
    if [ "$s" -le 3 ]; then own=$LA other=$LB; else own=$LB other=$LA; fi
    if [ "$(grep -c " mmq-deliver\[[0-9]*\]: $id: removed\$" "$own")" -ne 1 ] ||
        grep -q " mmq-deliver\[[0-9]*\]: $id:" "$other"; then
        bad=$((bad + 1))
        [ "$bad" -le 3 ] && diag "$id (slice $s): not removed exactly once by its own agent alone"
    fi
done <"$T/ids.slice"
is "$bad" 0 "each entry was removed once, by the agent of its slice, and never touched by the other"
diag "slices of the entries: $(cut -d' ' -f2 "$T/ids.slice" | sort | uniq -c | awk '{printf "%s:%s ", $2, $1}')"

dl_sink_stop "$SINK_PID"
diag "deliver-slices took $(elapsed_ms "$test_start" "$(now)") ms"
done_testing
