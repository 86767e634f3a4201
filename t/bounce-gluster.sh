#!/bin/bash
# bounce-gluster: two nodes processing the bounces of one list at the same
# time on GlusterFS (one volume mounted twice through FUSE, node a on one
# mount, node b on the other), each mmq-bounce on its own leased slices of
# bounces/, the members' bounces spread over both: nothing lost (every
# bounce one event), every member disabled (bounce_score_threshold = 1),
# the index complete.  SKIPs when this machine cannot run GlusterFS.
set -u
. "${top_srcdir:-$(dirname "$0")/..}/t/lib.sh"
. "${top_srcdir:-$(dirname "$0")/..}/t/process-lib.sh"
. "${top_srcdir:-$(dirname "$0")/..}/t/bounce-lib.sh"
. "${top_srcdir:-$(dirname "$0")/..}/t/gluster-lib.sh"

pl_init
bl_init
mk_tmpdir
gl_up "$T/gluster" || skip_all "$GL_WHY"
diag "GlusterFS mounts $GL_MNT_A and $GL_MNT_B ($GL_PROFILE caching)"
N=${BG_MEMBERS:-40}
LISTS=$T/lists
mkdir -p "$LISTS"
cat >"$T/common.conf" <<CONF
lists_dir = "$LISTS";
slices = 8;
scan_interval = 1;
lease_time = 3;
lease_margin = 3;
nodes = (
  { name = "a"; bounce = "0-3"; standby = "4-7"; takeover_after = 8; },
  { name = "b"; bounce = "4-7"; standby = "0-3"; takeover_after = 8; }
);
CONF
for node in a b; do
    mnt=$GL_MNT_A
    [ $node = b ] && mnt=$GL_MNT_B
    printf 'node = "%s";\nspool = "%s/spool";\n@include "common.conf"\n' \
        $node "$mnt" >"$T/$node.conf"
done
"$MMQCTL" -c "$T/a.conf" init >/dev/null || bail_out "mmqctl init"
pl_list dev 'owners = ["owner@example.org"];' 'bounce_score_threshold = 1;'
pl_gen_members "$N" "$LISTS/dev.members"
CONF=$T/a.conf
for r in 1 2 3; do
    for i in $(seq 1 "$N"); do
        bl_bounce dev "$(printf 'm%06d@example.org' "$i")" 5.1.1 ||
            bail_out "mmq-filter"
    done
done
SPOOL=$GL_MNT_A/spool
is "$(count_files "$SPOOL/bounces")" $((3 * N)) "$((3 * N)) bounces queued"
"$MMQ_BOUNCE" -c "$T/a.conf" -e 2>"$T/a.log" &
pa=$!
at_exit kill_pid_b "$pa"
"$MMQ_BOUNCE" -c "$T/b.conf" -e 2>"$T/b.log" &
pb=$!
at_exit kill_pid_b "$pb"
for _ in $(seq 1 240); do
    [ "$(count_files "$GL_MNT_B/spool/bounces")" -eq 0 ] && break
    sleep 0.5
done
sleep 2 # the last steps of the last entries
kill -TERM "$pa" "$pb"
wait "$pa"
ra=$?
wait "$pb"
rb=$?
is "$ra $rb" "0 0" "both nodes stop cleanly on SIGTERM"
is "$(count_files "$SPOOL/bounces")" 0 "bounces/ drained"
na=$(grep -c 'VERP bounce applied' "$T/a.log")
nb=$(grep -c 'VERP bounce applied' "$T/b.log")
diag "node a applied $na bounces, node b $nb"
ok $([ "$na" -gt 0 ] && [ "$nb" -gt 0 ]; echo $?) "both nodes processed bounces"
is "$(find "$SPOOL/members/dev" -name '*.F.*' | wc -l)" $((3 * N)) \
    "every bounce recorded once"
"$MMQCTL" -c "$T/b.conf" members dev --json >"$T/m.json"
is "$(python3 -c '
import json,sys
m=json.load(open(sys.argv[1]))
print(len(m), sorted(set((x["state"], x["failed"]) for x in m)))' "$T/m.json")" \
    "$N [('disabled', 3)]" "every member disabled, with 3 failed bounces (as node b sees it)"
is "$(find "$SPOOL/members/dev/disabled" -type f | wc -l)" "$N" "the index holds every member"
d=$(find "$SPOOL/members/dev" -name '*.D.*' | wc -l)
diag "$d disable events for $N members (more only where both nodes decided at once)"
ok $([ "$d" -ge "$N" ]; echo $?) "a disable event for every member"
done_testing
