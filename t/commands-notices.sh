#!/bin/bash
# commands-notices: the list's notices (process/hold.c, process/command.c,
# shared/held.c, shared/listmail.c) through mmq-filter and mmq-process -1,
# checked on out/, hold/ and the members file; delivered by mmq-deliver to
# smtp-sink where it says so.
#
#   1  a held post: the poster's "awaits approval" and the owners' summary
#      (From, Subject, size, reason; approve/reject/discard tokens; Reply-To
#      LIST-confirm+TOKEN, Subject "confirm TOKEN"), both at smtp-sink
#   2  an owner's plain reply approves: the post reaches the member (sink);
#      the same reply again, and the reject token after it, are refused
#   3  "confirm REJECT-TOKEN" (and "reject APPROVE-TOKEN") to -request: the
#      post is gone, the poster told
#   4  the discard token: gone, nobody but the owner answered
#   5  a forged token: refused, the post still held
#   6  mmqctl release and an approve reply: release first, reply first, and
#      both at once (8 rounds): exactly one release each time
#   7  crash states (held.h): a reply killed after its record with the post
#      claimed by a dead process (recovered, released once); a rejecting
#      reply killed before its act, then mmqctl release (the reply lost: no
#      rejection notice)
#   8  safety: no poster notice for Precedence bulk, Auto-Submitted, a List-Id,
#      the null sender, MAILER-DAEMON; max_autoresponses_per_day (each next
#      to the control of section 1, which is told)
#   9  welcome on confirm, goodbye on unsubscribe, welcome_file, send_*
#      false, mmqctl members add|remove --notify (and nothing without it),
#      subscribe_policy approve: welcome on the owner's reply and on mmqctl
#      members approve
#  10  kill -9 at random instants of the hold and of the approving reply,
#      and (strace) at each rename/link of both: one notice, one summary,
#      the post released once, one reply
set -u
. "${top_srcdir:-$(dirname "$0")/..}/t/lib.sh"
. "${top_srcdir:-$(dirname "$0")/..}/t/process-lib.sh"

pl_init
mk_spool
W=$T
D=$PL_DOMAIN
M=$LISTS/dev.members
LIST_CONF=('owners = ["owner@example.org"];' 'others = "hold";'
    'unsubscribe_policy = "open";')
pl_list dev "${LIST_CONF[@]}" 'max_autoresponses_per_day = 1000;'
pl_members dev alice@example.org

# mail FILE FROM SUBJECT [EXTRA-HEADER] [BODY]
mail() {
    printf 'From: %s\nTo: dev@%s\nSubject: %s\nMessage-ID: <%s@example.net>\n%s\n%s\n' \
        "$2" "$D" "$3" "$RANDOM$RANDOM" "${4:+$4$'\n'}" "${5:-body}" >"$1"
}
# send FILE SENDER RCPT-LOCALPART: filter, process, OUTS
send() {
    pl_clear_out
    pl_post "$1" -f "$2" -r "$3@$D" dev || bail_out "mmq-filter refused $1"
    pl_process
    [ "$PRC" -eq 0 ] || diag "mmq-process exited $PRC: $(tail -n 5 "$PLOG")"
    pl_outs
}
# outmsg SUBJECT-PREFIX: the message (CR removed) of the out/ entry whose
# Subject starts so; its recipients in OUTRCPT
outmsg() {
    local f
    for f in "${OUTS[@]}"; do
        pl_msg "$f" "$W/m"
        if pl_hvals "$W/m" Subject | grep -q "^$1"; then
            OUTRCPT=$(pl_rcpts "$f" | sort | tr '\n' ' ')
            tr -d '\r' <"$W/m"
            return 0
        fi
    done
    return 1
}
nout() { pl_outs; echo "${#OUTS[@]}"; }
# posts SUBJECT: run what in/ holds, then count the out/ entries of the post
posts() {
    local f n=0
    pl_process
    pl_outs
    for f in "${OUTS[@]}"; do
        pl_msg "$f" "$W/m"
        pl_hvals "$W/m" Subject | grep -qx "$1" && n=$((n + 1))
    done
    echo "$n"
}
nhold() { count_files "$SPOOL/hold"; }
not() { ! "$@"; }
# hold_post FILE FROM SENDER: post a stranger's message, held; HELD its name
hold_post() {
    send "$1" "$3" dev
    HELD=$IN_NAME
}
# the owners' summary of the post just held: APPROVE, REJECT, DISCARD
tokens() {
    outmsg "confirm " >"$W/summary" || return 1
    APPROVE=$(sed -n 's/^Subject: confirm \([0-9a-z]*\)$/\1/p' "$W/summary")
    REJECT=$(grep -o "confirm r[0-9a-f]*" "$W/summary" | head -1 | cut -d' ' -f2)
    DISCARD=$(grep -o "confirm d[0-9a-f]*" "$W/summary" | head -1 | cut -d' ' -f2)
}
reply_text() { outmsg "The results"; }

