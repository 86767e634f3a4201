#!/bin/bash
# deliver-member-header: per-member header fields on the delivery path
# (deliver/member.h).  20 recipients queued in 2 entries of 10 with
# "member-header X-Test-Member" (mkentry -H), no VERP: mmq-deliver -1 sends
# one transaction per recipient, each message starting with
# "X-Test-Member: <that recipient>" followed by the message byte for byte
# as queued; every recipient once, the spool empty.  Also the delay= field
# of the log: computed from the sub-second arrival, it is never more than
# the time from just before queuing to the agent's exit.
set -u
. "${top_srcdir:-$(dirname "$0")/..}/t/lib.sh"
. "${top_srcdir:-$(dirname "$0")/..}/t/deliver-lib2.sh"

mk_spool
dl_sink_start "$T/sink"
dl_conf "connections = 2;"
M=$T/msg
printf 'From: alice@example.org\nTo: dev@lists.example.org\nSubject: member header\nDate: Sun, 22 Nov 2026 10:00:00 +0000\nMessage-ID: <mh@mmq.test>\n\nbody line\n.dot line\n' >"$M"
dl_rcpts 20 "$T/rcpts"

t0=$(date +%s.%N)
QUEUED=$("$MMQ_MKENTRY" -c "$CONF" -f list-bounces@example.org -l dev -n 10 \
    -H X-Test-Member "$T/rcpts" <"$M" 2>&1) || bail_out "mkentry -H failed: $QUEUED"
is "$(printf '%s\n' "$QUEUED" | grep -c .)" 2 "20 recipients queued in 2 entries"
f=$(dl_files out | head -n 1)
is "$(grep -a -m1 '^member-header ' "$f")" "member-header X-Test-Member" \
    "the envelope names the field (member-header)"

LOG=$T/deliver.log
timeout 60 "$MMQ_DELIVER" -c "$CONF" -1 -e 2>"$LOG"
rc=$?
t1=$(date +%s.%N)
is "$rc" 0 "mmq-deliver -1 exits 0"
[ "$rc" -eq 0 ] || diag "$(tail -n 20 "$LOG")"
dl_tally "$T/rcpts" "$T/sink"
is "$DL_GOT/$DL_MISSING/$DL_DUPS/$DL_UNEXPECTED" "20/0/0/0" "every recipient exactly once"
is "$(sink_dumps "$T/sink" | wc -l)" 20 "one transaction per recipient"
is "$(dl_files out deferred bad)$(dl_claimed)" "" "the spool is empty"

# each message: the member's own header line, then the message as queued
good=0
while IFS= read -r d; do
    r=$(awk '/^Received: / { exit } /^X-Rcpt-Args:/ { print $2 }' "$d" | tr -d '<>')
    got=$(sink_message "$d" | tr -d '\r')
    want="X-Test-Member: $r"$'\n'"$(cat "$M")"
    if [ "$got" == "$want" ]; then
        good=$((good + 1))
    elif [ "$good" -ge 0 ]; then
        diag "in $d for <$r>:"
        diag "$(printf '%s\n' "$got" | head -n 3)"
        good=-1000
    fi
done < <(sink_dumps "$T/sink")
is "$good" 20 "each message starts with X-Test-Member: <its recipient>, then the message byte for byte"

# delay= from the sub-second arrival: never more than the time since
# just before the entries were made
span=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a + 0.01 }')
worst=$(sed -n 's/.*, delay=\([0-9.]*\),.*/\1/p' "$LOG" | sort -g | tail -n 1)
is "$(sed -n 's/.*, delay=\([0-9.]*\),.*/\1/p' "$LOG" | wc -l)" 20 "20 log lines with delay="
check "delay= at most $span s (the largest is ${worst:-none})" \
    awk -v w="${worst:-99}" -v s="$span" 'BEGIN { exit !(w <= s) }'
done_testing
