#!/usr/bin/env bash
# demo.sh - a guided tour of mmq: build it, make a throw-away spool, queue
# messages through mmq-filter exactly as an MTA would (message on stdin,
# envelope in -f/-r, the list as argument), look at the queue, expand the
# posts to a list of 1,000 members (mmq-process), and deliver them
# (mmq-deliver) to Postfix's smtp-sink on 127.0.0.1 -- first while no
# server listens, so that the mail is deferred, then for real -- and
# count a member's bounce (mmq-bounce).
#
#   scripts/demo.sh               run it (about half a minute on a fresh clone)
#   DEMO_KEEP=1 scripts/demo.sh   keep the demo directory to look around
#
# Builds out of tree in build-demo/ beside the sources; everything else
# lives in a temporary directory under /tmp, removed at the end.  Nothing
# is left running.
set -euo pipefail

srcdir=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD="$srcdir/build-demo"
JOBS=${JOBS:-$(nproc 2>/dev/null || echo 2)}

if [ -t 1 ]; then
    B=$'\e[1m' D=$'\e[2m' R=$'\e[0m'
else
    B='' D='' R=''
fi
heading() { printf '\n%s== %s ==%s\n' "$B" "$*" "$R"; }
note() { printf '%s%s%s\n' "$D" "$*" "$R"; }
die() {
    echo "demo.sh: error: $*" >&2
    exit 1
}

# ------------------------------------------------------------------ build
heading "Building mmq (out of tree, in build-demo/)"
"$srcdir/scripts/deps.sh" || die "scripts/deps.sh failed"
if [ ! -x "$srcdir/configure" ] || [ "$srcdir/configure.ac" -nt "$srcdir/configure" ] ||
    [ "$srcdir/Makefile.am" -nt "$srcdir/Makefile.in" ]; then
    (cd "$srcdir" && ./autogen.sh) >/dev/null 2>&1 || die "./autogen.sh failed (run it by hand to see why)"
fi
mkdir -p "$BUILD"
if [ ! -f "$BUILD/Makefile" ]; then
    (cd "$BUILD" && "$srcdir/configure" -q --sysconfdir=/etc) ||
        die "configure failed: see $BUILD/config.log"
fi
make -s -C "$BUILD" -j"$JOBS" filter/mmq-filter ctl/mmqctl process/mmq-process \
    deliver/mmq-deliver bounce/mmq-bounce >"$BUILD/demo-make.log" 2>&1 || {
    cat "$BUILD/demo-make.log" >&2
    die "the build failed"
}
FILTER="$BUILD/filter/mmq-filter"
MMQCTL="$BUILD/ctl/mmqctl"
PROCESS="$BUILD/process/mmq-process"
DELIVER="$BUILD/deliver/mmq-deliver"
BOUNCE="$BUILD/bounce/mmq-bounce"
echo "built $FILTER, $MMQCTL,"
echo "      $PROCESS and $DELIVER"

