#!/bin/bash
# t/process-lib.sh - helpers for the list-stage tests (t/process-*.sh,
# t/e2e-list.sh) and bench/process-bench.sh.  Source it after t/lib.sh.
#
# The Makefile exports MMQ_PROCESS and MMQ_DELIVER; without them (a test run
# by hand with top_builddir set) they are looked for under $top_builddir.
#
#   pl_init                     skip the test if mmq-process or timeout(1)
#                               is missing
#   pl_list NAME [LINE...]      write $LISTS/NAME.conf: 'domain =
#                               "lists.example.org";' (unless a LINE sets
#                               domain) and the LINEs (libconfig syntax),
#                               then 'dmarc_mitigate_action = "none";'
#                               unless a LINE sets a dmarc_ setting: tests
#                               that are not about DMARC must not depend on
#                               the machine's DNS (t/process-dmarc.sh runs
#                               its own)
#   pl_members NAME ADDR...     write $LISTS/NAME.members, one ADDR a line
#   pl_gen_members N FILE       FILE: N addresses m000001@example.org ...
#   pl_post INPUT ARG...        mmq-filter -c $CONF ARG... <INPUT; fails
#                               (with diagnostics) unless it exits 0; sets
#                               IN_NAME to the in/ entry when in/ holds
#                               exactly one (else "")
#   pl_process [ARG...]         mmq-process -c $CONF -1 -e ARG..., limited
#                               to $PL_TIMEOUT seconds (default 30): PRC is
#                               the exit status (124: it did not exit), the
#                               log is in $PLOG and appended to $PLOG_ALL
#   pl_clear_out                remove every entry of out/
#   pl_outs                     OUTS: the entries of out/, sorted
#   pl_rcpts FILE...            the decoded recipients of the entries, one
#                               a line, in order
#   pl_sender FILE              the decoded envelope sender ("" for <>);
#                               returns 1 if there is no sender line
#   pl_msg FILE OUT             the message part of entry FILE into OUT
#   pl_headers MSG              the header section of the message file MSG,
#                               folded lines joined (line ends removed,
#                               continuation kept), CRs dropped
#   pl_hvals MSG NAME           the values of every NAME: header of MSG
#                               (case-insensitive name, leading blanks of
#                               the value removed), one a line
#   pl_hcount MSG NAME          how many NAME: headers MSG has
#   pl_relay_conf PORT [LINE...] rewrite $CONF with relay 127.0.0.1:PORT
#   pl_sink_start DIR [OPT...]  smtp-sink on loopback (t/smtp-sink-lib.sh),
#                               killed at exit: SINK_PORT, SINK_PID
#   kill_pid PID                SIGKILL and reap, if PID is still an
#                               mmq-process, mmq-deliver, smtp-sink or strace
#                               (for at_exit)
#   median N...                 the median of integers

: "${top_srcdir:=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}"
: "${top_builddir:=$top_srcdir}"
MMQ_PROCESS=${MMQ_PROCESS:-$top_builddir/process/mmq-process}
MMQ_DELIVER=${MMQ_DELIVER:-$top_builddir/deliver/mmq-deliver}
# set here for the callers
# shellcheck disable=SC2034
PL_DOMAIN=lists.example.org
PL_TIMEOUT=${PL_TIMEOUT:-30}
PRC=
PLOG=
PLOG_ALL=
IN_NAME=
OUTS=()

pl_init() {
    [ -x "$MMQ_PROCESS" ] || skip_all "$MMQ_PROCESS not built"
    command -v timeout >/dev/null 2>&1 || skip_all "timeout(1) not installed"
}

pl_list() {
    local name=$1 l have=0 dmarc=0
    shift
    for l in "$@"; do
        case $l in domain*) have=1 ;; dmarc_*) dmarc=1 ;; esac
    done
    {
        [ "$have" -eq 1 ] || printf 'domain = "%s";\n' "$PL_DOMAIN"
        for l in "$@"; do
            printf '%s\n' "$l"
        done
        [ "$dmarc" -eq 1 ] || printf 'dmarc_mitigate_action = "none";\n'
    } >"$LISTS/$name.conf"
}