# ------------------------------------------------------------------ 1
mail "$W/p1" "Stranger <stranger@example.net>" "first words"
hold_post "$W/p1" x stranger@example.net
is "$(nhold)|$(nout)" "1|2" "held: the post in hold/, two notices in out/"
outmsg "Your message to dev@$D awaits approval" >"$W/pn"
check "held: the poster's notice" test -s "$W/pn"
is "$OUTRCPT" "stranger@example.net " "held: the notice goes to the poster (From:)"
is "$(pl_hvals "$W/pn" Auto-Submitted)" auto-replied "held: poster notice Auto-Submitted: auto-replied"
check "held: the notice names the Subject" grep -q "Subject: first words" "$W/pn"
tokens
is "$OUTRCPT" "owner@example.org " "held: the summary goes to the owners"
is "${#APPROVE}|${APPROVE:0:1}|${#REJECT}|${#DISCARD}" "41|p|41|41" "held: three tokens of 41 characters"
is "$(pl_hvals "$W/summary" Reply-To)" "dev-confirm+$APPROVE@$D" "held: Reply-To dev-confirm+APPROVE"
check "held: summary has From" grep -q "From:    Stranger <stranger@example.net>" "$W/summary"
check "held: summary has Subject" grep -q "Subject: first words" "$W/summary"
check "held: summary has the size" grep -Eq "Size: +[0-9]+ bytes" "$W/summary"
check "held: summary has the reason" grep -q "Held: .*may not post to dev@$D" "$W/summary"
for f in "${OUTS[@]}"; do
    is "$(pl_sender "$f")" "dev-bounces@$D" "held: envelope sender dev-bounces ($(basename "$f" | cut -c1-8))"
done
HAVE_SINK=0
if [ -x "$MMQ_DELIVER" ] && pl_sink_start "$W/sink"; then
    HAVE_SINK=1
    write_conf 'relay_host = "127.0.0.1";' "relay_port = $SINK_PORT;" 'connections = 1;' \
        'smtp_timeout = 10;'
    timeout 60 "$MMQ_DELIVER" -c "$CONF" -1 -e 2>"$W/deliver.log"
    is "$?" 0 "held: mmq-deliver -1 drains out/"
    check "held: the poster's notice reached smtp-sink" test -n \
        "$(sink_dumps "$W/sink" | xargs grep -l "awaits approval" | head -1)"
    got=$(sink_dumps "$W/sink" | xargs grep -l "^Subject: confirm $APPROVE" | head -1)
    check "held: the owners' summary reached smtp-sink" test -n "$got"
    RT=$(tr -d '\r' <"$got" | sed -n 's/^Reply-To: //p')
else
    skip "smtp-sink or mmq-deliver missing" 3
    RT="dev-confirm+$APPROVE@$D"
fi

# ------------------------------------------------------------------ 2
mail "$W/ok" "Owner <owner@example.org>" "Re: confirm $APPROVE" "" "> quoted summary"
send "$W/ok" owner@example.org "${RT%@*}"
is "$(nhold)" 0 "approve: hold/ is empty"
check "approve: the owner is told" grep -q "was approved" <(reply_text)
check "approve: one log line" grep -q "held post $HELD approved by an owner's reply" "$PLOG"
is "$(posts "first words")" 1 "approve: the post is released (one out/ entry)"
outmsg "first words" >/dev/null
is "$OUTRCPT" "alice@example.org " "approve: the released post goes to the member"
if [ "$HAVE_SINK" -eq 1 ]; then
    timeout 60 "$MMQ_DELIVER" -c "$CONF" -1 -e 2>>"$W/deliver.log"
    check "approve: the post reached alice at smtp-sink" grep -q "alice@example.org" \
        <(for f in $(sink_dumps "$W/sink" | xargs grep -l "^Subject: first words"); do
            sed -n 's/^X-Rcpt-Args: *<\([^>]*\)>.*/\1/p' "$f"; done)
