#!/bin/bash
# deliver-faults: mmq-deliver against t/smtp-fault-server.py (and, for the
# libESMTP crash, Postfix's smtp-sink).  For each fault, the FINAL state of
# every recipient is checked: delivered at the server, deferred (in a
# deferred/ entry with attempts >= 1, a next attempt in the future and a
# last-error), or failed (listed in a DSN to the envelope sender, parsed
# with t/dsn-parse.py).  Nothing may be lost, nothing sent twice where the
# fault allows no duplicate, and the agent must neither hang nor die.
#
#  1  550 for some RCPTs: one DSN (5.1.1, the server's reply) to the sender
#  2  450 for some RCPTs: those deferred, the others delivered
#  3  452 after N RCPTs: all delivered, transactions of at most N
#  4  connection dropped during DATA: that transaction deferred, later sent
#  5  no reply after the data (stall) longer than smtp_timeout: deferred, fast
#  6  421 greeting, connection refused: deferred with the reason
#  7  connection dropped right after MAIL; the libESMTP 1.1.0 crash
#  8  max_lifetime: expired recipients returned with 4.4.7
#  9  null sender: never a DSN
# 10  451 / 554 after the data: deferred / DSN with the server's reply
set -u
top_srcdir=${top_srcdir:-$(cd "$(dirname "$0")/.." && pwd)}
. "$top_srcdir/t/lib.sh"
. "$top_srcdir/t/deliver-lib.sh"
# The libESMTP crash is a SIGSEGV; in the AddressSanitizer build ASan's
# handler catches it, reports it and exits with status 1 instead.
CRASHED='delivery process [0-9]+ (killed by signal 11|exited with status 1)'
dl_init

S=sender@example.net

# wait_due FILE: sleep until the deferred entry FILE is due (<= 10 s).
wait_due() {
    local next i
    next=$(field_of "$1" next-attempt)
    [ -n "$next" ] || return 1
    for i in $(seq 100); do
        [ "$(date +%s)" -ge "$next" ] && return 0
        sleep 0.1
    done
    return 1
}

# dsn_of_server SRVOUT RCPT: DSN_FILES, the messages a server received with
# the null sender for RCPT alone.
dsn_of_server() {
    mapfile -t DSN_FILES < <("$PY" - "$1" "$2" <<'EOF'
import json, os, sys
d, rcpt = sys.argv[1:3]
p = os.path.join(d, "transactions.jsonl")
if os.path.exists(p):
    for line in open(p):
        r = json.loads(line)
        if r["mail_from"] == "" and r["rcpts"] == [rcpt]:
            print(os.path.join(d, r["file"]))
EOF
    )
}

# max_txn_rcpts SRVOUT: the largest number of recipients of one transaction.
max_txn_rcpts() {
    "$PY" - "$1/transactions.jsonl" <<'EOF'
import json, sys
print(max([len(json.loads(l)["rcpts"]) for l in open(sys.argv[1])] or [0]))
EOF
}

# dsn_rows ADDR: the lines of $T/dsns.txt for ADDR (after rcpt_states).
dsn_rows() {
    awk -F '\t' -v a="$1" '$2 == a' "$T/dsns.txt"
}

# all_dsn_rows_match ADDR... -- FIELD REGEX NAME: every DSN line of every
# ADDR has FIELD (3 action, 4 status, 5 diagnostic) matching REGEX.
dsn_field_check() {
    local field=$1 re=$2 name=$3 a row bad=0 got=()
    shift 3
    for a in "$@"; do
        row=$(dsn_rows "$a" | head -n 1)
        got+=("$a: $(printf '%s' "$row" | cut -f "$field")")
        if [ -z "$row" ] || ! printf '%s' "$row" | cut -f "$field" | grep -Eq -- "$re"; then
            bad=1
        fi
    done
    if [ "$bad" -eq 0 ]; then
        pass "$name"
    else
        fail "$name"
        diag "wanted /$re/; got: ${got[*]}"
    fi
}

