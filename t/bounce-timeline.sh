#!/bin/bash
# bounce-timeline: what bounces do to members over weeks, on a fake clock
# (libfaketime): mmq-filter queues VERP bounces at chosen instants and
# mmq-bounce -1 runs at chosen instants.
#
#   1  failed bounces on 5 days (two on day 1: counted once) disable the
#      member at the 5th: owners told, warning 1 to the member, all from
#      the list's bounce address; mmq-process then skips the member
#   2  warnings 2 and 3 a week apart (none in between), removal a week
#      after the last: gone from the members file, owners told
#   3  stale reset: a bounce 8 days after the last starts again at 1
#   4  policy (5.7.1) and delayed (4.x.x) bounces on 6 days never disable
#   5  probe mode: the threshold sends a probe with its own VERP address;
#      only the probe's bounce disables
#   6  a bounce of a non-member changes nothing; a rerun of mmq-bounce on
#      the same state changes nothing
#   7  mmqctl members enable / disable / remove, mmqctl bounces, stats
#   8  non-VERP bounces (samples of real Postfix/Exim bounces and of
#      mmq-deliver's DSN): named members counted per outcome; auto-reply
#      dropped; an unrecognised message forwarded to the owners
set -u
. "${top_srcdir:-$(dirname "$0")/..}/t/lib.sh"
. "${top_srcdir:-$(dirname "$0")/..}/t/process-lib.sh"
. "${top_srcdir:-$(dirname "$0")/..}/t/bounce-lib.sh"

pl_init
bl_init
[ -n "$FT" ] || skip_all "libfaketime is not installed"
mk_spool
D=$PL_DOMAIN
pl_list dev 'owners = ["owner@example.org"];' 'verp = true;'
pl_members dev a@example.org b@example.org c@example.org d@example.org \
    e@example.org
pl_list probe 'owners = ["owner@example.org"];' 'bounce_probe = true;'
pl_members probe p@example.org q@example.org

day() { printf '2026-01-%02d 12:00:00' "$1"; }

# ---- 1: five days of failures
bl_bounce dev a@example.org 5.1.1 failed "$(day 1)"
bl_bounce dev a@example.org 5.1.1 failed "2026-01-01 13:00:00"
bl_run "$(day 1)"
is "$(bl_state dev a@example.org "$(day 1)")" "enabled 1" "two bounces on day 1 count once"
for d in 2 3 4; do
    bl_bounce dev a@example.org 5.1.1 failed "$(day $d)"
    bl_run "$(day $d)"
done
is "$(bl_state dev a@example.org "$(day 4)")" "enabled 4" "score 4 after 4 days: still enabled"
is "$(bl_out_to a@example.org)" 0 "no notice before the threshold"
bl_bounce dev a@example.org 5.1.1 failed "$(day 5)"
bl_run "$(day 5)"
is "$(bl_state dev a@example.org "$(day 5)")" "disabled 5" "score 5 on day 5: disabled"
is "$(bl_out_to a@example.org)" 1 "warning 1 queued to the member"
is "$(bl_out_to owner@example.org)" 1 "the owners are told"
bad=0
for f in $(find "$SPOOL/out" -type f); do
    [ "$(pl_sender "$f")" == "dev-bounces@$D" ] || bad=1
done
is "$bad" 0 "notices have the list's bounce address as envelope sender"
pl_clear_out
printf 'From: b@example.org\nTo: dev@%s\nSubject: hello\n\nhi\n' "$D" >"$T/post"
pl_post "$T/post" -f b@example.org dev
pl_process
is "$(pl_rcpts $(find "$SPOOL/out" -type f) | sort | tr '\n' ' ')" \
    "b@example.org c@example.org d@example.org e@example.org " \
    "mmq-process skips the disabled member"
pl_clear_out

# ---- 2: warnings and removal
bl_run "$(day 11)"
is "$(bl_out_to a@example.org)" 0 "no warning 6 days after"
bl_run "$(day 12)"
is "$(bl_out_to a@example.org)" 1 "warning 2 a week after"
bl_run "$(day 12)"
is "$(bl_out_to a@example.org)" 1 "a rerun at the same instant sends nothing more"
bl_run "$(day 19)"
is "$(bl_out_to a@example.org)" 2 "warning 3 two weeks after"
pl_clear_out
bl_run "$(day 26)"
if grep -qx a@example.org "$LISTS/dev.members"; then
    fail "removed from the members file after the last warning"
else
    pass "removed from the members file after the last warning"
fi
is "$(bl_out_to owner@example.org)" 1 "the owners are told of the removal"
is "$(bl_state dev a@example.org "$(day 26)")" "absent" "mmqctl members no longer shows it"
is "$(grep -c . "$LISTS/dev.members")" 4 "the other members stay"
pl_clear_out

# ---- 3: stale reset
bl_bounce dev b@example.org 5.1.1 failed "$(day 1)"
bl_bounce dev b@example.org 5.1.1 failed "$(day 2)"
bl_run "$(day 2)"
is "$(bl_state dev b@example.org "$(day 2)")" "enabled 2" "b: score 2"
bl_run "$(day 10)"
is "$(bl_state dev b@example.org "$(day 10)")" "enabled 0" "b: shown as 0 once stale"
bl_bounce dev b@example.org 5.1.1 failed "$(day 10)"
bl_run "$(day 10)"
is "$(bl_state dev b@example.org "$(day 10)")" "enabled 1" "b: a bounce 8 days later starts at 1"

# ---- 4: policy and delayed
for d in 1 2 3 4 5 6; do
    bl_bounce dev c@example.org 5.7.1 failed "$(day $d)"
    bl_bounce dev d@example.org 4.2.2 delayed "$(day $d)"
