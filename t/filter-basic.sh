#!/bin/bash
# filter-basic: mmq-filter stores every message byte for byte, with the
# right envelope (list, role, sender, recipient, mbox From_ line), in the
# right queue, with safe modes, and leaves nothing in tmp/.
set -u
. "${top_srcdir:-$(dirname "$0")/..}/t/lib.sh"

mk_spool
M=$T/msgs
mkdir "$M"
NAME_RE='^[0-9]{10}\.[0-9]{6}\+[0-9a-f]{40}$'

# [EXPECT=FILE] store NAME INPUT QUEUE ARG...: run the filter on INPUT
# with ARG..., expect exit 0, no output, exactly one entry, in QUEUE,
# holding INPUT (or EXPECT) byte for byte, mode 0640, well named, and tmp/
# empty.  Leaves the entry in $ENTRY.
store() {
    local name=$1 input=$2 queue=$3 base bucket expect=${EXPECT:-$2}
    shift 3
    run_filter "$input" "$@"
    is "$RC" 0 "$name: exit 0"
    [ "$RC" -ne 0 ] && diag "stdout: $OUT" "stderr: $ERR"
    is "$OUT" "" "$name: nothing on stdout"
    if one_entry; then
        pass "$name: one entry"
    else
        fail "$name: one entry"
        rm -f -- "${ENTRIES[@]}" # not to confuse the next case
    fi
    if [ -z "$ENTRY" ]; then
        skip "$name: no entry to check" 5
        ENTRY=$T/no-entry
        return
    fi
    is "${ENTRY#"$SPOOL"/}" "$queue/${ENTRY#"$SPOOL"/*/}" "$name: in $queue/"
    base=${ENTRY##*/}
    bucket=${ENTRY%/*}
    bucket=${bucket##*/}
    if [[ $base =~ $NAME_RE ]] && [ "$bucket" == "${base:18:2}" ]; then
        pass "$name: entry name and bucket"
    else
        fail "$name: entry name and bucket"
        diag "entry: $ENTRY"
    fi
    check "$name: stored byte for byte" entry_matches "$ENTRY" "$expect"
    is "$(stat -c %a -- "$ENTRY")" 640 "$name: entry mode 0640"
    is "$(tmp_files)" "" "$name: tmp/ empty"
}

field() { # field KEY: decoded value of KEY in $ENTRY's envelope
    entry_field "$ENTRY" "$1"
}

# ---------------------------------------------------------------- bytes

printf 'From: alice@example.org\nTo: announce@example.org\nSubject: plain LF\n\nHello.\nFrom here on, a body line starting with From.\n' >"$M/lf"
store "LF message" "$M/lf" in announce
entry_message "$ENTRY" | cmp -s - "$M/lf"
ok "$?" "LF message: entry_message gives the message (cmp)"
is "$(field list)" announce "LF message: list recorded"
is "$(field role)" post "LF message: role post"
is "$(field attempts)" 0 "LF message: attempts 0"
is "$(field recoveries)" 0 "LF message: recoveries 0"
if entry_parse "$ENTRY" && [ -z "${ENV_FIELDS[mbox-from]+set}" ]; then
    pass "LF message: no mbox-from field"
else
    fail "LF message: no mbox-from field"
fi
arrival=$(field arrival)
nowsec=$(date +%s)
if [[ $arrival =~ ^[0-9]+\.[0-9]{6}$ ]] && [ $((nowsec - ${arrival%.*})) -ge 0 ] &&
    [ $((nowsec - ${arrival%.*})) -le 60 ]; then
    pass "LF message: arrival is now"
else
    fail "LF message: arrival is now"
    diag "arrival '$arrival', now $nowsec"
fi
if [ -n "$ENTRY" ] && [ "${ENTRY##*/}" \> "$(printf '%010d' $((nowsec - 60)))" ]; then
    pass "LF message: name starts with the arrival time"
else
    fail "LF message: name starts with the arrival time"
fi
qout=$("$MMQCTL" -c "$CONF" queue 2>&1)
case $qout in
*"$(printf '%.10s' "${ENTRY##*/}")"*"1 Request."*) pass "mmqctl queue lists the entry (by its short ID)" ;;
*) fail "mmqctl queue lists the entry"; diag "$qout" ;;
esac
rm -f -- "$ENTRY"

printf 'From: alice@example.org\r\nSubject: CRLF\r\n\r\nline one\r\nline two\r\n' >"$M/crlf"
store "CRLF message" "$M/crlf" in announce
rm -f -- "$ENTRY"

{
    printf 'Subject: every byte value\n\n'
    for r in 1 2 3 4; do
        for ((i = 0; i < 256; i++)); do
            printf "\\x$(printf %02x "$i")"
        done
    done
    printf '\n'
} >"$M/bytes"
is "$(stat -c %s "$M/bytes")" $((27 + 1024 + 1)) "8-bit input has all 256 byte values"
store "8-bit and control bytes" "$M/bytes" in announce
rm -f -- "$ENTRY"

printf '\0\0Subject: NUL\0first\n\nbody \0 with\0\0NULs\n\0' >"$M/nul"
store "NUL bytes (also first byte)" "$M/nul" in announce
rm -f -- "$ENTRY"

head -c 1048576 /dev/zero | tr '\0' 'x' >"$M/longline"
store "1 MB line without a newline" "$M/longline" in announce
rm -f -- "$ENTRY"

{
    printf 'From '
    head -c 1048576 /dev/zero | tr '\0' 'y'
} >"$M/longfrom"
store "1 MB 'From ' line without a newline stays in the message" "$M/longfrom" in announce
if entry_parse "$ENTRY" && [ -z "${ENV_FIELDS[mbox-from]+set}" ]; then
    pass "1 MB 'From ' line: no mbox-from field"
else
    fail "1 MB 'From ' line: no mbox-from field"
fi
rm -f -- "$ENTRY"

printf 'Subject: no end\n\nthe last line has no line end' >"$M/noeol"
store "no trailing newline" "$M/noeol" in announce
rm -f -- "$ENTRY"

printf 'x' >"$M/onebyte"
store "one-byte message" "$M/onebyte" in announce
rm -f -- "$ENTRY"

printf '\n' >"$M/newline"
store "message of one empty line" "$M/newline" in announce
rm -f -- "$ENTRY"

# ------------------------------------------------------- mbox From_ line

FROM_LINE='From alice@example.org  Sat Nov 22 10:00:00 2025'
printf '%s\n' "$FROM_LINE" >"$M/mbox"
cat "$M/lf" >>"$M/mbox"
EXPECT=$M/lf store "leading From_ line is not stored" "$M/mbox" in announce
is "$(field mbox-from)" "$FROM_LINE" "leading From_ line: recorded as mbox-from"
is "${ENV_FIELDS[mbox-from]:-}" "From%20alice@example.org%20%20Sat%20Nov%2022%2010:00:00%202025" \
    "leading From_ line: percent-encoded in the envelope"
rm -f -- "$ENTRY"

printf '%s\r\n' "$FROM_LINE" >"$M/mboxcrlf"
cat "$M/crlf" >>"$M/mboxcrlf"
EXPECT=$M/crlf store "CRLF From_ line is not stored" "$M/mboxcrlf" in announce
is "$(field mbox-from)" "$FROM_LINE" "CRLF From_ line: recorded without CR"
rm -f -- "$ENTRY"

printf 'From bounce@example.org%%25 \xe9t\xe9 Sat\n' >"$M/from8"
cat "$M/lf" >>"$M/from8"
EXPECT=$M/lf store "8-bit From_ line is not stored" "$M/from8" in announce
is "$(field mbox-from)" "$(printf 'From bounce@example.org%%25 \xe9t\xe9 Sat')" \
    "8-bit From_ line: recorded exactly"
rm -f -- "$ENTRY"

# A From_ line that reaches the filter in pieces.
out=$({
    printf 'Fro'
    sleep 0.2
    printf 'm %s' "${FROM_LINE#From }"
    sleep 0.2
    printf '\n'
    sleep 0.1
    cat "$M/lf"
} | "$MMQ_FILTER" -c "$CONF" announce 2>&1)
rc=$?
is "$rc" 0 "From_ line in pieces: exit 0"
if one_entry; then
    check "From_ line in pieces: message is the rest" entry_matches "$ENTRY" "$M/lf"
    is "$(field mbox-from)" "$FROM_LINE" "From_ line in pieces: recorded"
    rm -f -- "$ENTRY"
else
    fail "From_ line in pieces: one entry"
    diag "$out"
    skip "no entry" 1
fi

printf 'From: alice@example.org\nSubject: a From: header is no From_ line\n\nx\n' >"$M/fromhdr"
store "From: header first" "$M/fromhdr" in announce
if entry_parse "$ENTRY" && [ -z "${ENV_FIELDS[mbox-from]+set}" ]; then
    pass "From: header first: no mbox-from field"
else
    fail "From: header first: no mbox-from field"
fi
rm -f -- "$ENTRY"

{
    printf 'From '
    head -c 2000 /dev/zero | tr '\0' 'z'
    printf '\nSubject: x\n\nbody\n'
} >"$M/fromlong"
store "From_ line of 2 KB (implausible) is kept in the message" "$M/fromlong" in announce
rm -f -- "$ENTRY"

# ------------------------------------------------------------------ roles

role_case() { # role_case NAME QUEUE ROLE LIST_IN_ENVELOPE ARG...
    local name=$1 queue=$2 role=$3 list=$4
    shift 4
    store "$name" "$M/lf" "$queue" "$@"
    is "$(field role)" "$role" "$name: role $role"
    is "$(field list)" "$list" "$name: list $list"
    rm -f -- "$ENTRY"
}

role_case "-R bounces" bounces bounces announce -R bounces announce
role_case "-R owner" in owner announce -R owner announce
role_case "-R request" in request announce -R request announce
role_case "-R post" in post announce -R post announce
role_case "-r LIST-bounces@" bounces bounces announce -r announce-bounces@example.org announce
role_case "-r LIST-owner@" in owner announce -r announce-owner@example.org announce
role_case "-r LIST-request@" in request announce -r announce-request@example.org announce
role_case "-r LIST@" in post announce -r announce@example.org announce
role_case "-r VERP LIST-bounces+addr@" bounces bounces announce \
    -r 'announce-bounces+bob=example.org@example.org' announce
role_case "-r in upper case" bounces bounces announce -r ANNOUNCE-Bounces@EXAMPLE.ORG announce
role_case "-r another list's address is a post" in post announce -r dev-bounces@example.org announce
role_case "-r an alias is a post" in post announce -r everyone@example.org announce
role_case "LIST=announce-bounces" bounces bounces announce announce-bounces
role_case "LIST=announce-owner" in owner announce announce-owner
role_case "LIST=announce-request" in request announce announce-request
role_case "-R post overrides the suffix of LIST" in post announce -R post announce-bounces
role_case "-R owner overrides -r LIST-bounces" in owner announce -R owner \
    -r announce-bounces@example.org announce
role_case "LIST in upper case is folded" in post announce ANNOUNCE
role_case "LIST Dev-Bounces is folded and split" bounces bounces dev Dev-Bounces
role_case "second list" in post dev dev

# ------------------------------------------------------ sender, recipient

store "sender and recipient" "$M/lf" in -f alice@example.org -r announce@example.org announce
is "$(field sender)" alice@example.org "sender recorded"
entry_parse "$ENTRY"
is "${#ENV_RCPT[@]}" 1 "one rcpt line"
is "$(pct_decode "${ENV_RCPT[0]:-}")" announce@example.org "recipient recorded"
rm -f -- "$ENTRY"

store "null sender" "$M/lf" in -f '' announce
entry_parse "$ENTRY"
if [ -n "${ENV_FIELDS[sender]+set}" ] && [ -z "${ENV_FIELDS[sender]}" ]; then
    pass "null sender recorded as an empty sender"
else
    fail "null sender recorded as an empty sender"
    diag "sender field: '${ENV_FIELDS[sender]-<missing>}'"
fi
if grep -qx 'sender ' "$ENTRY"; then
    pass "null sender: line 'sender ' in the envelope"
else
    fail "null sender: line 'sender ' in the envelope"
fi
is "${#ENV_RCPT[@]}" 0 "no -r: no rcpt line"
rm -f -- "$ENTRY"

store "no -f" "$M/lf" in announce
entry_parse "$ENTRY"
is "${ENV_FIELDS[sender]-<missing>}" "" "no -f: empty sender"
rm -f -- "$ENTRY"

odd=$(printf 'odd "sender"%%41 \xff\t@example.org')
oddr=$(printf 'announce+x%%y z@example.org')
store "odd sender and recipient" "$M/lf" in -f "$odd" -r "$oddr" announce
is "$(field sender)" "$odd" "odd sender recorded exactly"
entry_parse "$ENTRY"
is "$(pct_decode "${ENV_RCPT[0]:-}")" "$oddr" "odd recipient recorded exactly"
if [[ ${ENV_FIELDS[sender]:-} =~ ^[!-~]*$ ]] && [[ ${ENV_RCPT[0]:-} =~ ^[!-~]*$ ]]; then
    pass "encoded values are printable ASCII without spaces"
else
    fail "encoded values are printable ASCII without spaces"
fi
rm -f -- "$ENTRY"

# ------------------------------------------------------- names and modes

run_filter "$M/lf" announce
rc1=$RC
run_filter "$M/lf" announce
entries in
if [ "$rc1" -eq 0 ] && [ "$RC" -eq 0 ] && [ "${#ENTRIES[@]}" -eq 2 ]; then
    pass "the same message twice gives two entries"
else
    fail "the same message twice gives two entries"
    diag "exits $rc1 $RC, entries: ${ENTRIES[*]}"
fi
for e in "${ENTRIES[@]}"; do
    rm -f -- "$e"
done

baddirs=$(find "$SPOOL" -type d ! -perm 2770)
is "$baddirs" "" "every spool directory is mode 2770"
layout=
[ -d "$SPOOL/tmp" ] && layout=tmp
for q in in bounces out deferred hold bad; do
    layout+=" $q:$(find "$SPOOL/$q" -mindepth 1 -maxdepth 1 -type d -name '[0-9a-f][0-9a-f]' | wc -l)"
done
is "$layout" "tmp in:256 bounces:256 out:256 deferred:256 hold:256 bad:256" \
    "spool has tmp/ and 6 queues of 256 buckets 00..ff"

(umask 077 && "$MMQ_FILTER" -c "$CONF" announce <"$M/lf" >/dev/null 2>&1)
is "$?" 0 "umask 077: exit 0"
if one_entry in; then
    is "$(stat -c %a -- "$ENTRY")" 640 "umask 077: entry is still mode 0640 (group-readable)"
    rm -f -- "$ENTRY"
else
    fail "umask 077: one entry"
fi

is "$(tmp_files)" "" "tmp/ empty at the end"
# (stats/ holds the monitoring counters, secret the token key: not entries)
is "$(find "$SPOOL" -type f ! -path "$SPOOL/stats/*" ! -path "$SPOOL/secret" |
    wc -l)" 0 \
    "spool empty at the end (every entry was checked and removed)"

done_testing
