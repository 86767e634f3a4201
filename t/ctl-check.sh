#!/bin/bash
# t/ctl-check.sh - what "mmqctl check" reports for the postmaster: a post
# kept in in/ by an error (its reason recorded in the entry, shown by
# queue and show too), deferred mail older than --deferred-age, a bounces/
# queue nothing drains, entries in bad/; the single-node summaries of
# check and slices; the refusal of a spool owned by someone else.
. "$top_srcdir/t/lib.sh"
. "$top_srcdir/t/process-lib.sh"
pl_init
MMQ_MKENTRY=${MMQ_MKENTRY:-$top_builddir/t/tools/mkentry}

mk_spool
ctl() { # ctl ARG...: RC, OUT (stdout), $T/ctl.out
    "$MMQCTL" -c "$CONF" "$@" >"$T/ctl.out" 2>"$T/ctl.err"
    RC=$?
    OUT=$(cat "$T/ctl.out")
}
printf 'From: a@example.org\nSubject: x\n\nbody\n' >"$T/msg"
echo bob@example.org >"$T/rcpts"

# a post kept in in/ by an error (a list file that does not parse)
pl_list announce 'this is not a setting'
pl_post "$T/msg" -f a@example.org announce
ID=${IN_NAME:0:10}
pl_process
is "$(find "$SPOOL/in" -type f | wc -l)" 1 "broken list: the post stays in in/"
ctl queue in
case $OUT in
*"announce/post <a@example.org>"*"announce.conf"*) pass "queue: the in/ entry shows the error that keeps it" ;;
*) fail "queue: the in/ entry shows the error that keeps it" && diag "$OUT" ;;
esac
ctl show --envelope "$ID"
grep -q '^last-error .*announce\.conf' "$T/ctl.out"
ok $? "show: the envelope holds the error as last-error"
ctl check --no-agents
is "$RC" 65 "check: a post kept in in/ is a problem (exit 65)"
grep -q "^in/$ID.* (list announce): kept in in/ by an error: .*announce\.conf" "$T/ctl.out"
ok $? "check: names the entry, its list and the error"
diag "$OUT"
pl_list announce
pl_members announce bob@example.org
pl_process
ctl check --no-agents
is "$RC:$OUT" "0:spool OK" "check: the list repaired and the post processed, spool OK"
find "$SPOOL/out" -type f -delete

