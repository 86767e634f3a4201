#!/usr/bin/env bash
# bounce-bench.sh - the bounce stage under a storm: MEMBERS members (default
# 1,000,000), BOUNCES VERP bounces (default 100,000) for BOUNCES/2 distinct
# members, drained by one `mmq-bounce -1` on a disk file system.
#
#   storm      wall clock and peak RSS (/usr/bin/time) of mmq-bounce -1
#              draining bounces/: per bounce a claim, the parse, one event
#              file (written, fsync()ed, link()ed, directory fsync()ed),
#              the member's fold and the durable removal of the entry
#   floor      bench/floor.c: as many durable creates (write, fsync,
#              rename, fsync of the directory) as there were bounces:
#              what the disk alone costs for one durable file per bounce
#   ratio      storm / floor
#   members    whether the members file was rewritten (it must not be)
#   expand     mmq-process -1 expanding one post to every member, with no
#              member disabled and with DISABLE (1,000) disabled: what
#              skipping disabled members costs
#   parse      `mmq-bounce -p` over PARSE copies of each sample in
#              t/bounce-samples (when present): messages parsed per second
#              on one core (goal >= 5,000/s)
#
# Usage: bench/bounce-bench.sh [MEMBERS [BOUNCES]]  (BENCH_DIR: where to
# work; never tmpfs).  Prints one table.
set -eu
srcdir=$(cd "$(dirname "$0")/.." && pwd)
B=${top_builddir:-$srcdir/build}
MEMBERS=${1:-1000000}
BOUNCES=${2:-100000}
PARSE=${PARSE:-2000}
MMQCTL=$B/ctl/mmqctl
MKENTRY=$B/t/tools/mkentry
BOUNCE=$B/bounce/mmq-bounce
CC=${CC:-cc}
die() { echo "bounce-bench: $*" >&2; exit 1; }
[ -x "$BOUNCE" ] && [ -x "$MKENTRY" ] || die "build first (make; make t/tools/mkentry)"
parent=${BENCH_DIR:-/var/tmp}
[ "$(stat -f -c %T "$parent")" != tmpfs ] || die "$parent is tmpfs: set BENCH_DIR"
W=$(mktemp -d "$parent/mmq-bbench.XXXXXX")
trap 'rm -rf "$W"' EXIT
trap 'exit 130' INT TERM
mkdir -p "$W/lists" "$W/bin"
"$CC" -O2 -o "$W/bin/floor" "$srcdir/bench/floor.c"
cat >"$W/mmq.conf" <<CONF
spool = "$W/spool";
lists_dir = "$W/lists";
node = "bench";
CONF
"$MMQCTL" -c "$W/mmq.conf" init >/dev/null
printf 'domain = "lists.example.org";\nowners = ["owner@example.org"];\n' >"$W/lists/big.conf"
seq -f 'm%07g@example.org' 1 "$MEMBERS" >"$W/lists/big.members"
half=$((BOUNCES / 2))
# BOUNCES VERP addresses: members 1..half, each twice, shuffled
{ seq -f 'big-bounces+m%07g=example.org@lists.example.org' 1 "$half"
  seq -f 'big-bounces+m%07g=example.org@lists.example.org' 1 "$((BOUNCES - half))"; } |
    shuf --random-source=<(yes) >"$W/rcpts"
{
    printf 'From: MAILER-DAEMON@mx.example.net\nTo: big-bounces@lists.example.org\n'
    printf 'Subject: Undelivered Mail Returned to Sender\nMIME-Version: 1.0\n'
    printf 'Content-Type: multipart/report; report-type=delivery-status; boundary="b"\n\n'
    printf -- '--b\nContent-Type: text/plain\n\nThe mail could not be delivered.\n\n'
    printf -- '--b\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; mx.example.net\n\n'
    printf 'Final-Recipient: rfc822; someone@example.org\nAction: failed\nStatus: 5.1.1\n'
    printf 'Diagnostic-Code: smtp; 550 5.1.1 user unknown\n\n--b--\n'
} >"$W/dsn"
t0=$(date +%s.%N)
"$MKENTRY" -c "$W/mmq.conf" -q bounces -l big -n 1 "$W/rcpts" <"$W/dsn" >/dev/null
t1=$(date +%s.%N)
before=$(stat -c %Y.%i "$W/lists/big.members")
/usr/bin/time -f '%e %M' -o "$W/time" "$BOUNCE" -c "$W/mmq.conf" -1 2>"$W/log" ||
    die "mmq-bounce failed: $(tail -3 "$W/log")"
