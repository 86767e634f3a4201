#!/bin/bash
# ctl-race: mmqctl hold, delete, release and retry race a running
# mmq-deliver, and no entry is ever both acted on and delivered, nor lost.
#
# 160 entries of 5 recipients each are queued.  Phase 1: the agent runs
# against a relay port where nobody listens (retry_min 1 s), so entries
# churn between out/, claimed and deferred/ while, in parallel,
#   group 0 (i % 4 == 0) is held,
#   group 1 is deleted (-y),
#   group 2 is held and then released,
#   group 3 is made due again and again (retry ID, and retry --all).
# Busy (75) and briefly not found (66, an entry between two queues while
# the scan ran) are retried; every other outcome is what mmqctl reported.
# Phase 2: the agent restarts against smtp-sink and, while it delivers,
# group 3 entries with i % 8 == 3 are held and those with i % 8 == 7
# deleted (each may be held or deleted, or already taken by the agent:
# mmqctl says which), and half of group 0 is released.
#
# Afterwards, for every entry: held (by mmqctl's word, and in hold/) =>
# none of its recipients reached the sink; deleted => none reached it and
# it is nowhere in the spool; otherwise => each recipient exactly once.
# Nothing is left claimed, in tmp/, bad/, out/ or deferred/.
set -u
. "${top_srcdir:-$(dirname "$0")/..}/t/lib.sh"
. "${top_srcdir:-$(dirname "$0")/..}/t/deliver-lib2.sh"

N=160
PER=5
mk_spool
W=$T
dl_sink_start "$T/sink"
SINKP=$SINK_PORT
DEADP=$(_sink_free_port)
conf_for() { # conf_for PORT
    SINK_PORT=$1 dl_conf "connections = 4;" "recipients_per_transaction = 5;" \
        "retry_min = 1;" "retry_max = 2;" "scan_interval = 1;"
}
conf_for "$DEADP"
printf 'From: alice@example.org\nSubject: race\n\nbody\n' >"$W/msg"
dl_rcpts $((N * PER)) "$W/rcpts" r
dl_queue "$W/rcpts" "$PER" "$W/msg"
mapfile -t E <<<"$QUEUED"
is "${#E[@]}" "$N" "queued $N entries"
# which recipients each entry holds: "NAME ADDR" lines
for f in $(dl_files out); do
    sed -n '/^$/q; s/^rcpt /'"${f##*/}"' /p' "$f"
done >"$W/map"

# ctl_until OUTCOMES_FILE VERB ID: mmqctl VERB ID, again while busy (75) or
# not found (66) for at most ~10 s; appends "ID VERB RC" to the file.
ctl_until() {
    local out=$1 verb=$2 id=$3 rc i extra=()
    [ "$verb" == delete ] && extra=(-y)
    for ((i = 0; i < 200; i++)); do
        "$MMQCTL" -c "$CONF" "$verb" "${extra[@]}" "$id" >/dev/null 2>>"$W/ctl.err" </dev/null
        rc=$?
        [ "$rc" -eq 75 ] || [ "$rc" -eq 66 ] || break
        sleep 0.05
    done
    printf '%s %s %s\n' "$id" "$verb" "$rc" >>"$out"
}

racer() { # racer GROUP OUTCOMES_FILE
    local g=$1 out=$2 i
    for ((i = g; i < N; i += 4)); do
        case $g in
        0) ctl_until "$out" hold "${E[i]}" ;;
        1) ctl_until "$out" delete "${E[i]}" ;;
        2)
            ctl_until "$out" hold "${E[i]}"
            ctl_until "$out" release "${E[i]}"
            ;;
        3)
            "$MMQCTL" -c "$CONF" retry "${E[i]}" >/dev/null 2>&1 </dev/null
            printf '%s retried %s\n' "${E[i]}" "$?" >>"$out"
            "$MMQCTL" -c "$CONF" retry --all >/dev/null 2>&1 </dev/null
            ;;
        esac
    done
}

# ------------------------------------------------------------- phase 1
dl_agent_start "$W/agent1.log"
sleep 0.5
: >"$W/outcomes"
pids=()
for g in 0 1 2 3; do
    racer "$g" "$W/outcomes.$g" &
    pids+=($!)
done
for p in "${pids[@]}"; do
    wait "$p"
done
cat "$W"/outcomes.? >"$W/outcomes" 2>/dev/null
sleep 1
dl_kill TERM "$AGENT_PID"
dl_wait_exit "$AGENT_PID" 30 || { dl_kill KILL "$AGENT_PID"; wait "$AGENT_PID"; }
is "$(awk '$2 == "hold" && $3 != 0' "$W/outcomes" | wc -l)" 0 "phase 1: every hold succeeded (after busy retries)"
is "$(awk '$2 == "delete" && $3 != 0' "$W/outcomes" | wc -l)" 0 "phase 1: every delete succeeded"
is "$(awk '$2 == "release" && $3 != 0' "$W/outcomes" | wc -l)" 0 "phase 1: every release succeeded"
is "$(sink_count_rcpts "$T/sink")" 0 "phase 1: nothing delivered (no relay)"
diag "phase 1 retries: $(awk '$2 == "retried" { print $3 }' "$W/outcomes" | sort | uniq -c | tr '\n' ' ')"
bad=$(awk '$2 == "retried" && $3 != 0 && $3 != 75 && $3 != 66 && $3 != 65' "$W/outcomes")
is "$bad" "" "phase 1: a retry succeeds or reports busy, gone or not deferred"

