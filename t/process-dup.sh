#!/bin/bash
# process-dup: the whole-list duplicate (issue 15 item 12).  mmq-filter is
# killed after its durable commit, on entering exit_group (strace's
# syscall fault injection): the MTA sees a failure and delivers the same
# message again, as Postfix and Exim do.  The list stage must expand the
# post once, and log the second copy as a duplicate.
#
#   1  killed filter, re-delivery: one expansion, "a duplicate of" logged
#   2  the same Message-ID with another body, or to another list: not a
#      duplicate
#   3  mmq-process killed after its mark, before staging: the rerun finds
#      its own mark and expands the post (once)
#   4  a mark older than duplicate_window does not count (and is renewed);
#      duplicate_window = 0 turns the check off
#   5  two list stages on disjoint slices, 20 posts queued twice each:
#      every post expanded exactly once
set -u
. "${top_srcdir:-$(dirname "$0")/..}/t/lib.sh"
. "${top_srcdir:-$(dirname "$0")/..}/t/process-lib.sh"

pl_init
command -v strace >/dev/null 2>&1 &&
    strace -f -qq -o /dev/null -e trace=exit_group true 2>/dev/null ||
    skip_all "strace cannot trace here"
mk_tmpdir
W=$T

setup() {
    mk_spool "$@"
    pl_list dev 'posters = "anyone";'
    pl_list announce 'posters = "anyone";'
    pl_members dev m1@example.org m2@example.org m3@example.org
    pl_members announce m1@example.org m2@example.org m3@example.org
}
msg() { # msg FILE MESSAGE-ID BODY
    printf 'From: a@example.org\nSubject: s\nMessage-ID: <%s>\n\n%s\n' "$2" "$3" >"$1"
}
# the recipients of every out/ entry, sorted, space-separated
rcpts() {
    pl_outs
    [ "${#OUTS[@]}" -gt 0 ] || return 0
    pl_rcpts "${OUTS[@]}" | sort | tr '\n' ' '
}
killed_filter() { # killed_filter INPUT ARG...: mmq-filter, killed at its exit
    local input=$1
    shift
    strace -f -qq -o /dev/null -e trace=exit_group -e inject=exit_group:signal=KILL \
        "$MMQ_FILTER" -c "$CONF" "$@" <"$input" >/dev/null 2>&1
}
ALL="m1@example.org m2@example.org m3@example.org "

# ------------------------------------------------------------------ 1
setup
msg "$W/m" "dup1@example.org" "the body"
killed_filter "$W/m" -f a@example.org dev
is "$?:$(count_files "$SPOOL/in")" "137:1" "mmq-filter killed on entering exit_group: the entry is committed"
pl_post "$W/m" -f a@example.org dev || bail_out "mmq-filter refused the re-delivery"
is "$(count_files "$SPOOL/in")" 2 "the MTA's re-delivery: a second in/ entry"
pl_process
is "$PRC:$(rcpts)" "0:$ALL" "the post is expanded once: every member once"
is "$(count_files "$SPOOL/in")" 0 "both in/ entries are finished"
check "the second copy is logged as a duplicate" \
    grep -q "discarded: a duplicate of [0-9.+a-f]* (Message-ID <dup1@example.org>" "$PLOG"
MARK=$(find "$SPOOL/dup" -type f)
is "$(wc -l <<<"$MARK")" 1 "one mark in dup/"

# ------------------------------------------------------------------ 2
pl_clear_out
msg "$W/m2" "dup1@example.org" "another body"
pl_post "$W/m2" -f a@example.org dev || bail_out "mmq-filter refused a post"
pl_post "$W/m" -f a@example.org announce || bail_out "mmq-filter refused a post"
pl_process
is "$(rcpts)" "m1@example.org m1@example.org m2@example.org m2@example.org m3@example.org m3@example.org " \
    "same Message-ID, another body; same message, another list: both expanded"
check "neither is called a duplicate" test "$(grep -c duplicate "$PLOG")" -eq 0

# ------------------------------------------------------------------ 3
setup
msg "$W/m3" "dup3@example.org" "crash"
pl_post "$W/m3" -f a@example.org dev || bail_out "mmq-filter refused a post"
# renameat 1 is the claim, 2 the first staged out/ entry: the mark is made
# between them
strace -f -qq -o /dev/null -e trace=renameat -e inject=renameat:signal=KILL:when=2 \
    "$MMQ_PROCESS" -c "$CONF" -1 -e 2>"$W/crash.log"
is "$?:$(find "$SPOOL/dup" -type f | wc -l):$(rcpts)" "137:1:" \
    "mmq-process killed after its mark, before staging: marked, nothing in out/"
pl_process
is "$PRC:$(rcpts)" "0:$ALL" "the rerun finds its own mark and expands the post once"
check "and does not call it a duplicate" test "$(grep -c duplicate "$PLOG")" -eq 0

# ------------------------------------------------------------------ 4
pl_clear_out
MARK=$(find "$SPOOL/dup" -type f)
touch -d '4 days ago' "$MARK"
pl_post "$W/m3" -f a@example.org dev || bail_out "mmq-filter refused a post"
pl_process
is "$(rcpts)" "$ALL" "a mark older than duplicate_window (3 days): the copy is a new post"
check "the mark is renewed" test "$(find "$SPOOL/dup" -type f -mmin -1 | wc -l)" -eq 1
pl_clear_out
pl_post "$W/m3" -f a@example.org dev || bail_out "mmq-filter refused a post"
pl_process
is "$(rcpts)" "" "and counts again for the next copy"
setup "duplicate_window = 0;"
pl_post "$W/m3" -f a@example.org dev || bail_out "mmq-filter refused a post"
pl_post "$W/m3" -f a@example.org dev || bail_out "mmq-filter refused a post"
pl_process
is "$(rcpts)" "m1@example.org m1@example.org m2@example.org m2@example.org m3@example.org m3@example.org " \
    "duplicate_window = 0: no suppression"

# ------------------------------------------------------------------ 5
setup
for i in $(seq 20); do
    msg "$W/r$i" "race$i@example.org" "race $i"
    pl_post "$W/r$i" -f a@example.org dev || bail_out "mmq-filter refused a post"
    pl_post "$W/r$i" -f a@example.org dev || bail_out "mmq-filter refused a post"
done
timeout 30 "$MMQ_PROCESS" -c "$CONF" -1 -e -s 0-7 2>"$W/a.log" &
pa=$!
timeout 30 "$MMQ_PROCESS" -c "$CONF" -1 -e -s 8-15 2>"$W/b.log" &
pb=$!
wait "$pa"
ra=$?
wait "$pb"
rb=$?
is "$ra:$rb:$(count_files "$SPOOL/in")" "0:0:0" "two list stages on disjoint slices: both exit, in/ empty"
is "$(rcpts | wc -w)" 60 "20 posts queued twice: 60 deliveries (20 x 3 members), not 120"
is "$(cat "$W/a.log" "$W/b.log" | grep -c 'a duplicate of')" 20 "20 duplicates logged"

done_testing
