#!/bin/bash
# t/deliver-lib2.sh - helpers for the mmq-deliver integration tests
# (deliver-basic, deliver-kill, deliver-slices, deliver-signals).
#
# Source it after t/lib.sh; it sources t/smtp-sink-lib.sh (sink_start,
# sink_rcpts, sink_counters, ...).  The Makefile exports MMQ_DELIVER and
# MMQ_MKENTRY (absolute paths of the built agent and of t/tools/mkentry).
#
#   dl_conf [LINE...]          rewrite $CONF for $SPOOL, relay 127.0.0.1:$SINK_PORT
#   dl_rcpts N FILE [TAG]      N recipient addresses, one a line
#   dl_queue RCPTFILE PER MSG  queue entries of PER recipients into out/
#                              (mkentry -n PER, with $QCONF if set, else
#                              $CONF); their IDs are in $QUEUED
#   dl_agent_start LOG ARG...  mmq-deliver -c $CONF -e ARG... in the background
#                              (stderr appended to LOG); sets AGENT_PID
#   dl_running PID             is PID running (not a zombie, not gone)?
#   dl_wait_exit PID SECS      wait for our child PID; sets DL_RC (its status,
#                              or "timeout"); returns non-zero on timeout
#   dl_wait_log LOG ERE SECS   wait until a line of LOG matches ERE
#   dl_wait_out_empty SECS     wait until out/ holds no file at all
#   dl_files QUEUE...          entry files (claimed ones too) of the queues
#   dl_claimed                 files with '#' in their name in any queue
#   dl_tally EXPECTED DIR...   compare the recipients received by the sinks
#                              of DIR... with the addresses in EXPECTED; sets
#                              DL_GOT DL_MISSING DL_DUPS DL_MAXC DL_UNEXPECTED
#   dl_dumps_match MSG DIR...  every dump is MSG byte for byte, once the
#                              sink's own additions are stripped
#   dl_sink_message DUMP       the message of one dump (sink additions stripped)
#   dl_log_ids LOG             queue IDs the agent delivered to (to=<...> lines)
#   dl_slice_of N ID...        "ID SLICE" lines: the slice of each ID among N
#   dl_kill SIG PID            signal PID if it is still one of our agents/sinks
set -u

DL_SRCDIR=${top_srcdir:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}

if [ -z "${MMQ_DELIVER:-}" ] || [ -z "${MMQ_MKENTRY:-}" ]; then
    skip_all "MMQ_DELIVER and MMQ_MKENTRY are not set (run through make check)"
fi
[ -x "$MMQ_DELIVER" ] || bail_out "$MMQ_DELIVER is not an executable"
[ -x "$MMQ_MKENTRY" ] || bail_out "$MMQ_MKENTRY is not an executable"
command -v python3 >/dev/null 2>&1 || skip_all "python3 is not installed"

# shellcheck source=t/smtp-sink-lib.sh
. "$DL_SRCDIR/t/smtp-sink-lib.sh"
[ -x "$SMTP_SINK" ] || skip_all "smtp-sink (Debian package postfix) is not installed"

# ---------------------------------------------------------- processes

# dl_kill SIG PID: send SIG to PID only if it still is an mmq-deliver or an
# smtp-sink (never a process that reused the pid).
dl_kill() {
    local sig=$1 pid=$2 exe
    [ -n "$pid" ] || return 0
    exe=$(readlink "/proc/$pid/exe" 2>/dev/null) || return 0
    case $exe in
    "$MMQ_DELIVER" | "$SMTP_SINK" | */mmq-deliver | */smtp-sink)
        kill "-$sig" "$pid" 2>/dev/null
        ;;
    esac
    return 0
}

dl_running() {
    local st
    st=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null) || return 1
    [ -n "$st" ] && [ "${st%% *}" != Z ]
}

dl_wait_exit() {
    local pid=$1 secs=$2 i n
    n=$((secs * 20))
    for ((i = 0; i < n; i++)); do
        dl_running "$pid" || break
        sleep 0.05
    done
    if dl_running "$pid"; then
        DL_RC=timeout
        return 1
    fi
    wait "$pid" 2>/dev/null
    DL_RC=$?
    return 0
}

# dl_sink_start DIR [smtp-sink options]: sink_start, killed at exit; the
# sink's pid and port stay in SINK_PID and SINK_PORT.
dl_sink_start() {
    if ! sink_start "$@"; then
        bail_out "cannot start smtp-sink in $1"
    fi
    at_exit dl_kill KILL "$SINK_PID"
}

# dl_sink_stop PID: stop one of our sinks (several may run at once).
dl_sink_stop() {
    dl_kill TERM "$1"
    dl_wait_exit "$1" 3 || {
        dl_kill KILL "$1"
        wait "$1" 2>/dev/null
    }
    return 0
}

dl_agent_start() {
    local log=$1
    shift
    "$MMQ_DELIVER" -c "$CONF" -e "$@" 2>>"$log" &
    AGENT_PID=$!
    at_exit dl_kill KILL "$AGENT_PID"
}

# ------------------------------------------------------------- spool

dl_conf() {
    write_conf "relay_host = \"127.0.0.1\";" "relay_port = ${SINK_PORT:-25};" \
        "helo_name = \"mmq.test\";" "smtp_timeout = 60;" "$@"
}

dl_rcpts() {
    seq -f "rcpt%.0f.${3:-t}@example.org" 1 "$1" >"$2"
}