else
    skip "smtp-sink or mmq-deliver missing" 1
fi
send "$W/ok" owner@example.org "dev-confirm+$APPROVE"
check "approve again: refused" grep -q "refused: this token was used already" <(reply_text)
is "$(count_files "$SPOOL/in")|$(nhold)" "0|0" "approve again: nothing released"
mail "$W/no" "Owner <owner@example.org>" "Re: confirm $REJECT"
send "$W/no" owner@example.org "dev-confirm+$REJECT"
check "reject after approve: decided already" grep -q "decided already (approve by an owner's reply)" <(reply_text)
check "reject after approve: no rejection notice" not outmsg "Your message to dev@$D was rejected"

# ------------------------------------------------------------------ 3
mail "$W/p2" "Stranger <stranger@example.net>" "second words"
hold_post "$W/p2" x stranger@example.net
tokens
mail "$W/rej" "owner@example.org" "commands" "" "confirm $REJECT"
send "$W/rej" owner@example.org dev-request
is "$(nhold)|$(count_files "$SPOOL/in")" "0|0" "reject: the post is gone"
check "reject: the owner is told" grep -q "was rejected" <(reply_text)
outmsg "Your message to dev@$D was rejected" >"$W/rn"
is "$OUTRCPT" "stranger@example.net " "reject: the poster is told"
check "reject: the notice names the Subject" grep -q "Subject: second words" "$W/rn"
check "reject: no post to the members" not outmsg "second words"
mail "$W/p2b" "Stranger <stranger@example.net>" "second again"
hold_post "$W/p2b" x stranger@example.net
tokens
mail "$W/rej" "owner@example.org" "commands" "" "reject $APPROVE"
send "$W/rej" owner@example.org dev-request
is "$(nhold)|$(count_files "$SPOOL/in")" "0|0" "reject APPROVE-TOKEN: the post is gone"
outmsg "Your message to dev@$D was rejected" >/dev/null
is "$OUTRCPT" "stranger@example.net " "reject APPROVE-TOKEN: the poster is told"

# ------------------------------------------------------------------ 4
mail "$W/p3" "Stranger <stranger@example.net>" "third words"
hold_post "$W/p3" x stranger@example.net
tokens
mail "$W/dis" "owner@example.org" "Re: confirm $DISCARD"
send "$W/dis" owner@example.org "dev-confirm+$DISCARD"
is "$(nhold)|$(count_files "$SPOOL/in")" "0|0" "discard: the post is gone"
is "$(nout)|$(pl_rcpts "${OUTS[@]}")" "1|owner@example.org" "discard: only the owner is answered"
check "discard: said so" grep -q "was discarded" <(reply_text)

# ------------------------------------------------------------------ 5
mail "$W/p4" "Stranger <stranger@example.net>" "fourth words"
hold_post "$W/p4" x stranger@example.net
tokens
FORGED=${APPROVE:0:40}$([ "${APPROVE:40:1}" = 0 ] && echo 1 || echo 0)
send "$W/ok" owner@example.org "dev-confirm+$FORGED"
check "forged: refused" grep -q "forged" <(reply_text)
is "$(nhold)|$(count_files "$SPOOL/in")" "1|0" "forged: the post is still held"

# ------------------------------------------------------------------ 6
# release first (the post of 5), then the reply
"$MMQCTL" -c "$CONF" release "$HELD" >"$W/rel.out" 2>&1
is "$?" 0 "release first: mmqctl release exits 0"
send "$W/ok" owner@example.org "dev-confirm+$APPROVE"
check "release first: the reply says decided already by mmqctl" \
    grep -q "decided already (release by mmqctl)" <(reply_text)
