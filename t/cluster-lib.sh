#!/bin/bash
# t/cluster-lib.sh - the cluster scenario shared by t/cluster-local.sh (two
# node names on one local spool) and t/cluster-gluster.sh (each node on
# its own GlusterFS mount of one volume).  Source it after t/lib.sh and
# t/process-lib.sh.
#
#   cl_setup DIR_A DIR_B   the spool as node a sees it and as node b sees
#                          it (the same directory, or two mounts of it);
#                          writes $T/a.conf and $T/b.conf, a list "big" of
#                          $CL_MEMBERS members, initialises the spool and
#                          starts smtp-sink
#   cl_start NODE [VAR=VALUE...]  start that node's mmq-process and
#                          mmq-deliver with those variables in their
#                          environment (e.g. LD_PRELOAD=libfaketime ...);
#                          logs $T/NODE.process.log, $T/NODE.deliver.log;
#                          with CL_SPLIT set, two mmq-deliver, -s 0-3 and
#                          -s 4-7, share the node's slices
#   cl_kill9 NODE          kill -9 that node's agents (their delivery
#                          workers die with them: PR_SET_PDEATHSIG)
#   cl_term NODE           SIGTERM them and wait: CL_RC is "0 0" when both
#                          exited 0
#   cl_post NODE K         post number K to "big" through mmq-filter with
#                          NODE's configuration (Message-ID <K@cluster.test>)
#   cl_holders STAGE       "SLICE NODE" per slice: the current lease holder
#                          (or "-" if free or never taken), from the files
#                          as node ${CL_VIEW:-a}'s mount shows them
#   cl_wait_holders STAGE WANT SECS  wait until cl_holders equals WANT
#   cl_drained SECS        wait until in/ out/ deferred/ hold no entry
#   cl_tally POSTS         count (member, post) deliveries at the sink:
#                          CL_MISSING CL_DUPS CL_TOTAL
#
# Timing: slices = 8, lease_time = 2 s, lease_margin = 1 s, takeover_after
# = 4 s by default (CL_LEASE_TIME, CL_MARGIN, CL_TAKEOVER), so a takeover
# is due about 4-6 s after the holder stops.
set -u

CL_MEMBERS=${CL_MEMBERS:-2000}
CL_SLICES=8
CL_TAKEOVER=${CL_TAKEOVER:-4}
CL_LEASE_TIME=${CL_LEASE_TIME:-2}
CL_MARGIN=${CL_MARGIN:-1}
declare -A CL_PIDS

cl_setup() {
    local dir_a=$1 dir_b=$2 node
    CL_SPOOL=$dir_a
    LISTS=$T/lists
    mkdir -p "$LISTS" || bail_out "mkdir $LISTS"
    pl_sink_start "$T/sink" || bail_out "cannot start smtp-sink"
    cat >"$T/common.conf" <<EOF
lists_dir = "$LISTS";
slices = $CL_SLICES;
relay_host = "127.0.0.1";
relay_port = $SINK_PORT;
connections = 2;
recipients_per_transaction = 50;
smtp_timeout = 10;
session_time_limit = 60;
retry_min = 1;
retry_max = 2;
scan_interval = 1;
lease_time = $CL_LEASE_TIME;
lease_margin = $CL_MARGIN;
nodes = (
  { name = "a"; process = "0-3"; deliver = "0-3"; standby = "4-7";
    takeover_after = $CL_TAKEOVER; },
  { name = "b"; process = "4-7"; deliver = "4-7"; standby = "0-3";
    takeover_after = $CL_TAKEOVER; }
);
EOF
    for node in a b; do
        local dir=$dir_a
        [ "$node" = b ] && dir=$dir_b
        printf 'node = "%s";\nspool = "%s";\n@include "common.conf"\n' \
            "$node" "$dir" >"$T/$node.conf"
    done
    "$MMQCTL" -c "$T/a.conf" init >"$T/init.out" 2>&1 ||
        bail_out "mmqctl init: $(cat "$T/init.out")"
    pl_list big 'recipients_per_entry = 100;' 'posters = "anyone";'
    seq -f 'm%05g@members.test' 1 "$CL_MEMBERS" >"$LISTS/big.members"
}

cl_start() {
    local node=$1 pid
    shift
    env "$@" "$MMQ_PROCESS" -c "$T/$node.conf" -e 2>>"$T/$node.process.log" &
    CL_PIDS[$node.process]=$!
    at_exit kill_pid "$!"
    CL_PIDS[$node.deliver]=
    if [ -n "${CL_SPLIT:-}" ]; then
        # two delivery agents on this node, sharing its slices out
        env "$@" "$MMQ_DELIVER" -c "$T/$node.conf" -e -s 0-3 \
            2>>"$T/$node.deliver.log" &
        CL_PIDS[$node.deliver]=$!
        at_exit kill_pid "$!"
        env "$@" "$MMQ_DELIVER" -c "$T/$node.conf" -e -s 4-7 \
            2>>"$T/$node.deliver.log" &
    else
        env "$@" "$MMQ_DELIVER" -c "$T/$node.conf" -e \
            2>>"$T/$node.deliver.log" &
    fi
    pid=$!
    CL_PIDS[$node.deliver]="${CL_PIDS[$node.deliver]} $pid"
    at_exit kill_pid "$pid"
}

