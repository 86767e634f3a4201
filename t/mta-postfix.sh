#!/bin/bash
# mta-postfix: mmq behind a real Postfix, configured from the shipped
# contrib/postfix snippets (main.cf, master.cf, mmq_transport; only paths
# and ports are substituted).  A private Postfix instance (postfix -c DIR
# start, own queue_directory and data_directory, smtpd on free loopback
# ports, logging to a file through postlogd) receives a post with swaks,
# hands it through pipe(8) to mmq-filter running as user mmq; mmq-process
# and mmq-deliver (as mmq) expand it and relay it back into Postfix's
# second smtpd, which delivers it to the members' server (smtp-sink, as
# relayhost).  Then: a -bounces VERP address reaches the bounces queue, an
# unknown list and a too large post are bounced with mmq-filter's text,
# and with the spool unwritable Postfix defers (exit 75) and delivers once
# the spool is back and the queue is flushed.  DKIM: the relay smtpd keeps
# the signing milter of the shipped wiring, a private OpenDKIM started here
# from contrib/postfix/opendkim.conf (key made with opendkim-genkey), and
# dkimverify (python3-dkim) on the members' side, with the public key
# served by a private dnsmasq on a random 127.x.y.z seen only through a
# private mount namespace's /etc/resolv.conf, reports "signature ok" for
# every copy, signed d=lists.example.org, also for a post that came
# through another list first; with the signer stopped the post is
# deferred (never sent unsigned) and goes out signed once it is back.
# Last, email commands through Postfix (mta_commands in t/mta-lib.sh):
# subscribe, confirm by replying to LIST-confirm+TOKEN@, approve, post,
# unsubscribe.  Needs root; the Postfix
# master and everything else started here are stopped at exit.
set -u
. "${top_srcdir:-$(dirname "$0")/..}/t/lib.sh"
. "${top_srcdir:-$(dirname "$0")/..}/t/process-lib.sh"
. "${top_srcdir:-$(dirname "$0")/..}/t/mta-lib.sh"

POSTFIX=${POSTFIX:-/usr/sbin/postfix}
[ -x "$POSTFIX" ] || skip_all "$POSTFIX not found (Debian package postfix)"
for c in postmap postqueue postconf; do
    command -v "$c" >/dev/null 2>&1 || skip_all "$c not found (Debian package postfix)"
done
command -v opendkim >/dev/null 2>&1 || [ -x /usr/sbin/opendkim ] ||
    skip_all "opendkim not installed (Debian package opendkim; the relay smtpd signs with it)"
mta_init
mta_setup
C=$top_srcdir/contrib/postfix
mta_dkim_init
mta_dns_start

PF=$T/postfix # config_directory
mkdir -p "$PF" "$T/pfq" "$T/pfdata" || bail_out "mkdir failed"
chown postfix "$T/pfdata"
MTA_PORT=$(mta_free_port)
RELAY_PORT=$(mta_free_port)
while [ "$RELAY_PORT" = "$MTA_PORT" ]; do RELAY_PORT=$(mta_free_port); done
MAILLOG=$PF/maillog
mta_conf "$RELAY_PORT"

# ------------------------------------- OpenDKIM, from opendkim.conf
# The shipped configuration with only the socket's port, the pid file and
# the key's path substituted; in the foreground (-f), stopped at exit.
DKIM_PORT=$(mta_free_port)
sed -e "s|^Socket .*|Socket                  inet:$DKIM_PORT@127.0.0.1|" \
    -e "s|^PidFile .*|PidFile                 $DKIM_DIR/opendkim.pid|" \
    -e "s|^KeyFile .*|KeyFile                 $DKIM_DIR/$DKIM_SEL.private|" \
    "$C/opendkim.conf" >"$DKIM_DIR/opendkim.conf"
is "$(grep -c "^Domain  *$D\$" "$DKIM_DIR/opendkim.conf") $(grep -c "^Selector  *$DKIM_SEL\$" "$DKIM_DIR/opendkim.conf") $(grep -c '^SenderHeaders  *List-Post$' "$DKIM_DIR/opendkim.conf")" \
    "1 1 1" "opendkim.conf from contrib/postfix (domain $D, selector $DKIM_SEL, SenderHeaders List-Post)"
DKIM_PID=
dkim_stop() {
    mta_stop_pid "$DKIM_PID" /usr/sbin/opendkim 30
    DKIM_PID=
}
at_exit dkim_stop
/usr/sbin/opendkim -f -x "$DKIM_DIR/opendkim.conf" >"$T/opendkim.out" 2>&1 &
DKIM_PID=$!
if ! mta_wait_port "$DKIM_PORT" 10; then
    diag "$(cat "$T/opendkim.out")"
    bail_out "opendkim did not start"
