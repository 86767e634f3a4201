#!/bin/bash
# t/deliver-lib.sh - helpers for the mmq-deliver fault tests
# (t/deliver-faults.sh, t/deliver-tls-auth.sh).  Source it after t/lib.sh.
#
# The Makefile exports MMQ_DELIVER and MMQ_MKENTRY (absolute paths of the
# built agent and of t/tools/mkentry); without them (a test run by hand)
# they are looked for under $top_builddir.
#
#   dl_init                     skip the test if something it needs is missing
#   fault_start [OPTION...]     start t/smtp-fault-server.py on a free
#                               loopback port: SRV_PORT SRV_OUT SRV_PID
#                               (every server is stopped by the EXIT trap)
#   fault_stop                  stop the current one
#   tls_hung_sessions [SRVOUT...]  sessions that went silent right after
#                               the TLS handshake (see deliver-tls-auth.sh)
#   free_port                   print a loopback port nobody listens on
#   dl_conf [LINE...]           write $CONF for the spool and relay
#                               127.0.0.1:$SRV_PORT, one connection, short
#                               timeouts (session_time_limit
#                               $DL_SESSION_LIMIT, default 40); a LINE
#                               "name = value;" replaces the default of that
#                               setting
#   queue_mail SENDER RCPT...   queue one entry into out/ (mkentry):
#                               QUEUED is its name
#   run_agent [ARG...]          mmq-deliver -c $CONF -1 -e, time-limited to
#                               60 s: AGENT_RC, AGENT_MS, $AGENT_LOG
#   rcpt_states [SRVOUT...]     the final state of every recipient, from the
#                               spool and the servers' transactions.jsonl
#                               (default: all servers started): STATE[addr]
#   states_are WANT NAME ADDR...  one check: every ADDR is in state WANT
#   deferred_entry ADDR         DEFERRED_FILE: the deferred/ entry holding ADDR
#   crash_sink_start [OPT...]   Postfix's smtp-sink, made to exit at the first
#                               RCPT TO (it cannot write its dumps):
#                               SRV_PORT SINK_PID; 1 if unavailable
#   scenario NAME / end_scenario  group checks; on a failure the agent log
#                               and the server's log tail go to diagnostics
#
# States (STATE[addr]), "+"-joined when several apply, "*N" for N times:
#   delivered   accepted in a completed transaction of a fault server whose
#               message is not a DSN;
#   deferred    in a deferred/ entry whose envelope has attempts >= 1,
#               next-attempt later than now and a last-error;
#   deferred-incomplete  in deferred/ but one of those is missing;
#   failed      a recipient of a DSN (RFC 3464, checked by t/dsn-parse.py),
#               queued in the spool or already delivered to a server;
#   queued      in a non-DSN entry of out/ (nothing left there after -1);
#   bad, hold, claimed, in, bounces: in such an entry;
#   lost        none of the above.

PY=${PYTHON:-python3}
: "${top_srcdir:=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}"
: "${top_builddir:=$top_srcdir}"
MMQ_DELIVER=${MMQ_DELIVER:-$top_builddir/deliver/mmq-deliver}
MMQ_MKENTRY=${MMQ_MKENTRY:-$top_builddir/t/tools/mkentry}
FAULT_SERVER=$top_srcdir/t/smtp-fault-server.py
DSN_PARSE=$top_srcdir/t/dsn-parse.py

SRV_N=0
SRV_PORT=
SRV_OUT=
SRV_PID=
SRV_OUTS=()
ALL_SRV_OUTS=()
AGENT_LOG=
AGENT_RC=
AGENT_MS=
QUEUED=
declare -A STATE=()

dl_init() {
    local f
    command -v "$PY" >/dev/null 2>&1 || skip_all "$PY not installed"
    for f in "$MMQ_DELIVER" "$MMQ_MKENTRY"; do
        [ -x "$f" ] || skip_all "$f not built"
    done
    for f in "$FAULT_SERVER" "$DSN_PARSE"; do
        [ -r "$f" ] || skip_all "$f missing"
    done
    command -v timeout >/dev/null 2>&1 || skip_all "timeout(1) not installed"
    at_exit dl_stop_all
    mk_tmpdir
    DL_LOGDIR=$T
    : >"$DL_LOGDIR/agent.all"
}

# Servers we started and have not reaped yet: only those are ever signalled
# (a pid already reaped may belong to someone else by now).
declare -A DL_PIDS=()
dl_track() {
    DL_PIDS[$1]=1
}
dl_stop_all() {
    local pid
    for pid in "${!DL_PIDS[@]}"; do
        stop_pid "$pid"
    done
}

