#!/bin/bash
# fsync-trace: every durable publish path fsyncs the directory it renamed
# into before it reports the entry done (issue 15 item 13).  A skipped
# directory fsync is invisible to every other test (only a power loss
# shows it), so this one watches the syscalls: each program runs under
# strace -ff -y, and t/fsync-check.py requires every rename into
# QUEUE/BB (or stage/) to be followed, before the process exits or the
# list stage removes its in/ entry, by an fsync of that directory.
#
# Paths covered: mmq-filter's commit (tmp -> in); the list stage's staging
# and publication (tmp -> stage -> out); mmq-deliver's progress rewrite
# (tmp -> out, a partly delivered entry), deferral (out -> deferred) and
# an unsafe entry moved aside (out -> bad); mmqctl hold, release, retry
# and requeue.
set -u
. "${top_srcdir:-$(dirname "$0")/..}/t/lib.sh"
. "${top_srcdir:-$(dirname "$0")/..}/t/process-lib.sh"
. "${top_srcdir:-$(dirname "$0")/..}/t/deliver-lib.sh"

pl_init
dl_init
command -v strace >/dev/null 2>&1 &&
    strace -f -qq -o /dev/null -e trace=fsync true 2>/dev/null ||
    skip_all "strace cannot trace here"
W=$T
CHECK=$top_srcdir/t/fsync-check.py
mkdir "$W/tr"

traced() { # traced NAME COMMAND...: COMMAND under strace, files $W/tr/NAME.PID
    # (LeakSanitizer cannot run under ptrace: off for the traced programs)
    ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" strace -ff -qq -y -o "$W/tr/$1" \
        -e trace=execve,renameat,renameat2,fsync,fdatasync,unlinkat,exit_group -- "${@:2}"
}

fault_start --reject4 'later@'
mk_spool
dl_conf
pl_list announce 'posters = "anyone";' 'recipients_per_entry = 2;'
pl_members announce a@example.org b@example.org later@example.org
printf 'From: p@example.org\nSubject: s\nMessage-ID: <fs@example.org>\n\nbody\n' >"$W/msg"

traced filter "$MMQ_FILTER" -c "$CONF" -f p@example.org announce <"$W/msg"
is "$?" 0 "mmq-filter (traced) exits 0"
traced process "$MMQ_PROCESS" -c "$CONF" -1 -e 2>"$W/process.log"
is "$?:$(count_files "$SPOOL/out")" "0:2" "mmq-process (traced): two out/ entries"
# an entry anyone could have written: moved aside to bad/
MSG=$W/msg
queue_mail p@example.org x@example.org
chmod 666 "$SPOOL/out/${QUEUED:18:2}/$QUEUED"
traced deliver timeout 60 "$MMQ_DELIVER" -c "$CONF" -1 -e 2>"$W/deliver.log"
is "$?" 0 "mmq-deliver (traced) exits 0"
is "$(count_files "$SPOOL/deferred"):$(count_files "$SPOOL/bad")" "1:1" \
    "later@ deferred (its entry rewritten first), the 666 entry in bad/"

ctl() { traced ctl "$MMQCTL" -c "$CONF" "$@" >"$W/ctl.out" 2>&1 || diag "mmqctl $* exited $?: $(cat "$W/ctl.out")"; }
D=$(find "$SPOOL/deferred" -type f -printf '%f\n')
ctl retry "$D"
ctl hold "$D"
ctl release "$D"
B=$(find "$SPOOL/bad" -type f -printf '%f\n')
chmod 640 "$SPOOL/bad/${B:18:2}/$B"
ctl requeue "${B%@*}"
is "$(count_files "$SPOOL/out"):$(count_files "$SPOOL/bad")" "2:0" "mmqctl retry, hold, release, requeue: done"

"${PY:-python3}" "$CHECK" "$SPOOL" "$W"/tr/* >"$W/check.out"
rc=$?
diag "$(cat "$W/check.out")"
is "$rc" 0 "every rename into a queue bucket or stage/ is followed by an fsync of that directory in time"
for k in tmp-\>in tmp-\>stage stage-\>out tmp-\>out out-\>deferred out-\>bad deferred-\>out out-\>hold hold-\>out bad-\>out; do
    check "the trace covers renames $k" grep -q "^renames $k [1-9]" "$W/check.out"
done

done_testing