pl_members() {
    local name=$1
    shift
    printf '%s\n' "$@" >"$LISTS/$name.members"
}

pl_gen_members() {
    seq -f 'm%06g@example.org' 1 "$1" >"$2"
}

# shellcheck disable=SC2034 # IN_NAME is for the caller
pl_post() {
    local input=$1 f
    shift
    IN_NAME=
    run_filter "$input" "$@"
    if [ "$RC" -ne 0 ]; then
        diag "mmq-filter $* exited $RC: $ERR"
        return 1
    fi
    mapfile -t f < <(find "$SPOOL/in" -type f 2>/dev/null)
    [ "${#f[@]}" -eq 1 ] && IN_NAME=${f[0]##*/}
    return 0
}

# shellcheck disable=SC2034 # PRC is for the caller
pl_process() {
    PLOG=$T/process.log
    PLOG_ALL=$T/process.all.log
    timeout "$PL_TIMEOUT" "$MMQ_PROCESS" -c "$CONF" -1 -e "$@" 2>"$PLOG"
    PRC=$?
    cat "$PLOG" >>"$PLOG_ALL"
    return 0
}

pl_clear_out() {
    find "$SPOOL/out" -type f -delete 2>/dev/null
}

# shellcheck disable=SC2034 # OUTS is for the caller
pl_outs() {
    mapfile -t OUTS < <(find "$SPOOL/out" -type f 2>/dev/null | sort)
}

pl_rcpts() {
    local f r
    for f in "$@"; do
        entry_parse "$f" || continue
        for r in "${ENV_RCPT[@]}"; do
            pct_decode "${r%% *}"
            printf '\n'
        done
    done
}

pl_sender() {
    entry_parse "$1" || return 1
    [ -n "${ENV_FIELDS[sender]+set}" ] || return 1
    pct_decode "${ENV_FIELDS[sender]}"
}

pl_msg() {
    entry_message "$1" >"$2"
}

pl_headers() {
    awk '
        { sub(/\r$/, "") }
        $0 == "" { exit }
        /^[ \t]/ && have { cur = cur $0; next }
        { if (have) print cur; cur = $0; have = 1 }
        END { if (have) print cur }
    ' "$1"
}

pl_hvals() {
    pl_headers "$1" | awk -v n="$2" '
        BEGIN { n = tolower(n) }
        {
            i = index($0, ":")
            if (i > 1 && tolower(substr($0, 1, i - 1)) == n) {
                v = substr($0, i + 1)
                sub(/^[ \t]+/, "", v)
                print v
            }
        }'
}

pl_hcount() {
    pl_hvals "$1" "$2" | wc -l
}

pl_relay_conf() {
    local port=$1
    shift
    write_conf 'relay_host = "127.0.0.1";' "relay_port = $port;" \
        'connections = 2;' 'smtp_timeout = 10;' 'session_time_limit = 120;' \
        'retry_min = 1;' "$@"
}

kill_pid() { # only if PID still is one of ours (never a reused pid)
    local exe
    [ -n "${1:-}" ] || return 0
    exe=$(readlink "/proc/$1/exe" 2>/dev/null) || return 0
    case $exe in
    */mmq-process | */mmq-deliver | */smtp-sink | */strace)
        kill -KILL "$1" 2>/dev/null
        wait "$1" 2>/dev/null
        ;;
    esac
    return 0
}

pl_sink_start() {
    # shellcheck source=t/smtp-sink-lib.sh
    . "$top_srcdir/t/smtp-sink-lib.sh"
    [ -x "$SMTP_SINK" ] || return 1
    sink_start "$@" || return 1
    at_exit kill_pid "$SINK_PID"
    return 0
}

median() {
    printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END {
        if (NR % 2) print v[(NR + 1) / 2]; else print int((v[NR / 2] + v[NR / 2 + 1]) / 2) }'
}