# stop_pid PID: SIGTERM, up to 3 s, then SIGKILL; reaps it.  Only for a
# pid passed to dl_track (a child of this shell), and only once.
stop_pid() {
    local pid=$1 i
    [ -n "$pid" ] && [ -n "${DL_PIDS[$pid]:-}" ] || return 0
    unset "DL_PIDS[$pid]"
    kill -TERM "$pid" 2>/dev/null
    for i in $(seq 60); do
        # gone, or a zombie waiting for us to reap it
        kill -0 "$pid" 2>/dev/null || break
        case $(cut -d ')' -f 2 "/proc/$pid/stat" 2>/dev/null) in
        ' Z'* | '') break ;;
        esac
        sleep 0.05
    done
    kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    return 0
}

free_port() {
    "$PY" -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
}

fault_start() {
    local d i
    SRV_N=$((SRV_N + 1))
    d=$T/srv$SRV_N
    mkdir -p "$d"
    "$PY" "$FAULT_SERVER" --port 0 --portfile "$d/port" --pidfile "$d/pid" \
        --out "$d/out" "$@" >"$d/stderr" 2>&1 &
    SRV_PID=$!
    dl_track "$SRV_PID"
    for i in $(seq 200); do
        [ -s "$d/port" ] && break
        kill -0 "$SRV_PID" 2>/dev/null || break
        sleep 0.05
    done
    SRV_PORT=$(cat "$d/port" 2>/dev/null)
    SRV_OUT=$d/out
    if [ -z "$SRV_PORT" ]; then
        diag "$(cat "$d/stderr")"
        bail_out "smtp-fault-server.py $* did not start"
    fi
    SRV_OUTS+=("$SRV_OUT")
    ALL_SRV_OUTS+=("$SRV_OUT")
}

