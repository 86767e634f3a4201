#!/bin/bash
# cluster-gluster: the scenario of t/cluster-local.sh (kill -9 of node a in
# the middle of a stream of posts to a 2,000-member list, takeover by node
# b, nothing lost, duplicates bounded, hand-back) on a real distributed
# file system: GlusterFS, one volume mounted twice through FUSE, node a on
# one mount and node b on the other, with GlusterFS's shipped caching.
# SKIPs only when this machine cannot mount FUSE or run GlusterFS, saying
# why; CI installs GlusterFS (scripts/deps.sh) so that it runs there.
set -u
. "${top_srcdir:-$(dirname "$0")/..}/t/lib.sh"
. "${top_srcdir:-$(dirname "$0")/..}/t/process-lib.sh"
. "${top_srcdir:-$(dirname "$0")/..}/t/cluster-lib.sh"
. "${top_srcdir:-$(dirname "$0")/..}/t/gluster-lib.sh"

pl_init
mk_tmpdir
gl_up "$T/gluster" || skip_all "$GL_WHY"
diag "GlusterFS volume at $GL_ADDR, mounts $GL_MNT_A and $GL_MNT_B ($GL_PROFILE caching)"
# a second of staleness between the mounts: leave the leases room for it
CL_LEASE_TIME=3 CL_MARGIN=3 CL_TAKEOVER=8
cl_setup "$GL_MNT_A/spool" "$GL_MNT_B/spool"
CL_TAKEOVER_MAX=20000
. "${top_srcdir:-$(dirname "$0")/..}/t/cluster-scenario.sh"
