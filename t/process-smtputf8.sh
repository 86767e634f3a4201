#!/bin/bash
# process-smtputf8: members whose address has non-ASCII bytes would need
# SMTPUTF8 (RFC 6531), which mmq-deliver (libESMTP 1.1.0) cannot send.
# mmq-process leaves them out of the expansion with one warning each,
# naming the members file and line (and, for a non-ASCII domain, the
# A-label hint); the ASCII members, an A-label domain included, get the
# post.  The warning comes again whenever the file is read again.
set -u
. "${top_srcdir:-$(dirname "$0")/..}/t/lib.sh"
. "${top_srcdir:-$(dirname "$0")/..}/t/process-lib.sh"

pl_init
mk_tmpdir
W=$T
mk_spool
pl_list dev 'posters = "anyone";'
MF=$LISTS/dev.members
{
    printf 'alice@example.org\n'                   # 1
    printf 'jos\xc3\xa9@example.org\n'             # 2 non-ASCII local part
    printf 'bob@b\xc3\xbccher.example\n'           # 3 non-ASCII domain (U-label)
    printf 'carol@xn--bcher-kva.example\n'         # 4 the A-label form: fine
    printf '\xe7\x94\xb0\xe4\xb8\xad@example.jp\n' # 5 non-ASCII local part
    printf 'dave@example.org\n'                    # 6
} >"$MF"
printf 'From: a@example.org\nSubject: s\n\nb\n' >"$W/simple"
pl_post "$W/simple" -f a@example.org dev || bail_out "mmq-filter refused the post"
pl_process
is "$PRC" 0 "mmq-process -1 exits 0"
pl_outs
is "$(pl_rcpts "${OUTS[@]}" | tr '\n' ' ')" \
    "alice@example.org carol@xn--bcher-kva.example dave@example.org " \
    "the post goes to the ASCII members only (A-label domain included)"
is "$(sed -n 's/.*dev\.members:\([0-9]*\): <.*>: non-ASCII .* needs SMTPUTF8, which mmq cannot send: member skipped.*/\1/p' "$PLOG" | tr '\n' ' ')" \
    "2 3 5 " "one warning naming file:line for each non-ASCII address"
grep -q "dev\.members:2: <jos$(printf '\xc3\xa9')@example.org>: non-ASCII local part needs SMTPUTF8, which mmq cannot send: member skipped\$" "$PLOG"
ok $? "the warning names the address and its non-ASCII local part"
grep -q "dev\.members:3: <bob@b$(printf '\xc3\xbc')cher.example>: non-ASCII domain needs SMTPUTF8, which mmq cannot send: member skipped (write the domain as an A-label, xn--...)\$" "$PLOG"
ok $? "a non-ASCII domain: the warning suggests the A-label form"
diag "$(grep -m 1 'SMTPUTF8' "$PLOG")"

# the file changes: read again, warned again
printf 'erin@example.org\nfrank@example.org\njos\xc3\xa9@example.org\n' >"$MF"
pl_clear_out
pl_post "$W/simple" -f a@example.org dev || bail_out "mmq-filter refused the post"
pl_process
pl_outs
is "$(pl_rcpts "${OUTS[@]}" | tr '\n' ' ')" "erin@example.org frank@example.org " \
    "after the file changed: the new ASCII members only"
grep -q "dev\.members:3: <jos.*non-ASCII local part needs SMTPUTF8" "$PLOG"
ok $? "and the warning again, with the new line number"
done_testing