# tls_hung_sessions [SRVOUT...]: the number of sessions in which the server
# completed a TLS handshake and then did not receive EHLO as the next
# command (the client waited for a reply it had not asked for, then timed
# out or was killed, perhaps sending QUIT).  Default: every fault server
# started by this test.
tls_hung_sessions() {
    [ $# -eq 0 ] && set -- "${ALL_SRV_OUTS[@]}"
    local d
    for d in "$@"; do
        [ -f "$d/session.log" ] && cat "$d/session.log" | sed "s|^|$d |"
    done | awk '
        $4 == "*" && $5 == "TLS" && $6 == "established:" { h[$1 " " $3] = 1 }
        $4 == "C:" && h[$1 " " $3] == 1 {
            # the first command after the handshake must be EHLO (or HELO)
            h[$1 " " $3] = toupper($5) ~ /^(EHLO|HELO)$/ ? 0 : 2
        }
        END { n = 0; for (k in h) n += h[k] > 0; print n }'
}

fault_stop() {
    stop_pid "$SRV_PID"
    SRV_PID=
}

# dl_conf [LINE...]
dl_conf() {
    local -a defaults=(
        'relay_host = "127.0.0.1";'
        "relay_port = ${SRV_PORT:-25};"
        'connections = 1;'
        'smtp_timeout = 5;'
        "session_time_limit = ${DL_SESSION_LIMIT:-40};"
    )
    local -a lines=()
    local d l skip
    for d in "${defaults[@]}"; do
        skip=0
        for l in "$@"; do
            [ "${l%% *}" == "${d%% *}" ] && skip=1
        done
        [ "$skip" -eq 0 ] && lines+=("$d")
    done
    write_conf "${lines[@]}" "$@"
}

# dl_spool [LINE...]: a fresh spool (mk_spool) and $MSG, a message with
# Date and Message-ID (so that libESMTP leaves it as it is).
dl_spool() {
    mk_spool "$@"
    SRV_N=0
    SRV_OUTS=()
    SRV_OUT=
    SRV_PORT=
    MSG=$T/msg
    printf '%s\n' 'From: Alice <alice@example.org>' 'To: list@example.org' \
        'Subject: fault test' 'Date: Sat, 22 Nov 2025 21:56:00 +0100' \
        "Message-ID: <fault-$RANDOM-$$@example.org>" '' 'body line 1' \
        '.a line starting with a dot' 'body line 3' >"$MSG"
    AGENT_LOG=$T/agent.log
}

# queue_mail SENDER RCPT...: one entry in out/.
queue_mail() {
    local sender=$1
    shift
    printf '%s\n' "$@" >"$T/rcpts"
    QUEUED=$("$MMQ_MKENTRY" -c "$CONF" -l announce -f "$sender" "$T/rcpts" \
        <"$MSG" 2>"$T/mkentry.err") || {
        diag "$(cat "$T/mkentry.err")"
        bail_out "mkentry failed"
    }
}

# run_agent [ARG...]
run_agent() {
    local t0 t1
    t0=$(now)
    timeout 60 "$MMQ_DELIVER" -c "$CONF" -1 -e "$@" >"$T/agent.out" 2>"$AGENT_LOG"
    AGENT_RC=$?
    t1=$(now)
    AGENT_MS=$(elapsed_ms "$t0" "$t1")
    {
        echo "--- mmq-deliver -1 $* (exit $AGENT_RC, ${AGENT_MS} ms)"
        cat "$AGENT_LOG"
    } >>"$DL_LOGDIR/agent.all"
}

# log_has REGEX: the last agent run logged a line matching REGEX (grep -E).
log_has() {
    grep -Eq -- "$1" "$AGENT_LOG"
}

_dl_state_py() {
    [ -f "$T/states.py" ] && return 0
    cat >"$T/states.py" <<'EOF'
import json, os, subprocess, sys, time
from urllib.parse import unquote_to_bytes

spool, dsnparse, outfile, dsnfile = sys.argv[1:5]
servers = sys.argv[5:]
now = time.time()
state = {}      # addr -> list of tags
dsns = []       # (where, addr, action, status, diag)

def tag(addr, t):
    state.setdefault(addr, []).append(t)

def parse_dsn(data, where):
    p = subprocess.run([sys.executable, dsnparse, "-"], input=data,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if p.returncode != 0:
        return None
    rows = []
    for line in p.stdout.decode("utf-8", "replace").splitlines():
        f = line.split("\t")
        if len(f) == 4:
            rows.append(f)
            dsns.append([where] + f)
    return rows

def is_dsn_candidate(data):
    head = data[:65536].lower()
    return b"multipart/report" in head

for d in servers:
    p = os.path.join(d, "transactions.jsonl")
    if not os.path.exists(p):
        continue
    for line in open(p):
        r = json.loads(line)
        data = open(os.path.join(d, r["file"]), "rb").read()
        rows = None
        if r["mail_from"] == "" and is_dsn_candidate(data):
            rows = parse_dsn(data, "server:%s:%s" % (os.path.basename(os.path.dirname(d)), r["file"]))
        if rows is not None:
            for f in rows:
                tag(f[0], "failed")
        else:
            for a in r["rcpts"]:
                tag(a, "delivered")

def envelope(path):
    data = open(path, "rb").read()
    end = data.find(b"\n\n")
    if end < 0:
        return None, None
    fields, rcpts = {}, []
    for line in data[:end].split(b"\n")[1:]:
        k, _, v = line.partition(b" ")
        v = unquote_to_bytes(v).decode("utf-8", "replace")
        k = k.decode()
        if k == "rcpt":
            rcpts.append(v)
        else:
            fields.setdefault(k, v)
    return (fields, rcpts), data[end + 2:]

for q in ("in", "bounces", "out", "deferred", "hold", "bad"):
    top = os.path.join(spool, q)
    for dirpath, _, files in os.walk(top):
        for fn in sorted(files):
            path = os.path.join(dirpath, fn)
            env, msg = envelope(path)
            if env is None:
                continue
            fields, rcpts = env
            claimed = "#" in fn
            rows = None
            if fields.get("sender", "") == "" and is_dsn_candidate(msg):
                rows = parse_dsn(msg, "spool:%s/%s" % (q, fn))
            if rows is not None and not claimed and q in ("out", "deferred"):
                for f in rows:
                    tag(f[0], "failed")
                continue
            for a in rcpts:
                if claimed:
                    tag(a, "claimed")
                elif q == "deferred":
                    ok = (int(fields.get("attempts", "0")) >= 1
                          and int(fields.get("next-attempt", "0")) > now
                          and fields.get("last-error", "") != "")
                    tag(a, "deferred" if ok else "deferred-incomplete")
                elif q == "out":
                    tag(a, "queued")
                else:
                    tag(a, q)

with open(outfile, "w") as f:
    for a, tags in sorted(state.items()):
        words = []
        for t in sorted(set(tags), key=tags.index):
            n = tags.count(t)
            words.append(t if n == 1 else "%s*%d" % (t, n))
        f.write("%s\t%s\n" % (a, "+".join(sorted(words))))
with open(dsnfile, "w") as f:
    for r in dsns:
        f.write("\t".join(r) + "\n")
EOF
}

# rcpt_states [SRVOUT...]: fills STATE; $T/dsns.txt lists every DSN
# recipient line as "where<TAB>addr<TAB>action<TAB>status<TAB>diagnostic".
rcpt_states() {
    local a s
    _dl_state_py
    [ $# -eq 0 ] && set -- "${SRV_OUTS[@]}"
    STATE=()
    "$PY" "$T/states.py" "$SPOOL" "$DSN_PARSE" "$T/states.txt" \
        "$T/dsns.txt" "$@" || bail_out "states.py failed"
    while IFS=$'\t' read -r a s; do
        STATE[$a]=$s
    done <"$T/states.txt"
}

# states_are WANT NAME ADDR...: after rcpt_states.
states_are() {
    local want=$1 name=$2 a got=() bad=0
    shift 2
    for a in "$@"; do
        got+=("$a=${STATE[$a]:-lost}")
        [ "${STATE[$a]:-lost}" == "$want" ] || bad=1
    done
    if [ "$bad" -eq 0 ]; then
        pass "$name"
    else
        fail "$name"
        diag "expected every one $want; got: ${got[*]}"
    fi
}

# deferred_entry ADDR: DEFERRED_FILE, the (ready) deferred/ entry with rcpt
# ADDR; returns 1 if there is none.
deferred_entry() {
    local f
    DEFERRED_FILE=
    while IFS= read -r f; do
        case $f in *'#'*) continue ;; esac
        entry_parse "$f" || continue
        local r
        for r in "${ENV_RCPT[@]}"; do
            if [ "$(pct_decode "$r")" == "$1" ]; then
                DEFERRED_FILE=$f
                return 0
            fi
        done
    done < <(find "$SPOOL/deferred" -type f 2>/dev/null | sort)
    return 1
}

# field_of FILE KEY: decoded envelope field, empty if absent.
field_of() {
    entry_field "$1" "$2" 2>/dev/null || true
}

# spool_count QUEUE: entries (files) in QUEUE.
spool_count() {
    count_files "$SPOOL/$1"
}

# server_txns [SRVOUT]: completed transactions recorded by the server.
server_txns() {
    local f=${1:-$SRV_OUT}/transactions.jsonl
    if [ -f "$f" ]; then wc -l <"$f"; else echo 0; fi
}

# crash_sink_start [OPT...]: Postfix's smtp-sink (t/smtp-sink-lib.sh) with
# PIPELINING as by default, in a directory where it cannot write its dumps:
# it answers MAIL FROM with 250, then exits ("fatal: open ...: Permission
# denied") when the first RCPT TO arrives, before replying to it.  With two
# or more recipients pipelined, libESMTP 1.1.0 then dereferences a null
# function pointer in smtp_start_session() (SIGSEGV in the worker); with one
# recipient, or with smtp-sink -p (no PIPELINING), it does not.
crash_sink_start() {
    local d=$T/crash-sink
    [ -r "$top_srcdir/t/smtp-sink-lib.sh" ] || return 1
    . "$top_srcdir/t/smtp-sink-lib.sh"
    [ -x "$SMTP_SINK" ] || return 1
    mkdir -p "$d" || return 1
    is_root && chown nobody "$d" # sink_start runs it as the owner of $d
    sink_start "$d" "$@" || return 1
    dl_track "$SINK_PID"
    chmod 500 "$d" # from now on it cannot create its dump files
    SRV_PORT=$SINK_PORT
}

_scn_failed=0
_scn_line=0
scenario() {
    _scn_failed=$_t_failed
    _scn_name=$1
    _scn_line=$(wc -l <"$DL_LOGDIR/agent.all")
    diag "--- $1"
}
end_scenario() {
    if [ "$_t_failed" -ne "$_scn_failed" ]; then
        diag "scenario \"$_scn_name\" failed; its agent runs:"
        diag "$(tail -n +"$((_scn_line + 1))" "$DL_LOGDIR/agent.all" | head -n 80)"
        if tail -n +"$((_scn_line + 1))" "$DL_LOGDIR/agent.all" | grep -q 'killed by signal 14'; then
            diag "NOTE: a delivery process hung until session_time_limit (SIGALRM)"
        fi
        if [ -n "$SRV_OUT" ] && [ -f "$SRV_OUT/session.log" ]; then
            diag "server log (tail):"
            diag "$(tail -n 40 "$SRV_OUT/session.log")"
        fi
    fi
}
