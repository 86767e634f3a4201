#!/bin/bash
# t/log-file.sh - logs that land somewhere: the log_file setting (syslog
# format, appended by every program, mmq-filter included), its reopening
# and the daemons' configuration reload on SIGHUP, -e lines in the same
# format, the warning of a daemon that nobody hears, and -V/--version.
. "$top_srcdir/t/lib.sh"
. "$top_srcdir/t/process-lib.sh"
pl_init

# "Mmm dd hh:mm:ss host program[pid]: "
STAMP='^[A-Z][a-z][a-z] [ 0-9][0-9] [0-9][0-9]:[0-9][0-9]:[0-9][0-9] [^ ]+ '

# -V and --version: "program (mmq) VERSION" on stdout, exit 0
for p in "$MMQ_FILTER" "$MMQ_PROCESS" "$MMQ_DELIVER" "$MMQ_BOUNCE" "$MMQCTL"; do
    n=${p##*/}
    for o in -V --version; do
        out=$("$p" "$o" 2>&1)
        rc=$?
        [[ $rc == 0 && $out =~ ^$n\ \(mmq\)\ [0-9]+\.[0-9]+ ]]
        ok $? "$n $o: '$out', exit $rc"
    done
done

mk_spool
LOGF=$T/mmq.log
write_conf "log_file = \"$LOGF\";"
pl_list announce
pl_members announce bob@example.org
printf 'From: a@example.org\nSubject: x\n\nbody\n' >"$T/msg"

# mmq-filter, run without a terminal as the MTA runs it: its line is in the
# file, with the MTA's queue ID beside ours
pl_post "$T/msg" -f a@example.org -q 4XyZ1k2Lmnz9 announce </dev/null
qid=${IN_NAME//+/\\+}
grep -Eq "${STAMP}mmq-filter\[[0-9]+\]: $qid: mta_queue_id=4XyZ1k2Lmnz9 list=announce role=post " "$LOGF"
ok $? "mmq-filter appends its line to log_file in syslog format, with the MTA's queue ID"
diag "$(cat "$LOGF")"
is "$(entry_field "$SPOOL/in/"*/"$IN_NAME" mta-queue-id)" 4XyZ1k2Lmnz9 \
    "the MTA's queue ID is recorded in the envelope"
is "$ERR" "" "mmq-filter says nothing on stderr (the MTA would put it in a DSN)"
run_filter "$T/msg" -q 5AbC9 nosuch </dev/null
grep -Eq "${STAMP}mmq-filter\[[0-9]+\]: error: mta_queue_id=5AbC9: list nosuch: no such list in .*; exit 67" "$LOGF"
ok $? "mmq-filter: a refusal names the MTA's queue ID"

# mmq-process -e: stderr lines in the same format
pl_process
grep -Eq "${STAMP}mmq-process\[[0-9]+\]: $qid: " "$PLOG"
ok $? "-e: stderr lines carry timestamp, host and pid"
grep -Eq "${STAMP}mmq-process\[[0-9]+\]: $qid: " "$LOGF"
ok $? "mmq-process appends to log_file too"

# daemons: rotation (move the file away, SIGHUP) and reload
"$MMQ_PROCESS" -c "$CONF" 2>"$T/p.err" &
PPID1=$!
at_exit kill_pid "$PPID1"
"$MMQ_DELIVER" -c "$CONF" 2>"$T/d.err" &
DPID=$!
at_exit kill_pid "$DPID"
"$MMQ_BOUNCE" -c "$CONF" 2>"$T/b.err" &
BPID=$!
at_exit kill_pid "$BPID"
wait_log() { # wait_log FILE PATTERN: up to 10 s
    local i
    for ((i = 0; i < 100; i++)); do
        grep -Eq "$2" "$1" 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}
wait_log "$LOGF" "mmq-process\[$PPID1\]: processing slices"
ok $? "mmq-process logs its start to log_file"
wait_log "$LOGF" "mmq-deliver\[$DPID\]: delivering slices"
ok $? "mmq-deliver logs its start to log_file"
wait_log "$LOGF" "mmq-bounce\[$BPID\]: processing slices"
ok $? "mmq-bounce logs its start to log_file"
mv "$LOGF" "$LOGF.1"
kill -HUP "$PPID1" "$DPID" "$BPID"
wait_log "$LOGF" "mmq-process\[$PPID1\]: SIGHUP: configuration reloaded"
ok $? "mmq-process: after SIGHUP, the moved log_file is created anew"
wait_log "$LOGF" "mmq-deliver\[$DPID\]: configuration reloaded"
ok $? "mmq-deliver: after SIGHUP, the moved log_file is created anew"
wait_log "$LOGF" "mmq-bounce\[$BPID\]: SIGHUP: configuration re-read"
ok $? "mmq-bounce: after SIGHUP, the moved log_file is created anew"
LOGB=$T/other.log
write_conf "log_file = \"$LOGB\";"
kill -HUP "$PPID1"
wait_log "$LOGB" "mmq-process\[$PPID1\]: SIGHUP: configuration reloaded"
ok $? "mmq-process: SIGHUP re-reads the configuration (a new log_file is taken)"

# no syslog daemon and no log_file: a daemon says so once on stderr, and
# its fatal error is not silent
if python3 -c 'import socket,sys
s=socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
try: s.connect("/dev/log")
except OSError: sys.exit(1)' 2>/dev/null; then
    skip "a syslog daemon listens on /dev/log here" 4
else
    write_conf
    timeout 10 "$MMQ_PROCESS" -c "$CONF" 2>"$T/second.err" </dev/null
    rc=$?
    is "$rc" 75 "a second mmq-process on the same slices exits 75"
    is "$(grep -c 'no syslog daemon listens on /dev/log and no log_file is set' "$T/second.err")" 1 \
        "it says once on stderr that nothing would be logged"
    grep -q 'fatal: .*slice' "$T/second.err"
    ok $? "its fatal error is on stderr: $(tail -1 "$T/second.err")"
    printf 'slices = 0;\n' >"$T/bad.conf"
    timeout 10 "$MMQ_DELIVER" -c "$T/bad.conf" 2>"$T/bad.err" </dev/null
    rc=$?
    grep -q 'fatal: .*bad.conf:1: slices = 0 is out of range' "$T/bad.err"
    ok $? "a configuration that does not load: exit $rc, the fatal error on stderr"
fi
kill -TERM "$PPID1" "$DPID" "$BPID"
wait "$PPID1" "$DPID" "$BPID"
done_testing
