#!/bin/bash
# t/deliver-log.sh - mmq-deliver's log says what happened: the delivered
# recipients of a transaction on one line, every recipient not delivered
# on a line of its own with the server's reply and the right status
# (a 5.7.x refusal of all of them is deferred, not bounced), the list
# named, owner mail logged as forwarding, and a refused connection's
# reason on the delivery line.
set -u
top_srcdir=${top_srcdir:-$(cd "$(dirname "$0")/.." && pwd)}
. "$top_srcdir/t/lib.sh"
. "$top_srcdir/t/deliver-lib.sh"
dl_init

S=sender@example.net
# log_count REGEX: lines of the last agent run matching REGEX (grep -E)
log_count() { grep -cE -- "$1" "$AGENT_LOG"; }

# mixed outcomes in one transaction
dl_spool
fault_start --reject5 '^bad' --reject4 '^tmp' --reject4 "^${S//./\\.}\$"
dl_conf 'myhostname = "mx1.lists.example.org";'
queue_mail "$S" ok1@example.com bad1@example.com tmp1@example.com ok2@example.com
run_agent
is "$(log_count 'to=<ok1@example.com> \+1, list=announce, relay=[^ ]+, delay=[0-9.]+, rcpts=2, dsn=2\.0\.0, status=sent ')" 1 \
    "mixed: the two delivered recipients on one line, status=sent, list named"
is "$(log_count 'to=<bad1@example.com>, list=announce, .*rcpts=1, dsn=5\.1\.1, status=bounced \(550 5\.1\.1 <bad1@example\.com>: Recipient address rejected')" 1 \
    "mixed: the refused recipient on its own line, status=bounced, the server's reply"
is "$(log_count 'to=<tmp1@example.com>, list=announce, .*dsn=4\.2\.1, status=deferred \(450 4\.2\.1 <tmp1@example\.com>')" 1 \
    "mixed: the deferred recipient on its own line, status=deferred, the server's reply"
is "$(log_count 'status=(sent|bounced|deferred)')" 4 \
    "mixed: three lines for the transaction, one for the DSN's (deferred) delivery"
diag "$(grep 'to=<' "$AGENT_LOG")"
# the DSN for bad1 (deferred: the sender's address gets 450) names the host
dsn=$(grep -l '^Reporting-MTA: dns; ' -r "$SPOOL/deferred" | head -n 1)
grep -q '^Reporting-MTA: dns; mx1\.lists\.example\.org' "${dsn:-/dev/null}"
ok $? "DSN: Reporting-MTA is myhostname"
grep -q 'This is the mail system at host mx1\.lists\.example\.org\.' "${dsn:-/dev/null}"
ok $? "DSN: \"the mail system at host\" myhostname"

# every recipient refused with 5.7.x: deferred (the relay refuses us)
dl_spool
fault_start --reject57 '.'
dl_conf
queue_mail "$S" a@example.com b@example.com
run_agent
is "$(log_count 'status=bounced')" 0 "5.7.x for all: no line says status=bounced"
is "$(log_count 'to=<[ab]@example.com>, list=announce, .*dsn=5\.7\.1, status=deferred \(554 5\.7\.1 <[ab]@example.com>: Relay access denied\)')" 2 \
    "5.7.x for all: each recipient logged status=deferred with the reply"
is "$(find "$SPOOL/deferred" -type f | wc -l)" 1 "5.7.x for all: the entry is deferred"

# connection refused: the reason on the delivery line
dl_spool
SRV_PORT=$(free_port)
dl_conf
queue_mail "$S" c@example.com
run_agent
is "$(log_count 'to=<c@example.com>, list=announce, .*dsn=4\.4\.2, status=deferred \(4\.4\.2 Connection refused\)')" 1 \
    "connection refused: dsn=4.4.2 and the reason on the delivery line"
diag "$(grep 'to=<' "$AGENT_LOG")"

# owner mail is forwarding
dl_spool
fault_start
dl_conf
queue_mail "$S" owner1@example.com
f=$(find "$SPOOL/out" -type f)
sed -i 's/^role post$/role owner/' "$f"
run_agent
is "$(log_count 'to=<owner1@example.com>, list=announce, forwarding=owner, .*status=sent')" 1 \
    "owner mail: logged as forwarding"
done_testing