is "$(posts "fourth words")|$(nhold)" "1|0" "release first: released once"
# reply first, then release
mail "$W/p5" "Stranger <stranger@example.net>" "fifth words"
hold_post "$W/p5" x stranger@example.net
tokens
send "$W/ok" owner@example.org "dev-confirm+$APPROVE"
"$MMQCTL" -c "$CONF" release "$HELD" >"$W/rel.out" 2>&1
rc=$?
check "reply first: mmqctl release fails ($rc: $(tr '\n' ' ' <"$W/rel.out"))" test "$rc" -ne 0
is "$(posts "fifth words")|$(nhold)" "1|0" "reply first: released once"
# both at once
once=0 ctl_won=0 reply_won=0
for round in 1 2 3 4 5 6 7 8; do
    mail "$W/pr" "Stranger <stranger@example.net>" "race $round"
    hold_post "$W/pr" x stranger@example.net
    tokens
    pl_clear_out
    pl_post "$W/ok" -f owner@example.org -r "dev-confirm+$APPROVE@$D" dev
    timeout 30 "$MMQ_PROCESS" -c "$CONF" -1 -e 2>"$W/race.log" &
    ppid=$!
    "$MMQCTL" -c "$CONF" release "$HELD" >"$W/rel.out" 2>&1
    rrc=$?
    wait "$ppid"
    # whatever is left in in/ (the released post, a reply given back) runs now
    for i in 1 2 3; do
        [ "$(count_files "$SPOOL/in")" -eq 0 ] && break
        sleep 0.2
        pl_process
    done
    pl_outs
    posts=0
    for f in "${OUTS[@]}"; do
        pl_msg "$f" "$W/m"
        pl_hvals "$W/m" Subject | grep -q "^race $round$" && posts=$((posts + 1))
    done
    [ "$posts" -eq 1 ] && [ "$(nhold)" -eq 0 ] && once=$((once + 1))
    if [ "$rrc" -eq 0 ]; then ctl_won=$((ctl_won + 1)); else reply_won=$((reply_won + 1)); fi
    [ "$posts" -eq 1 ] || diag "round $round: $posts posts, mmqctl $rrc: $(cat "$W/rel.out")"
done
is "$once" 8 "race: 8 of 8 rounds released the post exactly once"
diag "race: mmqctl release won $ctl_won rounds, the reply $reply_won"

# ------------------------------------------------------------------ 7
# a reply killed after its record, the post claimed by a dead process of
# this node: mmq-process's start-up recovery puts it back, the rerun
# releases it once
mail "$W/p7" "Stranger <stranger@example.net>" "crash one"
hold_post "$W/p7" x stranger@example.net
tokens
pl_clear_out
pl_post "$W/ok" -f owner@example.org -r "dev-confirm+$APPROVE@$D" dev
E=$IN_NAME
mkdir -p "$SPOOL/members/dev/held"
printf 'by %s\naction approve\nposter stranger@example.net\nsubject crash one\n' "$E" \
    >"$SPOOL/members/dev/held/$HELD"
B=$SPOOL/hold/${HELD:18:2}
mv "$B/$HELD@in" "$B/$HELD@in#testnode#999999#1"
pl_process
is "$(nhold)" 0 "crash after the record: hold/ empty (the dead claim recovered)"
pl_process
pl_outs
n=0
for f in "${OUTS[@]}"; do
    pl_msg "$f" "$W/m"
    pl_hvals "$W/m" Subject | grep -q "^crash one$" && n=$((n + 1))
done
is "$n" 1 "crash after the record: the post released once"
# a rejecting reply killed before its act; mmqctl release wins meanwhile
mail "$W/p8" "Stranger <stranger@example.net>" "crash two"
hold_post "$W/p8" x stranger@example.net
tokens
pl_clear_out
mail "$W/rej2" owner@example.org "Re: confirm $REJECT"
pl_post "$W/rej2" -f owner@example.org -r "dev-confirm+$REJECT@$D" dev
E=$IN_NAME
# its record, as the killed run left it
printf 'by %s\naction reject\nposter stranger@example.net\nsubject crash two\n' "$E" \
    >"$SPOOL/members/dev/held/$HELD"
"$MMQCTL" -c "$CONF" release "$HELD" >/dev/null 2>&1
is "$?" 0 "crash before the act: mmqctl release wins"
pl_process
pl_outs
check "crash before the act: the reply learns it lost" grep -q "decided already (release by mmqctl)" <(reply_text)
check "crash before the act: no rejection notice" not outmsg "Your message to dev@$D was rejected"
pl_process

