#!/bin/bash
# commands: email commands in the list stage (process/command.c), through
# mmq-filter and mmq-process -1, checked on out/, the members file and the
# pending/used state; the round trip ends at smtp-sink through mmq-deliver.
#
#   1  mmqctl init: the token secret, mode 0640
#   2  subscribe by -join (policy confirm): a confirmation request to the
#      address (Reply-To LIST-confirm+TOKEN, Subject "confirm TOKEN",
#      Auto-Submitted: auto-replied, envelope sender LIST-bounces) and a
#      reply; the plain reply to it makes a member; delivered through
#      mmq-deliver to smtp-sink, then a post reaches the new member
#   3  reused, forged, malformed and expired (libfaketime) tokens refused
#   4  -request: Subject and body commands, quoted text, signature, 10
#      lines, end, help; another address always confirms
#   5  policies: open, closed, approve (owners' reply; mmqctl members
#      --pending / approve / reject), unsubscribe confirm and open
#   6  safety, each next to a control that is answered: null sender,
#      Auto-Submitted, Precedence bulk/junk/list, List-Id, List-Help,
#      X-BeenThere, our X-Loop, MAILER-DAEMON, postmaster From:, -bounces
#      sender; max_autoresponses_per_day
#   7  mmqctl members add
#   8  hostile input: 10,000 command lines, a 1 MB Subject, tokens and
#      addresses of every wrong shape
set -u
. "${top_srcdir:-$(dirname "$0")/..}/t/lib.sh"
. "${top_srcdir:-$(dirname "$0")/..}/t/process-lib.sh"

pl_init
mk_spool
W=$T
D=$PL_DOMAIN
M=$LISTS/dev.members
BIG='max_autoresponses_per_day = 1000;' # the rate limit has its own test in 6
pl_list dev 'owners = ["owner@example.org"];' "$BIG" 'posters = "anyone";'
pl_members dev alice@example.org

# ------------------------------------------------------------------ 1
is "$(stat -c %a "$SPOOL/secret")" 640 "init: SPOOL/secret has mode 0640"
is "$(tr -d '\n' <"$SPOOL/secret" | grep -c '^[0-9a-f]\{64\}$')" 1 "init: 64 hex digits"
cp "$SPOOL/secret" "$W/secret.1"
"$MMQCTL" -c "$CONF" init >/dev/null 2>&1
check "init again keeps the secret" cmp -s "$SPOOL/secret" "$W/secret.1"

# mail FILE FROM SUBJECT [EXTRA-HEADER] [BODY]
mail() {
    printf 'From: %s\nTo: x@%s\nSubject: %s\nMessage-ID: <%s@example.net>\n%s\n%s\n' \
        "$2" "$D" "$3" "$RANDOM$RANDOM" "${4:+$4$'\n'}" "${5:-}" >"$1"
}
# send FILE SENDER RCPT-LOCALPART: filter, process, OUTS
send() {
    pl_clear_out
    pl_post "$1" -f "$2" -r "$3@$D" dev || bail_out "mmq-filter refused $1"
    pl_process
    [ "$PRC" -eq 0 ] || diag "mmq-process exited $PRC: $(tail -n 5 "$PLOG")"
    pl_outs
}
# outmsg SUBJECT-PREFIX: the message of the out/ entry whose Subject starts so
outmsg() {
    local f
    for f in "${OUTS[@]}"; do
        pl_msg "$f" "$W/m"
        if pl_hvals "$W/m" Subject | grep -q "^$1"; then
            cat "$W/m"
            return 0
        fi
    done
    return 1
}
reply_text() { outmsg "The results" | tr -d '\r'; }
token_of() { outmsg "confirm " | tr -d '\r' | sed -n 's/^Subject: confirm \([0-9a-z]*\)$/\1/p'; }
not() { ! "$@"; }
members_has() { grep -qix "$1" "$M"; }