read -r storm rss <"$W/time"
after=$(stat -c %Y.%i "$W/lists/big.members")
left=$(find "$W/spool/bounces" -type f | wc -l)
events=$(find "$W/spool/members/big" -name '*.F.*' | wc -l)
mkdir "$W/floor"
line=$("$W/bin/floor" create "$W/floor" "$BOUNCES" 400)
floor=$(echo "$line" | sed -E 's/.*t0=([0-9.]+) t1=([0-9.]+).*/\2 \1/' | awk '{ printf "%.2f", $1 - $2 }')
"$MMQCTL" -c "$W/mmq.conf" members big --json >/dev/null
t2=$(date +%s.%N)
"$MMQCTL" -c "$W/mmq.conf" members big --json >"$W/members.json"
t3=$(date +%s.%N)
printf 'bounce-bench: %d members, %d bounces (%d members bouncing twice) on %s\n' \
    "$MEMBERS" "$BOUNCES" "$half" "$(stat -f -c %T "$W")"
printf '%-34s %s\n' "queue the storm (mkentry)" "$(echo "$t1 - $t0" | bc) s"
printf '%-34s %s s (%.0f bounces/s), peak RSS %d kB\n' "storm: mmq-bounce -1" "$storm" \
    "$(echo "$BOUNCES / $storm" | bc -l)" "$rss"
printf '%-34s %s s\n' "floor: $BOUNCES durable creates" "$floor"
printf '%-34s %.2f\n' "ratio storm / floor" "$(echo "$storm / $floor" | bc -l)"
printf '%-34s %s\n' "left in bounces/" "$left"
printf '%-34s %s (expected %s)\n' "failed events recorded" "$events" "$BOUNCES"
printf '%-34s %s\n' "members file rewritten" "$([ "$before" = "$after" ] && echo no || echo YES)"
printf '%-34s %s s\n' "mmqctl members big --json" "$(echo "$t3 - $t2" | bc)"
# mmq-process skipping disabled members: one post expanded to the whole
# list with no member disabled, then with DISABLE members disabled
DISABLE=${DISABLE:-1000}
PROCESS=$B/process/mmq-process
post() {
    printf 'From: a@example.org\nTo: big@lists.example.org\nSubject: x\n\nhi\n' |
        "$B/filter/mmq-filter" -c "$W/mmq.conf" -f a@example.org big
}
expand_time() {
    find "$W/spool/out" -type f -delete
    post
    local t0 t1
    t0=$(date +%s.%N)
    "$PROCESS" -c "$W/mmq.conf" -1 2>/dev/null
    t1=$(date +%s.%N)
    echo "$t1 - $t0" | bc
}
printf 'posters = "anyone";\n' >>"$W/lists/big.conf"
rm -rf "$W/spool/members/big/disabled"/* 2>/dev/null
e0=$(expand_time)
seq -f 'm%07g@example.org' 1 $((MEMBERS / DISABLE)) "$MEMBERS" | head -n "$DISABLE" |
    xargs "$MMQCTL" -c "$W/mmq.conf" members big disable >/dev/null
e1=$(expand_time)
got=$(find "$W/spool/out" -type f -exec grep -c '^rcpt ' {} + | awk -F: '{ s += $NF } END { print s }')
printf '%-34s %s s\n' "mmq-process: expand, none disabled" "$e0"
printf '%-34s %s s (%s recipients, expected %s)\n' "... with $DISABLE disabled" "$e1" "$got" "$((MEMBERS - DISABLE))"
samples=$srcdir/t/bounce-samples
if [ -d "$samples" ] && ls "$samples"/*.eml >/dev/null 2>&1; then
    mkdir "$W/p"
    n=0
    for f in "$samples"/*.eml; do
        for i in $(seq 1 $((PARSE / $(ls "$samples"/*.eml | wc -l) + 1))); do
            n=$((n + 1)); cp "$f" "$W/p/$n.eml"
        done
    done
    t4=$(date +%s.%N)
    find "$W/p" -name '*.eml' -print0 | xargs -0 -n 500 "$BOUNCE" -p >/dev/null
    t5=$(date +%s.%N)
    printf '%-34s %.0f messages/s (%d messages)\n' "parse: mmq-bounce -p" \
        "$(echo "$n / ($t5 - $t4)" | bc -l)" "$n"
fi