# ------------------------------------------------------------------ 8
safety() { # safety NAME SENDER EXTRA-HEADER [FROM]
    mail "$W/s" "${4:-Stranger <stranger@example.net>}" "safety $1" "$3"
    hold_post "$W/s" x "$2"
    is "$(nhold)|$(nout)" "1|1" "no poster notice: $1 (held, the owners told)"
    check "no poster notice: $1: logged" grep -q "no held-post notice to the poster" "$PLOG"
    find "$SPOOL/hold" -type f -delete
}
safety "Precedence: bulk" stranger@example.net "Precedence: bulk"
safety "Auto-Submitted: auto-generated" stranger@example.net "Auto-Submitted: auto-generated"
safety "List-Id" stranger@example.net "List-Id: <other.example.net>"
safety "null sender" "" ""
safety "MAILER-DAEMON" mailer-daemon@example.net "" "MAILER-DAEMON@example.net"
pl_list dev "${LIST_CONF[@]}" 'max_autoresponses_per_day = 1;'
mail "$W/s" "Limited <limited@example.net>" "limit 1"
hold_post "$W/s" x limited@example.net
is "$(nout)" 2 "rate limit: the first held post is told"
mail "$W/s" "Limited <limited@example.net>" "limit 2"
hold_post "$W/s" x limited@example.net
is "$(nout)" 1 "rate limit: the second is not (max_autoresponses_per_day = 1)"
check "rate limit: logged" grep -q "max_autoresponses_per_day (1) reached" "$PLOG"
find "$SPOOL/hold" -type f -delete
pl_list dev "${LIST_CONF[@]}" 'max_autoresponses_per_day = 1000;'

# ------------------------------------------------------------------ 9
mail "$W/j" "Bob <bob@example.net>" "join"
send "$W/j" bob@example.net dev-join
TOK=$(outmsg "confirm " | sed -n 's/^Subject: confirm \([0-9a-z]*\)$/\1/p')
check "welcome: not before the confirmation" not outmsg "Welcome to"
mail "$W/c" "Bob <bob@example.net>" "Re: confirm $TOK"
send "$W/c" bob@example.net "dev-confirm+$TOK"
check "welcome: bob is a member" grep -qx bob@example.net "$M"
outmsg "Welcome to the list dev@$D" >"$W/w"
is "$OUTRCPT" "bob@example.net " "welcome: sent to bob on confirmation"
is "$(pl_hvals "$W/w" Auto-Submitted)|$(pl_hvals "$W/w" X-Loop)" "auto-replied|dev-request@$D" \
    "welcome: Auto-Submitted and X-Loop"