# make_old FILE SECONDS: FILE's entry SECONDS older (name and envelope)
make_old() {
    local f=$1 name sec rest old
    name=${f##*/}
    sec=${name%%.*}
    rest=${name#*.}
    old=$((10#$sec - $2))
    sed -i "s/^arrival $((10#$sec))\./arrival $old./" "$f"
    mv "$f" "${f%/*}/$(printf '%010d' "$old").$rest"
}

# deferred mail older than the threshold (default 4 h)
D=$("$MMQ_MKENTRY" -c "$CONF" -q deferred -l announce -f a@example.org "$T/rcpts" <"$T/msg")
make_old "$(find "$SPOOL/deferred" -type f)" 18000
ctl check --no-agents
is "$RC" 65 "check: deferred mail 5 h old is a problem"
grep -Eq '^deferred/[0-9]+\S* \(list announce\): 1 recipient deferred for 5h00m, 0 attempts' "$T/ctl.out"
ok $? "check: names the deferred entry, its list, age and attempts"
diag "$OUT"
ctl check --no-agents --deferred-age 86400
is "$RC:$OUT" "0:spool OK" "check --deferred-age 86400: 5 h is not old"
ctl check --no-agents --deferred-age 5x
is "$RC" 64 "check --deferred-age 5x: a usage error"
find "$SPOOL/deferred" -type f -delete
[ -n "$D" ]

# bounces/ that nothing drains
pl_post "$T/msg" -f '' -R bounces announce
make_old "$(find "$SPOOL/bounces" -type f)" 7200
ctl check --no-agents
grep -q '^bounces/: 1 entry, the oldest 2h00m old: nothing takes bounces/ in' "$T/ctl.out"
ok $? "check: a bounces/ queue nothing drains is a problem"
find "$SPOOL/bounces" -type f -delete

# bad/
B=$("$MMQ_MKENTRY" -c "$CONF" -q out -l announce -f a@example.org "$T/rcpts" <"$T/msg")
f=$(find "$SPOOL/out" -type f)
mkdir -p "$SPOOL/bad/${B:18:2}"
mv "$f" "$SPOOL/bad/${B:18:2}/$B@out"
ctl check --no-agents
grep -q "^bad/${B:0:10}[^ ]* (from out/): set aside" "$T/ctl.out"
ok $? "check: an entry in bad/ is a problem"
rm -f "$SPOOL/bad/${B:18:2}/$B@out"

# a post held for moderation counts its list's members
pl_list announce 'posters = "members";' 'others = "hold";'
pl_members announce m1@example.org m2@example.org m3@example.org
find "$SPOOL/hold" -type f -delete # the first post, held once the list was repaired
pl_post "$T/msg" -f stranger@example.net -r announce@lists.example.org announce
pl_process
ctl queue hold
case $OUT in
*"announce/post <stranger@example.net> members=3 "*) pass "queue: a held post shows its list's member count" ;;
*) fail "queue: a held post shows its list's member count" && diag "$OUT" ;;
esac
ctl stats hold
is "$(awk '$1 == "hold" { print $2, $3 }' "$T/ctl.out")" "1 3" \
    "stats hold: 1 entry, 3 recipients (the members)"
ctl queue --json hold
is "$(python3 -c 'import json,sys; o=json.loads(sys.stdin.readline()); print(o["members"], o["recipients"])' <"$T/ctl.out")" "3 1" \
    "queue --json: members 3 beside the envelope's 1 recipient"
# the post and the held-post notices it queued (poster, owners)
find "$SPOOL/hold" "$SPOOL/out" -type f -delete

# single node: short summaries
ctl check
is "$(grep -c 'no mmq-' "$T/ctl.out")" 2 "check, single node: one line per stage for the slices without a runner"
grep -qF 'slices 0-15 of 16: no mmq-process runs for them on this node (testnode)' "$T/ctl.out"
ok $? "check: the slices as a range"
for s in 0 1 2 3 4 5 6 7; do
    (exec 9>"$SPOOL/lock/deliver.testnode.$s" && flock -n 9 && exec sleep 60) \
        >/dev/null 2>&1 &
    at_exit kill $!
done
for ((i = 0; i < 50; i++)); do
    ctl slices
    grep -q 'no mmq-deliver runs for 8-15' "$T/ctl.out" && break
    sleep 0.1
done
is "$(wc -l <"$T/ctl.out")" 4 "slices, single node: a four-line summary"
grep -q '^bounce   slices 0-15 of 16: no mmq-bounce runs for 0-15; 0 waiting in bounces/$' "$T/ctl.out"
ok $? "slices: the bounce stage counts bounces/"
grep -q '^deliver  slices 0-15 of 16: no mmq-deliver runs for 8-15; 0 waiting in out/ and deferred/$' "$T/ctl.out"
ok $? "slices: the slices without a runner as a range"
diag "$OUT"

# a spool owned by someone else: say what to do
if is_root && id nobody >/dev/null 2>&1; then
    chown nobody "$SPOOL"
    ctl queue
    grep -q 'owned by uid [0-9]* (nobody).*run as the spool.s owner: runuser -u nobody -- mmqctl' "$T/ctl.err"
    ok $? "a spool owned by another user: the refusal says runuser -u nobody -- mmqctl ..."
    diag "$(cat "$T/ctl.err")"
    chown root "$SPOOL"
else
    skip "not root" 1
fi
done_testing
