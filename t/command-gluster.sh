#!/bin/bash
# command-gluster: two nodes answering confirmations at the same instant
# on GlusterFS (one volume mounted twice through FUSE; node a's spool and
# lists directory on one mount, node b's on the other: the same files).
# slices = 2: node a's mmq-process -1 serves slice 0 of in/, node b's
# slice 1.  Each trial makes three subscriptions wait for their
# confirmation, then queues two replies to each confirmation request, one
# in each node's slice (so that both nodes answer the same token at the
# same time, in the same order), and starts both nodes at once.  After
# each trial: the three are members exactly once (none lost, none twice,
# while both nodes rewrite the one members file), four used/ marks, and
# the replies are exactly one "subscribed", one welcome and one "used already" per
# token.  The members file is read through mount b, again while GlusterFS
# answers ESTALE for a file just renamed over on mount a.  SKIPs when this machine cannot run GlusterFS.
# An entry a node gives back (a step failed: logged, retried by the next
# scan, as a daemon would) is run again by a second pass of both nodes.
# CMDGL_TRIALS (default 2) overrides.
set -u
. "${top_srcdir:-$(dirname "$0")/..}/t/lib.sh"
. "${top_srcdir:-$(dirname "$0")/..}/t/process-lib.sh"
. "${top_srcdir:-$(dirname "$0")/..}/t/gluster-lib.sh"

pl_init
TRIALS=${CMDGL_TRIALS:-2}
T0=$(now)
mk_tmpdir
W=$T
gl_up "$T/gluster" || skip_all "$GL_WHY"
diag "GlusterFS mounts $GL_MNT_A and $GL_MNT_B ($GL_PROFILE caching)"
D=$PL_DOMAIN
for node in a b; do
    mnt=$GL_MNT_A
    [ $node = b ] && mnt=$GL_MNT_B
    printf 'node = "%s";\nspool = "%s/spool";\nlists_dir = "%s/lists";\nslices = 2;\nlog_file = "%s";\n' \
        $node "$mnt" "$mnt" "$T/mmq.log" >"$T/$node.conf"
done
mkdir -p "$GL_MNT_A/lists" || bail_out "mkdir on the volume failed"
"$MMQCTL" -c "$T/a.conf" init >"$T/init.out" 2>&1 || bail_out "mmqctl init: $(cat "$T/init.out")"
CONF=$T/a.conf
SPOOL=$GL_MNT_A/spool
LISTS=$GL_MNT_A/lists
pl_list dev 'owners = ["owner@example.org"];' 'max_autoresponses_per_day = 1000;'
seq -f 'm%02g@example.org' 1 10 >"$LISTS/dev.members"

# queue FROM LOCALPART [SUBJECT]: a command mail into in/ (through mount a)
queue() {
    printf 'From: %s\nTo: x@%s\nSubject: %s\nMessage-ID: <%s@example.net>\n\nyes\n' \
        "$1" "$D" "${3:-hello}" "$RANDOM$RANDOM$RANDOM" >"$W/mail"
    run_filter "$W/mail" -f "$1" -r "$2@$D" -- "${2%%+*}"
    [ "$RC" -eq 0 ] || bail_out "mmq-filter -r $2@$D exited $RC: $ERR"
}
# queue_in SLICE FROM LOCALPART [SUBJECT]: queue, again until the entry
# lands in that slice (of 2: the first hex digit of its name's digest part)
queue_in() {
    local s=$1 n
    shift
    for _ in $(seq 40); do
        queue "$@"
        # its name, from mmq-filter's log line (a find on the FUSE mount
        # would cost a second)
        n=$(sed -n 's/.* mmq-filter\[[0-9]*\]: \([0-9.]*+[0-9a-f]*\): .*/\1/p' "$T/mmq.log" | tail -n 1)
        case $n in
        ??????????????????[0-7]*) [ "$s" = 0 ] && return 0 ;;
        ??????????????????[89a-f]*) [ "$s" = 1 ] && return 0 ;;
        *) bail_out "no queue ID in mmq-filter's log line: $(tail -n 1 "$T/mmq.log")" ;;
        esac
        find "$SPOOL/in" -name "$n*" -delete
    done
    bail_out "no entry in slice $s after 40 tries"
}
# proc NODE [SLICES]: mmq-process -1 of that node; its log in $T/NODE.log
proc() {
    timeout 120 "$MMQ_PROCESS" -c "$T/$1.conf" ${2:+-s "$2"} -1 -e 2>>"$T/$1.log"
}
# members_b: the members file as node b reads it (again after ESTALE)
members_b() {
    for _ in $(seq 50); do
        cat "$GL_MNT_B/lists/dev.members" 2>/dev/null && return 0
        sleep 0.1
    done
    bail_out "cannot read the members file through mount b"
}
# replies: "RCPT OUTCOME" of every out/ entry, sorted
replies() {
    local f m
    pl_outs
    for f in "${OUTS[@]}"; do
        m=$(entry_message "$f" | tr -d '\r')
        case $m in
        *"Subject: Welcome to the list "*) echo "$(pl_rcpts "$f") welcome" ;;
        *"token was used already"*) echo "$(pl_rcpts "$f") used" ;;
        *" subscribed"*) echo "$(pl_rcpts "$f") subscribed" ;;
        *) echo "$(pl_rcpts "$f") other" ;;
        esac
    done | sort
}

