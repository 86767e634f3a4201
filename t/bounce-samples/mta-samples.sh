#!/bin/bash
# mta-samples.sh - make the real-MTA samples of this directory: a private
# Postfix and a private Exim (as t/mta-postfix.sh and t/mta-exim.sh run
# them) relay mail from list-bounces@lists.example.org to reject-server.py,
# which refuses recipients by local part (unknown user, over quota, relay
# refused, spam, try later); the bounces and delay warnings the MTAs send
# back are saved to OUTDIR as postfix-TAG-KIND.eml and exim-TAG-KIND.eml
# (TAG: the local part's first word, "several" for the message to four
# members; KIND: failed or delayed).  Not part of
# make check (the samples and their .expect files are committed); run by
# hand as root to refresh them:
#
#   t/bounce-samples/mta-samples.sh OUTDIR
#
# The addresses are invented (example.net, example.org); the MTAs' own
# host names are mx.test.invalid.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
OUT=$(mkdir -p "$1" && cd "$1" && pwd)
T=$(mktemp -d /tmp/mmq-bsamples.XXXXXX)
chmod 755 "$T"
PIDS=()
cleanup() {
    [ -f "$T/pf/pid" ] && postfix -c "$T/pf" stop >/dev/null 2>&1 || true
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
}
trap cleanup EXIT
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
wait_for() { # FILE-GLOB-COUNT DIR N SECS
    local i
    for ((i = 0; i < $3 * 10; i++)); do
        [ "$(find "$1" -name 'msg-*.eml' | wc -l)" -ge "$2" ] && return 0
        sleep 0.1
    done
    echo "timeout waiting for $2 messages in $1" >&2
    return 1
}
wait_expired() { # DIR SUBJECT SECS: until the failure for later.user came back
    local i f
    for ((i = 0; i < $3 * 10; i++)); do
        for f in "$1"/msg-*.eml; do
            grep -q "^Subject: $2" "$f" && grep -q 'Announcement for later' "$f" && return 0
        done
        sleep 0.1
    done
    echo "timeout waiting for the expiry of later.user in $1" >&2
    return 1
}
send() { # PORT RCPT...
    local port=$1 r
    shift
    for r in "$@"; do
        swaks --server "127.0.0.1:$port" --helo client.test \
            --from list-bounces@lists.example.org --to "$r" \
            --header "Subject: Announcement for $r" \
            --body "A post to the list." >/dev/null
    done
}
# one message to several members: one bounce names them all
send_several() { # PORT
    swaks --server "127.0.0.1:$1" --helo client.test \
        --from list-bounces@lists.example.org \
        --to unknown.one@example.net,quota.two@example.net,fine@example.net,unknown.three@example.org \
        --header "Subject: Announcement for several" \
        --body "A post to the list." >/dev/null
}
# save DIR's messages as OUT/MTA-TAG-KIND.eml: TAG from the returned
# message's "Announcement for local.part@..." subject, KIND delayed or failed
save() { # DIR MTA
    python3 - "$1" "$OUT" "$2" <<'PY'
import os, re, sys
d, out, mta = sys.argv[1:]
for f in sorted(os.listdir(d)):
    if not f.startswith("msg-"):
        continue
    data = open(os.path.join(d, f), "rb").read()
    text = data.decode("latin-1")
    subj = re.search(r"(?m)^Subject: (.*)$", text).group(1)
    if subj.startswith("Announcement for"):  # the post itself, to fine@
        continue
    tag = re.search(r"Announcement for ([a-z]+)", text).group(1)
    kind = "delayed" if re.search(r"(?i)delayed|warning", subj) else "failed"
    name = os.path.join(out, "%s-%s-%s.eml" % (mta, tag, kind))
    if not os.path.exists(name):  # the first of repeated warnings
        open(name, "wb").write(data)
PY
}
start_remote() { # DIR: sets R to its port
    mkdir -p "$1"
    python3 "$here/reject-server.py" "$1/port" "$1" &
    PIDS+=($!)
    for _ in $(seq 50); do [ -f "$1/port" ] && break; sleep 0.1; done
    R=$(cat "$1/port")
}

