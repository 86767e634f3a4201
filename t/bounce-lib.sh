#!/bin/bash
# t/bounce-lib.sh - helpers for the bounce-stage tests (t/bounce-*.sh) and
# bench/bounce-bench.sh.  Source it after t/lib.sh and t/process-lib.sh.
#
#   bl_init                     skip unless mmq-bounce is built; FT is the
#                               libfaketime library ("" when missing)
#   bl_dsn RCPT STATUS [ACTION] an RFC 3464 report for RCPT on stdout
#   bl_bounce LIST MEMBER STATUS [ACTION] [WHEN]
#                               queue a bounce of MEMBER through mmq-filter
#                               to LIST-bounces+VERP@ (arrival at WHEN,
#                               "YYYY-MM-DD HH:MM:SS" UTC, under libfaketime)
#   bl_run [WHEN] [ARG...]      mmq-bounce -c $CONF -1 -e ARG... (at WHEN):
#                               BRC exit status, log appended to $BLOG
#   bl_state LIST ADDR [WHEN]   "STATE SCORE" from mmqctl members --json
#   bl_out_to ADDR              number of out/ entries with recipient ADDR
#   kill_pid_b PID              SIGKILL PID if it is still an mmq-bounce
MMQ_BOUNCE=${MMQ_BOUNCE:-$top_builddir/bounce/mmq-bounce}
# mmq-filter under libfaketime: the installed one may be static, which
# LD_PRELOAD cannot reach; the build's dynamic copy can be (Makefile.am)
BL_FILTER=${MMQ_FILTER_DYNAMIC:-$top_builddir/t/tools/mmq-filter-dynamic}
[ -x "$BL_FILTER" ] || BL_FILTER=$MMQ_FILTER
BRC=
BLOG=
FT=

bl_init() {
    [ -x "$MMQ_BOUNCE" ] || skip_all "$MMQ_BOUNCE not built"
    local f
    for f in /usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1 \
        /usr/lib/*/faketime/libfaketime.so.1; do
        [ -r "$f" ] && FT=$f && break
    done
}

# at WHEN CMD...: CMD with the clock at WHEN (UTC), or now when WHEN is "".
at() {
    local when=$1
    shift
    if [ -z "$when" ]; then
        "$@"
        return
    fi
    env LD_PRELOAD="$FT" FAKETIME="@$when" TZ=UTC \
        ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0" \
        "$@"
}

bl_dsn() {
    local rcpt=$1 status=$2 action=${3:-failed}
    printf 'From: Mail Delivery System <MAILER-DAEMON@mx.example.net>\n'
    printf 'To: someone@lists.example.org\nSubject: Delivery Status Notification\n'
    printf 'Auto-Submitted: auto-replied\nMIME-Version: 1.0\n'
    printf 'Content-Type: multipart/report; report-type=delivery-status;\n boundary="b1"\n\n'
    printf -- '--b1\nContent-Type: text/plain\n\nDelivery to %s: %s.\n\n' "$rcpt" "$action"
    printf -- '--b1\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; mx.example.net\n\n'
    printf 'Final-Recipient: rfc822; %s\nAction: %s\nStatus: %s\n' "$rcpt" "$action" "$status"
    printf 'Diagnostic-Code: smtp; %s test diagnostic\n\n' "$status"
    printf -- '--b1--\n'
}

bl_bounce() {
    local list=$1 member=$2 status=$3 action=${4:-failed} when=${5:-}
    local verp="$list-bounces+${member%@*}=${member#*@}@$PL_DOMAIN"
    bl_dsn "$member" "$status" "$action" >"$T/bounce.msg"
    at "$when" "$BL_FILTER" -c "$CONF" -f '' -r "$verp" "$list-bounces" \
        <"$T/bounce.msg" >/dev/null 2>"$T/bfilter.err" ||
        { diag "mmq-filter: $(cat "$T/bfilter.err")"; return 1; }
}

bl_run() {
    local when=${1:-}
    shift
    BLOG=${BLOG:-$T/bounce.log}
    at "$when" timeout 60 "$MMQ_BOUNCE" -c "$CONF" -1 -e "$@" 2>>"$BLOG"
    BRC=$?
}

bl_state() {
    at "${3:-}" "$MMQCTL" -c "$CONF" members "$1" --json | python3 -c '
import json, sys
for m in json.load(sys.stdin):
    if m["address"] == sys.argv[1]:
        print(m["state"], m["score"]); break
else:
    print("absent")' "$2"
}

bl_out_to() {
    local f n=0
    for f in $(find "$SPOOL/out" -type f 2>/dev/null); do
        pl_rcpts "$f" | grep -qxF "$1" && n=$((n + 1))
    done
    echo "$n"
}

kill_pid_b() { # SIGKILL PID if it still is an mmq-bounce (for at_exit)
    local exe
    exe=$(readlink "/proc/$1/exe" 2>/dev/null) || return 0
    case $exe in */mmq-bounce) kill -KILL "$1" 2>/dev/null ;; esac
    return 0
}
