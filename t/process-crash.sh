#!/bin/bash
# process-crash: kill -9 of mmq-process while it expands one post to a
# 20,000-member list (recipients_per_entry = 100: 200 out/ entries), then a
# second mmq-process -1 to completion.  After each round every member is in
# exactly one out/ entry, in/ is empty, stage/ holds none of the post's
# names, nothing went to bad/ and tmp/ is clean.
#
# Kill points:
#  - random: kill -9 after a random delay of 0..X ms, X the wall time of a
#    clean run (the slower of two) measured here;
#  - forced: strace -e inject=SYSCALL:signal=KILL:when=N kills it on entering
#    the N-th renameat/unlinkat, which in a run are: 1 the claim of the in/
#    entry, 2..201 stage/ entries, 202 the rewrite marking "expanded 200",
#    203..402 publishing into out/; unlinkat 1 removes the in/ entry
#    (skipped when strace cannot trace here).
# Some rounds model the delivery agent racing the list stage: between the
# kill and the rerun, mmq-deliver -1 drains out/ into smtp-sink; then the
# members are counted at the sink plus what is left in out/.
#
# Last, with strace: the archive record and a rejection notice are not
# repeated by the rerun after a kill between them and the end of the post.
#
# CRASH_ROUNDS (default 22) random rounds, of which every fourth races.
set -u
. "${top_srcdir:-$(dirname "$0")/..}/t/lib.sh"
. "${top_srcdir:-$(dirname "$0")/..}/t/process-lib.sh"

pl_init
NMEMBERS=20000
PER=100
NENTRIES=$((NMEMBERS / PER))
ROUNDS=${CRASH_ROUNDS:-22}
T0=$(now)

mk_tmpdir
W=$T
mk_spool
pl_list dev 'posters = "anyone";' "recipients_per_entry = $PER;"
pl_gen_members "$NMEMBERS" "$LISTS/dev.members"
sort "$LISTS/dev.members" >"$W/members.sorted"
M=$W/msg
printf 'From: alice@example.org\nTo: dev@%s\nSubject: crash\nDate: Sun, 22 Nov 2026 10:00:00 +0000\nMessage-ID: <crash@example.org>\n\nbody\n' \
    "$PL_DOMAIN" >"$M"

HAVE_SINK=0
if [ -x "$MMQ_DELIVER" ] && pl_sink_start "$W/sink"; then
    HAVE_SINK=1
    pl_relay_conf "$SINK_PORT"
else
    diag "smtp-sink or mmq-deliver missing: no racing delivery rounds"
fi
HAVE_STRACE=0
if command -v strace >/dev/null 2>&1 &&
    strace -f -qq -o /dev/null -e trace=renameat true 2>/dev/null; then
    HAVE_STRACE=1
fi

# the mmq-process (or strace) running in the background, killed at exit
CUR_PID=
kill_cur() { kill_pid "$CUR_PID"; }
at_exit kill_cur

# out_rcpts: the recipients of every out/ entry, one a line
out_rcpts() {
    find "$SPOOL/out" -type f -print0 | xargs -0 -r awk '
        FNR == 1 { env = 1 }
        env && $0 == "" { env = 0; nextfile }
        env && /^rcpt / { print substr($0, 6) }'
}

# state: "stage=N out=N marked=yes|no" right after a kill
state() {
    local f marked=no
    f=$(find "$SPOOL/in" -type f | head -n 1)
    [ -n "$f" ] && grep -q '^expanded ' "$f" 2>/dev/null && marked=yes
    [ -z "$f" ] && marked=finished
    printf 'stage=%d out=%d in=%s' "$(count_files "$SPOOL/stage")" \
        "$(count_files "$SPOOL/out")" "$marked"
}

# verify NAME: the checks of a round (members, then the spool)
verify() {
    local name=$1 got=$W/got total dups missing unexpected
    {
        out_rcpts
        [ "$HAVE_SINK" -eq 1 ] && sink_rcpts "$W/sink"
    } >"$got"
    total=$(wc -l <"$got")
    sort "$got" >"$got.sorted"
    dups=$(uniq -d "$got.sorted" | wc -l)
    missing=$(sort -u "$got.sorted" | comm -23 "$W/members.sorted" - | wc -l)
    unexpected=$(sort -u "$got.sorted" | comm -13 "$W/members.sorted" - | wc -l)
    is "total=$total dups=$dups missing=$missing unexpected=$unexpected" \
        "total=$NMEMBERS dups=0 missing=0 unexpected=0" "$name: every member exactly once"
    is "in=$(count_files "$SPOOL/in") stage=$(count_files "$SPOOL/stage") bad=$(count_files "$SPOOL/bad") hold=$(count_files "$SPOOL/hold") tmp=$(count_files "$SPOOL/tmp")" \
        "in=0 stage=0 bad=0 hold=0 tmp=0" "$name: in/, stage/, bad/, hold/ and tmp/ empty"
    if [ "$_t_failed" -gt 0 ] && [ -z "${_shown:-}" ]; then
        _shown=1
        diag "$(tail -n 15 "$PLOG_ALL")"
    fi
}

ROUND=0
new_round() { # a new post each round: its own Message-ID, not a duplicate
    pl_clear_out
    [ "$HAVE_SINK" -eq 1 ] && rm -f "$W/sink"/dump.*
    ROUND=$((ROUND + 1))
    sed "s/^Message-ID: <crash@/Message-ID: <crash.$ROUND@/" "$W/msg" >"$W/msg.round"
    pl_post "$W/msg.round" -f alice@example.org dev || bail_out "mmq-filter refused the post"
    : >"$W/round.log"
}

