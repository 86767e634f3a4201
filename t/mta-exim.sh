#!/bin/bash
# mta-exim: mmq behind a real Exim 4.96 (Debian's exim4-daemon-light,
# unpacked by scripts/deps.sh into /var/cache/mmq-test/exim since it
# conflicts with the postfix package), configured from the shipped
# contrib/exim snippets (main.conf, acl.conf, router.conf, transport.conf;
# only paths and ports are substituted).  Exim runs as a daemon in the
# foreground (-bdf) with its own configuration file (-C), spool and logs,
# on free loopback ports.  A post sent with swaks goes through the mmq_pipe
# transport to mmq-filter running as user mmq; mmq-process and
# mmq-deliver (as mmq) expand it and relay it back into Exim on the relay
# port, and Exim delivers it to the members' server (smtp-sink).  Then: a
# -bounces VERP address reaches the bounces queue, an unknown list and a
# too large post are bounced with mmq-filter's text, and with the spool
# unwritable Exim defers (exit 75) and delivers after exim -qff once the
# spool is back.  Last, email commands through Exim (mta_commands in
# t/mta-lib.sh): subscribe, confirm by replying to LIST-confirm+TOKEN@
# (the router's +* suffix must stay in $RECIPIENT), approve, post,
# unsubscribe.  Needs root; the daemon is stopped at exit.
# MTA_DEBUG_COPY=DIR: copy Exim's directory (configuration, spool, logs)
# to DIR before the end, to look at it afterwards.
set -u
. "${top_srcdir:-$(dirname "$0")/..}/t/lib.sh"
. "${top_srcdir:-$(dirname "$0")/..}/t/process-lib.sh"
. "${top_srcdir:-$(dirname "$0")/..}/t/mta-lib.sh"

EXIM=${MMQ_EXIM:-${MMQ_EXIM_DIR:-/var/cache/mmq-test/exim}/usr/sbin/exim4}
[ -x "$EXIM" ] || skip_all "$EXIM not found (scripts/deps.sh unpacks Debian's exim4-daemon-light there)"
id -u Debian-exim >/dev/null 2>&1 || skip_all "no user Debian-exim (compiled into Debian's exim; scripts/deps.sh creates it)"
mta_init
mta_setup
C=$top_srcdir/contrib/exim
# the key readable by the Exim user, which runs the smtp transport
mta_dkim_init root:Debian-exim 640
mta_dns_start

X=$T/exim
mkdir -p "$X/spool" "$X/log" || bail_out "mkdir failed"
chown Debian-exim:Debian-exim "$X/spool" "$X/log"
MTA_PORT=$(mta_free_port)
RELAY_PORT=$(mta_free_port)
while [ "$RELAY_PORT" = "$MTA_PORT" ]; do RELAY_PORT=$(mta_free_port); done
MAINLOG=$X/log/mainlog
CFG=$X/exim.conf
mta_conf "$RELAY_PORT"