# ------------------------------------------------------------------ 2
mail "$W/join" "Bob <bob@example.net>" "please"
send "$W/join" bob@example.net dev-join
is "${#OUTS[@]}|$(pl_rcpts "${OUTS[@]}" | sort -u | tr '\n' ' ')" "2|bob@example.net " \
    "join: a confirmation request and a reply, both to bob"
TOK=$(token_of)
is "${#TOK}" 41 "join: the token has 41 characters"
outmsg "confirm " | tr -d '\r' >"$W/conf"
is "$(pl_hvals "$W/conf" Reply-To)" "dev-confirm+$TOK@$D" "join: Reply-To dev-confirm+TOKEN@$D"
is "$(pl_hvals "$W/conf" Auto-Submitted)" "auto-replied" "join: Auto-Submitted: auto-replied"
is "$(pl_sender "${OUTS[0]}")|$(pl_sender "${OUTS[1]}")" "dev-bounces@$D|dev-bounces@$D" \
    "join: envelope sender dev-bounces@$D"
check "join: bob is not a member yet" not members_has bob@example.net
check "join: the reply says a confirmation was sent" grep -q "confirmation request was sent to bob@example.net" <(reply_text)
is "$(grep -c "command subscribe address=bob@example.net from=bob@example.net: confirmation requested" "$PLOG")" 1 \
    "join: one log line with list, address, command and outcome"
is "$("$MMQCTL" -c "$CONF" members dev --pending | awk 'NR>1{print $1}')" "bob@example.net" \
    "mmqctl members --pending lists bob"

# the confirmation goes through mmq-deliver to smtp-sink; bob "replies"
HAVE_SINK=0
if [ -x "$MMQ_DELIVER" ] && pl_sink_start "$W/sink"; then
    HAVE_SINK=1
    write_conf 'relay_host = "127.0.0.1";' "relay_port = $SINK_PORT;" 'connections = 1;' \
        'smtp_timeout = 10;'
    timeout 60 "$MMQ_DELIVER" -c "$CONF" -1 -e 2>"$W/deliver.log"
    is "$?" 0 "round trip: mmq-deliver -1 drains out/"
    got=$(sink_dumps "$W/sink" | xargs grep -l "^Subject: confirm $TOK" | head -1)
    check "round trip: the confirmation reached smtp-sink" test -n "$got"
    rt=$(tr -d '\r' <"$got" | sed -n 's/^Reply-To: //p')
    is "$rt" "dev-confirm+$TOK@$D" "round trip: the delivered confirmation has the Reply-To"
else
    skip "smtp-sink or mmq-deliver missing" 3
    rt="dev-confirm+$TOK@$D"
fi
mail "$W/confirm" "Bob <bob@example.net>" "Re: confirm $TOK" "" "> quoted confirmation text
> confirm $TOK"
send "$W/confirm" bob@example.net "${rt%@*}"
check "confirm: bob is a member" members_has bob@example.net
check "confirm: the reply says subscribed" grep -q "bob@example.net subscribed" <(reply_text)
is "$("$MMQCTL" -c "$CONF" members dev --pending | awk 'NR>1' | wc -l)" 0 "confirm: nothing pending any more"
if [ "$HAVE_SINK" -eq 1 ]; then
    mail "$W/post" "alice@example.org" "hello members"
    pl_clear_out
    pl_post "$W/post" -f alice@example.org dev && pl_process
    timeout 60 "$MMQ_DELIVER" -c "$CONF" -1 -e 2>>"$W/deliver.log"
    check "round trip: the next post reached bob at smtp-sink" \
        grep -q "bob@example.net" <(for f in $(sink_dumps "$W/sink" | xargs grep -l "^Subject: hello members"); do
            sed -n 's/^X-Rcpt-Args: *<\([^>]*\)>.*/\1/p' "$f"; done)
else
    skip "smtp-sink or mmq-deliver missing" 1
fi