# race: the delivery agent drains out/ before the rerun
race() {
    timeout 120 "$MMQ_DELIVER" -c "$CONF" -1 -e 2>>"$W/deliver.log"
    RACE_RC=$?
}

rerun() {
    pl_process
    [ "$PRC" -eq 0 ] || diag "rerun exited $PRC"
}

# --------------------------------------------------------- calibration
X=0
for i in 1 2; do
    new_round
    s=$(now)
    pl_process
    ms=$(elapsed_ms "$s" "$(now)")
    [ "$ms" -gt "$X" ] && X=$ms
    diag "clean run $i: $ms ms"
    is "$PRC/$(count_files "$SPOOL/out")" "0/$NENTRIES" "clean run $i: exits 0 with $NENTRIES out/ entries"
    verify "clean run $i"
done
diag "random kill delays: 0..$X ms"

# ------------------------------------------------------- random kills
phases=()
for ((r = 1; r <= ROUNDS; r++)); do
    new_round
    delay=$((RANDOM % (X + 1)))
    "$MMQ_PROCESS" -c "$CONF" -1 -e 2>>"$W/round.log" &
    pid=$!
    CUR_PID=$pid
    sleep "$(printf '%d.%03d' $((delay / 1000)) $((delay % 1000)))"
    kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    CUR_PID=
    st=$(state)
    racing=$((r % 4 == 0 && HAVE_SINK == 1))
    tag="random round $r (kill at $delay ms: $st)"
    phases+=("$st")
    if [ "$racing" -eq 1 ]; then
        race
        tag="$tag + racing delivery"
        [ "$RACE_RC" -eq 0 ] || diag "mmq-deliver exited $RACE_RC"
    fi
    rerun
    verify "$tag"
done

# ------------------------------------------------------ forced points
forced() { # forced NAME SYSCALL WHEN RACE
    local name=$1 sc=$2 when=$3 racing=$4 st
    new_round
    strace -f -qq -o /dev/null -e trace="$sc" -e inject="$sc:signal=KILL:when=$when" \
        "$MMQ_PROCESS" -c "$CONF" -1 -e 2>>"$W/round.log" &
    CUR_PID=$!
    wait $! 2>/dev/null # (no "Killed" notice from the shell)
    st=$(state)
    if [ "$racing" -eq 1 ] && [ "$HAVE_SINK" -eq 1 ]; then
        race
        name="$name + racing delivery"
    fi
    rerun
    verify "forced: $name ($st)"
}
if [ "$HAVE_STRACE" -eq 1 ]; then
    forced "before the claim" renameat 1 0
    # the duplicate mark (process/dedup.h): written and fsync()ed in tmp/
    # (fsync 1), linked (linkat 1), its tmp/ name removed (unlinkat 1),
    # its bucket fsync()ed (fsync 2); then staging begins
    forced "before the duplicate mark's link" linkat 1 0
    forced "after the duplicate mark, before its bucket fsync" fsync 2 0
    forced "before the first stage/ rename" renameat 2 0
    forced "in the middle of staging" renameat 101 0
    forced "before the last stage/ rename" renameat 201 0
    forced "before the stage/ fsync" fsync 203 0
    forced "before marking expanded" renameat 202 0
    forced "before the first publish" renameat 203 1
    forced "after 99 published" renameat 302 1
    forced "before the last publish" renameat 402 1
    forced "before removing the in/ entry" unlinkat 2 1
else
    skip "strace cannot trace here" 24
fi

# ------------------------------------- side effects are not repeated
# A post's other effects must not be repeated by the rerun either: the
# archive record (archive = true) when killed after archive() but before
# the mark, and the rejection notice when killed after the notice was
# queued but before the in/ entry was removed.
side() { # side NAME SYSCALL WHEN: one post, a kill, a rerun
    new_round
    strace -f -qq -o /dev/null -e trace="$2" -e inject="$2:signal=KILL:when=$3" \
        "$MMQ_PROCESS" -c "$CONF" -1 -e 2>>"$W/round.log" &
    CUR_PID=$!
    wait $! 2>/dev/null
    rerun
}
if [ "$HAVE_STRACE" -eq 1 ]; then
    pl_list dev 'posters = "anyone";' 'archive = true;' "recipients_per_entry = $PER;"
    side archive renameat 2
    is "$(grep -c '^From alice@example.org ' "$SPOOL/archive/dev.mbox" 2>/dev/null)" 1 \
        "killed after archiving, before the mark: one archive record after the rerun"
    pl_list dev 'others = "reject";'
    pl_members dev member@example.org
    printf 'From: stranger@example.net\nSubject: s\n\nbody\n' >"$M"
    side notice unlinkat 1
    is "$(out_rcpts | grep -c '^alice@example.org$')" 1 \
        "killed after queueing the rejection notice, before removing the post: one notice after the rerun"
else
    skip "strace cannot trace here" 2
fi

diag "phases hit by the random kills:"
diag "$(printf '%s\n' "${phases[@]}" | awk '
    /in=finished/ { print "finished before the kill"; next }
    /in=yes/ { print "marked, publishing"; next }
    /stage=0 / { print "before staging"; next }
    { print "staging" }' | sort | uniq -c)"
diag "total time: $(elapsed_ms "$T0" "$(now)") ms"
[ "$HAVE_SINK" -eq 1 ] && sink_stop
done_testing