# shellcheck disable=SC2086 # the deliver entry may hold two pids
cl_kill9() {
    local node=$1
    kill -KILL "${CL_PIDS[$node.process]}" ${CL_PIDS[$node.deliver]} \
        2>/dev/null
    wait "${CL_PIDS[$node.process]}" ${CL_PIDS[$node.deliver]} 2>/dev/null
}

# shellcheck disable=SC2086
cl_term() {
    local node=$1 p d=0 pid
    kill -TERM "${CL_PIDS[$node.process]}" ${CL_PIDS[$node.deliver]} \
        2>/dev/null
    wait "${CL_PIDS[$node.process]}"
    p=$?
    for pid in ${CL_PIDS[$node.deliver]}; do
        wait "$pid" || d=$?
    done
    CL_RC="$p $d"
}

cl_post() {
    local node=$1 k=$2
    {
        printf 'From: Poster <poster@example.org>\n'
        printf 'To: big@%s\n' "$PL_DOMAIN"
        printf 'Subject: post %s\n' "$k"
        printf 'Message-ID: <%s@cluster.test>\n' "$k"
        printf '\nbody of post %s\n' "$k"
    } >"$T/post.$k"
    "$MMQ_FILTER" -c "$T/$node.conf" -f poster@example.org big \
        <"$T/post.$k" >"$T/post.out" 2>&1 || {
        diag "mmq-filter for post $k exited $?: $(cat "$T/post.out")"
        return 1
    }
}

cl_holders() {
    local stage=$1 i f dir
    dir=$(sed -n 's/^spool = "\(.*\)";/\1/p' "$T/${CL_VIEW:-a}.conf")/lease
    for ((i = 0; i < CL_SLICES; i++)); do
        f=$(find "$dir" -maxdepth 1 -name "$stage.$i.*" 2>/dev/null | sort | tail -1)
        if [ -z "$f" ] || grep -q '^state free' "$f"; then
            echo "$i -"
        else
            echo "$i $(sed -n 's/^holder \([^ ]*\) .*/\1/p' "$f")"
        fi
    done | tr '\n' ' '
}

# cl_lease_dump: the lease files as each node's mount shows them
cl_lease_dump() {
    local node dir
    for node in a b; do
        dir=$(sed -n 's/^spool = "\(.*\)";/\1/p' "$T/$node.conf")/lease
        echo "== $dir"
        ls -la "$dir"
        head -n 2 "$dir"/hb.* 2>&1
    done
}

cl_wait_holders() {
    local stage=$1 want=$2 secs=$3 i
    for ((i = 0; i < secs * 10; i++)); do
        [ "$(cl_holders "$stage")" = "$want" ] && return 0
        sleep 0.1
    done
    diag "$stage holders: $(cl_holders "$stage"), wanted $want"
    return 1
}

cl_drained() {
    local secs=$1 i dir n
    dir=$(sed -n 's/^spool = "\(.*\)";/\1/p' "$T/${CL_VIEW:-a}.conf")
    for ((i = 0; i < secs * 5; i++)); do
        n=$(find "$dir/in" "$dir/out" "$dir/deferred" -type f 2>/dev/null |
            wc -l)
        [ "$n" -eq 0 ] && return 0
        sleep 0.2
    done
    diag "not drained after $secs s: $n entries left"
    return 1
}

cl_tally() {
    local posts=$1 out
    out=$(python3 - "$T/sink" "$CL_MEMBERS" "$posts" <<'EOF'
import glob, re, sys
d, members, posts = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
count = {}
for f in glob.glob(d + "/dump.*"):
    rcpts, mid = [], None
    with open(f, "rb") as fp:
        for line in fp:
            line = line.decode("latin-1").rstrip("\n")
            if line.startswith("X-Rcpt-Args: <"):
                rcpts.append(line[14:].split(">")[0])
            m = re.match(r"(?i)message-id:\s*<(\d+)@cluster\.test>", line)
            if m:
                mid = int(m.group(1))
                break
    for r in rcpts:
        count[(r, mid)] = count.get((r, mid), 0) + 1
missing = dups = total = 0
for k in range(1, posts + 1):
    for m in range(1, members + 1):
        c = count.get(("m%05d@members.test" % m, k), 0)
        total += c
        missing += c == 0
        dups += max(c - 1, 0)
print(missing, dups, total)
EOF
)
    read -r CL_MISSING CL_DUPS CL_TOTAL <<<"$out"
}

# The slices of a stage held as configured: a 0-3, b 4-7.
CL_HOME="0 a 1 a 2 a 3 a 4 b 5 b 6 b 7 b "
CL_ALL_B="0 b 1 b 2 b 3 b 4 b 5 b 6 b 7 b "