check "welcome: the built-in text" grep -q "To leave the list" "$W/w"
mail "$W/l" "Bob <bob@example.net>" "leave"
send "$W/l" bob@example.net dev-leave
check "goodbye: bob is gone" not grep -qx bob@example.net "$M"
outmsg "You have left the list dev@$D" >"$W/g"
is "$OUTRCPT" "bob@example.net " "goodbye: sent to bob on unsubscription"
send "$W/l" bob@example.net dev-leave
check "goodbye: not again for a non-member" not outmsg "You have left"
printf 'Hello from the admin of dev.\n' >"$LISTS/dev.welcome"
pl_clear_out
"$MMQCTL" -c "$CONF" members dev add carol@example.net --notify >/dev/null
is "$?" 0 "--notify add: exit 0"
check "--notify add: carol is a member" grep -qx carol@example.net "$M"
pl_outs
outmsg "Welcome to" >"$W/w2"
is "$OUTRCPT" "carol@example.net " "--notify add: welcome to carol"
check "--notify add: welcome_file's default LIST.welcome is used" grep -q "Hello from the admin" "$W/w2"
is "$(pl_sender "${OUTS[0]}")" "dev-bounces@$D" "--notify add: envelope sender dev-bounces"
pl_clear_out
"$MMQCTL" -c "$CONF" members dev add carol@example.net --notify >/dev/null
is "$(nout)" 0 "--notify add: an existing member gets nothing"
"$MMQCTL" -c "$CONF" members dev add dave@example.net >/dev/null
is "$(nout)" 0 "add without --notify: nothing queued"
"$MMQCTL" -c "$CONF" members dev remove carol@example.net --notify >/dev/null
is "$?" 0 "--notify remove: exit 0"
check "--notify remove: carol is gone" not grep -qx carol@example.net "$M"
pl_outs
outmsg "You have left" >/dev/null
is "$OUTRCPT" "carol@example.net " "--notify remove: goodbye to carol"
pl_clear_out
"$MMQCTL" -c "$CONF" members dev remove dave@example.net >/dev/null
is "$(nout)" 0 "remove without --notify: nothing queued"
"$MMQCTL" -c "$CONF" members dev enable alice@example.org --notify >/dev/null 2>&1
is "$?" 64 "--notify with enable: usage error"
# subscribe_policy approve: the welcome comes with the owner's approval
pl_list dev "${LIST_CONF[@]}" 'max_autoresponses_per_day = 1000;' 'subscribe_policy = "approve";'
approve_round() { # approve_round ADDRESS: join and confirm; AOK the owners' token
    mail "$W/j" "<$1>" "join"
    send "$W/j" "$1" dev-join
    TOK=$(outmsg "confirm " | sed -n 's/^Subject: confirm \([0-9a-z]*\)$/\1/p')
    mail "$W/c" "<$1>" "Re: confirm $TOK"
    send "$W/c" "$1" "dev-confirm+$TOK"
    AOK=$(outmsg "confirm " | sed -n 's/^Subject: confirm \([0-9a-z]*\)$/\1/p')
}
approve_round fred@example.net
check "approve policy: no welcome before the approval" not outmsg "Welcome to"
mail "$W/a" "owner@example.org" "Re: confirm $AOK"
send "$W/a" owner@example.org "dev-confirm+$AOK"
outmsg "Welcome to" >/dev/null
is "$OUTRCPT" "fred@example.net " "approve policy: welcome on the owner's reply"
approve_round gina@example.net
pl_clear_out
"$MMQCTL" -c "$CONF" members dev approve gina@example.net >/dev/null
pl_outs
outmsg "Welcome to" >/dev/null
is "$OUTRCPT" "gina@example.net " "approve policy: welcome on mmqctl members approve"
pl_clear_out
pl_list dev "${LIST_CONF[@]}" 'max_autoresponses_per_day = 1000;' 'send_welcome_message = false;' 'goodbye_file = "bye.txt";'
printf 'Farewell text.\n' >"$LISTS/bye.txt"
"$MMQCTL" -c "$CONF" members dev add erin@example.net --notify >/dev/null
is "$(nout)" 0 "send_welcome_message = false: no welcome"
"$MMQCTL" -c "$CONF" members dev remove erin@example.net --notify >/dev/null
pl_outs
check "goodbye_file (relative to lists_dir) is used" grep -q "Farewell text" <(outmsg "You have left")

# ----------------------------------------------------------------- 10
# kill -9 at a random instant of the hold, then of the approving reply;
# the reruns (start-up recovery of in/ and hold/) finish the work
pl_list dev "${LIST_CONF[@]}" 'max_autoresponses_per_day = 1000;'
killed_run() { # run mmq-process -1, killed after $1 ms (if still running)
    timeout 30 "$MMQ_PROCESS" -c "$CONF" -1 -e 2>>"$W/kill.log" &
    local pid=$!
    sleep "$(printf '%d.%03d' $(($1 / 1000)) $(($1 % 1000)))"
    kill_pid "$pid"
    wait "$pid" 2>/dev/null
}
rerun() { # until in/ is empty (bounded)
    local i
    for i in 1 2 3 4 5; do
        pl_process
        [ "$(count_files "$SPOOL/in")" -eq 0 ] && return 0
        sleep 0.3
    done
}
# how long one run takes here (ASan, load): the kills fall within it
mail "$W/pk" "Stranger <stranger@example.net>" "calibrate"
pl_post "$W/pk" -f stranger@example.net dev
t0=$(now)
pl_process
DUR=$(elapsed_ms "$t0" "$(now)")
[ "$DUR" -ge 20 ] || DUR=20
find "$SPOOL/hold" -type f -delete
good=0
for round in 1 2 3 4 5 6; do
    pl_clear_out
    mail "$W/pk" "Stranger <stranger@example.net>" "kill $round"
    pl_post "$W/pk" -f stranger@example.net dev
    HELD=$IN_NAME
    killed_run $((RANDOM % DUR))
    rerun
    pl_outs
    notes=0 sums=0
    for f in "${OUTS[@]}"; do
        pl_msg "$f" "$W/m"
        case $(pl_hvals "$W/m" Subject) in
        *"awaits approval") notes=$((notes + 1)) ;;
        "confirm p"*) sums=$((sums + 1)) ;;
        esac
    done
    tokens
    pl_clear_out
    pl_post "$W/ok" -f owner@example.org -r "dev-confirm+$APPROVE@$D" dev
    killed_run $((RANDOM % DUR))
    rerun
    rerun
    n=$(posts "kill $round")
    if [ "$notes|$sums|$n|$(nhold)|$(count_files "$SPOOL/bad")" = "1|1|1|0|0" ]; then
        good=$((good + 1))
    else
        diag "kill round $round: notices $notes, summaries $sums, posts $n, held $(nhold), bad $(count_files "$SPOOL/bad")"
    fi