# ------------------------------------------------------------- demo root
DEMO=$(mktemp -d /tmp/mmq-demo.XXXXXX)
SINK_PID=
cleanup() {
    if [ -n "$SINK_PID" ] && kill -0 "$SINK_PID" 2>/dev/null; then
        kill "$SINK_PID" 2>/dev/null
        wait "$SINK_PID" 2>/dev/null || true
    fi
    if [ "${DEMO_KEEP:-0}" = 1 ]; then
        printf '\nDEMO_KEEP=1: the demo directory stays: %s\n' "$DEMO"
    else
        rm -rf "$DEMO"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
CONF="$DEMO/mmq.conf"
mkdir -p "$DEMO/lists" "$DEMO/mail"

heading "A demo configuration in $DEMO"
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat >"$CONF" <<EOF
# mmq.conf for the demo (libconfig syntax, see mmq.conf(5))
spool = "$DEMO/spool";
lists_dir = "$DEMO/lists";
node = "demo";
relay_host = "127.0.0.1";   # the SMTP sink of this demo
relay_port = $PORT;
retry_min = 2;              # seconds; a real server uses the defaults
retry_max = 4;
smtp_timeout = 10;
EOF
cat >"$DEMO/lists/announce.conf" <<'EOF'
# The list "announce" (see mmq.conf(5), LISTS)
domain = "lists.example.org";
description = "Release announcements";
owners = ["owner@example.org"];
subject_prefix = "[announce]";
posters = "anyone";
EOF
for i in $(seq 1 1000); do echo "member$i@example.net"; done >"$DEMO/lists/announce.members"
note "\$ cat $CONF"
cat "$CONF"
note "\$ cat $DEMO/lists/announce.conf"
cat "$DEMO/lists/announce.conf"
note "\$ head -3 $DEMO/lists/announce.members  (1,000 members)"
head -3 "$DEMO/lists/announce.members"

heading "Creating the spool"
note "\$ mmqctl -c $CONF init"
"$MMQCTL" -c "$CONF" init
note "\$ ls $DEMO/spool"
ls "$DEMO/spool"
note "(each queue has 256 bucket directories 00..ff: entries are spread by digest)"

# ------------------------------------------------------------- messages
cat >"$DEMO/mail/post.eml" <<'EOF'
From: Alice <alice@example.org>
To: announce@lists.example.org
Subject: Release 1.0 is out
Message-ID: <post-1@example.org>
Date: Sun, 22 Nov 2026 10:00:00 +0000

Hello everyone, release 1.0 is out.
EOF
cat >"$DEMO/mail/bounce.eml" <<'EOF'
From: MAILER-DAEMON@mx.example.net
To: announce-bounces+member7=example.net@lists.example.org
Subject: Undelivered Mail Returned to Sender
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="b"

--b
Content-Type: text/plain

member7@example.net: mailbox unavailable

--b
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.net

Final-Recipient: rfc822; member7@example.net
Action: failed
Status: 5.1.1
Diagnostic-Code: smtp; 550 5.1.1 <member7@example.net>: user unknown

--b--
EOF
cat >"$DEMO/mail/owner.eml" <<'EOF'
From: Carol <carol@example.net>
To: announce-owner@lists.example.org
Subject: Please add me to the list

Hi, could you subscribe me?
EOF
cat >"$DEMO/mail/mbox.eml" <<'EOF'
From dave@example.com Sun Nov 22 10:05:00 2026
From: Dave <dave@example.com>
To: announce@lists.example.org
Subject: With an mbox From_ line

Some MTAs put a "From " line in front of the message.
mmq-filter keeps it in the envelope, not in the message.
EOF

# queue MSGFILE ARGS...: run mmq-filter as the MTA's pipe transport would.
queue() {
    local file=$1 out rc
    shift
    local shown='' a
    for a in "$@"; do
        case $a in
        '' | *[!A-Za-z0-9@._+=/-]*) shown+=" '$a'" ;;
        *) shown+=" $a" ;;
        esac
    done
    note "\$ mmq-filter -c \$CONF$shown < $(basename "$file")"
    set +e
    out=$("$FILTER" -c "$CONF" "$@" <"$file" 2>&1)
    rc=$?
    set -e
    [ -n "$out" ] && printf '%s\n' "$out" | sed 's/^/  output: /'
    case $rc in
    0) echo "  exit 0 (EX_OK): queued durably; the MTA may forget the message" ;;
    65) echo "  exit 65 (EX_DATAERR): refused for good, the MTA bounces it" ;;
    67) echo "  exit 67 (EX_NOUSER): no such list, the MTA bounces it" ;;
    69) echo "  exit 69 (EX_UNAVAILABLE): refused for good, the MTA bounces it" ;;
    75) echo "  exit 75 (EX_TEMPFAIL): the MTA keeps the message and retries" ;;
    *) echo "  exit $rc" ;;
    esac
    LAST_RC=$rc
}

