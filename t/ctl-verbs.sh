#!/bin/bash
# ctl-verbs: every mmqctl verb on a quiet spool (no daemon running, except
# the moderation scenario at the end, which runs mmq-process -1): queue
# (text, --json with hostile envelope content, --list, --slice, short IDs),
# show, hold, release (held time, approved flag), retry, delete, requeue,
# an entry with a journal (read less it by every verb, folded by a rewrite),
# stats, check; bad, unknown and ambiguous IDs; a busy (claimed) entry; a
# missing spool.  The exit codes are those of mmqctl(8).
set -u
. "${top_srcdir:-$(dirname "$0")/..}/t/lib.sh"
. "${top_srcdir:-$(dirname "$0")/..}/t/process-lib.sh"

[ -n "${MMQ_MKENTRY:-}" ] && [ -x "$MMQ_MKENTRY" ] || skip_all "MMQ_MKENTRY not built"
command -v python3 >/dev/null 2>&1 || skip_all "python3 is not installed"

mk_spool
W=$T
M=$W/msg
printf 'From: alice@example.org\nSubject: ctl\n\nthe body\nline 2\n' >"$M"
printf 'a@example.org\nb@example.org\n' >"$W/rcpts"

ctl() { # ctl ARG...: mmqctl -c $CONF ARG... ; RC OUT ERR
    "$MMQCTL" -c "$CONF" "$@" >"$W/ctl.out" 2>"$W/ctl.err" </dev/null
    RC=$?
    OUT=$(cat "$W/ctl.out")
    ERR=$(cat "$W/ctl.err")
}

mkentry() { # mkentry QUEUE LIST SENDER: NEW is the new entry's name
    NEW=$("$MMQ_MKENTRY" -c "$CONF" -q "$1" -l "$2" -f "$3" "$W/rcpts" <"$M") ||
        bail_out "mkentry failed"
}

path_of() { # path_of QUEUE NAME[@ORIGIN]
    printf '%s/%s/%s/%s' "$SPOOL" "$1" "${2:18:2}" "$2"
}

json_ok() { python3 -c 'import json,sys; [json.loads(l) for l in sys.stdin]'; }

# ------------------------------------------------------------ missing spool
mk_tmpdir
GONE=$T
printf 'spool = "%s/nope";\nnode = "testnode";\n' "$GONE" >"$GONE/mmq.conf"
"$MMQCTL" -c "$GONE/mmq.conf" queue >/dev/null 2>"$GONE/err"
rc=$?
is "$rc" 66 "missing spool: exit 66 (EX_NOINPUT)"
check "missing spool: says so and how to create it" grep -q 'mmqctl init' "$GONE/err"
"$MMQCTL" -c "$GONE/nope.conf" queue >/dev/null 2>&1
is "$?" 78 "missing configuration file: exit 78 (EX_CONFIG)"
"$MMQCTL" -c "$CONF" frobnicate >/dev/null 2>&1
is "$?" 64 "unknown verb: exit 64 (EX_USAGE)"

# ------------------------------------------------------------------- queue
ctl queue
is "$RC:$OUT" "0:Mail queue is empty" "queue: an empty spool"

HOSTILE=$'ev"il\\\x01\x7f\xff<x>@example.org'
mkentry out announce "$HOSTILE"
A=$NEW
mkentry deferred dev bob@example.org
B=$NEW
mkentry in announce carol@example.org
C=$NEW
touch -d '+1 hour' "$(path_of deferred "$B")"