done
bl_run "$(day 6)"
is "$(bl_state dev c@example.org "$(day 6)")" "enabled 0" "6 days of policy refusals: enabled"
is "$(bl_state dev d@example.org "$(day 6)")" "enabled 0" "6 days of delays: enabled"
"$MMQCTL" -c "$CONF" bounces dev --json >"$T/b.json"
is "$(python3 -c '
import json,sys
r={m["address"]:(m["failed"],m["delayed"],m["policy"]) for m in json.load(open(sys.argv[1]))}
print(r.get("c@example.org"), r.get("d@example.org"))' "$T/b.json")" \
    "(0, 0, 6) (0, 6, 0)" "mmqctl bounces counts policy and delayed"

# ---- 5: probe mode
for d in 1 2 3 4 5; do
    bl_bounce probe p@example.org 5.1.1 failed "$(day $d)"
done
bl_run "$(day 5)"
is "$(bl_state probe p@example.org "$(day 5)")" "enabled 0" "probe mode: the threshold does not disable"
probe=
for f in $(find "$SPOOL/out" -type f); do
    pl_rcpts "$f" | grep -qxF p@example.org && probe=$(pl_sender "$f")
done
case $probe in
probe-bounces+probe.*@$D) pass "a probe with its own VERP address: $probe" ;;
*) fail "a probe with its own VERP address (got '$probe')" ;;
esac
bl_dsn p@example.org 5.1.1 >"$T/probe.msg"
at "$(day 6)" "$BL_FILTER" -c "$CONF" -f '' -r "$probe" probe-bounces <"$T/probe.msg"
bl_run "$(day 6)"
is "$(bl_state probe p@example.org "$(day 6)")" "disabled 0" "the probe's bounce disables"
pl_clear_out

# ---- 6: non-members; reruns
bl_bounce dev zz@example.org 5.1.1 failed "$(day 6)"
bl_run "$(day 6)"
is "$(bl_state dev zz@example.org "$(day 6)")" "absent" "a non-member's bounce: nothing"
find "$SPOOL/members" -type f | sort >"$T/before"
bl_run "$(day 6)"
find "$SPOOL/members" -type f | sort >"$T/after"
check "a rerun changes no state" cmp -s "$T/before" "$T/after"

# ---- 7: mmqctl
"$MMQCTL" -c "$CONF" members dev disable e@example.org >/dev/null
is "$(bl_state dev e@example.org)" "disabled 0" "mmqctl members disable"
pl_post "$T/post" -f b@example.org dev
pl_process
if pl_rcpts $(find "$SPOOL/out" -type f) | grep -qx e@example.org; then
    fail "an admin-disabled member is skipped"
else
    pass "an admin-disabled member is skipped"
fi
pl_clear_out
"$MMQCTL" -c "$CONF" members dev enable e@example.org >/dev/null
is "$(bl_state dev e@example.org)" "enabled 0" "mmqctl members enable"
"$MMQCTL" -c "$CONF" members dev remove c@example.org >/dev/null
is "$(bl_state dev c@example.org)" "absent" "mmqctl members remove"
"$MMQCTL" -c "$CONF" members dev enable nobody@example.org 2>/dev/null
is "$?" 67 "enable of a non-member: exit 67"
"$MMQCTL" -c "$CONF" stats --json >"$T/stats.json"
is "$(python3 -c '
import json,sys; b=json.load(open(sys.argv[1]))["bounces"]
print(b["failed"] >= 14, b["policy"], b["delayed"], b["not_member"])' "$T/stats.json")" \
    "True 6 6 1" "mmqctl stats: bounces per outcome"
# ---- 8: a list without VERP: the parser names the members (real Postfix
# and Exim bounces and mmq-deliver's own DSN of the sample collection);
# an auto-reply is dropped, an unrecognised message goes to the owners
S=$top_srcdir/t/bounce-samples
pl_list plain 'owners = ["owner@example.org"];'
pl_members plain unknown.user@example.net quota.user@example.net \
    bob@example.net carol@example.com dave@example.com
pl_clear_out
for f in postfix-unknown-failed exim-quota-failed mmq-dsn-three \
    vacation-out-of-office not-a-bounce-post; do
    "$MMQ_FILTER" -c "$CONF" -f '' -r "plain-bounces@$D" plain-bounces \
        <"$S/$f.eml" || fail "mmq-filter $f"
done
bl_run
"$MMQCTL" -c "$CONF" bounces plain --json >"$T/p.json"
is "$(python3 -c '
import json,sys
for m in sorted(json.load(open(sys.argv[1])), key=lambda m: m["address"]):
    print(m["address"], m["failed"], m["delayed"], m["policy"], m["last_status"])' "$T/p.json" | tr '\n' ';')" \
    "bob@example.net 0 0 1 5.7.1;carol@example.com 0 1 0 4.3.0;dave@example.com 1 0 0 5.0.0;quota.user@example.net 1 0 0 5.2.2;unknown.user@example.net 1 0 0 5.1.1;" \
    "non-VERP bounces: every named member counted with its outcome"
is "$(count_files "$SPOOL/bounces")" 0 "all five entries finished"
fwd=0
for f in $(find "$SPOOL/out" -type f); do
    grep -q '^X-MMQ-Bounce-Forward: plain' "$f" && [ "$(pl_rcpts "$f")" == owner@example.org ] && fwd=$((fwd + 1))
done
is "$fwd" 1 "the unrecognised message is forwarded to the owners, the auto-reply is not"
grep -q "not a bounce (vacation" "$BLOG"
ok $? "the auto-reply is dropped as not a bounce"
grep -q "ERROR\|error" "$BLOG" && diag "$(grep -i error "$BLOG" | head)"
done_testing