dl_queue() {
    local out
    if ! out=$("$MMQ_MKENTRY" -c "${QCONF:-$CONF}" -f "list-bounces@example.org" \
        -l announce -n "$2" "$1" <"$3" 2>&1); then
        diag "$out"
        bail_out "mkentry failed"
    fi
    QUEUED=$out
}

dl_files() {
    local q dirs=()
    for q in "$@"; do
        dirs+=("$SPOOL/$q")
    done
    find "${dirs[@]}" -type f 2>/dev/null | sort
}

dl_claimed() {
    find "$SPOOL"/in "$SPOOL"/bounces "$SPOOL"/out "$SPOOL"/deferred \
        "$SPOOL"/hold "$SPOOL"/bad -type f -name '*#*' 2>/dev/null | sort
}

dl_wait_out_empty() {
    local i n=$(($1 * 20))
    for ((i = 0; i < n; i++)); do
        [ -z "$(dl_files out)" ] && return 0
        sleep 0.05
    done
    [ -z "$(dl_files out)" ]
}

dl_wait_log() {
    local log=$1 re=$2 i n=$(($3 * 20))
    for ((i = 0; i < n; i++)); do
        grep -Eq -- "$re" "$log" 2>/dev/null && return 0
        sleep 0.05
    done
    grep -Eq -- "$re" "$log" 2>/dev/null
}

# ------------------------------------------------------ what arrived

dl_tally() {
    local expected=$1 d out
    shift
    out=$(for d in "$@"; do sink_rcpts "$d"; done | awk -v want_file="$expected" '
        BEGIN {
            while ((getline a < want_file) > 0)
                if (a != "") want[a] = 0
        }
        {
            got++
            if ($0 in want) {
                c = ++want[$0]
                if (c > max) max = c
            } else if (!($0 in unexp)) {
                unexp[$0] = 1
                nunexp++
            }
        }
        END {
            for (a in want) {
                if (want[a] == 0) miss++
                else dup += want[a] - 1
            }
            print got + 0, miss + 0, dup + 0, max + 0, nunexp + 0
        }')
    read -r DL_GOT DL_MISSING DL_DUPS DL_MAXC DL_UNEXPECTED <<<"$out"
}

# The smtp-sink additions, checked strictly so that nothing of the message
# is ever stripped by mistake: a block of X-Client-Addr, X-Client-Proto,
# X-Helo-Args, X-Mail-Args and X-Rcpt-Args lines, then the three-line
# "Received: ... (smtp-sink) ..." header, and one empty line appended at
# the end.  (smtp-sink also turns the CRLF line ends back into LF.)
_DL_STRIP_PY='
import sys

SINK_FIELDS = (b"X-Client-Addr:", b"X-Client-Proto:", b"X-Helo-Args:",
               b"X-Mail-Args:", b"X-Rcpt-Args:")

def message_of(path):
    data = open(path, "rb").read()
    lines = data.split(b"\n")
    i = 0
    while i < len(lines) and lines[i].startswith(SINK_FIELDS):
        i += 1
    if (i + 2 >= len(lines) or not lines[i].startswith(b"Received: from ")
            or not lines[i + 1].startswith(b"\tby ")
            or b"(smtp-sink)" not in lines[i + 1]
            or not lines[i + 2].startswith(b"\t")):
        raise ValueError("%s: no smtp-sink header block" % path)
    rest = b"\n".join(lines[i + 3:])
    if not rest.endswith(b"\n\n"):
        raise ValueError("%s: no empty line appended by smtp-sink" % path)
    return rest[:-1]
'

dl_sink_message() {
    python3 -c "$_DL_STRIP_PY"'
sys.stdout.buffer.write(message_of(sys.argv[1]))' "$1"
}

# dl_dumps_match MSG DIR...: prints "N dumps, M differ" and, for the first
# one that differs, where; returns non-zero if any differs or none exists.
dl_dumps_match() {
    local msg=$1 d
    shift
    for d in "$@"; do sink_dumps "$d"; done | python3 -c "$_DL_STRIP_PY"'
want = open(sys.argv[1], "rb").read()
n = bad = 0
for path in sys.stdin.read().split("\n"):
    if not path:
        continue
    n += 1
    try:
        got = message_of(path)
    except ValueError as e:
        bad += 1
        if bad == 1:
            print(e)
        continue
    if got != want:
        bad += 1
        if bad == 1:
            k = next((j for j in range(min(len(got), len(want)))
                      if got[j] != want[j]), min(len(got), len(want)))
            print("%s: %d bytes, want %d; first difference at byte %d: "
                  "got %r, want %r" % (path, len(got), len(want), k,
                                       got[max(0, k - 20):k + 40],
                                       want[max(0, k - 20):k + 40]))
print("%d dumps, %d differ" % (n, bad))
sys.exit(1 if bad or n == 0 else 0)' "$msg"
}

# dl_log_ids LOG: the queue IDs LOG reports transactions for, sorted, unique.
dl_log_ids() {
    sed -n 's/^.* mmq-deliver\[[0-9]*\]: \([0-9]\{10\}\.[0-9]\{6\}+[0-9a-f]\{40\}\): to=<.*/\1/p' \
        "$1" | sort -u
}

dl_slice_of() {
    python3 -c '
import sys
n = int(sys.argv[1])
for qid in sys.argv[2:]:
    key = int(qid.split("+", 1)[1][:16], 16)
    print(qid, key * n >> 64)' "$@"
}
