#!/bin/bash
# deliver-basic: mmq-deliver -1 relays 1,000 recipients queued in entries of
# 100 to smtp-sink: every recipient arrives exactly once, the spool is empty
# afterwards, and the message arrives byte for byte as queued (lines starting
# with '.', LF line ends, 8-bit bytes, a 5,000-byte line), once the CRLF
# line ends and the headers smtp-sink adds are undone.  With
# recipients_per_transaction = 30 each SMTP session carries several
# transactions.  A second agent of the same node refuses slices that are
# already being delivered.
set -u
. "${top_srcdir:-$(dirname "$0")/..}/t/lib.sh"
. "${top_srcdir:-$(dirname "$0")/..}/t/deliver-lib2.sh"

NRCPT=1000
PER_ENTRY=100
PER_TXN=30
CONNECTIONS=4

mk_spool
dl_sink_start "$T/sink"
SINK1_PID=$SINK_PID SINK1_PORT=$SINK_PORT
dl_conf "recipients_per_transaction = $PER_TXN;" "connections = $CONNECTIONS;"

M=$T/msg
{
    printf 'Received: from mail.example.org (mail.example.org [192.0.2.1])\n'
    printf '\tby lists.example.org (Postfix) with ESMTPS id 4Xq2Lm\n'
    printf '\tfor <announce@lists.example.org>; Sun, 22 Nov 2026 10:00:00 +0000\n'
    printf 'Date: Sun, 22 Nov 2026 10:00:00 +0000\n'
    printf 'From: Alice Example <alice@example.org>\n'
    printf 'To: announce@lists.example.org\n'
    printf 'Subject: =?UTF-8?Q?caf=C3=A9?= dots, 8 bits and a long line\n'
    printf 'Message-ID: <basic.1@mmq.test>\n'
    printf 'MIME-Version: 1.0\n'
    printf 'Content-Type: text/plain; charset=utf-8\n'
    printf 'Content-Transfer-Encoding: 8bit\n'
    printf 'List-Id: <announce.lists.example.org>\n'
    printf '\n'
    printf '.a line starting with a dot\n'
    printf '..two dots\n'
    printf '.\n'
    printf '. \n'
    printf '..\n'
    printf '\n'
    printf 'caf\xc3\xa9 \xe2\x82\xac and raw bytes \x80\x81\xfe\xff\n'
    printf '\xff\n'
    printf 'From the start of a line, as in mbox\n'
    printf 'trailing spaces   \n'
    printf 'a\ttab\n'
    printf '.'
    head -c 4999 /dev/zero | tr '\0' 'L'
    printf '\n'
    head -c 5000 /dev/zero | tr '\0' 'x'
    printf '\n'
    printf '\n'
    printf 'last line\n'
} >"$M"

dl_rcpts "$NRCPT" "$T/rcpts"
dl_queue "$T/rcpts" "$PER_ENTRY" "$M"
nentries=$(printf '%s\n' "$QUEUED" | grep -c .)
is "$nentries" $((NRCPT / PER_ENTRY)) "$NRCPT recipients queued in $((NRCPT / PER_ENTRY)) entries"

LOG=$T/deliver.log
start=$(now)
timeout 120 "$MMQ_DELIVER" -c "$CONF" -1 -e 2>"$LOG"
rc=$?
diag "mmq-deliver -1: $(elapsed_ms "$start" "$(now)") ms"
is "$rc" 0 "mmq-deliver -1 exits 0"
[ "$rc" -eq 0 ] || diag "$(tail -n 20 "$LOG")"

# ----------------------------------------------------- recipients
dl_tally "$T/rcpts" "$T/sink"
is "$DL_GOT" "$NRCPT" "the sink received $NRCPT recipients"
is "$DL_MISSING" 0 "no recipient missing"
is "$DL_DUPS" 0 "no recipient received twice"
is "$DL_UNEXPECTED" 0 "no recipient that was not queued"

# ------------------------------------------------------------ spool
is "$(dl_files out)" "" "out/ is empty"
is "$(dl_files deferred)" "" "nothing in deferred/"
is "$(dl_files bad)" "" "nothing in bad/"
is "$(dl_claimed)" "" "no entry left claimed"
is "$(tmp_files)" "" "tmp/ is empty"
is "$(grep -c ': removed$' "$LOG")" "$nentries" "the log reports each entry removed"

# ---------------------------------------------------------- message
out=$(dl_dumps_match "$M" "$T/sink")
ok $? "every transaction carried the message byte for byte"
diag "$out"

# ---------------------------------------------- transactions, sessions
ntxn=$(sink_dumps "$T/sink" | wc -l)
want_txn=$(((NRCPT / PER_ENTRY) * ((PER_ENTRY + PER_TXN - 1) / PER_TXN)))
is "$ntxn" "$want_txn" "$want_txn transactions (entries of $PER_ENTRY cut into transactions of at most $PER_TXN)"
maxper=$(sink_dumps "$T/sink" | while IFS= read -r f; do
    awk '/^Received: / { exit } /^X-Rcpt-Args:/ { n++ } END { print n + 0 }' "$f"
done | sort -n | tail -n 1)
is "$maxper" "$PER_TXN" "no transaction has more than $PER_TXN recipients"
counters=$(sink_counters "$T/sink")
sess=$(sed -n 's/.*sess=\([0-9]*\).*/\1/p' <<<"$counters")
mesg=$(sed -n 's/.*mesg=\([0-9]*\).*/\1/p' <<<"$counters")
diag "sink counters: $counters"
is "$mesg" "$want_txn" "the sink counted $want_txn messages"
if [ -n "$sess" ] && [ "$sess" -ge 1 ] && [ "$sess" -le "$CONNECTIONS" ] &&
    [ "$ntxn" -ge $((2 * sess)) ]; then
    pass "$ntxn transactions over $sess sessions (at most $CONNECTIONS): several per session"