# states_match REGEX NAME ADDR...
states_match() {
    local re=$1 name=$2 a got=() bad=0
    shift 2
    for a in "$@"; do
        got+=("$a=${STATE[$a]:-lost}")
        [[ ${STATE[$a]:-lost} =~ $re ]] || bad=1
    done
    if [ "$bad" -eq 0 ]; then
        pass "$name"
    else
        fail "$name"
        diag "expected /$re/; got: ${got[*]}"
    fi
}

# not_a_success_reply TEXT NAME: a deferral reason must not be a 2xx reply
not_a_success_reply() {
    if [ -n "$1" ] && ! [[ $1 =~ ^2[0-9][0-9]([^0-9]|$) ]]; then
        pass "$2"
    else
        fail "$2"
        diag "last-error: $(printf '%q' "$1")"
    fi
}

# contains TEXT REGEX NAME (grep -Ei)
contains() {
    if printf '%s' "$1" | grep -Eiq -- "$2"; then
        pass "$3"
    else
        fail "$3"
        diag "     got: $(printf '%q' "$1")"
        diag "expected: text matching /$2/"
    fi
}

# ---------------------------------------------------------------- 1: 550
scenario "1: 550 5.1.1 for some recipients"
dl_spool
# The sender's own address gets 450 on this server, so that the DSN stays
# in the spool after the first run and can be looked at there.
fault_start --reject5 '^bad' --reject4 "^${S//./\\.}\$"
dl_conf 'retry_min = 2;' 'retry_max = 3;'
OK=(ok1@example.com ok2@example.com ok3@example.com)
BAD=(bad1@example.com bad2@example.com)
queue_mail "$S" ok1@example.com bad1@example.com ok2@example.com bad2@example.com ok3@example.com
ORIG=$QUEUED
run_agent
is "$AGENT_RC" 0 "1: agent exits 0"
rcpt_states
states_are delivered "1: accepted recipients delivered exactly once" "${OK[@]}"
states_are failed "1: rejected recipients are in exactly one DSN" "${BAD[@]}"
is "$(grep -c 'sender non-delivery notification' "$AGENT_LOG")" 1 \
    "1: the log names one DSN queued"
DSN_NAME=$(sed -n 's/.*sender non-delivery notification: \([^ ]*\) .*/\1/p' "$AGENT_LOG" | head -n 1)
DSN_ENTRY=$(find "$SPOOL/out" "$SPOOL/deferred" -type f -name "${DSN_NAME:-none}*" 2>/dev/null | head -n 1)
if [ -n "$DSN_NAME" ] && [ -n "$DSN_ENTRY" ] && entry_parse "$DSN_ENTRY"; then
    pass "1: the DSN entry is in the spool (queued into out/, its own delivery deferred)"
    is "${ENV_FIELDS[sender]-unset}" "" "1: the DSN entry has the null sender"
    is "${ENV_RCPT[*]}" "$S" "1: the DSN entry goes to the original sender only"
else
    fail "1: the DSN entry is in the spool (queued into out/, its own delivery deferred)"
    skip "no DSN entry" 2
fi
check "1: the original entry is removed" \
    test -z "$(find "$SPOOL" -type f -name "$ORIG*")"
# Now deliver the DSN: the server without faults, the DSN due.
fault_stop
S1_OUT=$SRV_OUT
fault_start
dl_conf 'retry_min = 2;' 'retry_max = 3;'
[ -n "$DSN_ENTRY" ] && wait_due "$DSN_ENTRY"
run_agent
dsn_of_server "$SRV_OUT" "$S"
is "${#DSN_FILES[@]}" 1 "1: the DSN reached the server once, MAIL FROM:<> RCPT TO:<$S>"
dsn_of_server "$S1_OUT" "$S"
is "${#DSN_FILES[@]}" 0 "1: and not the first server (450 for the sender)"
dsn_of_server "$SRV_OUT" "$S"
if [ "${#DSN_FILES[@]}" -ge 1 ]; then
    "$PY" "$DSN_PARSE" "${DSN_FILES[0]}" >"$T/dsn1.txt" 2>"$T/dsn1.err"
    ok $? "1: the DSN is a well-formed RFC 3464 report"
    is "$(cut -f 1 "$T/dsn1.txt" | sort | tr '\n' ' ')" "bad1@example.com bad2@example.com " \
        "1: the DSN lists exactly the rejected recipients"
    is "$(cut -f 2,3 "$T/dsn1.txt" | sort -u | tr '\t\n' ' |')" "failed 5.1.1|" \
        "1: action failed, status 5.1.1"
    bad=0
    for a in "${BAD[@]}"; do
        grep -F "$a" "$T/dsn1.txt" | cut -f 4 |
            grep -qF "550 5.1.1 <$a>: Recipient address rejected: User unknown" || bad=1
    done
    ok "$bad" "1: each diagnostic holds the server's reply for that recipient"
    [ "$bad" -eq 0 ] || diag "$(cat "$T/dsn1.txt" "$T/dsn1.err")"
