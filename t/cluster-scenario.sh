#!/bin/bash
# t/cluster-scenario.sh - the body of the cluster tests, sourced by
# t/cluster-local.sh and t/cluster-gluster.sh after cl_setup (see
# t/cluster-lib.sh).  Node a posts through its spool path, node b through
# its own.
POSTS=${CL_POSTS:-30}

cl_start a
cl_start b
check "node a leases its own list-stage slices, b its own" \
    cl_wait_holders process "$CL_HOME" 15
check "node a leases its own delivery slices, b its own" \
    cl_wait_holders deliver "$CL_HOME" 15

# mmqctl slices: the map as the lease files have it
"$MMQCTL" -c "$T/b.conf" slices --json >"$T/slices.json" 2>"$T/slices.err"
python3 -c '
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
# the bounce stage: no node owns a slice of bounces/ in this scenario
bounce = [r for r in rows if r["stage"] == "bounce"]
assert len(bounce) == 8 and all(r["owner"] is None for r in bounce), bounce
rows = [r for r in rows if r["stage"] != "bounce"]
assert len(rows) == 16, len(rows)
for r in rows:
    want = "a" if r["slice"] < 4 else "b"
    assert r["owner"] == want and r["holder"] == want, r
    assert r["state"] == "held" and r["generation"] >= 1, r
    assert r["renewed_ago"] is not None and r["renewed_ago"] <= 10, r
' "$T/slices.json" 2>"$T/slices.py.err"
rc=$?
[ "$rc" -eq 0 ] || diag "$(cat "$T/slices.json" "$T/slices.err" "$T/slices.py.err"; cl_lease_dump)"
test "$rc" -eq 0
ok $? "mmqctl slices --json: 16 rows, each slice held by its owner, renewed lately"
"$MMQCTL" -c "$T/a.conf" check >"$T/check.out" 2>&1
grep -q 'slice .*lease' "$T/check.out"
ok $((!$?)) "mmqctl check finds no slice without an agent"

# A stream of posts; node a dies in the middle of it.
half=$((POSTS / 2))
for ((k = 1; k <= half; k++)); do
    cl_post a "$k" || fail "post $k"
done
# kill while a's delivery workers hold entries (up to 5 s to see one)
for ((i = 0; i < 500; i++)); do
    [ -n "$(find "$CL_SPOOL/out" -name '*#a#*' -print -quit)" ] && break
    sleep 0.01
done
diag "node a holds $(find "$CL_SPOOL/in" "$CL_SPOOL/out" -name '*#a#*' |
    wc -l) claimed entries when it is killed"
killed_at=$(now)
cl_kill9 a
for ((k = half + 1; k <= POSTS; k++)); do
    cl_post b "$k" || fail "post $k"
    sleep 0.1
done

check "node b takes over a's list-stage slices" \
    cl_wait_holders process "$CL_ALL_B" 30
check "node b takes over a's delivery slices" \
    cl_wait_holders deliver "$CL_ALL_B" 30
took=$(elapsed_ms "$killed_at" "$(now)")
diag "takeover of both stages complete ${took} ms after the kill"
test "$took" -lt "${CL_TAKEOVER_MAX:-12000}"
ok $? "... within takeover_after + lease rounds + slack (< ${CL_TAKEOVER_MAX:-12000} ms)"

check "every post is processed and delivered" cl_drained 120
cl_tally "$POSTS"
diag "deliveries: $CL_TOTAL for $POSTS posts x $CL_MEMBERS members," \
    "$CL_MISSING missing, $CL_DUPS duplicates"
is "$CL_MISSING" 0 "no member misses a post"
test "$CL_DUPS" -le 100
ok $? "duplicates ($CL_DUPS) bounded by a's transactions in flight (100)"
left=$(find "$CL_SPOOL" -path "$CL_SPOOL/tmp" -prune -o -name '*#a#*' -print)
is "$left" "" "nothing is left claimed by the dead node (its tmp/ files wait for tmp_max_age)"
diag "$(grep -h 'takeover:' "$T/b.process.log" "$T/b.deliver.log")"
"$MMQCTL" -c "$T/b.conf" slices >"$T/slices.out" 2>&1
grep -Eq '^deliver +0 +a +b ' "$T/slices.out"
ok $? "mmqctl slices: delivery slice 0 is owned by a, held by b"
"$MMQCTL" -c "$T/b.conf" check >"$T/check.out" 2>&1
grep -q 'slice 0 of 8: mmq-deliver of node b runs it for its owner a' \
    "$T/check.out"
ok $? "mmqctl check notes that b runs a's slices"

# Node a comes back and gets its slices back.
cl_start a
check "node a gets its list-stage slices back" \
    cl_wait_holders process "$CL_HOME" 30
check "node a gets its delivery slices back" \
    cl_wait_holders deliver "$CL_HOME" 30
check "node b logged the hand-back" grep -q 'handed back' "$T/b.deliver.log"
for ((k = POSTS + 1; k <= POSTS + 2; k++)); do
    cl_post a "$k" || fail "post $k"
done
check "posts after the hand-back are delivered" cl_drained 60
cl_tally $((POSTS + 2))
is "$CL_MISSING" 0 "no member misses a post after the hand-back"

# A clean stop releases the leases.
cl_term a
is "$CL_RC" "0 0" "SIGTERM: node a's agents exit 0"
check "node b takes a's released slices" \
    cl_wait_holders deliver "$CL_ALL_B" 20
cl_term b
is "$CL_RC" "0 0" "SIGTERM: node b's agents exit 0"
is "$(cl_holders deliver)" "0 - 1 - 2 - 3 - 4 - 5 - 6 - 7 - " \
    "every lease is free after both stopped"
"$MMQCTL" -c "$T/a.conf" check >"$T/check.out" 2>&1
rc=$?
test "$rc" -ne 0 && grep -q 'slice 7 of 8: no mmq-deliver holds its lease (released)' "$T/check.out"
ok $? "mmqctl check: every slice without an agent is a problem (exit $rc)"
done_testing
