#!/bin/bash
# cluster-freeze: a node that is not dead but frozen (SIGSTOP: a stalled
# VM, a hung NFS client) loses its slices to the standby after the
# takeover time, and when it wakes up it must notice at once that its
# leases lapsed and start no work on them, then ask for them back and get
# them.  Mail posted while it was frozen is delivered by the standby;
# nothing is lost and nobody gets a post twice.  Node b runs two delivery
# agents, -s 0-3 (its standby slices) and -s 4-7 (its own).
set -u
. "${top_srcdir:-$(dirname "$0")/..}/t/lib.sh"
. "${top_srcdir:-$(dirname "$0")/..}/t/process-lib.sh"
. "${top_srcdir:-$(dirname "$0")/..}/t/cluster-lib.sh"

pl_init
mk_tmpdir
CL_MEMBERS=500
cl_setup "$T/spool" "$T/spool"
cl_start a
CL_SPLIT=1 cl_start b # b's slices shared out by two agents (-s 0-3, -s 4-7)
check "each node leases its own slices" cl_wait_holders deliver "$CL_HOME" 15

# freeze every process of node a (its delivery workers too)
frozen=("${CL_PIDS[a.process]}" "${CL_PIDS[a.deliver]// /}")
mapfile -t -O 2 frozen < <(pgrep -P "${CL_PIDS[a.deliver]// /}")
kill -STOP "${frozen[@]}"
for k in 1 2 3; do cl_post b "$k"; done
check "b takes over the frozen a's delivery slices" \
    cl_wait_holders deliver "$CL_ALL_B" 30
check "... and its list-stage slices" cl_wait_holders process "$CL_ALL_B" 30
check "posts made while a is frozen are delivered by b" cl_drained 30
kill -CONT "${frozen[@]}"
check "a wakes up, finds its leases lapsed and gets them back" \
    cl_wait_holders deliver "$CL_HOME" 30
check "a said its lease had lapsed or was lost" \
    grep -Eq 'lease deliver [0-3]: (expired before it was renewed|lost)' \
    "$T/a.deliver.log"
for k in 4 5; do cl_post a "$k"; done
check "posts after the wake-up are delivered" cl_drained 30
cl_tally 5
is "$CL_MISSING $CL_DUPS" "0 0" "no member misses a post or gets one twice"
cl_term a
cl_term b
is "$CL_RC" "0 0" "clean stop"
done_testing