ctl queue
is "$RC" 0 "queue: exit 0"
is "$(printf '%s\n' "$OUT" | wc -l)" 4 "queue: one line per entry and a summary"
is "$(printf '%s\n' "$OUT" | tail -n 1)" "-- 1 Kbytes in 3 Requests." "queue: the mailq summary"
line_a=$(printf '%s\n' "$OUT" | grep ' out ')
ida=${line_a%% *}
is "${A:0:${#ida}}" "$ida" "queue: the short ID is a prefix of the entry name"
check "queue: the short ID has at least 10 characters" test "${#ida}" -ge 10
ids=$(printf '%s\n' "$OUT" | head -n 3 | cut -d' ' -f1 | sort -u | wc -l)
is "$ids" 3 "queue: short IDs are unique"
case $line_a in
*'announce/post <ev"il\x5c\x01\x7f\xff<x>@example.org> rcpts=2 attempts=0 next=now'*) pass "queue: the text line, hostile bytes escaped" ;;
*) fail "queue: the text line, hostile bytes escaped" ; diag "$line_a" ;;
esac
line_b=$(printf '%s\n' "$OUT" | grep ' deferred ')
case $line_b in
*"dev/post <bob@example.org> rcpts=2 attempts=0 next=$(date -d '+1 hour' +%Y-%m-%dT%H)"*) pass "queue: a deferred entry's next attempt is its mtime" ;;
*) fail "queue: a deferred entry's next attempt is its mtime" ; diag "$line_b" ;;
esac

ctl queue deferred
is "$(printf '%s\n' "$OUT" | grep -c deferred)|$(printf '%s\n' "$OUT" | tail -n 1)" \
    "1|-- 1 Kbytes in 1 Request." "queue QUEUE: only that queue"
ctl queue --list announce
is "$(printf '%s\n' "$OUT" | grep -c announce/)" 2 "queue --list: only that list's entries"
ctl queue nosuch
is "$RC" 64 "queue: an unknown queue is a usage error"
ctl queue --slice 99
is "$RC" 64 "queue --slice: a slice out of range is a usage error"
slice_a=$(python3 -c "print(int('${A:18:16}', 16) * 16 >> 64)")
ctl queue --slice "$slice_a" --json
check "queue --slice: the entry's own slice lists it" grep -q "\"name\":\"$A\"" "$W/ctl.out"

ctl queue --json
is "$RC" 0 "queue --json: exit 0"
check "queue --json: every line is valid JSON" json_ok <"$W/ctl.out"
is "$(wc -l <"$W/ctl.out")" 3 "queue --json: one object per entry, no summary"
got=$(python3 -c '
import json, os, sys
for l in open(sys.argv[1]):
    o = json.loads(l)
    if o["name"] == sys.argv[2]:
        print(o["sender"].encode("latin-1") == os.fsencode(sys.argv[3]), o["queue"], o["list"], o["role"], o["recipients"],
              o["attempts"], o["size"], o["id"] == sys.argv[2][:len(o["id"])],
              o["claimed"], o["origin"], o["last_error"], o["held"], o["approved"])
' "$W/ctl.out" "$A" "$HOSTILE")
is "$got" "True out announce post 2 0 $(wc -c <"$M") True None None None 0 False" \
    "queue --json: the fields, the hostile sender intact (bytes > 0x7e as \\u00XX)"

# --------------------------------------------------------------------- show
ctl show "$ida"
is "$RC" 0 "show: exit 0"
is "$OUT" "$(cat "$(path_of out "$A")")" "show: envelope and message, as stored"
ctl show --headers "$A"
is "$OUT" "$(printf 'From: alice@example.org\nSubject: ctl')" "show --headers (full name as ID)"
ctl show --body "$A"
is "$OUT" "$(printf 'the body\nline 2')" "show --body"
ctl show --envelope "$A"
is "$(printf '%s\n' "$OUT" | head -n 1)|$(printf '%s\n' "$OUT" | grep -c '^rcpt ')" "MMQ 1|2" "show --envelope"

# --------------------------------------------------------------- bad IDs
ctl show 18
is "$RC" 66 "an unknown ID: exit 66 (EX_NOINPUT)"
ctl show 'xyz;rm'
is "$RC:$ERR" "64:mmqctl: error: xyz;rm: not a queue ID" "a malformed ID: exit 64, said so"
ctl show "${A:0:5}"
is "$RC" 64 "an ambiguous prefix: exit 64"
is "$(printf '%s\n' "$ERR" | grep -c '^  ')" 3 "an ambiguous prefix: the candidates are listed"
ctl show
is "$RC" 64 "show without an ID: usage"

# ------------------------------------------------------------- hold/release
ctl hold "$A"
is "$RC" 0 "hold: exit 0"
check "hold: out/ entry moved to hold/BB/NAME@out" test -f "$(path_of hold "$A@out")"
check "hold: nothing left in out/" test ! -e "$(path_of out "$A")"
ctl queue hold
case $OUT in *"hold@out"*"next=held"*) pass "queue: a held entry shows its origin" ;; *) fail "queue: a held entry shows its origin"; diag "$OUT" ;; esac
ctl hold "$A"
is "$RC" 65 "hold of a held entry: exit 65 (EX_DATAERR)"
ctl release "$B"
is "$RC" 65 "release of an entry that is not held: exit 65"
touch -d '-2 hours' "$(path_of hold "$A@out")"
ctl release "${A:0:20}"
is "$RC" 0 "release: exit 0"
check "release: back in out/ under its ready name" test -f "$(path_of out "$A")"
held=$(entry_field "$(path_of out "$A")" held)
check "release: the time held (2 h) is recorded in \"held\" ($held)" test "${held:-0}" -ge 7199 -a "${held:-0}" -le 7300
is "$(entry_field "$(path_of out "$A")" approved)" "" "release to out/: no approved flag"
is "$(entry_field "$(path_of out "$A")" sender)" "$HOSTILE" "release: the envelope is otherwise unchanged"
check "release: no temporary file left" test -z "$(tmp_files)"

