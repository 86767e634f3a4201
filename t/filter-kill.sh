#!/bin/bash
# filter-kill: mmq-filter killed with SIGKILL at any instant while a slow
# writer feeds it a 200 KB message leaves either nothing or one complete
# entry (never a partial one); "mmqctl recover" then removes the temporary
# file the dead process left.
set -u
. "${top_srcdir:-$(dirname "$0")/..}/t/lib.sh"

ROUNDS=22 # round 1: killed while writing; round 2: after the end; others random
CHUNK=6144
mk_spool
M=$T/msg
{
    printf 'Message-ID: <kill@mmq.test>\nSubject: killed\n\n'
    for ((i = 0; i < 3200; i++)); do
        printf 'line %05d of a message that is killed at a random instant....\n' "$i"
    done
} >"$M"
size=$(stat -c %s "$M")
chunks=$(((size + CHUNK - 1) / CHUNK))
diag "message of $size bytes fed in $chunks chunks of $CHUNK bytes"

slow_writer() {
    local i
    for ((i = 0; i < chunks; i++)); do
        dd if="$M" bs="$CHUNK" skip="$i" count=1 status=none 2>/dev/null || return 0
        sleep 0.01
    done
}

killed_mid=0 complete=0 nothing=0
for ((round = 1; round <= ROUNDS; round++)); do
    slow_writer | "$MMQ_FILTER" -c "$CONF" announce >/dev/null 2>&1 &
    fpid=$!
    case $round in
    1) # as soon as its temporary file exists
        for ((i = 0; i < 500; i++)); do
            [ -n "$(tmp_files)" ] && break
            sleep 0.02
        done
        ;;
    2) # after it ended by itself
        for ((i = 0; i < 600; i++)); do
            kill -0 "$fpid" 2>/dev/null || break
            sleep 0.05
        done
        ;;
    *)
        sleep "0.$(printf '%03d' $((RANDOM % 500)))"
        ;;
    esac
    kill -KILL "$fpid" 2>/dev/null
    wait "$fpid" 2>/dev/null
    rc=$?
    wait 2>/dev/null # the writer
    ntmp=$(tmp_files | wc -l)
    entries
    n=${#ENTRIES[@]}
    if [ "$n" -eq 0 ]; then
        pass "round $round: nothing in the queues"
        nothing=$((nothing + 1))
    elif [ "$n" -eq 1 ] && entry_matches "${ENTRIES[0]}" "$M" &&
        [ "${ENTRIES[0]#"$SPOOL"/in/}" != "${ENTRIES[0]}" ]; then
        pass "round $round: one complete entry in in/ (size field right, cmp equal)"
        complete=$((complete + 1))
    else
        fail "round $round: nothing or one complete entry"
        diag "entries: ${ENTRIES[*]}"
    fi
    [ "$rc" -eq 137 ] && [ "$ntmp" -gt 0 ] && killed_mid=$((killed_mid + 1))
    if [ "$rc" -ne 137 ] && [ "$rc" -ne 0 ]; then
        diag "round $round: mmq-filter exited $rc"
    fi
    out=$("$MMQCTL" -c "$CONF" recover 2>"$T/recover.err")
    rrc=$?
    is "$rrc" 0 "round $round: mmqctl recover exits 0"
    is "$out" "restored 0, moved to bad 0, temporary files removed $ntmp" \
        "round $round: recover removed the $ntmp temporary file(s)"
    is "$(tmp_files)" "" "round $round: tmp/ empty after recover"
    entries
    is "${#ENTRIES[@]}" "$n" "round $round: recover left the queues alone"
    for e in "${ENTRIES[@]}"; do
        rm -f -- "$e"
    done
done
diag "outcomes: $nothing empty, $complete complete; $killed_mid killed with a temporary file"
if [ "$killed_mid" -ge 1 ]; then
    pass "some rounds killed mmq-filter in the middle of a write"
else
    fail "some rounds killed mmq-filter in the middle of a write"
fi
if [ "$complete" -ge 1 ]; then
    pass "some rounds let mmq-filter finish"
else
    fail "some rounds let mmq-filter finish"
fi

done_testing