fi
pass "opendkim -f -x opendkim.conf listens on 127.0.0.1:$DKIM_PORT"

# ------------------------------------------------------------ main.cf
{
    cat <<MAINCF
# test instance: private directories, loopback only, members' mail to smtp-sink
compatibility_level = 3.6
queue_directory = $T/pfq
data_directory = $T/pfdata
mail_owner = postfix
setgid_group = postdrop
myhostname = mx.test.invalid
mydomain = test.invalid
myorigin = \$myhostname
mydestination =
local_recipient_maps =
alias_maps =
alias_database =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
relayhost = [127.0.0.1]:$SINK_PORT
# one member per transaction to the members' server: one copy each to verify
smtp_destination_recipient_limit = 1
smtp_dns_support_level = disabled
smtp_host_lookup = native
smtp_tls_security_level = none
smtpd_tls_security_level = none
smtputf8_enable = no
biff = no
maillog_file = $MAILLOG
maillog_file_prefixes = $T
delay_warning_time = 0
MAINCF
    # a sanitizer build: pass the sanitizers' options on to mmq-filter
    # (pipe(8) gives the command only export_environment)
    san=$(env | grep -E '^(ASAN|UBSAN|LSAN)_OPTIONS=' | sed 's/=.*//' | tr '\n' ' ')
    if [ -n "$san" ]; then
        printf 'import_environment = %s %s\n' "$(postconf -d -h import_environment)" "$san"
        printf 'export_environment = %s %s\n' "$(postconf -d -h export_environment)" "$san"
    fi
    echo "# ---- contrib/postfix/main.cf"
    sed -e "s|/etc/postfix/mmq_transport|$PF/mmq_transport|" \
        -e "s|^mmq_dkim_milter = inet:127.0.0.1:8892\$|mmq_dkim_milter = inet:127.0.0.1:$DKIM_PORT|" "$C/main.cf"
} >"$PF/main.cf"

# ---------------------------------------------------------- master.cf
{
    cat <<MASTERCF
127.0.0.1:$MTA_PORT inet n - n - - smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
MASTERCF
    echo "# ---- contrib/postfix/master.cf"
    sed -e "s|argv=/usr/sbin/mmq-filter |argv=$BIN/mmq-filter -c $CONF |" \
        -e "s|^127\.0\.0\.1:10025 |127.0.0.1:$RELAY_PORT |" "$C/master.cf"
} >"$PF/master.cf"
grep -v '^#' "$C/mmq_transport" >"$PF/mmq_transport"

is "$(grep -c "argv=$BIN/mmq-filter -c $CONF -f \${sender} -r \${recipient} -q \${queue_id} -- \${user}" "$PF/master.cf") $(grep -c "^127.0.0.1:$RELAY_PORT inet" "$PF/master.cf")" \
    "1 1" "master.cf built from contrib/postfix/master.cf (pipe command and relay smtpd substituted)"
postmap -c "$PF" "hash:$PF/mmq_transport" 2>"$T/postmap.err"
rc=$?; ok $rc "postmap of the shipped mmq_transport"; [ $rc -eq 0 ] || diag "$(cat "$T/postmap.err")"

