#!/bin/bash
# spool-hostile: things in the spool and the list files that mmq did not
# write (issue 15, items 1-4 and 7).  Each must end in a clear log line
# and a bounded state, never in a retry loop, a blocked runner or a lost
# post.
#
#   1  a symlink, a FIFO and a world-writable (or foreign) file in an in/
#      bucket: mmq-process -1 moves each to bad/ once and exits
#   2  a FIFO in out/: mmq-deliver -1 moves it to bad/ and exits
#   3  a FIFO as a list's members file: that list's post stays in in/
#      ("FILE: not a regular file"), the other list's post is delivered
#   4  members = "/dev/zero", and a members file with NUL bytes: the post
#      stays in in/
#   7  a world-writable bucket: refused by mmq-filter and mmq-process,
#      reported by mmqctl check; a world-writable list file: refused,
#      reported by mmqctl check; a world-writable mmq.conf: refused
#   8  subject_prefix on a Subject folded over 10,001 lines: still folded,
#      no line over 998 bytes, unfolding gives the prefix and the original;
#      a long first line is folded after the prefix; a NUL is kept
set -u
. "${top_srcdir:-$(dirname "$0")/..}/t/lib.sh"
. "${top_srcdir:-$(dirname "$0")/..}/t/process-lib.sh"

pl_init
mk_tmpdir
W=$T
printf 'From: a@example.org\nSubject: hi\nMessage-ID: <h1@example.org>\n\nbody\n' >"$W/msg"

qstate() {
    printf 'in=%d out=%d bad=%d' "$(count_files "$SPOOL/in")" \
        "$(count_files "$SPOOL/out")" "$(find "$SPOOL/bad" -mindepth 2 ! -type d | wc -l)"
}

# ------------------------------------------------------------------ 1
mk_spool
pl_list dev 'posters = "anyone";'
pl_members dev m@example.org
N1=1796284700.000001+00aa000000000000000000000000000000000001
N2=1796284700.000002+00aa000000000000000000000000000000000002
N3=1796284700.000003+00aa000000000000000000000000000000000003
N4=1796284700.000004+00aa000000000000000000000000000000000004
ln -s /etc/passwd "$SPOOL/in/00/$N1"
mkfifo "$SPOOL/in/00/$N2"
pl_post "$W/msg" -f a@example.org dev || bail_out "mmq-filter refused a test message"
REAL=$SPOOL/in/${IN_NAME:18:2}/$IN_NAME
cp -p "$REAL" "$SPOOL/in/00/$N3"
chmod 666 "$SPOOL/in/00/$N3"
if is_root; then
    cp -p "$REAL" "$SPOOL/in/00/$N4"
    chown nobody "$SPOOL/in/00/$N4"
fi
rm -f "$REAL"
cp -p /etc/passwd "$W/passwd.before"
PL_TIMEOUT=10 pl_process
is "$PRC" 0 "symlink/FIFO/666 in in/: mmq-process -1 exits 0 (not a retry loop)"
check "symlink in in/: moved to bad/ as a link" test -L "$SPOOL/bad/00/$N1@in"
check "FIFO in in/: moved to bad/" test -p "$SPOOL/bad/00/$N2@in"
check "world-writable entry in in/: moved to bad/" test -f "$SPOOL/bad/00/$N3@in"
if is_root; then
    check "entry of another user in in/: moved to bad/" test -f "$SPOOL/bad/00/$N4@in"
else
    skip "an entry of another user needs root to make" 1
fi
is "$(count_files "$SPOOL/out")" 0 "none of them was expanded"
check "the symlink's target is untouched" cmp -s /etc/passwd "$W/passwd.before"
n=$(wc -l <"$PLOG")
check "a few log lines, not thousands ($n)" test "$n" -le 12
check "the symlink: logged as such" grep -q "$N1.*a symbolic link: moved to bad/" "$PLOG"
check "the FIFO: logged as not a regular file" grep -q "$N2.*not a regular file.*moved to bad/" "$PLOG"
check "the 666 entry: logged as world-writable" grep -q "$N3.*world-writable.*moved to bad/" "$PLOG"
"$MMQCTL" -c "$CONF" check --no-agents >"$W/check1" 2>&1
check "mmqctl check: the FIFO in bad/ is reported" grep -q "bad/00/$N2@in: not a regular file" "$W/check1"
check "mmqctl check: the 666 entry in bad/ is reported" grep -q "bad/00/$N3@in: mode 0666: world-writable" "$W/check1"