else
    skip "no DSN at the server" 4
fi
rcpt_states
states_are failed "1: finally the rejected recipients are in one DSN, delivered" "${BAD[@]}"
states_are delivered "1: finally the others are delivered exactly once" "${OK[@]}"
is "$(spool_count out)/$(spool_count deferred)/$(spool_count bad)" "0/0/0" \
    "1: the spool is empty"
end_scenario

# ---------------------------------------------------------------- 2: 450
scenario "2: 450 4.2.1 for some recipients"
dl_spool
fault_start --reject4 '^tmp'
dl_conf
queue_mail "$S" ok1@example.com tmp1@example.com ok2@example.com tmp2@example.com
run_agent
is "$AGENT_RC" 0 "2: agent exits 0"
rcpt_states
states_are delivered "2: accepted recipients delivered exactly once" ok1@example.com ok2@example.com
states_are deferred "2: 450 recipients deferred" tmp1@example.com tmp2@example.com
is "$(wc -l <"$T/dsns.txt")" 0 "2: no DSN"
is "$(spool_count deferred)" 1 "2: one deferred entry"
if deferred_entry tmp1@example.com; then
    entry_parse "$DEFERRED_FILE"
    is "${#ENV_RCPT[@]}" 2 "2: it holds only the two deferred recipients"
    contains "$(field_of "$DEFERRED_FILE" last-error)" '^450 4\.2\.1 ' \
        "2: its last-error is the server's 450 reply"
    is "$(field_of "$DEFERRED_FILE" attempts)" 1 "2: attempts 1"
else
    skip "no deferred entry" 3
fi
end_scenario

# ---------------------------------------------------------------- 3: 452
scenario "3: 452 4.5.3 after 3 recipients, recipients_per_transaction 10"
dl_spool
fault_start --max-rcpts 3
dl_conf 'recipients_per_transaction = 10;'
R3=()
for i in $(seq 1 11); do R3+=("r$i@example.com"); done
queue_mail "$S" "${R3[@]}"
run_agent
is "$AGENT_RC" 0 "3: agent exits 0"
rcpt_states
states_are delivered "3: all 11 recipients delivered exactly once" "${R3[@]}"
m=$(max_txn_rcpts "$SRV_OUT")
check "3: no transaction had more than 3 recipients (got $m)" test "$m" -le 3
is "$(spool_count out)/$(spool_count deferred)" "0/0" "3: nothing left in the spool"
n=$(server_txns)
# 10 + 1 in the first round; the 7 that got 452 in ceil(7/3) = 3 more
check "3: follow-up transactions use the server's limit of 3 (<= 5 transactions, got $n)" \
    test "$n" -le 5
end_scenario

# ------------------------------------------------------- 4: drop in DATA
scenario "4: connection dropped during the second DATA"
dl_spool
fault_start --drop-in-data 2
dl_conf 'recipients_per_transaction = 2;' 'retry_min = 2;' 'retry_max = 3;'
R4=(u1@example.com u2@example.com u3@example.com u4@example.com u5@example.com)
queue_mail "$S" "${R4[@]}"
run_agent
is "$AGENT_RC" 0 "4: agent exits 0"
rcpt_states
states_are delivered "4: the first transaction delivered" u1@example.com u2@example.com
states_are deferred "4: the dropped transaction and the one after it deferred" \
    u3@example.com u4@example.com u5@example.com
check "4: the server dropped a connection in DATA" \
    grep -q 'DROP connection without reply: --drop-in-data' "$SRV_OUT/session.log"