pf_stop() {
    local pid
    "$POSTFIX" -c "$PF" stop >/dev/null 2>&1
    pid=$(tr -dc 0-9 <"$T/pfq/pid/master.pid" 2>/dev/null)
    if [ -n "$pid" ]; then
        for _ in $(seq 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        [ "$(readlink "/proc/$pid/exe" 2>/dev/null)" = /usr/lib/postfix/sbin/master ] &&
            kill -KILL "$pid" 2>/dev/null
    fi
    return 0
}
at_exit pf_stop

"$POSTFIX" -c "$PF" check >"$T/pfcheck.out" 2>&1
"$POSTFIX" -c "$PF" start >"$T/pfstart.out" 2>&1
rc=$?
is "$rc" 0 "postfix -c DIR start"
if [ "$rc" -ne 0 ] || ! mta_wait_port "$MTA_PORT" 20 || ! mta_wait_port "$RELAY_PORT" 5; then
    diag "$(cat "$T/pfcheck.out" "$T/pfstart.out" "$MAILLOG" 2>/dev/null | tail -n 30)"
    bail_out "Postfix did not start"
fi
diag "Postfix $(postconf -c "$PF" -h mail_version) on 127.0.0.1:$MTA_PORT, relay smtpd on :$RELAY_PORT, members' sink on :$SINK_PORT"

MEMBERS_SORTED=$(printf '%s\n' "${MEMBERS[@]}" | sort | tr '\n' ' ')

# ------------------------------------------------------------ a post
mta_swaks "$T/swaks1" --from alice@example.org --to "announce@$D" \
    --header 'Subject: hello list' --header 'Message-ID: <pf.1@example.org>' \
    --body 'first post through Postfix'
ok $? "swaks: Postfix accepts the post for announce@$D"
mta_wait_files "$SPOOL/in" 1 20
ok $? "pipe(8) ran mmq-filter as mmq: the post is in in/"
mta_wait_grep "$MAILLOG" "to=<announce@$D>, relay=mmq.*status=sent" 10
ok $? "maillog: to=<announce@$D>, relay=mmq, status=sent"
entries in
if [ "${#ENTRIES[@]}" -ge 1 ]; then
    e=${ENTRIES[0]}
    is "$(stat -c %U:%G "$e") $(entry_field "$e" list) $(entry_field "$e" role) $(entry_field "$e" sender)" \
        "mmq:mmq announce post alice@example.org" "the entry is owned by mmq:mmq, list announce, role post, sender alice"
    is "$(entry_message "$e" | grep -c '^Return-Path: <alice@example.org>')" 1 \
        "flag R: Postfix added Return-Path"
    # follow the post from Postfix's log into mmq's: Postfix's queue ID
    # (-q ${queue_id}) is logged beside the mmq queue ID
    pfid=$(sed -n "s/.*: \([0-9A-Za-z]*\): to=<announce@$D>, relay=mmq.*status=sent.*/\1/p" "$MAILLOG" | head -n 1)
    n=${e##*/}
    grep -Eq "mmq-filter\[[0-9]+\]: ${n//+/\\+}: mta_queue_id=$pfid list=announce role=post " "$T/mmq.log"
    ok $? "mmq's log_file: the mmq queue ID beside Postfix's queue ID ($pfid)"
    [ -n "$pfid" ] || diag "no Postfix queue ID found in $MAILLOG"
    is "$(entry_field "$e" mta-queue-id)" "$pfid" "the envelope records Postfix's queue ID"
else
    skip "no entry" 4
fi

mta_process
is "$?" 0 "mmq-process -1 (as mmq) exits 0"
mta_deliver
is "$?" 0 "mmq-deliver -1 (as mmq) relays to the relay smtpd and exits 0"
want=${#MEMBERS[@]}
wait_rcpts_of 'first post through Postfix' "$want"
is "$(sink_rcpts_of 'first post through Postfix' | sort | tr '\n' ' ')" "$MEMBERS_SORTED" \
    "Postfix delivered the post to every member, once"
is "$(sink_senders "$T/sink" | sort -u)" "announce-bounces@$D" \
    "the envelope sender is announce-bounces@$D"
mta_list_id_copies 'first post through Postfix'
is "$MTA_HDRS" "$MTA_NDUMPS" "every copy carries List-Id: Announcements <announce.$D>"
mta_wait_grep "$MAILLOG" "to=<m1@example.net>, relay=127.0.0.1.*status=sent" 5
ok $? "maillog: the members' copies left Postfix through the relayhost"
is "$(grep -c "relay=mmq" "$MAILLOG")" 1 "list mail to the members did not loop back into mmq"
mta_dkim_check 'first post through Postfix'
# ------------------------------------------------ -bounces with VERP
mta_swaks "$T/swaks2" --from '<>' --to "announce-bounces+m1=example.net@$D" \
    --header 'Subject: Undelivered Mail' --body 'a bounce'
ok $? "swaks: a bounce to announce-bounces+m1=example.net@$D"
mta_wait_files "$SPOOL/bounces" 1 20
entries bounces
if [ "${#ENTRIES[@]}" -ge 1 ]; then
    e=${ENTRIES[0]}
    is "$(entry_field "$e" list) $(entry_field "$e" role) [$(entry_field "$e" sender)] $(entry_parse "$e"; pct_decode "${ENV_RCPT[0]%% *}")" \
        "announce bounces [] announce-bounces+m1=example.net@$D" \
        "recipient_delimiter = +: the bounce is in bounces/ (list announce, null sender, whole recipient)"
else
    fail "recipient_delimiter = +: the bounce reached bounces/"
    diag "$(tail -n 5 "$MAILLOG")"
fi

# ------------------------------------------------------ LIST-owner
mta_swaks "$T/swaks_owner" --from carol@example.net --to "announce-owner@$D" \
    --header 'Subject: please add me' --body 'owner mail through Postfix'
ok $? "swaks: mail to announce-owner@$D"
mta_wait_files "$SPOOL/in" 1 10
entries in
if [ "${#ENTRIES[@]}" -ge 1 ]; then
    is "$(entry_field "${ENTRIES[0]}" list) $(entry_field "${ENTRIES[0]}" role)" "announce owner" \
        "the owner mail is queued with role owner"
else
    fail "the owner mail is queued with role owner"
fi
mta_process
mta_deliver
wait_rcpts_of 'owner mail through Postfix' 1
is "$(sink_rcpts_of 'owner mail through Postfix' | tr '\n' ' ')" "owner@example.net " \
    "mmq forwarded it to the list owner, through Postfix"

# ------------------------------------------------------ unknown list
mta_swaks "$T/swaks3" --from alice@example.org --to "nosuch@$D" \
    --header 'Subject: to nowhere' --body 'no such list'
ok $? "swaks: Postfix accepts mail for nosuch@$D (relay domain)"
mta_wait_grep "$MAILLOG" "to=<nosuch@$D>, relay=mmq.*status=bounced" 20
ok $? "maillog: to=<nosuch@$D>, relay=mmq, status=bounced"
line=$(grep "to=<nosuch@$D>, relay=mmq" "$MAILLOG" | tail -n 1)
case $line in
*"dsn=5.1.1, status=bounced (<nosuch>: no such mailing list here"*) pass "the bounce reason is mmq-filter's text, dsn=5.1.1" ;;
*)
    fail "the bounce reason is mmq-filter's text, dsn=5.1.1"
    diag "$line"
    ;;
esac
# the bounce itself goes to alice@example.org, through the relayhost (the sink)
wait_rcpts_of 'no such mailing list here' 1
is "$(sink_rcpts_of 'no such mailing list here' | tr '\n' ' ')" "alice@example.org " \
    "the sender got Postfix's bounce, which quotes mmq's 5.1.1 text"

# -------------------------------------------------------- too large
{
    printf 'From: alice@example.org\nTo: announce@%s\nSubject: big\n\n' "$D"
    head -c 120000 /dev/zero | tr '\0' 'x' | fold -w 76
} >"$T/big.eml"
mta_swaks "$T/swaks4" --from alice@example.org --to "announce@$D" --data "@$T/big.eml"
ok $? "swaks: a post of 120 kB (mmq's max_message_size is 100000)"
mta_wait_grep "$MAILLOG" "relay=mmq.*dsn=5\\.3\\.4, status=bounced \\(Message too big for list announce" 20
ok $? "maillog: bounced with mmq-filter's text, dsn=5.3.4"
wait_rcpts_of 'Message too big for list announce' 1
is "$(sink_rcpts_of 'Message too big for list announce' | tr '\n' ' ')" "alice@example.org " \
    "the sender got the bounce with the 5.3.4 text"

# ------------------------------------------------ spool unwritable
chmod 0500 "$SPOOL/tmp"
mta_swaks "$T/swaks5" --from alice@example.org --to "announce@$D" \
    --header 'Subject: second post' --header 'Message-ID: <pf.2@example.org>' \
    --header 'List-Post: <mailto:other@lists.other.example>' \
    --header 'X-BeenThere: other@lists.other.example' \
    --body 'second post, deferred first'
ok $? "swaks: a second post while the spool is not writable"
mta_wait_grep "$MAILLOG" "relay=mmq.*dsn=4\\.3\\.0, status=deferred \\(mail list spool unavailable" 20
ok $? "maillog: status=deferred with mmq-filter's text, dsn=4.3.0 (exit 75)"
diag "$(grep 'relay=mmq.*status=deferred' "$MAILLOG" | tail -n 1 | sed 's/.*status=/status=/')"
is "$(count_files "$SPOOL/in")" 0 "nothing in in/ yet"
chmod 2770 "$SPOOL/tmp"
postqueue -c "$PF" -f
ok $? "postqueue -c DIR -f"
mta_wait_files "$SPOOL/in" 1 20
ok $? "after the flush the deferred post is queued in in/"
mta_wait_grep "$MAILLOG" "to=<announce@$D>, relay=mmq.*status=sent.*" 5
is "$(grep -c "to=<announce@$D>, relay=mmq.*status=sent" "$MAILLOG")" 2 "maillog: the second post was sent to mmq"
mta_process
is "$?" 0 "mmq-process -1 exits 0"
mta_deliver
is "$?" 0 "mmq-deliver -1 exits 0"
wait_rcpts_of 'second post, deferred first' "$want"
is "$(sink_rcpts_of 'second post, deferred first' | sort | tr '\n' ' ')" "$MEMBERS_SORTED" \
    "the deferred post reached every member, once"
# it came through another list first (its List-Post: and X-BeenThere:):
# still signed by ours
mta_dkim_check 'second post, deferred first'

# ------------------------------------------- the signer is down
# milter_default_action=tempfail: the relay smtpd answers 4xx, mmq-deliver
# defers, nothing leaves unsigned; with the signer back, a retry delivers
# the post signed.
mta_swaks "$T/swaks6" --from alice@example.org --to "announce@$D" \
    --header 'Subject: third post' --header 'Message-ID: <pf.3@example.org>' \
    --header 'MIME-Version: 1.0' --header 'Content-Type: text/plain; charset=utf-8' \
    --header 'Content-Transfer-Encoding: 8bit' \
    --body "$(printf 'third post, signer down first, 8-bit: caf\xc3\xa9 \xe2\x82\xac')"
ok $? "swaks: a third post"
mta_wait_files "$SPOOL/in" 1 20
mta_process
is "$(count_files "$SPOOL/out")" 1 "mmq-process queued it in out/"
dkim_stop
mta_deliver
is "$?" 0 "with opendkim stopped, mmq-deliver -1 exits 0"
is "$(count_files "$SPOOL/deferred")" 1 "the post is deferred"
entries deferred
if [ "${#ENTRIES[@]}" -ge 1 ]; then
    le=$(entry_field "${ENTRIES[0]}" last-error)
    case $le in
    4*) pass "its last-error is the relay's 4xx: $le" ;;
    *) fail "its last-error is the relay's 4xx: $le" ;;
    esac