# ------------------------------------------------------------------- retry
ctl retry "$B"
is "$RC" 0 "retry: exit 0"
check "retry: deferred/ entry moved to out/" test -f "$(path_of out "$B")"
na=$(entry_field "$(path_of out "$B")" next-attempt)
check "retry: next-attempt is now" test "$na" -ge $(($(date +%s) - 5))
ctl retry "$B"
case $RC:$OUT in "0:${B:0:10}"*": already due (in out/)") pass "retry of an out/ entry: nothing to do" ;; *) fail "retry of an out/ entry: nothing to do"; diag "$RC:$OUT" ;; esac
ctl retry "$C"
is "$RC" 65 "retry of an in/ entry: exit 65"
mkentry deferred dev bob@example.org
B2=$NEW
mkentry deferred announce bob@example.org
B3=$NEW
touch -d '+1 hour' "$(path_of deferred "$B2")" "$(path_of deferred "$B3")"
ctl retry --all --list dev
is "$RC:$OUT" "0:due now: 1 entry, 0 busy or gone" "retry --all --list dev"
check "retry --all --list: the dev entry is due" test -f "$(path_of out "$B2")"
check "retry --all --list: the announce entry is not" test -f "$(path_of deferred "$B3")"
ctl retry --all
is "$OUT" "due now: 1 entry, 0 busy or gone" "retry --all"
ctl retry
is "$RC" 64 "retry without ID or --all: usage"

# ------------------------------------------------------------------- busy
F=$(path_of out "$B")
sleep 300 &
LIVE=$!
at_exit kill "$LIVE"
start=$(awk '{ print $22 }' "/proc/$LIVE/stat")
mv "$F" "$F#testnode#$LIVE#$start"
ctl hold "$B"
is "$RC" 75 "hold of an entry claimed by a live process: exit 75 (EX_TEMPFAIL)"
check "hold of a claimed entry: says busy" grep -q 'entry busy or gone' "$W/ctl.err"
check "hold of a claimed entry: the claim is untouched" test -f "$F#testnode#$LIVE#$start"
ctl delete -y "$B"
is "$RC" 75 "delete of a claimed entry: exit 75"
check "delete of a claimed entry: untouched" test -f "$F#testnode#$LIVE#$start"
ctl queue
case $OUT in *"claimed=testnode#$LIVE"*) pass "queue: a claimed entry shows its claimer" ;; *) fail "queue: a claimed entry shows its claimer"; diag "$OUT" ;; esac
mv "$F#testnode#$LIVE#$start" "$F"