if deferred_entry u3@example.com; then
    entry_parse "$DEFERRED_FILE"
    is "${#ENV_RCPT[@]}" 3 "4: the deferred entry holds the 3 undelivered recipients only"
    not_a_success_reply "$(field_of "$DEFERRED_FILE" last-error)" \
        "4: its last-error is the failure, not a 2xx reply"
else
    skip "no deferred entry" 2
fi
# the fault is gone: everything goes out
fault_stop
fault_start
dl_conf 'recipients_per_transaction = 2;' 'retry_min = 2;' 'retry_max = 3;'
[ -n "$DEFERRED_FILE" ] && wait_due "$DEFERRED_FILE"
run_agent
rcpt_states
states_match '^delivered(\*[0-9]+)?$' "4: after the retry every recipient was delivered (at least once)" "${R4[@]}"
is "$(spool_count out)/$(spool_count deferred)/$(spool_count bad)" "0/0/0" \
    "4: the spool is empty"
end_scenario

# --------------------------------------------------- 5: stall after DATA
scenario "5: no reply for 20 s after the data, smtp_timeout = 2"
dl_spool
fault_start --stall-in-data 20
dl_conf 'smtp_timeout = 2;'
queue_mail "$S" s1@example.com s2@example.com
run_agent
check "5: the agent was not killed by timeout(1) (exit $AGENT_RC)" test "$AGENT_RC" -ne 124
check "5: the agent gave up within 12 s (took $AGENT_MS ms)" test "$AGENT_MS" -lt 12000
rcpt_states
states_are deferred "5: the recipients are deferred" s1@example.com s2@example.com
end_scenario

# ------------------------------------------- 6: 421 greeting and refused
scenario "6: 421 greeting; connection refused"
dl_spool
fault_start --greeting-421
dl_conf
queue_mail "$S" g1@example.com g2@example.com
run_agent
is "$AGENT_RC" 0 "6: 421: agent exits 0"
rcpt_states
states_are deferred "6: 421: all deferred" g1@example.com g2@example.com
deferred_entry g1@example.com
contains "$(field_of "${DEFERRED_FILE:-/dev/null}" last-error)" '421' \
    "6: 421: last-error has the 421 reply"
is "$(server_txns)" 0 "6: 421: nothing delivered"
fault_stop

dl_spool
SRV_PORT=$(free_port)
dl_conf
queue_mail "$S" c1@example.com c2@example.com
run_agent
is "$AGENT_RC" 0 "6: refused: agent exits 0"
rcpt_states
states_are deferred "6: refused: all deferred" c1@example.com c2@example.com
deferred_entry c1@example.com
contains "$(field_of "${DEFERRED_FILE:-/dev/null}" last-error)" 'refused' \
    "6: refused: last-error says connection refused"
end_scenario

# ------------------------------------------------ 7: drop after MAIL FROM
scenario "7: connection dropped right after MAIL FROM"
dl_spool
fault_start --drop-after-mail 0
dl_conf
queue_mail "$S" m1@example.com m2@example.com
run_agent
is "$AGENT_RC" 0 "7: agent exits 0 (it survived)"
check "7: agent ended normally" log_has 'stopped$'
rcpt_states
states_are deferred "7: the entry is deferred, not lost" m1@example.com m2@example.com
is "$(spool_count bad)" 0 "7: nothing in bad/"
check "7: the log says the transaction was deferred or the delivery process died" \
    log_has 'deferred|delivery process [0-9]+ (killed|exited)'
end_scenario