# ------------------------------------------------------------------ 3
send "$W/confirm" bob@example.net "dev-confirm+$TOK"
check "reuse: refused" grep -q "refused: this token was used already" <(reply_text)
is "$(grep -cix bob@example.net "$M")" 1 "reuse: bob is in the members file once"
FORGED=${TOK:0:40}$([ "${TOK:40:1}" = 0 ] && echo 1 || echo 0)
send "$W/confirm" bob@example.net "dev-confirm+$FORGED"
check "forged: refused" grep -q "refused: not a token of this list (forged" <(reply_text)
FORGED2=s$(printf '%08x' $(($(date +%s) + 86400)))$(printf '0%.0s' {1..32})
send "$W/confirm" mallory@example.net "dev-confirm+$FORGED2"
check "forged (made up from scratch): refused" grep -q "forged" <(reply_text)
check "forged: mallory is not a member" not members_has mallory@example.net
for bad in x "s12345678" "${TOK}00" "q${TOK:1}" "${TOK:0:20}zz${TOK:22}"; do
    send "$W/confirm" bob@example.net "dev-confirm+$bad"
    check "malformed token \"$bad\": refused with a reply" grep -q "refused: not a" <(reply_text)
done
FT=
for f in /usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1 /usr/lib/faketime/libfaketime.so.1; do
    [ -r "$f" ] && FT=$f && break
done
mail "$W/joinc" "carol@example.net" "subscribe"
send "$W/joinc" carol@example.net dev-request
CTOK=$(token_of)
if [ -n "$FT" ]; then
    mail "$W/confc" "carol@example.net" "Re: confirm $CTOK"
    pl_clear_out
    pl_post "$W/confc" -f carol@example.net -r "dev-confirm+$CTOK@$D" dev
    # under ASan, libfaketime must not be refused for coming first
    ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0" \
        LD_PRELOAD=$FT FAKETIME=+4d pl_process
    pl_outs
    check "expired (4 days later, pending_request_life 3 days): refused" \
        grep -q "refused: this token has expired" <(reply_text)
    check "expired: carol is not a member" not members_has carol@example.net
    is "$(count_files "$SPOOL/in")" 0 "expired: the entry was finished"
    find "$SPOOL/in" -type f -delete
else
    skip "libfaketime is not installed" 3
fi

# ------------------------------------------------------------------ 4
mail "$W/req" "Dan <dan@example.net>" "Re: help" "" "SUBSCRIBE
> unsubscribe alice@example.org

join friend@example.org
end
unsubscribe"
send "$W/req" dan@example.net dev-request
reply_text >"$W/r"
check "request: help in the Subject answered" grep -q "^> help" "$W/r"
check "request: SUBSCRIBE (any case) asked dan to confirm" grep -q "confirmation request was sent to dan@example.net" "$W/r"
check "request: the quoted line was ignored" not grep -q "alice" "$W/r"
check "request: another address must confirm" grep -q "confirmation request was sent to friend@example.org" "$W/r"
check "request: nothing after end" not grep -q "^> unsubscribe" "$W/r"
is "$(pl_rcpts "${OUTS[@]}" | sort | tr '\n' ' ')" "dan@example.net dan@example.net friend@example.org " \
    "request: a confirmation to each address and one reply"
check "request: friend is not a member without confirming" not members_has friend@example.org
mail "$W/sig" "dan@example.net" "hi" "" "help
-- 
subscribe"
send "$W/sig" dan@example.net dev-request
check "request: stops at the signature" not grep -q "^> subscribe" <(reply_text)
mail "$W/prose" "dan@example.net" "hi" "" "Hello, please add me
subscribe"
send "$W/prose" dan@example.net dev-request
check "request: stops at the first line that is not a command" grep -q "not a command: the rest was ignored" <(reply_text)
check "request: ... and did not run the next line" not grep -q "^> subscribe" <(reply_text)

# ------------------------------------------------------------------ 5
pl_list dev 'owners = ["owner@example.org"];' "$BIG" 'posters = "anyone";' 'subscribe_policy = "open";' \
    'unsubscribe_policy = "open";'
