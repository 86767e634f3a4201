#!/bin/bash
# smtp-fault-server-selftest.sh - TAP test of t/smtp-fault-server.py.
#
# Starts the server on 127.0.0.1 port 0 with various fault options and checks
# every fault with swaks, python smtplib or a raw-socket dialog script.
# Needs: python3 (stdlib only), swaks (+ libnet-ssleay-perl for its TLS
# tests), openssl.  Every server started is killed by the EXIT trap.
set -u

here=$(cd "$(dirname "$0")" && pwd)
SERVER="$here/smtp-fault-server.py"
# stdlib only: Debian's python3 is preferred because it starts much faster
# than a pyenv shim, which matters for the many small client runs below
PY=${PYTHON:-$(command -v /usr/bin/python3 || command -v python3)}

for tool in "$PY" swaks openssl; do
	if ! command -v "$tool" >/dev/null 2>&1; then
		echo "1..0 # SKIP $tool not installed"
		exit 0
	fi
done
SWAKS_TLS=no
swaks --support 2>&1 | grep -q '^=== TLS supported' && SWAKS_TLS=yes

T=$(mktemp -d "${TMPDIR:-/tmp}/smtp-fault-selftest.XXXXXX")
declare -a PIDS=()
declare -A PORT OUT SPID

cleanup() {
	local p
	for p in "${PIDS[@]}"; do
		kill -TERM "$p" 2>/dev/null
	done
	for p in "${PIDS[@]}"; do
		for _ in $(seq 20); do
			kill -0 "$p" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "$p" 2>/dev/null
		wait "$p" 2>/dev/null
	done
	if [ -n "${KEEP_TMP:-}" ]; then
		echo "# kept $T" >&2
	else
		rm -rf "$T"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

PLAN=59
echo "1..$PLAN"
n=0
failed=0
ok() { # ok STATUS DESCRIPTION
	n=$((n + 1))
	if [ "$1" -eq 0 ]; then
		echo "ok $n - $2"
	else
		echo "not ok $n - $2"
		failed=$((failed + 1))
		if [ -s "$T/last" ]; then sed 's/^/#   /' "$T/last" | tail -40; fi
	fi
	: >"$T/last"
}
check() { # check DESCRIPTION COMMAND... ; COMMAND's output -> $T/last
	local d=$1
	shift
	"$@" >"$T/last" 2>&1
	ok $? "$d"
}
skip() {
	n=$((n + 1))
	echo "ok $n # SKIP $1"
}

# start_server NAME [server options]: fills PORT[NAME] OUT[NAME] SPID[NAME]
start_server() {
	local name=$1 d
	shift
	d="$T/$name"
	mkdir -p "$d"
	"$PY" "$SERVER" --port 0 --portfile "$d/port" --pidfile "$d/pid" \
		--out "$d/out" "$@" >"$d/stderr" 2>&1 &
	SPID[$name]=$!
	PIDS+=($!)
	for _ in $(seq 100); do
		[ -s "$d/port" ] && break
		sleep 0.05
	done
	PORT[$name]=$(cat "$d/port" 2>/dev/null)
	OUT[$name]="$d/out"
	[ -n "${PORT[$name]}" ]
}

# sw NAME [swaks options]: swaks against server NAME, transcript in $T/last
sw() {
	local name=$1
	shift
	swaks --server 127.0.0.1 --port "${PORT[$name]}" --timeout 10 \
		--helo selftest.test --from sender@x.test "$@" >"$T/sw.out" 2>&1
	SWRC=$?
	cat "$T/sw.out" >"$T/last"
	echo "swaks exit $SWRC" >>"$T/last"
	return $SWRC
}
sw_is() { # sw_is RC TEXT NAME [swaks options]: exit RC and TEXT in transcript
	local rc=$1 text=$2
	shift 2
	sw "$@"
	[ "$SWRC" -eq "$rc" ] && grep -qF -- "$text" "$T/sw.out"
}

# dialog NAME < script: raw-socket SMTP dialog, see dialog.py below
dialog() {
	"$PY" "$T/dialog.py" "${PORT[$1]}" "$T/cert.pem"
}

ntx() { # number of recorded transactions of server NAME
	if [ -f "${OUT[$1]}/transactions.jsonl" ]; then
		wc -l <"${OUT[$1]}/transactions.jsonl"
	else
		echo 0
	fi
}

# stat_is NAME KEY VALUE: stats.json is rewritten after each session ends,
# which may be a moment after the client saw 221, so poll for up to 3 s
stat_is() {
	local v
	for _ in $(seq 60); do
		v=$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' \
			"${OUT[$1]}/stats.json" "$2" 2>/dev/null)
		[ "$v" = "$3" ] && return 0
		sleep 0.05
	done
	echo "stats.json $2 = '$v', wanted '$3'"
	cat "${OUT[$1]}/stats.json"
	return 1
}

# jq-like check of transactions.jsonl: pycheck NAME 'python expression'
# with t = list of records, d = output dir, m(i) = bytes of record i's file
pycheck() {
	"$PY" - "${OUT[$1]}" "$2" <<'EOF'
import json, sys, os, hashlib
d, expr = sys.argv[1], sys.argv[2]
p = os.path.join(d, "transactions.jsonl")
t = [json.loads(l) for l in open(p)] if os.path.exists(p) else []
def m(i):
    return open(os.path.join(d, t[i]["file"]), "rb").read()
ok = eval("(" + expr + ")")
if not ok:
    print("false:", expr)
    for r in t:
        print(r)
sys.exit(0 if ok else 1)
EOF
}

cat >"$T/dialog.py" <<'EOF'
# dialog.py PORT CAFILE < script
# A raw-socket SMTP client driven by a script, one command per line:
#   send TEXT        send TEXT (escapes \r \n \t \xNN \\); no implicit CRLF
#   expect PREFIX    read one complete reply; its first line starts with PREFIX
#   slow SECS PREFIX like expect, and the reply took at least SECS to come
#   has EXT / lacks EXT   the last reply (EHLO) does / does not list EXT
#   close-by-server  the server closes (EOF or reset) without sending anything
#   silent SECS      nothing arrives for SECS seconds
#   starttls         TLS handshake verifying against CAFILE as "localhost"
#   close            close the connection now
import socket, ssl, sys, time, codecs
port, cafile = int(sys.argv[1]), sys.argv[2]
s = socket.create_connection(("127.0.0.1", port), timeout=10)
buf = b""
last = []

def fail(msg):
    print("FAIL:", msg)
    sys.exit(1)

def reply():
    global buf
    lines = []
    while True:
        while b"\n" not in buf:
            d = s.recv(65536)
            if not d:
                fail("connection closed, wanted a reply; got %r" % lines)
            buf += d
        line, _, buf = buf.partition(b"\n")
        line = line.rstrip(b"\r").decode("utf-8", "replace")
        print("<", line)
        lines.append(line)
        if len(line) < 4 or line[3] != "-":
            return lines

for cmd in sys.stdin.read().splitlines():
    cmd = cmd.strip()
    if not cmd or cmd.startswith("#"):
        continue
    op, _, arg = cmd.partition(" ")
    if op == "send":
        data = codecs.escape_decode(arg.encode("latin-1"))[0]
        print(">", data)
        s.sendall(data)
    elif op in ("expect", "slow"):
        secs = 0.0
        if op == "slow":
            secs, _, arg = arg.partition(" ")
            secs = float(secs)
        t0 = time.monotonic()
        last = reply()
        took = time.monotonic() - t0
        if not last[0].startswith(arg):
            fail("wanted %r, got %r" % (arg, last))
        if took < secs:
            fail("reply came after %.2fs, wanted >= %.2fs" % (took, secs))
    elif op in ("has", "lacks"):
        exts = [l[4:].split(" ")[0].upper() for l in last[1:]]
        if (arg.upper() in exts) != (op == "has"):
            fail("%s %s: EHLO extensions %r" % (op, arg, exts))
    elif op == "close-by-server":
        try:
            d = s.recv(65536)
        except ConnectionResetError:
            d = b""
        except socket.timeout:
            fail("server did not close")
        if buf or d:
            fail("server sent %r before closing" % (buf + d))
        print("(closed by server)")
    elif op == "silent":
        s.settimeout(float(arg))
        try:
            d = s.recv(65536)
            fail("got %r while expecting silence" % d)
        except socket.timeout:
            print("(silent for %ss)" % arg)
        s.settimeout(10)
    elif op == "starttls":
        ctx = ssl.create_default_context(cafile=cafile)
        s = ctx.wrap_socket(s, server_hostname="localhost")
        print("(TLS %s)" % s.version())
    elif op == "close":
        s.close()
    else:
        fail("bad script line %r" % cmd)
EOF

START=$(date +%s)
(cd "$T" && openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=localhost \
	-addext subjectAltName=DNS:localhost,IP:127.0.0.1 -days 1 \
	-keyout key.pem -out cert.pem) >"$T/openssl.log" 2>&1 ||
	{ echo "Bail out! openssl req failed"; cat "$T/openssl.log"; exit 1; }

# ------------------------------------------------------------ plain server
start_server basic
ok $? "server starts on port 0 and writes the port to --portfile"
check "pidfile holds the server pid" \
	test "$(cat "$T/basic/pid" 2>/dev/null)" = "${SPID[basic]}"

check "EHLO advertises PIPELINING, 8BITMIME, ENHANCEDSTATUSCODES" dialog basic <<'EOF'
expect 220
send EHLO t\r\n
expect 250
has PIPELINING
has 8BITMIME
has ENHANCEDSTATUSCODES
send QUIT\r\n
expect 221
EOF
check "EHLO does not advertise CHUNKING, STARTTLS, AUTH by default" dialog basic <<'EOF'
expect 220
send EHLO t\r\n
expect 250
lacks CHUNKING
lacks STARTTLS
lacks AUTH
EOF

check "swaks --pipeline delivers to 2 recipients" \
	sw_is 0 "250 2.0.0 Ok: queued as 1" basic --pipeline --to a@x.test,b@x.test
check "transaction 1 recorded: envelope, size and sha1 match msg-1.eml" \
	pycheck basic 'len(t) == 1 and t[0]["mail_from"] == "sender@x.test"
	and t[0]["rcpts"] == ["a@x.test", "b@x.test"] and t[0]["file"] == "msg-1.eml"
	and t[0]["size"] == len(m(0)) and t[0]["sha1"] == hashlib.sha1(m(0)).hexdigest()
	and m(0).endswith(b"\r\n") and b"\n" not in m(0).replace(b"\r\n", b"")'

check "pipelined MAIL+RCPT+RCPT+DATA in one write gets 250,250,250,354" dialog basic <<'EOF'
expect 220
send EHLO t\r\n
expect 250
send MAIL FROM:<pipe@x.test> BODY=8BITMIME\r\nRCPT TO:<p1@x.test>\r\nRCPT TO:<p2@x.test>\r\nDATA\r\n
expect 250 2.1.0
expect 250 2.1.5
expect 250 2.1.5
expect 354
send Subject: dots\r\n\r\n..leading dot\r\n...two\r\n..\r\nx\xe9y\r\nlast line\r\n.\r\nQUIT\r\n
expect 250 2.0.0
expect 221
EOF
check "session.log: the 4 pipelined commands arrived in one read" \
	grep -qE ' S[0-9]+ \* read [0-9]+ bytes \(4 complete lines buffered\)' "${OUT[basic]}/session.log"
check "session.log: their 4 replies went out in one write" \
	grep -qE ' S[0-9]+ \* sent 4 reply lines in one write' "${OUT[basic]}/session.log"
check "session.log has numbered command and reply lines" \
	grep -qE ' S4 C: MAIL FROM:<pipe@x.test> BODY=8BITMIME$' "${OUT[basic]}/session.log"
check "dot-stuffing removed, CRLF and 8-bit bytes kept (exact bytes, sha1)" \
	pycheck basic 't[1]["rcpts"] == ["p1@x.test", "p2@x.test"]
	and m(1) == b"Subject: dots\r\n\r\n.leading dot\r\n..two\r\n.\r\nx\xe9y\r\nlast line\r\n"
	and t[1]["sha1"] == hashlib.sha1(m(1)).hexdigest() and t[1]["size"] == 57
	and t[1]["mail_params"] == ["BODY=8BITMIME"]'

check "protocol errors: 503 RCPT before MAIL, 555 unknown param, 554 DATA w/o rcpts" dialog basic <<'EOF'
expect 220
send MAIL FROM:<a@x.test>\r\n
expect 503 5.5.1
send EHLO t\r\nRCPT TO:<a@x.test>\r\nMAIL FROM:<a@x.test> FOO=BAR\r\nMAIL FROM:<>\r\nDATA\r\nRSET\r\nNOOP\r\n
expect 250
expect 503 5.5.1
expect 555 5.5.4
expect 250 2.1.0
expect 554 5.5.1
expect 250
expect 250
send QUIT\r\n
expect 221
EOF
check "stats.json counts connections and transactions" \
	stat_is basic connections 5
check "stats.json: 2 transactions, 5 sessions ended" \
	eval 'stat_is basic transactions 2 && stat_is basic sessions_ended 5'

# ------------------------------------------------------------ CHUNKING
start_server chunk --chunking --drop-in-data 2
check "--chunking advertises CHUNKING; BDAT chunks reassembled" dialog chunk <<'EOF'
expect 220
send EHLO t\r\n
expect 250
has CHUNKING
send MAIL FROM:<c@x.test>\r\nRCPT TO:<r@x.test>\r\nBDAT 6\r\nhello BDAT 7 LAST\r\nworld\r\n
expect 250
expect 250
expect 250 2.0.0 6 bytes
expect 250 2.0.0 Ok: queued as 1
EOF
check "BDAT transaction recorded with exact bytes" \
	pycheck chunk 'len(t) == 1 and m(0) == b"hello world\r\n" and t[0]["size"] == 13'
check "--drop-in-data with BDAT: MAIL, RCPT answered, dropped inside the chunk" dialog chunk <<'EOF'
expect 220
send EHLO t\r\n
expect 250
send MAIL FROM:<c@x.test>\r\nRCPT TO:<r@x.test>\r\nBDAT 50 LAST\r\nhello
expect 250 2.1.0
expect 250 2.1.5
close-by-server
EOF

# ------------------------------------------------------------ recipient faults
start_server rej --reject5 '^bad' --reject4 '^later' --max-rcpts 3
check "--reject5: swaks gets 550 5.1.1 (exit 24, no rcpt accepted)" \
	sw_is 24 "550 5.1.1 <bad@x.test>" rej --to bad@x.test
check "--reject4: swaks gets 450 4.2.1 (exit 24)" \
	sw_is 24 "450 4.2.1 <later@x.test>" rej --to later@x.test
check "pipelined mix: 250, 550, 450, 250, 250, 452 4.5.3 after 3 accepted, 354" dialog rej <<'EOF'
expect 220
send EHLO t\r\n
expect 250
send MAIL FROM:<>\r\nRCPT TO:<ok1@x.test>\r\nRCPT TO:<bad1@x.test>\r\nRCPT TO:<later1@x.test>\r\nRCPT TO:<ok2@x.test>\r\nRCPT TO:<ok3@x.test>\r\nRCPT TO:<ok4@x.test>\r\nDATA\r\n
expect 250 2.1.0
expect 250 2.1.5
expect 550 5.1.1
expect 450 4.2.1
expect 250 2.1.5
expect 250 2.1.5
expect 452 4.5.3
expect 354
send Subject: mix\r\n\r\nbody\r\n.\r\n
expect 250 2.0.0
send MAIL FROM:<a@x.test>\r\nRCPT TO:<bad2@x.test>\r\nDATA\r\nRSET\r\n
expect 250
expect 550 5.1.1
expect 554 5.5.1
expect 250
send QUIT\r\n
expect 221
EOF
check "only accepted recipients recorded; null sender is \"\"" \
	pycheck rej 'len(t) == 1 and t[0]["rcpts"] == ["ok1@x.test", "ok2@x.test", "ok3@x.test"]
	and t[0]["mail_from"] == ""'
check "--max-rcpts 3: smtplib.sendmail to 5 gets 452 4.5.3 for 2, delivers 3" \
	"$PY" - "${PORT[rej]}" <<'EOF'
import smtplib, sys
s = smtplib.SMTP("127.0.0.1", int(sys.argv[1]), timeout=10)
rcpts = ["m%d@x.test" % i for i in range(1, 6)]
refused = s.sendmail("s@x.test", rcpts, "Subject: five\r\n\r\nhi\r\n")
s.quit()
print(refused)
assert sorted(refused) == ["m4@x.test", "m5@x.test"], refused
assert all(c == 452 and m.startswith(b"4.5.3") for c, m in refused.values())
EOF
check "... and the record has the 3 accepted ones" \
	pycheck rej 'len(t) == 2 and t[1]["rcpts"] == ["m1@x.test", "m2@x.test", "m3@x.test"]'

# ------------------------------------------------------------ drop in DATA
start_server drop --drop-in-data 2
check "--drop-in-data 2: data phase 1 delivered" sw_is 0 "queued as 1" drop --to a@x.test
check "data phase 2: connection closed after some data, no reply" dialog drop <<'EOF'
expect 220
send EHLO t\r\n
expect 250
send MAIL FROM:<a@x.test>\r\nRCPT TO:<b@x.test>\r\nDATA\r\n
expect 250
expect 250
expect 354
send Subject: partial\r\n\r\nfirst part of the body\r\n
close-by-server
EOF
check "data phase 3 delivered again; 2 transactions, 1 drop" \
	eval 'sw_is 0 "queued as 2" drop --to a@x.test &&
	stat_is drop drops 1 && stat_is drop transactions 2'
start_server dropall --drop-in-data 0 --drop-after-bytes 1000000
# shellcheck disable=SC2016
check "swaks sees the dropped data phase as a failure (exit 6 or 26)" \
	eval 'sw dropall --to a@x.test; [ $SWRC -eq 6 ] || [ $SWRC -eq 26 ]'
check "--drop-after-bytes beyond the message: complete message left unanswered" dialog dropall <<'EOF'
expect 220
send EHLO t\r\n
expect 250
send MAIL FROM:<a@x.test>\r\nRCPT TO:<b@x.test>\r\nDATA\r\n
expect 250
expect 250
expect 354
send Subject: whole\r\n\r\nbody\r\n.\r\n
close-by-server
EOF
check "dropped transactions are not recorded" test "$(ntx dropall)" -eq 0

start_server dropmail --drop-after-mail 1
check "--drop-after-mail 1: pipelined RSET answered, closed after MAIL, no reply" dialog dropmail <<'EOF'
expect 220
send EHLO t\r\n
expect 250
send RSET\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<b@x.test>\r\nDATA\r\n
expect 250 2.0.0
close-by-server
EOF
check "MAIL #2 on a new connection is delivered" sw_is 0 "queued as 1" dropmail --to a@x.test

# ------------------------------------------------------------ connect faults
start_server g421 --greeting-421
check "--greeting-421: swaks gets 421 banner (exit 21)" sw_is 21 "421 4.3.2" g421 --to a@x.test
check "--greeting-421: banner then close" dialog g421 <<'EOF'
expect 421
close-by-server
EOF

start_server ff --fail-first 2
check "--fail-first 2: connection 1 gets 421 4.3.2" sw_is 21 "421 4.3.2" ff --to a@x.test
check "--fail-first 2: connection 2 gets 421 4.3.2" sw_is 21 "421 4.3.2" ff --to a@x.test
check "--fail-first 2: connection 3 delivers" sw_is 0 "queued as 1" ff --to a@x.test
check "stats: 3 connections, 2 greeting_421" \
	eval 'stat_is ff connections 3 && stat_is ff greeting_421 2'

# ------------------------------------------------------------ stalls
start_server stall --stall-greeting 0.6 --stall-in-data 1
check "--stall-greeting 0.6 / --stall-in-data 1: replies delayed, then delivered" dialog stall <<'EOF'
silent 0.4
slow 0.1 220
send EHLO t\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<b@x.test>\r\nDATA\r\n
expect 250
expect 250
expect 250
expect 354
send Subject: slow\r\n\r\nbody\r\n.\r\n
silent 0.7
slow 0.1 250 2.0.0
send QUIT\r\n
expect 221
EOF
check "a client that gives up during the data stall: transaction not recorded" dialog stall <<'EOF'
expect 220
send EHLO t\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<c@x.test>\r\nDATA\r\n
expect 250
expect 250
expect 250
expect 354
send Subject: slow\r\n\r\nbody\r\n.\r\n
silent 0.3
close
EOF
check "stall: 1 recorded, 1 counted as stalled_client_gone" \
	eval 'stat_is stall stalled_client_gone 1 && stat_is stall transactions 1'

# ------------------------------------------------------------ data-end faults
start_server tf --tempfail-data 1
check "--tempfail-data 1: data phase 1 gets 451 4.3.0 (swaks exit 26)" \
	sw_is 26 "451 4.3.0" tf --to a@x.test
check "--tempfail-data 1: data phase 2 delivered" sw_is 0 "queued as 1" tf --to a@x.test
start_server pf --permfail-data
check "--permfail-data: 554 5.6.0 (swaks exit 26)" sw_is 26 "554 5.6.0" pf --to a@x.test
check "failed data phases are not recorded" test "$(ntx pf)" -eq 0

# ------------------------------------------------------------ AUTH
start_server auth --require-auth 'joe:s3cret'
check "--require-auth: AUTH PLAIN LOGIN advertised without TLS" dialog auth <<'EOF'
expect 220
send EHLO t\r\n
expect 250
has AUTH
send MAIL FROM:<a@x.test>\r\n
expect 530 5.7.0
EOF
check "no AUTH: swaks gets 530 5.7.0 (exit 23)" sw_is 23 "530 5.7.0" auth --to a@x.test
check "swaks -a PLAIN with the right credentials delivers" \
	sw_is 0 "235 2.7.0" auth --to a@x.test -a PLAIN -au joe -ap s3cret
check "swaks -a LOGIN with the right credentials delivers" \
	sw_is 0 "235 2.7.0" auth --to a@x.test -a LOGIN -au joe -ap s3cret
check "wrong password: 535 5.7.8 (exit 28)" \
	sw_is 28 "535 5.7.8" auth --to a@x.test -a PLAIN -au joe -ap wrong
check "records carry the authenticated user" \
	pycheck auth 'len(t) == 2 and all(r["auth"] == "joe" for r in t)'

# ------------------------------------------------------------ STARTTLS
start_server tls --tls-cert "$T/cert.pem" --tls-key "$T/key.pem"
check "STARTTLS advertised; after TLS (verified as localhost) it is not" dialog tls <<'EOF'
expect 220
send EHLO t\r\n
expect 250
has STARTTLS
send STARTTLS\r\n
expect 220 2.0.0
starttls
send EHLO t\r\n
expect 250
lacks STARTTLS
has PIPELINING
send MAIL FROM:<a@x.test>\r\nRCPT TO:<tls@x.test>\r\nDATA\r\n
expect 250
expect 250
expect 354
send Subject: tls\r\n\r\nsecret\r\n.\r\n
expect 250 2.0.0
EOF
if [ "$SWAKS_TLS" = yes ]; then
	check "swaks -tls --tls-verify delivers over TLS" \
		sw_is 0 "queued as 2" tls --to a@x.test -tls --tls-verify --tls-ca-path "$T/cert.pem"
else
	skip "swaks has no TLS support (install libnet-ssleay-perl)"
fi
check "smtplib starttls with certificate check delivers" \
	"$PY" - "${PORT[tls]}" "$T/cert.pem" <<'EOF'
import smtplib, ssl, sys
ctx = ssl.create_default_context(cafile=sys.argv[2])
s = smtplib.SMTP("127.0.0.1", int(sys.argv[1]), timeout=10)
s._host = "localhost"          # name to verify the certificate against
s.starttls(context=ctx)
s.sendmail("s@x.test", ["py@x.test"], b"Subject: py\r\n\r\nhi\r\n")
s.quit()
EOF
check "TLS transactions recorded with tls=true" \
	pycheck tls 'len(t) >= 2 and all(r["tls"] for r in t)'

start_server refuse --refuse-starttls
if [ "$SWAKS_TLS" = yes ]; then
	check "--refuse-starttls: STARTTLS answered 454 4.7.0 (swaks -tls exit 29)" \
		sw_is 29 "454 4.7.0" refuse --to a@x.test -tls
else
	skip "swaks has no TLS support (install libnet-ssleay-perl)"
fi
check "--refuse-starttls: advertised, 454, plain delivery still possible" dialog refuse <<'EOF'
expect 220
send EHLO t\r\n
expect 250
has STARTTLS
send STARTTLS\r\n
expect 454 4.7.0
send MAIL FROM:<a@x.test>\r\nRCPT TO:<b@x.test>\r\nDATA\r\n
expect 250
expect 250
expect 354
send x\r\n.\r\n
expect 250 2.0.0
EOF

# ------------------------------------------------------------ shutdown
t0=$(date +%s%N)
kill -TERM "${SPID[basic]}"
wait "${SPID[basic]}"
rc=$?
ms=$((($(date +%s%N) - t0) / 1000000))
echo "exit $rc after $ms ms" >"$T/last"
[ "$rc" -eq 0 ] && [ "$ms" -lt 2000 ]
ok $? "SIGTERM: server exits 0 promptly"

: >"$T/last"
for d in "$T"/*/stderr; do
	if [ -s "$d" ]; then echo "== $d" >>"$T/last"; cat "$d" >>"$T/last"; fi
done
check "no server wrote anything to stderr" test ! -s "$T/last"
grep -h 'internal error' "$T"/*/out/session.log >"$T/last" 2>/dev/null
check "no internal errors in any session.log" test ! -s "$T/last"

echo "# $n tests in $(($(date +%s) - START)) s"
if [ "$n" -ne "$PLAN" ]; then
	echo "# planned $PLAN tests but ran $n"
	exit 1
fi
[ "$failed" -eq 0 ]