# The crash itself: libESMTP 1.1.0 segfaults in smtp_start_session() when
# the server accepts MAIL FROM with 250 and then dies while two or more
# pipelined RCPT TO are unanswered (ECONNRESET for the first RCPT reply,
# EOF for the next, then a call through a null pointer).  The fault
# server's --drop-after-mail closes the connection *before* the reply to
# MAIL, which libESMTP survives (checked above); smtp-sink that cannot
# write its dump files exits at the first RCPT, after its 250 to MAIL.
scenario "7b: the libESMTP crash (smtp-sink exits after MAIL FROM)"
dl_spool
if crash_sink_start; then
    dl_conf 'retry_min = 2;' 'retry_max = 3;'
    queue_mail "$S" k1@example.com k2@example.com
    run_agent
    is "$AGENT_RC" 0 "7b: agent exits 0 (it survived)"
    check "7b: the crash is reproduced: the log says the delivery process was killed by signal 11" \
        log_has "$CRASHED"
    rcpt_states
    states_are deferred "7b: the entry is deferred, not lost" k1@example.com k2@example.com
    is "$(spool_count bad)" 0 "7b: nothing in bad/"
    deferred_entry k1@example.com
    F7=${DEFERRED_FILE:-/dev/null}
    contains "$(field_of "$F7" last-error)" 'delivery process' \
        "7b: last-error says the delivery process died"
    # no crash loop: a second crash is one more attempt, with backoff
    # (smtp-sink exited: start another one the same way)
    stop_pid "$SINK_PID"
    crash_sink_start || bail_out "smtp-sink did not start again"
    dl_conf 'retry_min = 2;' 'retry_max = 3;'
    wait_due "$F7"
    run_agent
    is "$AGENT_RC" 0 "7b: second crash: agent exits 0"
    check "7b: second crash: crashed again" log_has "$CRASHED"
    rcpt_states
    states_are deferred "7b: second crash: still deferred, with a next attempt later" \
        k1@example.com k2@example.com
    deferred_entry k1@example.com
    is "$(field_of "${DEFERRED_FILE:-/dev/null}" attempts)" 2 "7b: second crash: attempts 2"
    is "$(spool_count bad)" 0 "7b: second crash: nothing in bad/"
    stop_pid "$SINK_PID"
else
    skip "smtp-sink (Debian package postfix) not available" 10
fi
end_scenario

# ------------------------------------------------------- 8: max_lifetime
scenario "8: max_lifetime"
dl_spool
fault_start --reject4 '^tmp'
dl_conf 'max_lifetime = 0;'
queue_mail "$S" ok@example.com tmp1@example.com tmp2@example.com
ORIG=$QUEUED
run_agent
is "$AGENT_RC" 0 "8a: max_lifetime 0: agent exits 0"
rcpt_states
states_are delivered "8a: accepted recipient delivered" ok@example.com
states_are failed "8a: 450 recipients returned in one DSN" tmp1@example.com tmp2@example.com
dsn_field_check 3 '^failed$' "8a: action failed" tmp1@example.com tmp2@example.com
dsn_field_check 4 '^4\.4\.7$' "8a: status 4.4.7" tmp1@example.com tmp2@example.com
dsn_field_check 5 '450 4\.2\.1' "8a: diagnostic has the last 450 reply" tmp1@example.com tmp2@example.com
check "8a: the entry is removed" test -z "$(find "$SPOOL" -type f -name "$ORIG*")"
check "8a: the log says expired" log_has 'expired after 0 s \(max_lifetime\)'
fault_stop

# an old entry expires, a young one does not
dl_spool
fault_start --reject4 '^tmp'
dl_conf 'max_lifetime = 3600;'
queue_mail "$S" tmpold@example.com
OLD=$(find "$SPOOL/out" -type f -name "$QUEUED")
old_arrival=$(($(date +%s) - 7200))
sed -i "s/^arrival [0-9]*\./arrival $old_arrival./" "$OLD"
queue_mail "$S" tmpnew@example.com
run_agent
rcpt_states
states_are failed "8b: recipient of a 2-hour-old entry returned (max_lifetime 3600)" tmpold@example.com
dsn_field_check 4 '^4\.4\.7$' "8b: status 4.4.7" tmpold@example.com
states_are deferred "8b: recipient of a new entry deferred" tmpnew@example.com
fault_stop

# recipients of a transaction cut short expire with the real reason
dl_spool
fault_start --drop-in-data 1
dl_conf 'max_lifetime = 0;'
queue_mail "$S" d1@example.com d2@example.com
run_agent
rcpt_states
states_are failed "8c: dropped in DATA, max_lifetime 0: returned" d1@example.com d2@example.com
dsn_field_check 4 '^4\.4\.7$' "8c: status 4.4.7" d1@example.com d2@example.com
dsn_field_check 5 '^([^2]|2[^0-9]|2[0-9][^0-9]|2[0-9][0-9][^ ])|^$' \
    "8c: the diagnostic is not a 2xx reply (not the RCPT's 250)" d1@example.com d2@example.com