# ------------------------------------------------------------------ 2
mk_spool "relay_port = 9;" "connections = 2;"
mkfifo "$SPOOL/out/00/$N2"
timeout 10 "$MMQ_DELIVER" -c "$CONF" -1 -e 2>"$W/deliver.log"
rc=$?
is "$rc" 0 "FIFO in out/: mmq-deliver -1 exits 0 (no worker per retry)"
check "FIFO in out/: moved to bad/" test -p "$SPOOL/bad/00/$N2@out"
n=$(grep -c "$N2" "$W/deliver.log")
is "$n" 1 "FIFO in out/: logged once"

# ------------------------------------------------------------------ 3, 4
mk_spool
pl_list dev 'posters = "anyone";'
pl_members dev m@example.org
mkfifo "$LISTS/fifo.members"
pl_list fifo 'posters = "anyone";'
pl_list zero 'posters = "anyone";' 'members = "/dev/zero";'
pl_list nul 'posters = "anyone";'
printf 'm@example.org\n\0\0\0\n' >"$LISTS/nul.members"
for l in fifo zero nul dev; do
    pl_post "$W/msg" -f a@example.org "$l" || bail_out "mmq-filter refused a post to $l"
done
PL_TIMEOUT=10 pl_process
is "$PRC" 0 "FIFO, device and binary members files: mmq-process -1 exits 0 (not blocked in open)"
is "$(qstate)" "in=3 out=1 bad=0" "the three posts stay in in/, the post to dev is expanded"
check "FIFO members: file: reason" grep -q "members: .*fifo.members: not a regular file" "$PLOG"
check "/dev/zero members: file: reason" grep -q "members: /dev/zero: not a regular file" "$PLOG"
check "NUL bytes in members: file: reason" grep -q "nul.members: a binary file (NUL bytes)" "$PLOG"

# ------------------------------------------------------------------ 7
mk_spool
pl_list dev 'posters = "anyone";'
pl_members dev m@example.org
pl_post "$W/msg" -f a@example.org dev || bail_out "mmq-filter refused a test message"
B=$SPOOL/in/${IN_NAME:18:2}
chmod 2777 "$B"
PL_TIMEOUT=10 pl_process
is "$PRC:$(qstate)" "75:in=1 out=0 bad=0" "world-writable bucket: mmq-process refuses to work on in/ (75)"
check "world-writable bucket: logged" grep -q "in/${IN_NAME:18:2}: world-writable: refusing an unsafe spool" "$PLOG"
"$MMQCTL" -c "$CONF" check --no-agents >"$W/check7" 2>&1
check "world-writable bucket: mmqctl check reports it" grep -q "in/${IN_NAME:18:2}/: mode 2777" "$W/check7"
chmod 2770 "$B"
for b in "$SPOOL"/in/??; do chmod 2777 "$b"; done
run_filter "$W/msg" -f a@example.org dev
is "$RC" 75 "world-writable buckets: mmq-filter refuses to commit (75)"
starts_with "$OUT" "4.3.0 cannot queue the message" "world-writable buckets: mmq-filter says why to the MTA"
for b in "$SPOOL"/in/??; do chmod 2770 "$b"; done
is "$(count_files "$SPOOL/in")" 1 "world-writable buckets: nothing was committed"