{
    cat <<MAIN
# test instance: private spool and logs, loopback only, members' mail to smtp-sink
exim_path = $EXIM
spool_directory = $X/spool
log_file_path = $X/log/%slog
pid_file_path = $X/exim.pid
primary_hostname = mx.test.invalid
qualify_domain = test.invalid
local_interfaces = 127.0.0.1
exim_user = Debian-exim
exim_group = Debian-exim
never_users = root
acl_smtp_rcpt = acl_check_rcpt
keep_environment =
rfc1413_hosts =
host_lookup =
message_size_limit = 10M
# M8S= on reception lines: how the client declared the body (8: BODY=8BITMIME)
log_selector = +8bitmime
# The unpacked exim is not set-user-ID root: the daemon's receiving
# process (which runs as Debian-exim) could not regain root for an
# immediate delivery, and a queue runner the daemon re-execs loses root
# because of -C.  So the daemon only receives (queue_only) and the test
# runs the queue as root (exim -C CFG -q), which keeps its privilege.
queue_only
MAIN
    echo "# ---- contrib/exim/main.conf"
    sed -e "s|^MMQ_RELAY_PORT = 10025\$|MMQ_RELAY_PORT = $RELAY_PORT|" \
        -e "s|^daemon_smtp_ports = 25 :|daemon_smtp_ports = $MTA_PORT :|" "$C/main.conf"
    printf '\nbegin acl\n\nacl_check_rcpt:\n'
    echo "# ---- contrib/exim/acl.conf"
    cat "$C/acl.conf"
    printf '\n  deny    message = relay not permitted\n'
    printf '\nbegin routers\n\n'
    echo "# ---- contrib/exim/router.conf"
    cat "$C/router.conf"
    cat <<ROUTERS

# everything else: the members' server
members:
  driver = manualroute
  domains = ! +mmq_list_domains
  route_list = * 127.0.0.1
  self = send
  transport = to_sink

begin transports

ROUTERS
    echo "# ---- contrib/exim/transport.conf"
    # a sanitizer build: pass the sanitizers' options on to mmq-filter
    # (the pipe transport gives the command a fresh environment)
    san=$(env | grep -E '^(ASAN|UBSAN|LSAN)_OPTIONS=' | tr '\n' ';')
    sed -e "s|'exec /usr/sbin/mmq-filter -f|'exec $BIN/mmq-filter -c $CONF -f|" \
        -e "s|^  driver = pipe\$|&${san:+\\n  environment = <; ${san%;}}|" "$C/transport.conf"
    cat <<TRANSPORTS

to_sink:
  driver = smtp
  port = $SINK_PORT
  allow_localhost
  hosts_avoid_tls = *
  # one member per transaction: one copy each to verify
  max_rcpt = 1
TRANSPORTS
    echo "# ---- contrib/exim/dkim.conf"
    sed "s|^  dkim_private_key = /etc/exim4/dkim/mmq.private\$|  dkim_private_key = $DKIM_DIR/$DKIM_SEL.private|" "$C/dkim.conf"
    cat <<TRANSPORTS

begin retry

*  *  F,2h,15m
TRANSPORTS
} >"$CFG"

is "$(grep -c "command = /bin/sh -c 'exec $BIN/mmq-filter -c $CONF -f " "$CFG") $(grep -c "^MMQ_RELAY_PORT = $RELAY_PORT\$" "$CFG") $(grep -c "^daemon_smtp_ports = $MTA_PORT : MMQ_RELAY_PORT\$" "$CFG")" \
    "1 1 1" "the configuration is built from contrib/exim (command, ports substituted)"
"$EXIM" -C "$CFG" -bV >"$T/bV.out" 2>&1
rc=$?
is "$rc" 0 "exim -C CFG -bV accepts the configuration"
[ "$rc" -eq 0 ] || diag "$(tail -n 5 "$T/bV.out")"
diag "$(head -n 1 "$T/bV.out")"

bt=$("$EXIM" -C "$CFG" -bt "announce-bounces+m1=example.net@$D" 2>&1)
case $bt in
*"router = mmq_lists, transport = mmq_pipe"*) pass "exim -bt: the list domain goes to router mmq_lists, transport mmq_pipe" ;;
*)
    fail "exim -bt: the list domain goes to router mmq_lists, transport mmq_pipe"
    diag "$bt"
    ;;
esac

EXIM_PID=
exim_stop() {
    mta_stop_pid "$EXIM_PID" "$(readlink -f "$EXIM")" 50
    EXIM_PID=
}
at_exit exim_stop
"$EXIM" -C "$CFG" -bdf >"$X/daemon.out" 2>&1 &
EXIM_PID=$!
if ! mta_wait_port "$MTA_PORT" 20 || ! mta_wait_port "$RELAY_PORT" 5; then
    diag "$(cat "$X/daemon.out" "$X/log/paniclog" "$MAINLOG" 2>/dev/null | tail -n 20)"
    bail_out "the Exim daemon did not start"