else
    fail "several transactions per session (at most $CONNECTIONS sessions)"
    diag "sessions: '$sess', transactions: $ntxn"
fi

# ---------------------------------------- headers passed through as-is
# A well-formed message (Date, From, Message-ID present, each field at most
# once as RFC 5322 requires, no Return-Path, which a relay must not add)
# passes through unchanged, folded and unknown fields included.  libESMTP
# strips Return-Path and drops second copies of Date/From/To/... and adds
# missing Date/From/Message-Id: the list stage normalises posts so that
# this never changes one (see mmq-deliver(8)).
dl_sink_start "$T/sink2"
SINK2_PID=$SINK_PID
dl_conf "recipients_per_transaction = $PER_TXN;" "connections = $CONNECTIONS;"
M2=$T/msg2
printf 'Date: Sun, 22 Nov 2026 10:00:00 +0000\nFrom: Alice <alice@example.org>\nMessage-ID: <m2@example.org>\nSubject: folded and unknown fields\nTo: first@example.org\nX-Note: a\n folded header\nX-Empty:\nx-lower-case: kept as is\n\nbody\n' >"$M2"
printf 'one@example.org\ntwo@example.org\n' >"$T/rcpts2"
dl_queue "$T/rcpts2" 0 "$M2"
timeout 60 "$MMQ_DELIVER" -c "$CONF" -1 -e 2>>"$LOG"
is "$?" 0 "mmq-deliver -1 exits 0 (second message)"
dl_tally "$T/rcpts2" "$T/sink2"
is "$DL_GOT $DL_MISSING" "2 0" "both recipients of the second message received"
out=$(dl_dumps_match "$M2" "$T/sink2")
rc=$?
ok $rc "a well-formed message with folded and unknown header fields arrives unchanged"
diag "$out"
if [ "$rc" -ne 0 ]; then
    d=$(sink_dumps "$T/sink2" | head -n 1)
    diag "$(diff -u --label queued --label received "$M2" <(dl_sink_message "$d"))"
fi
dl_sink_stop "$SINK2_PID"
SINK_PORT=$SINK1_PORT
dl_conf "recipients_per_transaction = $PER_TXN;" "connections = $CONNECTIONS;"

# ------------------------------------------------ slice locks per node
# A daemon on all slices; a second agent of the same node must refuse.
ALOG=$T/agentA.log
dl_agent_start "$ALOG"
A=$AGENT_PID
if dl_wait_log "$ALOG" 'delivering slices' 10; then
    pass "first agent started (all 16 slices)"
else
    fail "first agent started (all 16 slices)"
    diag "$(cat "$ALOG")"
fi
timeout 30 "$MMQ_DELIVER" -c "$CONF" -1 -e >"$T/b.out" 2>"$T/b.err"
rc=$?
if [ "$rc" -ne 0 ] && [ "$rc" -ne 124 ]; then
    pass "a second agent on the same slices exits non-zero ($rc)"
else
    fail "a second agent on the same slices exits non-zero"
    diag "exit status $rc"
fi
if grep -q 'slice [0-9]* of 16 is already delivered by another mmq-deliver on node testnode' "$T/b.err"; then
    pass "its message says the slice is already delivered"
else
    fail "its message says the slice is already delivered"
fi
diag "$(cat "$T/b.err")"
check "the first agent still runs" dl_running "$A"
dl_kill TERM "$A"
dl_wait_exit "$A" 20
is "$DL_RC" 0 "the first agent exits 0 on SIGTERM"

# The lock is per slice: disjoint sets coexist, an overlap of one is refused.
dl_agent_start "$ALOG" -s 0-7
A=$AGENT_PID
dl_wait_log "$ALOG" 'delivering slices 0-7' 10
timeout 30 "$MMQ_DELIVER" -c "$CONF" -s 8-15 -1 -e >"$T/c.out" 2>"$T/c.err"
rc=$?
is "$rc" 0 "an agent on slices 8-15 runs beside one on 0-7"
[ "$rc" -eq 0 ] || diag "$(cat "$T/c.err")"
timeout 30 "$MMQ_DELIVER" -c "$CONF" -s 7-8 -1 -e >"$T/d.out" 2>"$T/d.err"
rc=$?
if [ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] &&
    grep -q 'slice 7 of 16 is already delivered' "$T/d.err"; then
    pass "an agent on slices 7-8 is refused because of slice 7"
else
    fail "an agent on slices 7-8 is refused because of slice 7"
    diag "exit status $rc: $(cat "$T/d.err")"
fi
dl_kill TERM "$A"
dl_wait_exit "$A" 20
is "$DL_RC" 0 "the agent on 0-7 exits 0 on SIGTERM"

dl_sink_stop "$SINK1_PID"
done_testing