# ------------------------------------------------------------------ delete
ctl delete "$B"
is "$RC" 64 "delete without -y, stdin not a terminal: exit 64"
check "delete without -y: nothing deleted" test -f "$F"
if command -v script >/dev/null 2>&1; then
    echo n | script -qec "$(printf '%q ' "$MMQCTL" -c "$CONF" delete "$B")" /dev/null >"$W/tty.out" 2>&1
    rc=$?
    is "$rc" 1 "delete on a terminal, answered n: exit 1"
    check "delete on a terminal: the prompt" grep -q 'delete 1 entry? \[y/N\]' "$W/tty.out"
    check "delete on a terminal, answered n: nothing deleted" test -f "$F"
else
    skip "script(1) not installed" 3
fi
ctl delete -y "$B" "nonexistent0"
is "$RC" 64 "delete with one bad ID: exit 64 (malformed)"
check "delete with one bad ID: nothing deleted" test -f "$F"
ctl delete -y "$B"
is "$RC" 0 "delete -y: exit 0"
check "delete -y: the entry is gone" test ! -e "$F"
mkentry in announce erin@example.org
I=$NEW
printf 'staged\n' >"$SPOOL/stage/$I.0"
ctl delete -y "$I"
is "$RC" 0 "delete of an in/ post: exit 0"
check "delete of an in/ post: what the list stage staged for it is removed" test ! -e "$SPOOL/stage/$I.0"
ctl delete -y --all --queue out --list dev
is "$RC:$OUT" "0:deleted: 1 entry, 0 busy or gone" "delete --all --queue out --list dev"
ctl delete -y --all
is "$RC" 64 "delete --all without --queue: usage"

# ----------------------------------------------------------------- requeue
mkentry out announce dave@example.org
R=$NEW
sed -i 's/^recoveries 0$/recoveries 3/' "$(path_of out "$R")"
mv "$(path_of out "$R")" "$(path_of bad "$R@out")"
ctl requeue "$R"
is "$RC" 0 "requeue: exit 0"
check "requeue: bad/BB/NAME@out back to out/BB/NAME" test -f "$(path_of out "$R")"
is "$(entry_field "$(path_of out "$R")" recoveries)" 0 "requeue: recovery count reset"
ctl requeue "$R"
is "$RC" 65 "requeue of an entry not in bad/: exit 65"
mkentry out announce dave@example.org
U=$NEW
mv "$(path_of out "$U")" "$(path_of bad "$U@out")"
printf 'garbage\n' >"$(path_of bad "$U@out")"
ctl requeue "$U"
is "$RC" 65 "requeue of an unreadable entry: exit 65"
check "requeue of an unreadable entry: it stays in bad/" test -f "$(path_of bad "$U@out")"
ctl queue bad
case $OUT in *"(unreadable: "*) pass "queue: an unreadable entry is shown as such" ;; *) fail "queue: an unreadable entry is shown as such"; diag "$OUT" ;; esac