mail "$W/eve" "eve@example.net" "subscribe"
send "$W/eve" eve@example.net dev-request
check "open: eve is a member at once" members_has eve@example.net
mail "$W/eve2" "eve@example.net" "subscribe frank@example.org"
send "$W/eve2" eve@example.net dev-request
check "open: another address still confirms" not members_has frank@example.org
check "open: a confirmation went to frank" grep -q frank@example.org <(pl_rcpts "${OUTS[@]}")
mail "$W/eve3" "eve@example.net" "unsubscribe"
send "$W/eve3" eve@example.net dev-leave
check "unsubscribe open: eve is gone" not members_has eve@example.net
pl_list dev 'owners = ["owner@example.org"];' "$BIG" 'subscribe_policy = "closed";'
send "$W/eve" eve@example.net dev-request
check "closed: refused" grep -q "refused: this list does not take subscriptions" <(reply_text)
check "closed: eve is not a member" not members_has eve@example.net
pl_list dev 'owners = ["owner@example.org"];' "$BIG" 'subscribe_policy = "approve";'
for who in gina hank; do
    mail "$W/$who" "$who@example.net" "subscribe"
    send "$W/$who" "$who@example.net" dev-request
    t=$(token_of)
    mail "$W/$who.c" "$who@example.net" "Re: confirm $t"
    send "$W/$who.c" "$who@example.net" "dev-confirm+$t"
    check "approve: $who confirmed, not yet a member" not members_has "$who@example.net"
    check "approve: the owners were asked" grep -q owner@example.org <(pl_rcpts "${OUTS[@]}")
    eval "ATOK_$who=\$(token_of)"
