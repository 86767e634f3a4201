#!/bin/bash
# filter-diskfull: on a full file system mmq-filter exits 75 (the MTA
# retries) and leaves no partial entry and nothing in tmp/; once space is
# free again, messages are taken.  Needs root (a tiny tmpfs as the spool).
set -u
. "${top_srcdir:-$(dirname "$0")/..}/t/lib.sh"

is_root || skip_all "needs root to mount a tmpfs"

mk_spool
# A 256 KB tmpfs over the spool directory, initialised again there.
if ! mount -t tmpfs -o size=256k,mode=0700 mmq-test-spool "$SPOOL" 2>"$T/mount.err"; then
    skip_all "cannot mount a tmpfs: $(head -n 1 "$T/mount.err")"
fi
at_exit umount -l "$SPOOL"
"$MMQCTL" -c "$CONF" init >"$T/init.out" 2>&1 || bail_out "mmqctl init on the tmpfs: $(cat "$T/init.out")"
is "$(stat -f -c %T "$SPOOL")" tmpfs "the spool is on a tmpfs"

M=$T/msgs
mkdir "$M"
avail() { # free bytes on the spool's file system
    df -B1 --output=avail "$SPOOL" | tail -n 1 | tr -d ' '
}
free=$(avail)
diag "free on the spool: $free bytes"

# nothing_left NAME [EXCEPT]: no regular file in the spool but EXCEPT.
nothing_left() {
    local files
    files=$(find "$SPOOL" -type f ! -path "${2:-/nonexistent}" ! -path "$SPOOL/secret")
    is "$files" "" "$1: no partial entry anywhere in the spool"
    is "$(tmp_files)" "" "$1: tmp/ empty"
}

# 1. A message bigger than the free space.
{
    printf 'Subject: bigger than the disk\n\n'
    head -c $((free + 65536)) /dev/zero | tr '\0' 'D'
} >"$M/big"
run_filter "$M/big" announce
is "$RC" 75 "message bigger than the free space: exit 75"
starts_with "$OUT" "4." "message bigger than the free space: a 4.x.x status"
nothing_left "message bigger than the free space"

# The same through a pipe, in pieces.
cat "$M/big" | "$MMQ_FILTER" -c "$CONF" announce >"$T/out" 2>/dev/null
st=("${PIPESTATUS[@]}")
is "${st[1]}" 75 "bigger than the free space, through a pipe: exit 75"
nothing_left "bigger than the free space, through a pipe"

# 2. A full file system: even a small message is refused.
dd if=/dev/zero of="$SPOOL/filler" bs=4096 >/dev/null 2>&1
diag "after the filler: $(avail) bytes free"
is "$(avail)" 0 "the file system is full"
printf 'Subject: small\n\nsmall message\n' >"$M/small"
run_filter "$M/small" announce
is "$RC" 75 "small message on a full file system: exit 75"
starts_with "$OUT" "4." "small message on a full file system: a 4.x.x status"
nothing_left "small message on a full file system" "$SPOOL/filler"
{
    printf 'Subject: medium\n\n'
    head -c 100000 /dev/zero | tr '\0' 'm'
} >"$M/medium"
run_filter "$M/medium" announce
is "$RC" 75 "100 KB message on a full file system: exit 75"
nothing_left "100 KB message on a full file system" "$SPOOL/filler"

# 3. Space freed: messages are taken again.
rm -f "$SPOOL/filler"
run_filter "$M/small" announce
is "$RC" 0 "space freed: small message exit 0"
if one_entry in; then
    check "space freed: small message stored byte for byte" entry_matches "$ENTRY" "$M/small"
    rm -f -- "$ENTRY"
else
    fail "space freed: small message stored byte for byte"
fi
run_filter "$M/medium" announce
is "$RC" 0 "space freed: 100 KB message exit 0"
if one_entry in; then
    check "space freed: 100 KB message stored byte for byte" entry_matches "$ENTRY" "$M/medium"
    rm -f -- "$ENTRY"
else
    fail "space freed: 100 KB message stored byte for byte"
fi
is "$(tmp_files)" "" "tmp/ empty at the end"

done_testing
