#!/bin/bash
# t/ctl-prometheus.sh - "mmqctl stats --prometheus", read back with a real
# parser of the Prometheus text format (Debian's python3-prometheus-client):
# queue depths and ages, the delivery outcomes counted by mmq-deliver's
# workers, DSNs queued and bounces taken in by mmq-filter; and "stats
# QUEUE" showing only that queue.
set -u
top_srcdir=${top_srcdir:-$(cd "$(dirname "$0")/.." && pwd)}
. "$top_srcdir/t/lib.sh"
. "$top_srcdir/t/deliver-lib.sh"
dl_init
# the Debian package's module is for Debian's python3, whatever is first
# on PATH
PROM_PY=/usr/bin/python3
"$PROM_PY" -c 'import prometheus_client.parser' 2>/dev/null ||
    skip_all "python3-prometheus-client not installed (scripts/deps.sh)"

S=sender@example.net
dl_spool
fault_start --reject5 '^bad' --reject4 '^tmp' --reject4 "^${S//./\\.}\$"
dl_conf
queue_mail "$S" ok1@example.com bad1@example.com tmp1@example.com ok2@example.com
run_agent
printf 'From: MAILER-DAEMON@example.net\nSubject: bounce\n\nx\n' >"$T/bounce"
"$MMQ_FILTER" -c "$CONF" -f '' -R bounces announce <"$T/bounce"
is "$?" 0 "a bounce taken into bounces/"

"$MMQCTL" -c "$CONF" stats --prometheus >"$T/prom" 2>"$T/prom.err"
is "$?" 0 "stats --prometheus: exit 0"
# metric{labels} value, one a line, as the parser understood them
"$PROM_PY" -c '
import sys
from prometheus_client.parser import text_string_to_metric_families
for fam in text_string_to_metric_families(open(sys.argv[1]).read()):
    for s in fam.samples:
        labels = ",".join("%s=%s" % kv for kv in sorted(s.labels.items()))
        print("%s{%s} %g %s" % (s.name, labels, s.value, fam.type))
' "$T/prom" >"$T/parsed" 2>"$T/parse.err"
ok $? "the output parses as the Prometheus text format"
diag "$(cat "$T/parse.err")"
val() { grep -F "$1 " "$T/parsed" | head -n 1 | cut -d' ' -f2,3; }
is "$(val 'mmq_delivery_recipients_total{node=testnode,outcome=sent}')" "2 counter" \
    "counter: 2 recipients sent"
is "$(val 'mmq_delivery_recipients_total{node=testnode,outcome=bounced}')" "1 counter" \
    "counter: 1 recipient bounced"
# tmp1 in the transaction, the sender in the DSN's
is "$(val 'mmq_delivery_recipients_total{node=testnode,outcome=deferred}')" "2 counter" \
    "counter: 2 recipients deferred"
is "$(val 'mmq_dsns_total{node=testnode}')" "1 counter" "counter: 1 DSN queued"
is "$(val 'mmq_bounces_received_total{node=testnode}')" "1 counter" \
    "counter: 1 bounce received"
is "$(val 'mmq_queue_entries{queue=deferred}')" "2 gauge" \
    "gauge: 2 entries deferred (the post's rest and the DSN)"
is "$(val 'mmq_queue_entries{queue=bounces}')" "1 gauge" "gauge: 1 entry in bounces/"
a=$(val 'mmq_queue_oldest_age_seconds{queue=deferred}')
[[ $a =~ ^[0-9]+\ gauge$ ]] && [ "${a% *}" -lt 60 ]
ok $? "gauge: the age of the oldest deferred entry, in seconds ($a)"

"$MMQCTL" -c "$CONF" stats bounces >"$T/stats"
is "$(sed -n '2,/^$/{/^$/d;p}' "$T/stats" | awk '{ print $1 }' | tr '\n' ' ')" "bounces " \
    "stats bounces: the queue table has only bounces"
is "$(sed -n '/^slice/p' "$T/stats")" "slice   bounces" "stats bounces: the slice table too"
done_testing