chmod o+w "$LISTS/dev.conf"
PL_TIMEOUT=10 pl_process
is "$PRC:$(qstate)" "0:in=1 out=0 bad=0" "world-writable list file: the post stays in in/"
check "world-writable list file: file: reason" grep -q "dev.conf: world-writable (mode 0646)" "$PLOG"
"$MMQCTL" -c "$CONF" check --no-agents >"$W/check7b" 2>&1
check "world-writable list file: mmqctl check reports it" grep -q "dev.conf: mode 0646: writable by anyone" "$W/check7b"
chmod o-w "$LISTS/dev.conf"
chmod o+w "$LISTS/dev.members"
PL_TIMEOUT=10 pl_process
check "world-writable members file: refused" grep -q "dev.members: world-writable" "$PLOG"
chmod o-w "$LISTS/dev.members"
chmod g+w "$LISTS/dev.conf"
"$MMQCTL" -c "$CONF" check --no-agents >"$W/check7c" 2>&1
check "group-writable list file: a note in mmqctl check" grep -q "dev.conf: mode 0664: writable by group" "$W/check7c"
chmod g-w "$LISTS/dev.conf"
pl_process
is "$(qstate)" "in=0 out=1 bad=0" "once fixed, the post is expanded"
chmod o+w "$CONF"
pl_process
is "$PRC" 78 "world-writable mmq.conf: mmq-process refuses to start (78)"
check "world-writable mmq.conf: says so" grep -q "mmq.conf: world-writable" "$PLOG"
chmod o-w "$CONF"

# ------------------------------------------------------------------ 8
mk_spool
pl_list dev 'posters = "anyone";' 'subject_prefix = "[dev]";'
pl_members dev m@example.org
{
    printf 'From: a@example.org\r\nSubject: start'
    for ((i = 0; i < 10000; i++)); do printf '\r\n word%05d and more' "$i"; done
    printf '\r\nMessage-ID: <fold@example.org>\r\n\r\nbody\r\n'
} >"$W/folded"
pl_post "$W/folded" -f a@example.org dev || bail_out "mmq-filter refused the folded message"
pl_process
pl_outs
pl_msg "${OUTS[0]}" "$W/folded.out"
longest=$(awk '{ if (length($0) > m) m = length($0) } END { print m + 0 }' "$W/folded.out")
check "a Subject of 10,001 lines: no line longer than 998 bytes ($longest)" test "$longest" -le 998
want=$(sed -n '/^Subject:/,/^Message-ID:/p' "$W/folded" | sed '$d' | tr -d '\r\n' | sed 's/^Subject: /Subject: [dev] /')
got=$(sed -n '/^Subject:/,/^Message-ID:/p' "$W/folded.out" | sed '$d' | tr -d '\r\n')
is "${#got}:$(md5sum <<<"$got")" "${#want}:$(md5sum <<<"$want")" "a Subject of 10,001 lines: unfolds to the prefix and the original"
is "$(sed -n '/^Subject:/,/^Message-ID:/p' "$W/folded.out" | wc -l)" 10002 "a Subject of 10,001 lines: its folding kept"
pl_clear_out
long=$(printf 'x%.0s' $(seq 90))
printf 'From: a@example.org\nSubject: %s\nMessage-ID: <long@example.org>\n\nbody\n' "$long" >"$W/long"
pl_post "$W/long" -f a@example.org dev || bail_out "mmq-filter refused the long message"
pl_process
pl_outs
pl_msg "${OUTS[0]}" "$W/long.out"
is "$(grep -A1 '^Subject:' "$W/long.out")" "$(printf 'Subject: [dev]\n %s' "$long")" \
    "a Subject whose first line would pass 78 characters: folded after the prefix"
pl_clear_out
printf 'From: a@example.org\nSubject: before\0after\nMessage-ID: <nul@example.org>\n\nbody\n' >"$W/nul"
pl_post "$W/nul" -f a@example.org dev || bail_out "mmq-filter refused the NUL message"
pl_process
pl_outs
pl_msg "${OUTS[0]}" "$W/nul.out"
is "$(grep -a '^Subject:' "$W/nul.out" | od -An -c | tr -s ' ' | tr -d '\n')" \
    "$(printf 'Subject: [dev] before\0after\n' | od -An -c | tr -s ' ' | tr -d '\n')" \
    "a NUL in the Subject: kept, the value not cut there"

done_testing