done
diag "kill -9 within $DUR ms: $(cat "$W/kill.log" "$PLOG_ALL" | grep -c "recovery: [1-9]") start-ups restored a killed run's claims"
is "$good" 6 "kill -9: 6 of 6 rounds: one notice, one summary, the post released once, nothing held or in bad/"

# forced points: strace kills the run on entering its N-th renameat or
# linkat (the hold run: the notices' renames into out/, the move to hold/;
# the reply run: the claim of the reply, the used/ mark (link), the claim
# of the held post, the decision record, the rewrite, the move to in/,
# the released post's own claim and expansion, the reply's queueing)
HAVE_STRACE=0
if command -v strace >/dev/null 2>&1 &&
    strace -f -qq -o /dev/null -e trace=renameat true 2>/dev/null; then
    HAVE_STRACE=1
fi
forced_run() { # forced_run SYSCALL N: mmq-process -1 killed at the N-th SYSCALL
    strace -f -qq -o /dev/null -e trace="$1" -e inject="$1:signal=KILL:when=$2" \
        "$MMQ_PROCESS" -c "$CONF" -1 -e 2>>"$W/kill.log" &
    wait $! 2>/dev/null
}
forced() { # forced PHASE SYSCALL N
    local f notes=0 sums=0 n
    pl_clear_out
    mail "$W/pk" "Stranger <stranger@example.net>" "forced $1 $2 $3"
    pl_post "$W/pk" -f stranger@example.net dev
    HELD=$IN_NAME
    if [ "$1" = hold ]; then forced_run "$2" "$3"; fi
    rerun
    pl_outs
    for f in "${OUTS[@]}"; do
        pl_msg "$f" "$W/m"
        case $(pl_hvals "$W/m" Subject) in
        *"awaits approval") notes=$((notes + 1)) ;;
        "confirm p"*) sums=$((sums + 1)) ;;
        esac
    done
    tokens
    pl_clear_out
    pl_post "$W/ok" -f owner@example.org -r "dev-confirm+$APPROVE@$D" dev
    if [ "$1" = reply ]; then forced_run "$2" "$3"; fi
    rerun
    rerun
    n=$(posts "forced $1 $2 $3")
    pl_outs
    replies=0
    for f in "${OUTS[@]}"; do
        pl_msg "$f" "$W/m"
        pl_hvals "$W/m" Subject | grep -q "^The results" && replies=$((replies + 1))
    done
    is "$notes|$sums|$n|$replies|$(nhold)|$(count_files "$SPOOL/in")|$(count_files "$SPOOL/bad")" \
        "1|1|1|1|0|0|0" "kill -9 in the $1 run at $2 $3: one notice, one summary, released once, one reply"
}
if [ "$HAVE_STRACE" -eq 1 ]; then
    for n in 1 2 3; do forced hold renameat "$n"; done
    for n in 1 2 3 4 5 6 7 8; do forced reply renameat "$n"; done
    forced reply linkat 1
    forced reply unlinkat 1
    diag "forced: $(grep -c "recovery: [1-9]" "$PLOG_ALL") start-ups restored a killed run's claims (in all)"
else
    skip "strace cannot trace here" 13
fi

is "$(count_files "$SPOOL/bad")" 0 "no entry went to bad/"
done_testing