heading "Queueing messages as the MTA would"
note "A post to the list, from alice:"
queue "$DEMO/mail/post.eml" -f alice@example.org -r announce@lists.example.org announce
[ "$LAST_RC" = 0 ] || die "the post was not queued"
echo
note "A bounce, to announce-bounces (VERP address, null sender); it goes to the bounces queue:"
queue "$DEMO/mail/bounce.eml" -f '' -r announce-bounces+member7=example.net@lists.example.org announce-bounces
[ "$LAST_RC" = 0 ] || die "the bounce was not queued"
echo
note "A message to the list owner (the role comes from the recipient):"
queue "$DEMO/mail/owner.eml" -f carol@example.net -r announce-owner@lists.example.org announce
[ "$LAST_RC" = 0 ] || die "the owner message was not queued"
echo
note "A post that starts with an mbox \"From \" line:"
queue "$DEMO/mail/mbox.eml" -f dave@example.com -r announce@lists.example.org announce
[ "$LAST_RC" = 0 ] || die "the mbox message was not queued"

heading "An unknown list"
queue "$DEMO/mail/post.eml" -f alice@example.org -r nosuch@lists.example.org nosuch
[ "$LAST_RC" = 67 ] || die "expected exit 67 for an unknown list, got $LAST_RC"
note "(the MTA puts that 5.1.1 text into its bounce to the sender)"

# ------------------------------------------------------------ the queue
heading "The queue"
note "\$ mmqctl -c \$CONF queue"
"$MMQCTL" -c "$CONF" queue

heading "One stored entry: envelope, empty line, message as received"
entry=$(grep -rl '^mbox-from ' "$DEMO/spool/in" | head -n 1)
[ -n "$entry" ] || die "no entry with an mbox-from line found in $DEMO/spool/in"
note "${entry#"$DEMO"/}"
echo "--- envelope:"
sed -n '1,/^$/{/^$/d;p}' "$entry" | sed 's/^/  /'
echo "--- message:"
awk 'body {print "  " $0} /^$/ && !body {body = 1}' "$entry"
echo "---"
note "(values in the envelope are percent-encoded: %20 is a space)"

# ------------------------------------------------------------ list stage
count() { find "$DEMO/spool/$1" -type f | wc -l; }

heading "The list stage: in/ -> out/"
note "\$ mmq-process -c \$CONF -1 -e"
"$PROCESS" -c "$CONF" -1 -e >"$DEMO/process.log" 2>&1 || die "mmq-process failed: $(cat "$DEMO/process.log")"
sed 's/^/  /' "$DEMO/process.log"
echo "in/: $(count in) entries, out/: $(count out) entries (each post: 1,000 members in entries of 500, spread over the slices)"
note "\$ mmqctl -c \$CONF queue out | tail -n 3"
"$MMQCTL" -c "$CONF" queue out >"$DEMO/q.out"
tail -n 3 "$DEMO/q.out"

# ------------------------------------------------------------ delivery
heading "Delivering while the relay is down: everything is deferred"
note "(nothing listens on 127.0.0.1:$PORT yet)"
note "\$ mmq-deliver -c \$CONF -1 -e"
"$DELIVER" -c "$CONF" -1 -e >"$DEMO/deliver1.log" 2>&1 || die "mmq-deliver failed: $(cat "$DEMO/deliver1.log")"
grep -E 'deferred ' "$DEMO/deliver1.log" | head -n 3 | sed 's/^/  /' || true
echo "out/: $(count out) entries, deferred/: $(count deferred) entries"
note "\$ mmqctl -c \$CONF queue deferred | tail -n 3"
"$MMQCTL" -c "$CONF" queue deferred >"$DEMO/q.out"
tail -n 3 "$DEMO/q.out"