fi
pass "exim -C CFG -bdf listens on 127.0.0.1:$MTA_PORT and :$RELAY_PORT"

# exim_q: two queue runs as root (the second one for the bounces the first
# one made), honouring retry times; never forced.
exim_q() {
    timeout 30 "$EXIM" -C "$CFG" -q >>"$X/q.out" 2>&1
    timeout 30 "$EXIM" -C "$CFG" -q >>"$X/q.out" 2>&1
}
MEMBERS_SORTED=$(printf '%s\n' "${MEMBERS[@]}" | sort | tr '\n' ' ')
want=${#MEMBERS[@]}

# ------------------------------------------------------------ a post
mta_swaks "$T/swaks1" --from alice@example.org --to "announce@$D" \
    --header 'Subject: hello list' --header 'Message-ID: <ex.1@example.org>' \
    --body 'first post through Exim'
ok $? "swaks: Exim accepts the post for announce@$D"
exim_q
mta_wait_files "$SPOOL/in" 1 10
ok $? "the mmq_pipe transport ran mmq-filter as mmq: the post is in in/"
mta_wait_grep "$MAINLOG" "=> announce <announce@$D> R=mmq_lists T=mmq_pipe" 10
rc=$?
ok "$rc" "mainlog: => announce <announce@$D> R=mmq_lists T=mmq_pipe"
[ "$rc" -eq 0 ] || diag "$(tail -n 5 "$MAINLOG")"
entries in
if [ "${#ENTRIES[@]}" -ge 1 ]; then
    e=${ENTRIES[0]}
    is "$(stat -c %U:%G "$e") $(entry_field "$e" list) $(entry_field "$e" role) $(entry_field "$e" sender) $(entry_parse "$e"; pct_decode "${ENV_RCPT[0]%% *}")" \
        "mmq:mmq announce post alice@example.org announce@$D" \
        "the entry is owned by mmq:mmq, list announce, role post, sender and recipient from Exim"
    ok "$(entry_field "$e" mbox-from >/dev/null; echo $?)" "Exim's From_ line went into the envelope (mbox-from)"
    # follow the post from Exim's mainlog into mmq's: Exim's message ID
    # ($MESSAGE_ID, -q) is logged beside the mmq queue ID
    xid=$(awk -v to="<announce@$D>" '$4 == "=>" && $6 == to { print $3; exit }' "$MAINLOG")
    n=${e##*/}
    grep -Eq "mmq-filter\[[0-9]+\]: ${n//+/\\+}: mta_queue_id=$xid list=announce role=post " "$T/mmq.log"
    ok $? "mmq's log_file: the mmq queue ID beside Exim's message ID ($xid)"
    [ -n "$xid" ] || diag "no Exim message ID found in $MAINLOG"
    is "$(entry_field "$e" mta-queue-id)" "$xid" "the envelope records Exim's message ID"
else
    skip "no entry" 4
fi

mta_process
is "$?" 0 "mmq-process -1 (as mmq) exits 0"
mta_deliver
is "$?" 0 "mmq-deliver -1 (as mmq) relays to Exim's relay port and exits 0"
exim_q
wait_rcpts_of 'first post through Exim' "$want"
is "$(sink_rcpts_of 'first post through Exim' | sort | tr '\n' ' ')" "$MEMBERS_SORTED" \
    "Exim delivered the post to every member, once"
is "$(sink_senders "$T/sink" | sort -u)" "announce-bounces@$D" \
    "the envelope sender is announce-bounces@$D"
mta_list_id_copies 'first post through Exim'
is "$MTA_HDRS" "$MTA_NDUMPS" "every copy carries List-Id: Announcements <announce.$D>"
mta_wait_grep "$MAINLOG" "=> m1@example.net R=members T=to_sink" 5
ok $? "mainlog: the members' copies went out through the members router"
is "$(grep -c "T=mmq_pipe" "$MAINLOG")" 1 "list mail to the members did not loop back into mmq"
mta_dkim_check 'first post through Exim'

# ------------------------------------------------ -bounces with VERP
mta_swaks "$T/swaks2" --from '<>' --to "announce-bounces+m1=example.net@$D" \
    --header 'Subject: Undelivered Mail' --body 'a bounce'
ok $? "swaks: a bounce to announce-bounces+m1=example.net@$D"
exim_q
mta_wait_files "$SPOOL/bounces" 1 20
entries bounces
if [ "${#ENTRIES[@]}" -ge 1 ]; then
    e=${ENTRIES[0]}
    is "$(entry_field "$e" list) $(entry_field "$e" role) [$(entry_field "$e" sender)] $(entry_parse "$e"; pct_decode "${ENV_RCPT[0]%% *}")" \
        "announce bounces [] announce-bounces+m1=example.net@$D" \
        "local_part_suffix = +*: the bounce is in bounces/ (list announce, null sender, whole recipient)"
else
    fail "local_part_suffix = +*: the bounce reached bounces/"
    diag "$(tail -n 5 "$MAINLOG")"
fi

# ------------------------------------------------------ LIST-owner
mta_swaks "$T/swaks_owner" --from carol@example.net --to "announce-owner@$D" \
    --header 'Subject: please add me' --body 'owner mail through Exim'
ok $? "swaks: mail to announce-owner@$D"
exim_q
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
exim_q
wait_rcpts_of 'owner mail through Exim' 1
is "$(sink_rcpts_of 'owner mail through Exim' | tr '\n' ' ')" "owner@example.net " \
    "mmq forwarded it to the list owner, through Exim"

# ------------------------------------------------------ unknown list
mta_swaks "$T/swaks3" --from alice@example.org --to "nosuch@$D" \
    --header 'Subject: to nowhere' --body 'no such list'
ok $? "swaks: Exim accepts mail for nosuch@$D"
exim_q
mta_wait_grep "$MAINLOG" "\\*\\* nosuch@$D R=mmq_lists T=mmq_pipe" 10
ok $? "mainlog: ** nosuch@$D R=mmq_lists T=mmq_pipe (failed)"
mta_wait_grep "$MAINLOG" "5\\.1\\.1 <nosuch>: no such mailing list here" 2
ok $? "mainlog: mmq-filter's 5.1.1 text is logged (log_fail_output)"
wait_rcpts_of '5.1.1 <nosuch>: no such mailing list here' 1
is "$(sink_rcpts_of '5.1.1 <nosuch>: no such mailing list here' | tr '\n' ' ')" "alice@example.org " \
    "the sender got Exim's bounce with mmq's 5.1.1 text (return_fail_output)"

# -------------------------------------------------------- too large
{
    printf 'From: alice@example.org\nTo: announce@%s\nSubject: big\n\n' "$D"
    head -c 120000 /dev/zero | tr '\0' 'x' | fold -w 76
} >"$T/big.eml"
mta_swaks "$T/swaks4" --from alice@example.org --to "announce@$D" --data "@$T/big.eml"
ok $? "swaks: a post of 120 kB (mmq's max_message_size is 100000)"
exim_q
mta_wait_grep "$MAINLOG" "\\*\\* announce@$D R=mmq_lists T=mmq_pipe: Child process of mmq_pipe transport returned 69" 10
ok $? "mainlog: ** announce@$D ... returned 69 (failed)"
wait_rcpts_of '5.3.4 Message too big for list announce' 1
is "$(sink_rcpts_of '5.3.4 Message too big for list announce' | tr '\n' ' ')" "alice@example.org " \
    "the sender got Exim's bounce with mmq's 5.3.4 text"

# ------------------------------------------------ spool unwritable
chmod 0500 "$SPOOL/tmp"
mta_swaks "$T/swaks5" --from alice@example.org --to "announce@$D" \
    --header 'Subject: second post' --header 'Message-ID: <ex.2@example.org>' \
    --header 'MIME-Version: 1.0' --header 'Content-Type: text/plain; charset=utf-8' \
    --header 'Content-Transfer-Encoding: 8bit' \
    --body "$(printf 'second post, deferred first, 8-bit: caf\xc3\xa9 \xe2\x82\xac')"
ok $? "swaks: a second post while the spool is not writable"
exim_q
mta_wait_grep "$MAINLOG" "== announce@$D R=mmq_lists T=mmq_pipe defer .*returned 75" 10
ok $? "mainlog: == announce@$D ... defer (mmq-filter returned 75)"
grep -q "<announce@$D>: mmq_pipe transport output: 4.3.0 mail list spool unavailable" "$MAINLOG"
ok $? "mainlog: mmq-filter's 4.3.0 text is logged (log_defer_output)"
is "$(count_files "$SPOOL/in")" 0 "nothing in in/ yet"
grep -q "== announce@$D R=mmq_lists T=mmq_pipe defer (-53): Retry time not yet reached" "$MAINLOG"
ok $? "an ordinary queue run leaves it deferred (retry time not reached)"
chmod 2770 "$SPOOL/tmp"
timeout 60 "$EXIM" -C "$CFG" -qff >"$T/qff.out" 2>&1
ok $? "exim -C CFG -qff"
mta_wait_files "$SPOOL/in" 1 10
ok $? "after the queue run the deferred post is queued in in/"
is "$(grep -c "=> announce <announce@$D> R=mmq_lists T=mmq_pipe" "$MAINLOG")" 2 "mainlog: the second post was delivered to mmq"
mta_process
is "$?" 0 "mmq-process -1 exits 0"
mta_deliver
is "$?" 0 "mmq-deliver -1 exits 0"
exim_q
wait_rcpts_of 'second post, deferred first' "$want"
is "$(sink_rcpts_of 'second post, deferred first' | sort | tr '\n' ' ')" "$MEMBERS_SORTED" \
    "the deferred post reached every member, once"
mta_dkim_check 'second post, deferred first'
# 8-bit: mmq-deliver declared BODY=8BITMIME to Exim for this post only
# (log_selector +8bitmime: M8S=8 on the reception line; 0 for the 7-bit
# posts before it)
is "$(grep " <= announce-bounces@$D H=(mmq.test) " "$MAINLOG" | sed -n 's/.* M8S=\([078]\) .*/\1/p' | tr '\n' ' ')" \
    "0 0 8 " "Exim's relay port received the 8-bit post with BODY=8BITMIME (M8S=8), the 7-bit ones without"
is "$(grep -l 'second post, deferred first' "$T"/sink/dump.* | xargs grep -c "$(printf 'caf\xc3\xa9 \xe2\x82\xac')" | grep -c ':1$')" \
    "$want" "and their 8-bit body bytes unchanged"

# ------------------------------------------------- email commands
mta_commands exim_q

# ------------------------------------------------------------ the end
is "in=$(count_files "$SPOOL/in") out=$(count_files "$SPOOL/out") deferred=$(count_files "$SPOOL/deferred") tmp=$(count_files "$SPOOL/tmp")" \
    "in=0 out=0 deferred=0 tmp=0" "the spool is drained"
for _ in $(seq 50); do
    [ -z "$("$EXIM" -C "$CFG" -bp 2>/dev/null)" ] && break
    sleep 0.1
done
is "$("$EXIM" -C "$CFG" -bp 2>&1)" "" "Exim's queue is empty"
# (a bounce is submitted by re-executing exim, which as the Exim user may
# not keep -C: Exim says so in the paniclog, and carries on)
is "$(grep -v 'exim user lost privilege for using -C option' "$X/log/paniclog" 2>/dev/null)" "" \
    "nothing in the paniclog but the -C privilege notes"
[ -n "${MTA_DEBUG_COPY:-}" ] && cp -a "$X" "$MTA_DEBUG_COPY"
exim_stop
done_testing