# ------------------------------------------------------------------- stats
ctl stats
is "$RC" 0 "stats: exit 0"
is "$(printf '%s\n' "$OUT" | awk '$1 == "out" { print $2, $3 }')" "3 6" "stats: entries and recipients of out/"
is "$(printf '%s\n' "$OUT" | awk '$1 == "TOTAL" { print $2, $3 }')" "5 5" "stats: the age histogram (all young: 5m)"
check "stats: a line per list" grep -q '^announce ' "$W/ctl.out"
check "stats: a line per slice" test "$(grep -cE '^[0-9]+ ' "$W/ctl.out")" -eq 16
ctl stats --json
check "stats --json: valid JSON" json_ok <"$W/ctl.out"
got=$(python3 -c '
import json, sys
o = json.loads(open(sys.argv[1]).read())
print(o["queues"]["out"]["entries"], len(o["slices"]), sum(s["out"] for s in o["slices"]),
      o["age_buckets"][0], o["age_buckets"][-1], o["age"][0]["list"], o["age"][0]["total"])
' "$W/ctl.out")
is "$got" "3 16 3 5m 1280m+ None 5" "stats --json: queues, slices, age buckets"

# ------------------------------------------------------------------- check
ctl check --no-agents
is "$RC" 65 "check: the unreadable bad/ entry is a problem"
check "check: the unreadable entry is named" grep -q "unreadable entry" "$W/ctl.out"
rm -f "$(path_of bad "$U@out")"
ctl check --no-agents
is "$RC:$OUT" "0:spool OK" "check --no-agents: spool OK"
ctl check
is "$RC" 65 "check: no runner for the slices is a problem"
is "$(grep -c 'no mmq-deliver runs for' "$W/ctl.out")" 1 "check: one line for the slices without mmq-deliver, not one per slice"
check "check: that line names the slices as a range" \
    grep -qF 'slices 0-15 of 16: no mmq-deliver runs for them on this node (testnode)' "$W/ctl.out"
for s in $(seq 0 15); do
    for st in process deliver; do
        # The background job itself holds the lock and becomes the sleep,
        # so killing $! ends both: "flock FILE sleep" would leave its
        # child sleep holding the lock (and the harness's pipe) for 300 s.
        (exec 9>"$SPOOL/lock/$st.testnode.$s" && flock -n 9 && exec sleep 300) &
        at_exit kill $!
    done
done
for ((i = 0; i < 100; i++)); do # until every flock(1) holds its lock
    ctl check
    [ "$RC" -eq 0 ] && break
    sleep 0.1
done
is "$RC:$OUT" "0:spool OK" "check: every slice locked by a runner: spool OK"
sleep 0 &
DEAD=$!
wait "$DEAD"
: >"$SPOOL/tmp/1.000001#testnode#$DEAD#1#1"
: >"$SPOOL/out/00/junk"
mkentry out announce x@example.org
D1=$NEW
mv "$(path_of out "$D1")" "$(path_of out "$D1")#testnode#$DEAD#1"
mkentry out announce x@example.org
D2=$NEW
mv "$(path_of out "$D2")" "$(path_of out "$D2")#othernode#4242#1"
chmod 2750 "$SPOOL/deferred/07"
ctl check
is "$RC" 65 "check: problems found: exit 65"
check "check: an orphaned temporary file" grep -q "tmp/1.000001#testnode#$DEAD#1#1: orphaned temporary file" "$W/ctl.out"
check "check: a bad file name" grep -q "out/00/junk: not an entry name" "$W/ctl.out"
check "check: a claim of a dead process" grep -q "$D1#testnode#$DEAD#1: claimed by process $DEAD, which no longer runs" "$W/ctl.out"
check "check: another node's claim is a note, not a problem" grep -q "^note: .*$D2#othernode#4242#1: claimed by process 4242 of node othernode" "$W/ctl.out"
check "check: a bad directory mode" grep -q "deferred/07/: mode 2750" "$W/ctl.out"
is "$(tail -n 1 "$W/ctl.out")" "4 problems found" "check: the count of problems (the note is not one)"
chmod 2770 "$SPOOL/deferred/07"

# ------------------------------------------------- lifetime and held time
# max_lifetime = 0: everything not delivered at once expires -- except an
# entry released after an hour in hold/, whose clock starts an hour later.
mk_spool "max_lifetime = 0;" "relay_host = \"127.0.0.1\";" "relay_port = 9;" \
    "retry_min = 60;" "smtp_timeout = 5;"
mkentry out announce list-bounces@example.org
H=$NEW
mkentry out announce list-bounces@example.org
X=$NEW
ctl hold "$H"
touch -d '-1 hour' "$(path_of hold "$H@out")"
ctl release "$H"
is "$RC" 0 "lifetime: released after an hour in hold/"
if [ -x "${MMQ_DELIVER:-}" ]; then
    timeout 60 "$MMQ_DELIVER" -c "$CONF" -1 -e 2>"$W/agent.log"
    check "lifetime: the released entry is deferred, not returned" test -f "$(path_of deferred "$H")"
    check "lifetime: the entry never held expired (control)" grep -q "$X: .*expired after" "$W/agent.log"
    check "lifetime: the released entry did not expire" test -z "$(grep "$H: .*expired" "$W/agent.log")"
else
    skip "mmq-deliver not built" 3
fi

# --------------------------------- a moderated post, released and expanded
if [ -x "${MMQ_PROCESS:-}" ] && command -v timeout >/dev/null 2>&1; then
    mk_spool
    pl_list dev 'others = "hold";' 'owners = ["owner@example.com"];'
    pl_members dev alice@example.org bob@example.net
    printf 'From: Stranger <stranger@example.net>\nSubject: hi\nMessage-ID: <s@example.net>\n\nbody\n' >"$W/stranger"
    pl_post "$W/stranger" -f stranger@example.net dev || bail_out "mmq-filter refused"
    P=$IN_NAME
    pl_process
    pl_clear_out # the held-post notices to poster and owners (t/commands-notices.sh)
    check "moderation: the post is held as hold/BB/NAME@in" test -f "$(path_of hold "$P@in")"
    ctl queue hold
    case $OUT in *"hold@in"*"dev/post <stranger@example.net>"*) pass "moderation: queue shows the held post" ;; *) fail "moderation: queue shows the held post"; diag "$OUT" ;; esac
    touch -d '-1 hour' "$(path_of hold "$P@in")"
    ctl release "${P:0:24}"
    is "$RC" 0 "moderation: release exits 0"
    check "moderation: released to in/" test -f "$(path_of in "$P")"
    is "$(entry_field "$(path_of in "$P")" approved)" 1 "moderation: the released post is approved"
    pl_process
    pl_outs
    is "${#OUTS[@]}:$(pl_rcpts "${OUTS[@]}" | sort | tr '\n' ' ')" "1:alice@example.org bob@example.net " \
        "moderation: mmq-process expands the released post to the members"
    is "$(count_files "$SPOOL/hold"):$(count_files "$SPOOL/in")" "0:0" "moderation: nothing left held or in in/"
    held=$(entry_field "${OUTS[0]}" held)
    check "moderation: the out/ entry inherits the hour held ($held)" test "${held:-0}" -ge 3599 -a "${held:-0}" -le 3700
else
    skip "mmq-process not built" 8
fi

# ------------------------------------ an entry with a journal (mmq-spool(5))
# recipient 0 settled by a delivery that was killed: every verb reads the
# entry less its journal, and a rewrite (hold, release) folds it
mk_spool
mkentry out announce list-bounces@example.org
J=$NEW
mkdir -p "$SPOOL/journal/${J:18:2}"
printf '0 a@example.org\n1 b@exam' >"$SPOOL/journal/${J:18:2}/$J" # + a torn line
ctl queue
case $OUT in *"rcpts=1 "*) pass "journal: queue counts the recipients still to deliver" ;; *) fail "journal: queue counts the recipients still to deliver"; diag "$OUT" ;; esac
ctl show --envelope "$J"
is "$(printf '%s\n' "$OUT" | grep '^rcpt ')" "rcpt b@example.org" "journal: show prints the envelope less the settled recipient"
ctl hold "$J"
ctl release "$J"
is "$RC" 0 "journal: hold and release"
check "journal: the release's rewrite folded the journal" test ! -e "$SPOOL/journal/${J:18:2}/$J"
is "$(grep '^rcpt ' "$(path_of out "$J")")" "rcpt b@example.org" "journal: the entry now holds only the unsettled recipient"

done_testing