# ------------------------------------------------------------- phase 2
conf_for "$SINKP"
dl_agent_start "$W/agent2.log"
: >"$W/outcomes2"
(
    for ((i = 3; i < N; i += 4)); do
        if ((i % 8 == 3)); then
            "$MMQCTL" -c "$CONF" hold "${E[i]}" >/dev/null 2>>"$W/ctl.err" </dev/null
            printf '%s hold %s\n' "${E[i]}" "$?" >>"$W/outcomes2"
        else
            "$MMQCTL" -c "$CONF" delete -y "${E[i]}" >/dev/null 2>>"$W/ctl.err" </dev/null
            printf '%s delete %s\n' "${E[i]}" "$?" >>"$W/outcomes2"
        fi
    done
) &
hp=$!
for ((i = 0; i < N; i += 8)); do
    ctl_until "$W/outcomes2" release "${E[i]}"
done
wait "$hp"
settle() { # until out/ and deferred/ are empty and nothing is claimed
    local i
    for ((i = 0; i < 600; i++)); do
        [ -z "$(dl_files out deferred)" ] && [ -z "$(dl_claimed)" ] && return 0
        sleep 0.1
    done
    return 1
}
check "phase 2: the agent empties out/ and deferred/" settle
dl_kill TERM "$AGENT_PID"
dl_wait_exit "$AGENT_PID" 30 || { dl_kill KILL "$AGENT_PID"; wait "$AGENT_PID"; }
is "$(awk '$2 == "release" && $3 != 0' "$W/outcomes2" | wc -l)" 0 "phase 2: every release succeeded"
bad=$(awk '($2 == "hold" || $2 == "delete") && $3 != 0 && $3 != 75 && $3 != 66' "$W/outcomes2")
is "$bad" "" "phase 2: a hold or delete either succeeds or reports busy or gone"
diag "phase 2 holds: $(awk '$2 == "hold" { print $3 }' "$W/outcomes2" | sort | uniq -c | tr '\n' ' ')"
diag "phase 2 deletes: $(awk '$2 == "delete" { print $3 }' "$W/outcomes2" | sort | uniq -c | tr '\n' ' ')"

# ------------------------------------------------------------ verdict
sink_rcpts "$T/sink" >"$W/delivered"
find "$SPOOL/hold" -type f -printf '%f\n' | sed 's/@.*//' >"$W/inhold"
verdict=$(python3 - "$W" <<'EOF'
import collections, sys
w = sys.argv[1]
rcpts = collections.defaultdict(list)
for l in open(w + "/map"):
    n, a = l.split()
    rcpts[n].append(a)
got = collections.Counter(l.strip() for l in open(w + "/delivered") if l.strip())
held_now = set(l.strip() for l in open(w + "/inhold"))
# final word of mmqctl per entry: the last successful action
last = {}
for f in ("/outcomes", "/outcomes2"):
    for l in open(w + f):
        n, verb, rc = l.split()
        if rc == "0":
            last[n] = verb
problems = []
counts = collections.Counter()
for n, addrs in rcpts.items():
    d = [got[a] for a in addrs]
    state = last.get(n, "none")
    counts[state] += 1
    if state == "hold":
        if n not in held_now:
            problems.append(n + " held by mmqctl but not in hold/")
        if any(d):
            problems.append(n + " held and delivered")
    elif state == "delete":
        if any(d):
            problems.append(n + " deleted and delivered")
        if n in held_now:
            problems.append(n + " deleted but still held")
    else:
        if n in held_now:
            problems.append(n + " in hold/ though mmqctl never reported holding it last")
        if d != [1] * len(d):
            problems.append("%s (%s): deliveries %s" % (n, state, d))
extra = set(got) - set(a for v in rcpts.values() for a in v)
if extra:
    problems.append("unexpected recipients %s" % sorted(extra)[:5])
print(" ".join("%s=%d" % kv for kv in sorted(counts.items())))
for p in problems[:20]:
    print(p)
EOF
)
checker_rc=$?
summary=${verdict%%$'\n'*}
diag "final states: $summary"
# A checker that crashes prints nothing: an empty verdict equals its empty
# summary, so require its exit status and a summary line too.
is "$checker_rc" 0 "the verdict's checker ran to the end"
check "the verdict names the final states" test -n "$summary"
is "$verdict" "$summary" "every entry: held xor delivered xor deleted; the others delivered exactly once"
check "some entries were held at the end" test -s "$W/inhold"
is "$(dl_claimed | wc -l):$(tmp_files | wc -l):$(count_files "$SPOOL/bad")" "0:0:0" \
    "nothing left claimed, in tmp/ or in bad/"
if grep -qiE 'fatal|failed' "$W/ctl.err"; then
    fail "mmqctl reported no failure"
    diag "$(grep -iE 'fatal|failed' "$W/ctl.err" | head -n 5)"
else
    pass "mmqctl reported no failure"
fi

done_testing