done
is "$("$MMQCTL" -c "$CONF" members dev --pending | awk 'NR>1 && $3 == "(owner" {print $1}' | sort | tr '\n' ' ')" \
    "gina@example.net hank@example.net " "--pending: gina and hank await an owner"
"$MMQCTL" -c "$CONF" members dev approve gina@example.net >"$W/ap" 2>&1
is "$?" 0 "mmqctl members approve gina: exit 0"
check "approve by mmqctl: gina is a member" members_has gina@example.net
mail "$W/own" "owner@example.org" "Re: confirm $ATOK_hank"
send "$W/own" owner@example.org "dev-confirm+$ATOK_hank"
check "approve by the owner's reply: hank is a member" members_has hank@example.net
"$MMQCTL" -c "$CONF" members dev approve hank@example.net >"$W/ap2" 2>&1
is "$?" 67 "mmqctl approve after the owner's reply: nothing awaits (EX_NOUSER)"
pl_list dev 'owners = ["owner@example.org"];' "$BIG"
mail "$W/bobu" "bob@example.net" "unsubscribe"
send "$W/bobu" bob@example.net dev-leave
check "unsubscribe confirm: bob still a member until he confirms" members_has bob@example.net
t=$(token_of)
mail "$W/bobc" "bob@example.net" "Re: confirm $t"
send "$W/bobc" bob@example.net "dev-confirm+$t"
check "unsubscribe confirm: bob is gone" not members_has bob@example.net

# ------------------------------------------------------------------ 6
# never FILE SENDER FROM EXTRA: not answered, while the same without EXTRA is
never() {
    local name=$1 sender=$2 from=$3 extra=$4
    mail "$W/n" "$from" "help" "$extra"
    send "$W/n" "$sender" dev-request
    is "${#OUTS[@]}" 0 "safety: no answer to $name"
    check "safety: $name logged" grep -q "not answered" "$PLOG"
}
mail "$W/ctl" "zed@example.net" "help"
send "$W/ctl" zed@example.net dev-request
is "${#OUTS[@]}" 1 "safety control: plain help from zed is answered"
never "the null sender" "" zed@example.net ""
never "Auto-Submitted: auto-replied" zed@example.net zed@example.net "Auto-Submitted: auto-replied"
never "Auto-Submitted: auto-generated" zed@example.net zed@example.net "Auto-Submitted: auto-generated"
never "Precedence: bulk" zed@example.net zed@example.net "Precedence: bulk"
never "Precedence: junk" zed@example.net zed@example.net "Precedence: junk"
never "Precedence: list" zed@example.net zed@example.net "Precedence: list"
never "List-Id" zed@example.net zed@example.net "List-Id: <other.example.com>"
never "List-Help" zed@example.net zed@example.net "List-Help: <mailto:x-request@example.com>"
never "X-BeenThere" zed@example.net zed@example.net "X-BeenThere: other@example.com"
never "our own X-Loop" zed@example.net zed@example.net "X-Loop: dev-request@$D"
never "MAILER-DAEMON" MAILER-DAEMON@example.net zed@example.net ""
never "a postmaster From:" zed@example.net "postmaster@example.net" ""
never "another list's -bounces sender" other-bounces@example.com zed@example.net ""
mail "$W/no" zed@example.net "help" "Auto-Submitted: no"
send "$W/no" zed@example.net dev-request
is "${#OUTS[@]}" 1 "safety: Auto-Submitted: no is answered"
pl_list dev 'owners = ["owner@example.org"];' 'max_autoresponses_per_day = 3;'
n=0
for i in 1 2 3 4 5; do
    mail "$W/rl" "ray@example.net" "help"
    send "$W/rl" ray@example.net dev-request
    n=$((n + ${#OUTS[@]}))
done
is "$n" 3 "rate limit: 3 replies to ray out of 5 requests (max_autoresponses_per_day = 3)"
check "rate limit: logged" grep -q "max_autoresponses_per_day (3) reached" "$PLOG"
pl_list dev 'owners = ["owner@example.org"];' "$BIG"

# ------------------------------------------------------------------ 7
"$MMQCTL" -c "$CONF" members dev add ivan@example.net Ivan@example.net jo@example.net >"$W/add" 2>/dev/null
is "$?|$(cat "$W/add")" "0|dev: 2 added, 1 already members" "mmqctl members add: 2 added (case-insensitive duplicate)"
"$MMQCTL" -c "$CONF" members dev add ivan@example.net >"$W/add" 2>/dev/null
is "$(cat "$W/add")|$(grep -cix ivan@example.net "$M")" "dev: 0 added, 1 already members|1" "mmqctl members add again: nothing twice"
"$MMQCTL" -c "$CONF" members dev add 'not an address' >"$W/add" 2>/dev/null
is "$?" 65 "mmqctl members add: a bad address is refused (EX_DATAERR)"

# ------------------------------------------------------------------ 8
pl_list dev 'owners = ["owner@example.org"];' 'max_autoresponses_per_day = 1000;'
{ printf 'From: h@example.net\nSubject: x\n\n'; for i in $(seq 10000); do echo help; done; } >"$W/10k"
send "$W/10k" h@example.net dev-request
is "$PRC|$(reply_text | grep -c '^> help')" "0|10" "hostile: 10,000 command lines: 10 read"
{ printf 'From: h@example.net\nSubject: '; head -c 1048576 /dev/zero | tr '\0' 'a'; printf '\n\nhelp\n'; } >"$W/1m"
send "$W/1m" h@example.net dev-request
is "$PRC|${#OUTS[@]}" "0|1" "hostile: a 1 MB Subject: answered, no crash"
for a in '"a b"@example.net' '<x@example.net>(comment)' 'a@b@example.net' "$(printf 'caf\xe9@example.net')" \
    '@example.net' 'x@' "$(head -c 3000 /dev/zero | tr '\0' 'x')@example.net"; do
    mail "$W/odd" h@example.net "subscribe $a"
    send "$W/odd" h@example.net dev-request
    check "hostile address ${a:0:30}: refused with a reply" grep -q "refused: not an address\|not a command\|No command was found" <(reply_text)
done
mail "$W/oddfrom" '"Odd \"quoted\" (comment)" <odd"x@example.net>' "help"
send "$W/oddfrom" 'odd"x@example.net' dev-request
is "$PRC|${#OUTS[@]}" "0|0" "hostile From: and sender: no usable address, silence"
check "hostile: no entry left in in/ or bad/" test "$(count_files "$SPOOL/in")$(count_files "$SPOOL/bad")" = 00

done_testing