else
    fail "its last-error is the relay's 4xx"
fi
is "$(sink_rcpts_of 'third post, signer down first' | wc -l)" 0 "nothing left unsigned"
/usr/sbin/opendkim -f -x "$DKIM_DIR/opendkim.conf" >>"$T/opendkim.out" 2>&1 &
DKIM_PID=$!
mta_wait_port "$DKIM_PORT" 10 || bail_out "opendkim did not start again"
mta_as_mmq "$MMQCTL" -c "$CONF" retry --all >"$T/retry.out" 2>&1
ok $? "opendkim started again; mmqctl retry --all"
mta_deliver
is "$?" 0 "mmq-deliver -1 exits 0"
wait_rcpts_of 'third post, signer down first' "$want"
is "$(sink_rcpts_of 'third post, signer down first' | sort | tr '\n' ' ')" "$MEMBERS_SORTED" \
    "the post reached every member, once"
mta_dkim_check 'third post, signer down first'
# 8-bit all the way: BODY=8BITMIME from mmq-deliver (t/deliver-8bitmime.sh)
# and from Postfix, the bytes unchanged (no 7-bit downgrade, which would
# have broken the signature checked just above)
is "$(grep -l 'third post, signer down first' "$T"/sink/dump.* | xargs grep -h '^X-Mail-Args:' | sort -u)" \
    "X-Mail-Args: <announce-bounces@$D> BODY=8BITMIME" "the members' copies came with BODY=8BITMIME"
is "$(grep -l 'third post, signer down first' "$T"/sink/dump.* | xargs grep -c "$(printf 'caf\xc3\xa9 \xe2\x82\xac')" | grep -c ':1$')" \
    "$want" "and their 8-bit body bytes unchanged"

# ------------------------------------------------- email commands
mta_commands :

# ------------------------------------------------------------ the end
is "in=$(count_files "$SPOOL/in") out=$(count_files "$SPOOL/out") deferred=$(count_files "$SPOOL/deferred") tmp=$(count_files "$SPOOL/tmp")" \
    "in=0 out=0 deferred=0 tmp=0" "the spool is drained"
postqueue -c "$PF" -p >"$T/pq" 2>&1
is "$(tail -n 1 "$T/pq")" "Mail queue is empty" "Postfix's queue is empty"
pf_stop
is "$(pgrep -x master -P 1 2>/dev/null | while read -r p; do readlink "/proc/$p/cwd"; done | grep -c "$T/pfq")" 0 \
    "postfix stop: the instance's master is gone"
done_testing
