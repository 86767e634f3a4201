#!/bin/bash
# cluster-partition: node a is cut off from the shared filesystem while it
# works (its GlusterFS client is killed: every access through its mount
# fails with ENOTCONN) but its processes live on and the relay still
# answers it.  Node a must stop starting work once its lease runs out,
# node b must take over a's slices, and every member must get every post:
# nothing is lost.  Deliveries that a completed but could not record are
# sent again by b (a duplicate the design allows); a stops each session
# at the first outcome it cannot record, which bounds them.  SKIPs only
# when this machine cannot run GlusterFS over FUSE, saying why.
set -u
. "${top_srcdir:-$(dirname "$0")/..}/t/lib.sh"
. "${top_srcdir:-$(dirname "$0")/..}/t/process-lib.sh"
. "${top_srcdir:-$(dirname "$0")/..}/t/cluster-lib.sh"
. "${top_srcdir:-$(dirname "$0")/..}/t/gluster-lib.sh"

pl_init
mk_tmpdir
gl_up "$T/gluster" || skip_all "$GL_WHY"
CL_LEASE_TIME=3 CL_MARGIN=3 CL_TAKEOVER=8
cl_setup "$GL_MNT_A/spool" "$GL_MNT_B/spool"
CL_SPOOL=$GL_MNT_B/spool # a's view is about to die
POSTS=12

cl_start a
cl_start b
check "each node leases its own slices" cl_wait_holders deliver "$CL_HOME" 30
for ((k = 1; k <= POSTS / 2; k++)); do cl_post a "$k"; done
# cut a off while its workers hold entries (up to 5 s to see one)
for ((i = 0; i < 500; i++)); do
    [ -n "$(find "$CL_SPOOL/out" -name '*#a#*' -print -quit)" ] && break
    sleep 0.01
done
cut_at=$(now)
kill -KILL "$(cat "$GL_RUN/mnt-a.pid")"
for ((k = POSTS / 2 + 1; k <= POSTS; k++)); do
    cl_post b "$k"
    sleep 0.1
done

CL_VIEW=b # look at the spool through b's mount from now on
check "node b takes over the cut-off node's delivery slices" \
    cl_wait_holders deliver "$CL_ALL_B" 40
check "... and its list-stage slices" cl_wait_holders process "$CL_ALL_B" 40
diag "takeover complete $(elapsed_ms "$cut_at" "$(now)") ms after the cut"
check "every post is processed and delivered" cl_drained 120
cl_tally "$POSTS"
diag "deliveries: $CL_TOTAL for $POSTS posts x $CL_MEMBERS members," \
    "$CL_MISSING missing, $CL_DUPS duplicates"
is "$CL_MISSING" 0 "no member misses a post"
test "$CL_DUPS" -le 1000
ok $? "duplicates ($CL_DUPS) bounded (a's sessions stop at the first unrecorded outcome)"
grep -q 'lease deliver [0-3]: \(expired before it was renewed\|lost\)' \
    "$T/a.deliver.log"
ok $? "node a logged that its leases lapsed"
kill -0 "${CL_PIDS[a.deliver]// /}" 2>/dev/null
ok $? "node a's delivery agent is still running (it waits, it does not crash)"
ps -o pcpu= -p "${CL_PIDS[a.deliver]// /}" "${CL_PIDS[a.process]}" >"$T/cpu"
awk '{ s += $1 } END { exit !(s < 50) }' "$T/cpu"
ok $? "... without spinning ($(tr '\n' ' ' <"$T/cpu")% CPU)"
diag "$(grep -h 'stopping: the spool cannot be written' "$T/a.deliver.log" | head -2)"
cl_kill9 a
cl_term b
is "$CL_RC" "0 0" "node b stops cleanly"
done_testing
