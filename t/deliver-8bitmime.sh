#!/bin/bash
# deliver-8bitmime: RFC 6152 on the wire.  A message with 8-bit bytes goes
# out with BODY=8BITMIME, a 7-bit one without any BODY= parameter, both in
# one session (connection reuse kept), against Postfix's smtp-sink, whose
# dumps record the MAIL FROM arguments (X-Mail-Args).  Against a sink told
# not to offer 8BITMIME (smtp-sink -8) the 8-bit entry is never sent: it is
# deferred with "4.6.3 ... does not offer 8BITMIME" (log and last-error),
# while the 7-bit one is still delivered; once the relay offers 8BITMIME
# again, mmqctl retry and one more run deliver the deferred entry.  A
# recipient with non-ASCII bytes (it would need SMTPUTF8) is never sent:
# failed with 553 5.6.7 and reported to the sender.
set -u
. "${top_srcdir:-$(dirname "$0")/..}/t/lib.sh"
. "${top_srcdir:-$(dirname "$0")/..}/t/deliver-lib2.sh"

mk_spool
LOG=$T/deliver.log

printf 'Date: Thu, 03 Dec 2026 10:00:00 +0000\nFrom: a@example.org\nMessage-ID: <8bit@example.org>\nSubject: eight\nMIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\ncaf\xc3\xa9 eight-bit body\n' >"$T/m8"
printf 'Date: Thu, 03 Dec 2026 10:00:00 +0000\nFrom: a@example.org\nMessage-ID: <7bit@example.org>\nSubject: seven\n\nplain seven-bit body\n' >"$T/m7"
printf 'e1@example.org\ne2@example.org\n' >"$T/r8"
printf 's1@example.org\ns2@example.org\n' >"$T/r7"

# mail_args TEXT DIR: the X-Mail-Args of the dumps in DIR whose message holds TEXT
mail_args() {
    local f
    grep -l -- "$1" "$2"/dump.* 2>/dev/null | while IFS= read -r f; do
        awk '/^Received: /{exit} /^X-Mail-Args:/{sub(/^X-Mail-Args: */,""); print}' "$f"
    done | sort -u
}

# ------------------------------------------- a relay offering 8BITMIME
dl_sink_start "$T/sink1"
S1=$SINK_PID
dl_conf "connections = 1;" "retry_min = 1;" "retry_max = 2;"
dl_queue "$T/r8" 0 "$T/m8"
dl_queue "$T/r7" 0 "$T/m7"
timeout 60 "$MMQ_DELIVER" -c "$CONF" -1 -e 2>>"$LOG"
is "$?" 0 "mmq-deliver -1 exits 0"
is "$(mail_args 'eight-bit body' "$T/sink1")" "<list-bounces@example.org> BODY=8BITMIME" \
    "the 8-bit message: MAIL FROM:<...> BODY=8BITMIME"
is "$(mail_args 'plain seven-bit body' "$T/sink1")" "<list-bounces@example.org>" \
    "the 7-bit message: MAIL FROM without BODY="
dl_tally <(cat "$T/r8" "$T/r7") "$T/sink1"
is "$DL_GOT $DL_MISSING $DL_DUPS" "4 0 0" "all four recipients received, once"
counters=$(sink_counters "$T/sink1")
is "$(sed -n 's/.*sess=\([0-9]*\).*/\1/p' <<<"$counters")" 1 \
    "both kinds went over one connection (sink: $counters)"
d8=$(grep -l 'eight-bit body' "$T"/sink1/dump.* | head -n 1)
cmp -s "$T/m8" <(dl_sink_message "$d8")
ok $? "the 8-bit message arrived byte for byte"
dl_sink_stop "$S1"

# --------------------------------------- a relay without 8BITMIME (-8)
dl_sink_start "$T/sink2" -8
S2=$SINK_PID
dl_conf "connections = 1;" "retry_min = 1;" "retry_max = 2;"
dl_queue "$T/r8" 0 "$T/m8"
id8=$QUEUED
dl_queue "$T/r7" 0 "$T/m7"
: >"$LOG"
timeout 60 "$MMQ_DELIVER" -c "$CONF" -1 -e 2>>"$LOG"
is "$?" 0 "mmq-deliver -1 exits 0 (relay without 8BITMIME)"
is "$(grep -c 'eight-bit body' "$T"/sink2/dump.* 2>/dev/null | awk -F: '{n += $2} END {print n + 0}')" 0 \
    "no 8-bit data was sent to a relay that does not offer 8BITMIME"