# ------------------------------------------------------------- Postfix
start_remote "$T/pf-remote"
PF=$T/pf
mkdir -p "$PF" "$T/pfq" "$T/pfdata"
chown postfix "$T/pfdata"
PORT=$(free_port)
cat >"$PF/main.cf" <<MAINCF
compatibility_level = 3.6
queue_directory = $T/pfq
data_directory = $T/pfdata
mail_owner = postfix
setgid_group = postdrop
myhostname = mx.test.invalid
mydomain = test.invalid
mydestination =
local_recipient_maps =
alias_maps =
alias_database =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
relayhost = [127.0.0.1]:$R
smtp_dns_support_level = disabled
smtp_host_lookup = native
smtp_tls_security_level = none
smtputf8_enable = no
maillog_file = $PF/maillog
maillog_file_prefixes = $T
queue_run_delay = 1s
minimal_backoff_time = 1s
maximal_backoff_time = 2s
delay_warning_time = 1s
maximal_queue_lifetime = 8s
bounce_queue_lifetime = 8s
MAINCF
{
    echo "127.0.0.1:$PORT inet n - n - - smtpd"
    for s in "pickup unix n - n 60 1 pickup" "cleanup unix n - n - 0 cleanup" \
        "qmgr unix n - n 300 1 qmgr" "rewrite unix - - n - - trivial-rewrite" \
        "bounce unix - - n - 0 bounce" "defer unix - - n - 0 bounce" \
        "trace unix - - n - 0 bounce" "verify unix - - n - 1 verify" \
        "flush unix n - n 1000? 0 flush" "proxymap unix - - n - - proxymap" \
        "smtp unix - - n - - smtp" "relay unix - - n - - smtp" \
        "showq unix n - n - - showq" "error unix - - n - - error" \
        "retry unix - - n - - error" "discard unix - - n - - discard" \
        "anvil unix - - n - 1 anvil" "scache unix - - n - 1 scache" \
        "postlog unix-dgram n - n - 1 postlogd"; do
        echo "$s"
    done
} >"$PF/master.cf"
postfix -c "$PF" start >/dev/null 2>&1
for _ in $(seq 50); do
    python3 -c "import socket; socket.create_connection(('127.0.0.1', $PORT), 1).close()" 2>/dev/null && break
    sleep 0.1
done
send "$PORT" unknown.user@example.net quota.user@example.net relay.user@example.org \
    spam.user@example.net later.user@example.net
send_several "$PORT"
# one bounce each for unknown, quota, relay, spam and several; a delay
# warning and then the failure after maximal_queue_lifetime for later
wait_for "$T/pf-remote" 8 60
wait_expired "$T/pf-remote" 'Undelivered Mail Returned' 30
postfix -c "$PF" stop >/dev/null 2>&1 || true
save "$T/pf-remote" postfix

# ---------------------------------------------------------------- Exim
EXIM=${MMQ_EXIM:-/var/cache/mmq-test/exim/usr/sbin/exim4}
start_remote "$T/ex-remote"
X=$T/exim
mkdir -p "$X/spool" "$X/log"
chown Debian-exim:Debian-exim "$X/spool" "$X/log"
cat >"$X/exim.conf" <<EXIMCF
exim_path = $EXIM
spool_directory = $X/spool
log_file_path = $X/log/%slog
primary_hostname = mx.test.invalid
qualify_domain = test.invalid
exim_user = Debian-exim
exim_group = Debian-exim
never_users = root
keep_environment =
host_lookup =
delay_warning = 2s
begin routers
remote:
  driver = manualroute
  route_list = * 127.0.0.1
  self = send
  transport = to_remote
begin transports
to_remote:
  driver = smtp
  port = $R
  allow_localhost
  hosts_avoid_tls = *
begin retry
*  *  F,8s,1s
EXIMCF
for r in unknown.user@example.net quota.user@example.net relay.user@example.org \
    spam.user@example.net later.user@example.net; do
    printf 'From: list-bounces@lists.example.org\nTo: %s\nSubject: Announcement for %s\n\nA post to the list.\n' "$r" "$r" |
        "$EXIM" -C "$X/exim.conf" -odi -f list-bounces@lists.example.org -- "$r"
done
printf 'From: list-bounces@lists.example.org\nSubject: Announcement for several\n\nA post to the list.\n' |
    "$EXIM" -C "$X/exim.conf" -odi -f list-bounces@lists.example.org -- \
        unknown.one@example.net quota.two@example.net fine@example.net unknown.three@example.org
# the delay warning, then the failure once the retry rule gives up
for _ in $(seq 12); do
    sleep 1
    "$EXIM" -C "$X/exim.conf" -q >/dev/null 2>&1 || true
done
wait_for "$T/ex-remote" 8 30 || true
wait_expired "$T/ex-remote" 'Mail delivery failed' 30
save "$T/ex-remote" exim
ls "$OUT"
