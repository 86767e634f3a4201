#!/bin/bash
# cluster-local: two nodes, a and b, share one spool on the local file
# system, each running its list stage and delivery agent for its own
# slices (a: 0-3, b: 4-7) and standing by for the other's.  In the middle
# of a stream of posts to a 2,000-member list every agent of node a is
# killed with SIGKILL; node b must take over a's slices of both stages
# within the takeover time, restore what a left claimed, and at the sink
# every member must have every post at least once, with duplicates no more
# than the transactions a had in flight (2 connections x 50 recipients).
# When a comes back it gets its slices back, and a SIGTERM releases every
# lease.  The same scenario runs on GlusterFS in t/cluster-gluster.sh.
set -u
. "${top_srcdir:-$(dirname "$0")/..}/t/lib.sh"
. "${top_srcdir:-$(dirname "$0")/..}/t/process-lib.sh"
. "${top_srcdir:-$(dirname "$0")/..}/t/cluster-lib.sh"

pl_init
mk_tmpdir
cl_setup "$T/spool" "$T/spool"
. "${top_srcdir:-$(dirname "$0")/..}/t/cluster-scenario.sh"