dl_tally "$T/r7" "$T/sink2"
is "$DL_GOT $DL_MISSING $DL_UNEXPECTED" "2 0 0" "the 7-bit message was still delivered"
is "$(mail_args 'plain seven-bit body' "$T/sink2")" "<list-bounces@example.org>" \
    "... without BODY="
f=$(dl_files deferred | head -n 1)
is "$(dl_files deferred | wc -l)" 1 "the 8-bit entry is in deferred/"
if [ -n "$f" ]; then
    le=$(entry_field "$f" last-error)
    starts_with "$le" "451 4.6.3 relay 127.0.0.1:$SINK_PORT does not offer 8BITMIME and the message has 8-bit data: not sent (RFC 6152)" \
        "its last-error gives the reason (4.6.3, RFC 6152)"
else
    fail "its last-error gives the reason"
fi
grep -q "$id8: to=<e1@example.org>,.*dsn=4.6.3, status=deferred .*does not offer 8BITMIME" "$LOG"
ok $? "the log line: dsn=4.6.3, status=deferred, the reason"
grep -q "$id8: deferred 2 recipients, attempt 1" "$LOG"
ok $? "the log line: deferred 2 recipients, attempt 1"
grep -q "warning: relay 127.0.0.1:$SINK_PORT does not offer 8BITMIME: 1 transaction with 8-bit data deferred (RFC 6152); enable 8BITMIME on the relay" "$LOG"
ok $? "one warning for the session names the relay and the fix"
[ "$(grep -c 'dsn=4.6.3' "$LOG")" -ge 1 ] || diag "$(cat "$LOG")"
dl_sink_stop "$S2"

# ----------------------------------- the relay offers 8BITMIME again
dl_sink_start "$T/sink3"
S3=$SINK_PID
dl_conf "connections = 1;" "retry_min = 1;" "retry_max = 2;"
"$MMQCTL" -c "$CONF" retry --all >"$T/retry.out" 2>&1
ok $? "mmqctl retry --all"
timeout 60 "$MMQ_DELIVER" -c "$CONF" -1 -e 2>>"$LOG"
is "$?" 0 "mmq-deliver -1 exits 0"
dl_tally "$T/r8" "$T/sink3"
is "$DL_GOT $DL_MISSING $DL_DUPS" "2 0 0" "the deferred 8-bit message reached both recipients"
is "$(mail_args 'eight-bit body' "$T/sink3")" "<list-bounces@example.org> BODY=8BITMIME" \
    "... with BODY=8BITMIME"
is "$(dl_files out deferred bad)" "" "the spool is empty"

# ---------------- a non-ASCII recipient (it needs SMTPUTF8): never sent
# (mmq-process never queues one, see t/process-smtputf8.sh; mkentry can)
printf 'ok@example.org\nj\xc3\xb6rg@example.org\n' >"$T/r9"
dl_queue "$T/r9" 0 "$T/m7"
id9=$QUEUED
timeout 60 "$MMQ_DELIVER" -c "$CONF" -1 -e 2>>"$LOG"
is "$?" 0 "mmq-deliver -1 exits 0"
is "$(sink_rcpts "$T/sink3" | grep -c "$(printf 'j\xc3\xb6rg')")" 0 \
    "the non-ASCII recipient was never put in a RCPT TO"
is "$(sink_rcpts "$T/sink3" | grep -c '^ok@example.org$')" 1 "the ASCII one was delivered"
grep -q "$id9: to=<.*dsn=5.6.7, status=.*553 5.6.7 non-ASCII address needs SMTPUTF8, which mmq-deliver cannot send (not sent)" "$LOG"
ok $? "log: dsn=5.6.7, non-ASCII address needs SMTPUTF8 (not sent)"
grep -q "$id9: sender non-delivery notification" "$LOG"
ok $? "the sender gets a DSN for it"
dl_sink_stop "$S3"
done_testing