heading "The relay comes up: Postfix's smtp-sink on 127.0.0.1:$PORT"
SINK=/usr/sbin/smtp-sink
[ -x "$SINK" ] || die "$SINK is missing (Debian package postfix; scripts/deps.sh installs it)"
mkdir -p "$DEMO/sink"
chmod 0777 "$DEMO/sink"
# smtp-sink insists on dropping privileges (-u) when started as root; the
# user must be able to write the dumps inside the private demo directory
sink_user=()
[ "$(id -u)" = 0 ] && sink_user=(-u "$(id -un)")
"$SINK" "${sink_user[@]}" -d "$DEMO/sink/%M." "127.0.0.1:$PORT" 64 >"$DEMO/sink.log" 2>&1 &
SINK_PID=$!
up=0
for _ in $(seq 50); do
    if python3 -c "import socket; socket.create_connection(('127.0.0.1',$PORT),1).close()" 2>/dev/null; then
        up=1
        break
    fi
    sleep 0.1
done
[ "$up" = 1 ] || die "smtp-sink did not start: $(cat "$DEMO/sink.log")"
note "waiting for the deferred entries' next attempt (retry_min = 2 s)..."
sleep 4
note "\$ mmq-deliver -c \$CONF -1 -e"
"$DELIVER" -c "$CONF" -1 -e >"$DEMO/deliver2.log" 2>&1 || die "mmq-deliver failed: $(cat "$DEMO/deliver2.log")"
grep -E 'status=sent' "$DEMO/deliver2.log" | head -n 3 | sed 's/^/  /' || true
echo "  ..."
echo "out/: $(count out), deferred/: $(count deferred)"
received=$(cat "$DEMO"/sink/* 2>/dev/null | grep -c '^X-Rcpt-Args:' || true)
messages=$(find "$DEMO/sink" -type f | wc -l)
echo "the sink received $messages transactions for $received recipients"
echo "  (2 posts x 1,000 members, plus the owner message to its owner)"
one=$(grep -l 'Release 1.0' "$DEMO"/sink/* 2>/dev/null | head -n 1)
if [ -n "$one" ]; then
    note "the header of one of them, as the sink stored it (its X-Rcpt-Args lines, one per recipient, left out):"
    sed -n '1,/^$/p' "$one" | grep -v '^X-Rcpt-Args:' | sed 's/^/  /'
fi
kill "$SINK_PID" 2>/dev/null
wait "$SINK_PID" 2>/dev/null || true
SINK_PID=

heading "Bounce processing: the bounce of member7 is recognised and counted"
note "\$ mmq-bounce -c \$CONF -1 -e"
"$BOUNCE" -c "$CONF" -1 -e >"$DEMO/bounce.log" 2>&1 || die "mmq-bounce failed: $(cat "$DEMO/bounce.log")"
grep -v 'processing slices\|stopped' "$DEMO/bounce.log" | sed 's/^/  /'
note "\$ mmqctl -c \$CONF bounces"
"$MMQCTL" -c "$CONF" bounces | sed 's/^/  /'
note "\$ mmqctl -c \$CONF members announce | grep member7"
"$MMQCTL" -c "$CONF" members announce | grep 'member7@' | sed 's/^/  /'
note "(score 1: one day with a failed bounce; at bounce_score_threshold = 5 days"
note " delivery to member7 is disabled, the owners and member7 are told, and"
note " mmq-process skips it)"
json=$("$MMQCTL" -c "$CONF" members announce --json)
case $json in
*'"address":"member7@example.net","state":"enabled","score":1,'*) ;;
*) die "member7's bounce was not counted" ;;
esac

heading "Done"
echo "mmqctl queue now says:"
"$MMQCTL" -c "$CONF" queue >"$DEMO/q.out"
tail -n 2 "$DEMO/q.out"
echo "Nothing left running."
[ "$received" -eq 2001 ] || die "expected 2001 recipients at the sink, got $received"