for ((t = 1; t <= TRIALS; t++)); do
    A=()
    for k in 1 2 3; do A+=("x$t.$k@example.org"); done
    for a in "${A[@]}"; do queue "$a" dev-join; done
    proc a || bail_out "trial $t: mmq-process (the joins) failed: $(tail -n 3 "$T/a.log")"
    declare -A TOK=()
    pl_outs
    for f in "${OUTS[@]}"; do
        s=$(entry_message "$f" | tr -d '\r' | sed -n 's/^Subject: confirm \([0-9a-z]*\)$/\1/p')
        [ -n "$s" ] && TOK[$(pl_rcpts "$f")]=$s
    done
    [ "${#TOK[@]}" -eq 3 ] || bail_out "trial $t: ${#TOK[@]} confirmation requests, not 3"
    pl_clear_out
    for a in "${A[@]}"; do
        queue_in 0 "$a" "dev-confirm+${TOK[$a]}" "Re: confirm ${TOK[$a]}"
        queue_in 1 "$a" "dev-confirm+${TOK[$a]}" "Re: confirm ${TOK[$a]}"
    done
    # both nodes at the same instant (the one started first alternates)
    if ((t % 2)); then
        proc a 0 &
        pa=$!
        proc b 1 &
        pb=$!
    else
        proc b 1 &
        pb=$!
        proc a 0 &
        pa=$!
    fi
    wait "$pa"
    ra=$?
    wait "$pb"
    rb=$?
    tag="trial $t"
    if [ "$(count_files "$SPOOL/in")" -gt 0 ]; then
        diag "$tag: $(count_files "$SPOOL/in") entries given back: $(grep -h 'give\|retry\|cannot' "$T/a.log" "$T/b.log" | tail -n 2)"
        proc a 0 & pa2=$!
        proc b 1
        wait "$pa2"
    fi
    members_b >"$W/members.b"
    is "$ra $rb" "0 0" "$tag: mmq-process -1 -s 0 on node a and -s 1 on node b exit 0"
    # as node b sees the files
    got=$(for a in "${A[@]}"; do printf '%s ' "$(grep -cix -- "$a" "$W/members.b")"; done)
    is "$got" "1 1 1 " "$tag: each of the three is a member once (one token, one entry per node)"
    is "$(grep -c . "$W/members.b")" $((10 + 3 * t)) "$tag: no other line lost or doubled"
    is "$(count_files "$GL_MNT_B/spool/members/dev/used")" $((3 * t)) "$tag: one used/ mark per token"
    is "$(replies | tr '\n' ' ')" \
        "$(for a in "${A[@]}"; do printf '%s\n' "$a subscribed" "$a used" "$a welcome"; done | sort | tr '\n' ' ')" \
        "$tag: per token exactly one 'subscribed' reply, one 'used already' and one welcome"
    is "in=$(count_files "$SPOOL/in") bad=$(count_files "$SPOOL/bad")" "in=0 bad=0" "$tag: in/ drained, nothing in bad/"
    pl_clear_out
done
na=$(grep -c 'command confirm .*: .* subscribed' "$T/a.log")
nb=$(grep -c 'command confirm .*: .* subscribed' "$T/b.log")
diag "tokens used first by node a: $na, by node b: $nb; $TRIALS trials in $(elapsed_ms "$T0" "$(now)") ms"
done_testing
