#!/bin/bash
# cluster-skew: the nodes' clocks disagree by hours and nothing changes.
# Leases never compare two nodes' clocks (lease.h): the holder counts on
# its own monotonic clock, an observer times how long the heartbeat has
# not changed on its own.  Node b runs under libfaketime three hours
# ahead, then node a comes back three hours behind: b must not take a
# live a's slices (however old a's heartbeats look by b's clock), must
# take them within the takeover time once a is killed, and must hand them
# back to the restarted a.  SKIPs when libfaketime is not installed.
set -u
. "${top_srcdir:-$(dirname "$0")/..}/t/lib.sh"
. "${top_srcdir:-$(dirname "$0")/..}/t/process-lib.sh"
. "${top_srcdir:-$(dirname "$0")/..}/t/cluster-lib.sh"

FT=
for f in /usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1 \
    /usr/lib/*/faketime/libfaketime.so.1; do
    [ -r "$f" ] && FT=$f && break
done
[ -n "$FT" ] || skip_all "libfaketime is not installed (Debian package libfaketime)"
pl_init
mk_tmpdir
CL_MEMBERS=200
cl_setup "$T/spool" "$T/spool"
# ASan insists on coming first among preloaded libraries
ASAN="ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0"
AHEAD=(LD_PRELOAD="$FT" FAKETIME=+3h "$ASAN")
BEHIND=(LD_PRELOAD="$FT" FAKETIME=-3h "$ASAN")

cl_start a
cl_start b "${AHEAD[@]}"
check "each node leases its own slices" cl_wait_holders deliver "$CL_HOME" 15
lag=$(LD_PRELOAD=$FT FAKETIME=+3h date +%s)
lag=$((lag - $(date +%s)))
diag "node b's clock is $lag s ahead of node a's"
test "$lag" -ge 10000
ok $? "libfaketime moves node b's clock (by $lag s)"

cl_post a 1 && cl_post b 2
check "posts are delivered" cl_drained 30
sleep $((CL_TAKEOVER * 3))
is "$(cl_holders deliver) $(cl_holders process)" "$CL_HOME $CL_HOME" \
    "after 3 x takeover_after b has taken nothing from a live a"
is "$(grep -c 'acquired' "$T/b.deliver.log")" 4 \
    "b acquired only its own 4 delivery slices"

cl_kill9 a
killed_at=$(now)
check "b takes over the dead a's slices" \
    cl_wait_holders deliver "$CL_ALL_B" 30
took=$(elapsed_ms "$killed_at" "$(now)")
test "$took" -ge $((CL_TAKEOVER * 1000 - 500)) && test "$took" -lt 12000
ok $? "... not before takeover_after and within 12 s ($took ms)"
cl_post b 3
check "posts are delivered by b alone" cl_drained 30

cl_start a "${BEHIND[@]}"
check "a, now 6 hours behind b, gets its slices back" \
    cl_wait_holders deliver "$CL_HOME" 30
cl_post a 4
check "posts are delivered" cl_drained 30
cl_tally 4
is "$CL_MISSING" 0 "no member misses a post"
cl_term a
cl_term b
is "$CL_RC" "0 0" "clean stop"
done_testing