fault_stop
end_scenario

scenario "8d: max_lifetime and a delivery process that crashes"
dl_spool
if crash_sink_start; then
    # a 2-hour-old entry and max_lifetime 3600 (not 0: the DSN, which
    # cannot reach the dead smtp-sink either, must not expire at once)
    dl_conf 'max_lifetime = 3600;'
    queue_mail "$S" x1@example.com x2@example.com
    OLD=$(find "$SPOOL/out" -type f -name "$QUEUED")
    sed -i "s/^arrival [0-9]*\./arrival $(($(date +%s) - 7200))./" "$OLD"
    run_agent
    check "8d: the delivery process crashed" log_has "$CRASHED"
    rcpt_states
    states_are failed "8d: past max_lifetime, a crashed delivery is returned (4.4.7), not deferred again" \
        x1@example.com x2@example.com
    stop_pid "$SINK_PID"
else
    skip "smtp-sink (Debian package postfix) not available" 2
fi
end_scenario

# -------------------------------------------------------- 9: null sender
scenario "9: null sender, 550 for some recipients"
dl_spool
fault_start --reject5 '^bad'
dl_conf
queue_mail '' ok@example.com bad1@example.com bad2@example.com
ORIG=$QUEUED
run_agent
is "$AGENT_RC" 0 "9: agent exits 0"
rcpt_states
states_are delivered "9: accepted recipient delivered" ok@example.com
is "$(wc -l <"$T/dsns.txt")" 0 "9: no DSN anywhere"
is "$(find "$SPOOL/out" "$SPOOL/deferred" "$SPOOL/bad" -type f | wc -l)" 0 \
    "9: the entry is removed and nothing was queued"
is "$(server_txns)" 1 "9: the server got only the message itself"
check "9: the log says no DSN to the null sender, for each rejected recipient" \
    test "$(grep -cE 'to=<bad[12]@example.com>, status=failed: no DSN to the null sender' "$AGENT_LOG")" -eq 2
fault_stop

dl_spool
fault_start --reject4 '^tmp'
dl_conf 'max_lifetime = 0;'
queue_mail '' tmp1@example.com
run_agent
is "$(find "$SPOOL/out" "$SPOOL/deferred" "$SPOOL/bad" -type f | wc -l)" 0 \
    "9: null sender, expired: the entry is removed, no DSN queued"
is "$(server_txns)" 0 "9: null sender, expired: nothing sent"
check "9: null sender, expired: the log says no DSN to the null sender" \
    log_has 'to=<tmp1@example.com>, status=failed: no DSN to the null sender'
end_scenario

# ---------------------------------------------- 10: 451 / 554 after data
scenario "10: 451 after the data"
dl_spool
fault_start --tempfail-data
dl_conf
queue_mail "$S" t1@example.com t2@example.com
run_agent
rcpt_states
states_are deferred "10: 451: deferred" t1@example.com t2@example.com
is "$(wc -l <"$T/dsns.txt")" 0 "10: 451: no DSN"
deferred_entry t1@example.com
contains "$(field_of "${DEFERRED_FILE:-/dev/null}" last-error)" '^451 4\.3\.0' \
    "10: 451: last-error is the server's 451 reply"
fault_stop
end_scenario

scenario "10: 554 after the data"
dl_spool
fault_start --permfail-data 1
dl_conf
queue_mail "$S" p1@example.com p2@example.com
ORIG=$QUEUED
run_agent
rcpt_states
states_are failed "10: 554: both recipients in one DSN" p1@example.com p2@example.com
dsn_field_check 3 '^failed$' "10: 554: action failed" p1@example.com p2@example.com
dsn_field_check 4 '^5\.6\.0$' "10: 554: status 5.6.0 (the server's)" p1@example.com p2@example.com
dsn_field_check 5 '554 5\.6\.0' "10: 554: the diagnostic is the server's 554 reply" \
    p1@example.com p2@example.com
check "10: 554: the entry is removed" test -z "$(find "$SPOOL" -type f -name "$ORIG*")"
fault_stop
end_scenario

done_testing
