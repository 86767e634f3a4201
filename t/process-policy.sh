#!/bin/bash
# process-policy: the list stage (mmq-process -1) applied to single posts,
# checked on what it leaves in the spool: the out/ entries' envelopes
# (sender LIST-bounces@DOMAIN, recipients, verp flag) and message bytes,
# hold/, the rejection notices, the archive and the log.
#
#   1  list headers (RFC 2369/2919, Precedence, X-BeenThere), upstream
#      List-* replaced, the rest of the message byte for byte (folded,
#      overlong, 8-bit and malformed header lines, body with '.' and
#      "From " lines); List-Id with/without description
#   2  subject prefix once (plain, "Re: [p]", RFC 2047 B and Q words, none)
#   3  Reply-To none/list/address; Date and Message-ID only when missing;
#      CRLF messages keep CRLF for the added headers
#   4  loop guard (our X-BeenThere or List-Id: discarded)
#   5  posters/others: hold, reject (notice, and no notice for automatic
#      mail or <>), discard; members matched case-insensitively via From:
#      or the envelope sender; allowed_posters; posters = "list"
#   6  oversize with max_message_size
#   7  owner mail forwarded unchanged to the owners; request mail is
#      answered by the email commands (t/commands.sh), not forwarded
#   8  VERP: "verp 1" in out/, one MAIL FROM per member at smtp-sink; a VERP
#      post cut into entries for the connections
#   9  members file: junk lines, duplicates, CRLF; re-read when it changes
#  10  recipients_per_entry = 7 for 50 members: 8 entries over many buckets
#  11  broken list files: entry kept, "file:line" errors, -1 still exits
#  12  archive = true: mboxrd records
set -u
. "${top_srcdir:-$(dirname "$0")/..}/t/lib.sh"
. "${top_srcdir:-$(dirname "$0")/..}/t/process-lib.sh"

pl_init
# The checks here post the same message (Message-ID and body) again and
# again, as separate posts: no duplicate suppression (t/process-dup.sh).
TEST_CONF_LINES=("duplicate_window = 0;")
mk_tmpdir
W=$T # the test's own files (messages, results): $T changes with each mk_spool
D=$PL_DOMAIN
BOUNCES="dev-bounces@$D"

# qstate: "in=N out=N hold=N bad=N" (entries of those queues)
qstate() {
    printf 'in=%d out=%d hold=%d bad=%d' "$(count_files "$SPOOL/in")" \
        "$(count_files "$SPOOL/out")" "$(count_files "$SPOOL/hold")" \
        "$(count_files "$SPOOL/bad")"
}

# go INPUT FILTER_ARG...: empty out/, queue INPUT with mmq-filter, run
# mmq-process -1; OUTS are then the out/ entries, GOT the message of the
# first one (if any).  Fails the test run loudly if the filter refused.
GOT=/dev/null
go() {
    local input=$1
    shift
    pl_clear_out
    pl_post "$input" "$@" || bail_out "mmq-filter refused a test message"
    pl_process
    [ "$PRC" -eq 0 ] || diag "mmq-process exited $PRC: $(tail -n 5 "$PLOG")"
    pl_outs
    GOT=$W/got.$_t_count
    : >"$GOT"
    [ "${#OUTS[@]}" -gt 0 ] && pl_msg "${OUTS[0]}" "$GOT"
    return 0
}

# ------------------------------------------------------------------ 1
mk_spool
pl_list dev 'description = "Dev list";' 'subject_prefix = "[dev]";' \
    'posters = "anyone";' 'owners = ["owner1@example.com"];'
pl_members dev alice@example.org Bob@Example.NET carol@example.com

LONG=$(head -c 1992 /dev/zero | tr '\0' 'L') # "X-Long: " + 1992 = 2000 bytes
M=$W/m1
EXP=$W/m1.expected
# the header lines that stay, in order (Subject is edited in place)
keep_head1() {
    printf 'Received: from mail.example.org (mail.example.org [192.0.2.1])\n'
    printf '\tby mx.example.org (Postfix) with ESMTP id 4Xq2Lm;\n'
    printf '\tSun, 22 Nov 2026 10:00:00 +0000\n'
    printf 'Date: Sun, 22 Nov 2026 10:00:00 +0000\n'
    printf 'From: Alice Example <alice@example.org>\n'
    printf 'To: dev@lists.example.org\n'
}
keep_head2() {
    printf 'Message-ID: <m1@example.org>\n'
    printf 'X-Long: %s\n' "$LONG"
    printf 'X-8bit: caf\xc3\xa9 \xe2\x82\xac \xff\xfe\x80\n'
    printf 'X-Caf\xe9: 8-bit bytes in the field name\n'
    printf 'this line is malformed: no field name before a colon\n'
    printf 'nor this one\n'
    printf 'X-Folded: first\n  second\n\tthird\n'
    printf 'X-BeenThere: up@other.example\n'
}
upstream() {
    printf 'List-Id: Upstream list\n <up.other.example>\n'
    printf 'List-Post: <mailto:up@other.example>\n'
    printf 'List-Help: <mailto:up-request@other.example?subject=help>\n'
    printf 'LIST-SUBSCRIBE: <mailto:up-request@other.example?subject=subscribe>\n'
    printf 'List-Unsubscribe: <mailto:up-request@other.example?subject=unsubscribe>\n'
    printf 'list-archive: <https://other.example/up/>\n'
    printf 'List-Owner: <mailto:up-owner@other.example>\n'
    printf 'Precedence: bulk\n'
}
body1() {
    printf '\n'
    printf 'body line 1\n'
    printf '.a line starting with a dot\n'
    printf '..two dots\n'
    printf '.\n'
    printf 'From the start of a line, as in mbox\n'
    printf '>From already quoted\n'
    printf '\n\n'
    printf 'Subject: not a header, this is the body\n'
    printf 'X-BeenThere: dev@lists.example.org (in the body: no loop)\n'
    printf 'List-Id: <dev.lists.example.org>\n'
    printf 'caf\xc3\xa9 \x80\xff\r\n'
    printf 'last line without a line end'
}
ours() { # the headers the list stage adds, in its order
    printf 'List-Id: %s\n' "$1"
    printf 'List-Post: <mailto:dev@%s>\n' "$D"
    printf 'List-Help: <mailto:dev-request@%s?subject=help>\n' "$D"
    printf 'List-Unsubscribe: <mailto:dev-request@%s?subject=unsubscribe>\n' "$D"
    printf 'List-Owner: <mailto:dev-owner@%s>\n' "$D"
    printf 'Precedence: list\n'
    printf 'X-BeenThere: dev@%s\n' "$D"
}
{
    keep_head1
    printf 'Subject: plain subject\n'
    upstream
    keep_head2
    printf 'X-Trailer: last field\n'
    body1
} >"$M"
# RFC 2919 allows the description as a plain phrase or as a quoted-string:
# the exact comparison takes whichever of the two valid forms came out
go "$M" -f alice@example.org dev
LISTID="\"Dev list\" <dev.$D>"
[ "$(pl_hvals "$GOT" List-Id)" == "Dev list <dev.$D>" ] && LISTID="Dev list <dev.$D>"
{
    keep_head1
    printf 'Subject: [dev] plain subject\n'
    keep_head2
    printf 'X-Trailer: last field\n'
    ours "$LISTID"
    body1
} >"$EXP"
is "$PRC" 0 "headers: mmq-process -1 exits 0"
is "$(qstate)" "in=0 out=1 hold=0 bad=0" "headers: the post became one out/ entry"
is "$(pl_sender "${OUTS[0]}")" "$BOUNCES" "headers: envelope sender is dev-bounces@$D"
entry_parse "${OUTS[0]}"
is "${ENV_FIELDS[list]:-}/${ENV_FIELDS[role]:-}/${ENV_FIELDS[verp]:-none}" \
    "dev/post/none" "headers: envelope list dev, role post, no verp flag"
is "$(pl_rcpts "${OUTS[0]}" | tr '\n' ' ')" \
    "alice@example.org Bob@Example.NET carol@example.com " \
    "headers: recipients are the members in file order, as written"
check "headers: message is the expected one byte for byte (size field too)" \
    entry_matches "${OUTS[0]}" "$EXP"
is "$(pl_hvals "$GOT" List-Id)" "$LISTID" "headers: one List-Id, with the description (RFC 2919)"
check "headers: ... in one of the two valid forms (phrase or quoted-string)" \
    test "$LISTID" == "Dev list <dev.$D>" -o "$(pl_hvals "$GOT" List-Id)" == "\"Dev list\" <dev.$D>"
is "$(pl_hvals "$GOT" List-Post)" "<mailto:dev@$D>" "headers: one List-Post"
is "$(pl_hvals "$GOT" List-Help)" "<mailto:dev-request@$D?subject=help>" "headers: one List-Help"
is "$(pl_hvals "$GOT" List-Unsubscribe)" "<mailto:dev-request@$D?subject=unsubscribe>" \
    "headers: one List-Unsubscribe"
is "$(pl_hvals "$GOT" List-Owner)" "<mailto:dev-owner@$D>" "headers: one List-Owner"
is "$(pl_hvals "$GOT" Precedence)" "list" "headers: one Precedence: list (upstream bulk replaced)"
is "$(pl_hvals "$GOT" X-BeenThere | tr '\n' ' ')" "up@other.example dev@$D " \
    "headers: X-BeenThere of ours added after the upstream one"
is "$(pl_hcount "$GOT" List-Subscribe)/$(pl_hcount "$GOT" List-Archive)" "0/0" \
    "headers: upstream List-Subscribe and List-Archive removed"
is "$(pl_headers "$GOT" | grep -ci 'other\.example' | tr -d ' ')" 1 \
    "headers: nothing of the upstream list left but its X-BeenThere"
is "$(pl_hvals "$GOT" Date)|$(pl_hvals "$GOT" Message-ID)" \
    "Sun, 22 Nov 2026 10:00:00 +0000|<m1@example.org>" \
    "headers: Date and Message-ID present: kept, none added"
is "$(grep -c 'expanded into 1 out/ entry' "$PLOG")" 1 "headers: log says expanded into 1 out/ entry"

# the same, all in CRLF: every added header ends in CRLF too
crlf() { sed 's/$/\r/' "$1"; }
{ keep_head1; printf 'Subject: plain subject\n'; upstream; keep_head2; printf 'X-Trailer: last field\n'; } | crlf /dev/stdin >"$M.crlf"
{ keep_head1; printf 'Subject: [dev] plain subject\n'; keep_head2; printf 'X-Trailer: last field\n'; ours "$LISTID"; } | crlf /dev/stdin >"$EXP.crlf"
printf '\r\nbody\r\n.dot\r\nFrom x\r\n' | tee -a "$M.crlf" >>"$EXP.crlf"
go "$M.crlf" -f alice@example.org dev
check "CRLF: message is the expected one byte for byte" entry_matches "${OUTS[0]}" "$EXP.crlf"
is "$(LC_ALL=C grep -ac $'[^\r]$' "$GOT")" 0 "CRLF: no line of the output ends in a bare LF"

# no description; a message that is all header (no body, no final LF)
pl_list announce 'posters = "anyone";' 'subject_prefix = "[a]";'
pl_members announce x@example.org
printf 'From: a@example.org\nDate: Sun, 22 Nov 2026 10:00:00 +0000\nMessage-ID: <nb@example.org>\nSubject: s' >"$W/nobody"
go "$W/nobody" -f a@example.org announce
is "$(pl_hvals "$GOT" List-Id)" "<announce.$D>" "no description: List-Id: <announce.$D>"
is "$(pl_hvals "$GOT" List-Post)" "<mailto:announce@$D>" "no description: List-Post of announce"
{
    printf 'From: a@example.org\nDate: Sun, 22 Nov 2026 10:00:00 +0000\nMessage-ID: <nb@example.org>\nSubject: [a] s\n'
    printf 'List-Id: <announce.%s>\nList-Post: <mailto:announce@%s>\n' "$D" "$D"
    printf 'List-Help: <mailto:announce-request@%s?subject=help>\n' "$D"
    printf 'List-Unsubscribe: <mailto:announce-request@%s?subject=unsubscribe>\n' "$D"
    printf 'List-Owner: <mailto:announce-owner@%s>\nPrecedence: list\nX-BeenThere: announce@%s\n\n' "$D" "$D"
} >"$W/nobody.expected"
check "no body: header section completed and ended by an empty line" \
    entry_matches "${OUTS[0]}" "$W/nobody.expected"

# RFC 2919: the description is a phrase; with specials it must be quoted
pl_list announce 'posters = "anyone";' 'description = "Developers, testers & friends";'
printf 'From: a@example.org\nSubject: s\n\nb\n' >"$W/desc"
go "$W/desc" -f a@example.org announce
is "$(pl_hvals "$GOT" List-Id)" "\"Developers, testers & friends\" <announce.$D>" \
    "List-Id: a description with specials (',') is a quoted-string (RFC 2919 phrase)"

# ------------------------------------------------------------------ 2
pl_list dev 'subject_prefix = "[p]";' 'posters = "anyone";'
subj() { # subj NAME SUBJECT-LINES|- WANT
    local f=$W/subj.$_t_count
    {
        printf 'From: a@example.org\nDate: Sun, 22 Nov 2026 10:00:00 +0000\n'
        printf 'Message-ID: <s@example.org>\n'
        [ "$2" != - ] && printf '%s\n' "$2"
        printf '\nbody\n'
    } >"$f"
    go "$f" -f a@example.org dev
    is "$(pl_hcount "$GOT" Subject)|$(pl_hvals "$GOT" Subject)" "1|$3" "subject: $1"
}
B64_PC=$(printf '[p] Caf\xc3\xa9' | base64)
B64_C=$(printf 'Caf\xc3\xa9' | base64)
subj "plain subject gets the prefix" "Subject: hello" "[p] hello"
subj "\"Re: [p] x\" unchanged" "Subject: Re: [p] x" "Re: [p] x"
subj "prefix in another case counts (\"[P]\")" "Subject: Re: [P] x" "Re: [P] x"
subj "RFC 2047 B word holding \"[p] Café\" unchanged" \
    "Subject: =?UTF-8?B?$B64_PC?=" "=?UTF-8?B?$B64_PC?="
subj "RFC 2047 Q word holding \"[p] café\" unchanged" \
    "Subject: =?utf-8?q?=5Bp=5D_caf=C3=A9?=" "=?utf-8?q?=5Bp=5D_caf=C3=A9?="
subj "RFC 2047 B word without the prefix gets it" \
    "Subject: =?UTF-8?B?$B64_C?=" "[p] =?UTF-8?B?$B64_C?="
subj "no Subject: one is added holding the prefix" - "[p]"
subj "folded subject: prefixed once, unfolded" "$(printf 'Subject: a long\n subject')" "[p] a long subject"
# the prefixed subject stays where it was in the header
printf 'From: a@example.org\nSubject: first\nX-After: 1\n\nb\n' >"$W/order"
go "$W/order" -f a@example.org dev
is "$(head -n 3 "$GOT" | tr '\n' '|')" "From: a@example.org|Subject: [p] first|X-After: 1|" \
    "subject: edited in place, the fields around it unchanged"

# ------------------------------------------------------------------ 3
rt() { # rt NAME CONF-LINE|- WITH-REPLY-TO(0/1) WANT-VALUES
    local f=$W/rt.$_t_count
    if [ "$2" == - ]; then pl_list dev 'posters = "anyone";'; else pl_list dev 'posters = "anyone";' "$2"; fi
    {
        printf 'From: a@example.org\nSubject: s\n'
        [ "$3" -eq 1 ] && printf 'Reply-To: Orig <orig@example.org>\n'
        printf '\nbody\n'
    } >"$f"
    go "$f" -f a@example.org dev
    is "$(pl_hvals "$GOT" Reply-To | tr '\n' '|')" "$4" "reply_to: $1"
}
rt "none (default) keeps the poster's Reply-To" - 1 "Orig <orig@example.org>|"
rt "none adds nothing" 'reply_to = "none";' 0 ""
rt "list replaces it by the list" 'reply_to = "list";' 1 "<dev@$D>|"
rt "list adds it when missing" 'reply_to = "list";' 0 "<dev@$D>|"
rt "address replaces it by reply_to_address" \
    'reply_to = "address"; reply_to_address = "discuss@example.org";' 1 "<discuss@example.org>|"

# Date and Message-ID only when missing; every copy gets the same ones
pl_list dev 'posters = "anyone";' 'recipients_per_entry = 2;'
pl_members dev u1@example.org u2@example.org u3@example.org u4@example.org u5@example.org
printf 'From: a@example.org\nSubject: no date\n\nbody\n' >"$W/nodate"
go "$W/nodate" -f a@example.org dev
is "${#OUTS[@]}" 3 "date/msgid: 5 members, 2 per entry: 3 entries"
is "$(pl_hcount "$GOT" Date)/$(pl_hcount "$GOT" Message-ID)" "1/1" "date/msgid: one Date and one Message-ID added"
re='^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), [0-9]{1,2} (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) [0-9]{4} [0-9]{2}:[0-9]{2}:[0-9]{2} [-+][0-9]{4}$'
[[ $(pl_hvals "$GOT" Date) =~ $re ]]
ok $? "date/msgid: the Date is RFC 5322 ($(pl_hvals "$GOT" Date))"
re='^<[^@<> ]+@lists\.example\.org>$'
[[ $(pl_hvals "$GOT" Message-ID) =~ $re ]]
ok $? "date/msgid: the Message-ID is <...@$D> ($(pl_hvals "$GOT" Message-ID))"
same=0
for f in "${OUTS[@]}"; do
    pl_msg "$f" "$W/copy"
    cmp -s "$W/copy" "$GOT" || same=1
done
ok "$same" "date/msgid: all out/ entries of the post carry the same message"
printf 'From: a@example.org\nDATE: Mon, 23 Nov 2026 10:00:00 +0000\nmessage-id: <lower@example.org>\n\nbody\n' >"$W/lcdate"
go "$W/lcdate" -f a@example.org dev
is "$(pl_hcount "$GOT" Date)/$(pl_hcount "$GOT" Message-ID)|$(pl_hvals "$GOT" message-id)" \
    "1/1|<lower@example.org>" "date/msgid: present in other case: nothing added"

# a relayed message carries no Return-Path (RFC 5321 4.4); a missing From:
# is added from the envelope sender (post.c list_headers)
printf 'Return-Path: <bounce@example.org>\nSubject: s\nDate: Sun, 22 Nov 2026 10:00:00 +0000\nMessage-ID: <rp@example.org>\n\nbody\n' >"$W/rp"
go "$W/rp" -f a@example.org dev
is "$(pl_hcount "$GOT" Return-Path)|$(pl_hvals "$GOT" From)" "0|<a@example.org>" \
    "Return-Path dropped; From: <envelope sender> added when missing"

# ------------------------------------------------------------------ 4
pl_list dev 'posters = "anyone";'
pl_members dev u1@example.org
loop() { # loop NAME HEADER-LINES
    local f=$W/loop.$_t_count
    printf 'From: a@example.org\nSubject: s\n%s\n\nbody\n' "$2" >"$f"
    go "$f" -f a@example.org dev
    is "$(qstate)" "in=0 out=0 hold=0 bad=0" "loop: $1: discarded"
    is "$(grep -c 'discarded: .*loop' "$PLOG")" 1 "loop: $1: logged as a mail loop"
}
loop "our X-BeenThere" "X-BeenThere: dev@$D"
loop "our X-BeenThere in other case, folded" "$(printf 'X-BeenThere:\n DEV@Lists.Example.ORG')"
loop "our List-Id" "List-Id: Some description <dev.$D>"
loop "our X-BeenThere after another list's" "$(printf 'X-BeenThere: up@other.example\nX-BeenThere: dev@%s' "$D")"

# ------------------------------------------------------------------ 5
policy_list() { # policy_list OTHERS [LINE...]
    local o=$1
    shift
    pl_list dev "others = \"$o\";" 'owners = ["owner@example.com"];' "$@"
}
pl_members dev Alice@Example.org bob@example.net
msg_from() { # msg_from FILE FROM [EXTRA-HEADER-LINES]
    printf 'From: %s\nSubject: hi\nDate: Sun, 22 Nov 2026 10:00:00 +0000\nMessage-ID: <p@example.net>\n%s\nbody\n' \
        "$2" "${3:+$3$'\n'}" >"$1"
}
msg_from "$W/stranger" "Stranger <stranger@example.net>"

policy_list hold
go "$W/stranger" -f stranger@example.net dev
# out/: the held-post notices to the poster and the owners (t/commands-notices.sh)
is "$(qstate)" "in=0 out=2 hold=1 bad=0" "others=hold: a non-member's post goes to hold/"
check "others=hold: held as hold/BB/NAME@in" test -f "$SPOOL/hold/${IN_NAME:18:2}/$IN_NAME@in"
check "others=hold: the held entry keeps the message as received" \
    entry_matches "$SPOOL/hold/${IN_NAME:18:2}/$IN_NAME@in" "$W/stranger"
find "$SPOOL/hold" -type f -delete

policy_list reject
go "$W/stranger" -f stranger@example.net dev
is "$(qstate)" "in=0 out=1 hold=0 bad=0" "others=reject: the post is gone, one notice in out/"
snd=$(pl_sender "${OUTS[0]}")
is "$?:$snd" "0:" "others=reject: the notice's envelope sender is <> (present, empty)"
is "$(pl_rcpts "${OUTS[0]}")" "stranger@example.net" "others=reject: the notice goes to the poster"
is "$(pl_hvals "$GOT" From)|$(pl_hvals "$GOT" To)" "dev-owner@$D|<stranger@example.net>" \
    "others=reject: notice From: LIST-owner, To: the poster"
is "$(pl_hvals "$GOT" Auto-Submitted)" "auto-replied" "others=reject: the notice is Auto-Submitted: auto-replied"
is "$(grep -c 'rejected: <stranger@example.net> may not post to dev@' "$PLOG")" 1 "others=reject: the rejection is logged with its reason"

notice() { # notice NAME WANT-OUT FILE FILTER-ARGS...
    local name=$1 want=$2 f=$3
    shift 3
    go "$f" "$@" dev
    is "$(qstate)" "in=0 out=$want hold=0 bad=0" "others=reject: $name"
}
msg_from "$W/bulk" "stranger@example.net" "Precedence: bulk"
notice "no notice for Precedence: bulk" 0 "$W/bulk" -f stranger@example.net
msg_from "$W/plist" "stranger@example.net" "Precedence: list"
notice "no notice for Precedence: list" 0 "$W/plist" -f stranger@example.net
msg_from "$W/auto" "stranger@example.net" "Auto-Submitted: auto-replied"
notice "no notice for Auto-Submitted: auto-replied" 0 "$W/auto" -f stranger@example.net
msg_from "$W/autono" "stranger@example.net" "Auto-Submitted: no"
notice "a notice for Auto-Submitted: no" 1 "$W/autono" -f stranger@example.net
notice "no notice for the null envelope sender" 0 "$W/stranger" -f ""
notice "no notice to the list's own address" 0 "$W/stranger" -f "dev@$D"
notice "a notice to another address at the list's domain (devon@)" 1 "$W/stranger" -f "devon@$D"

policy_list discard
go "$W/stranger" -f stranger@example.net dev
is "$(qstate)" "in=0 out=0 hold=0 bad=0" "others=discard: nothing queued, nothing held"
is "$(grep -c 'discarded: <stranger@example.net> may not post to dev@' "$PLOG")" 1 "others=discard: logged with its reason"

policy_list reject
member() { # member NAME FROM ENVELOPE-SENDER
    msg_from "$W/member" "$2"
    go "$W/member" -f "$3" dev
    is "$(qstate)|$(pl_rcpts "${OUTS[@]}" | tr '\n' ' ')" \
        "in=0 out=1 hold=0 bad=0|Alice@Example.org bob@example.net " "poster: $1"
}
member "a member by From: (other case) passes" "Alice <ALICE@EXAMPLE.ORG>" stranger@example.net
member "a member by From: without a display name passes" "alice@example.org" ""
member "a member by the envelope sender (other case) passes" "stranger@example.net" BOB@Example.NET
member "an owner passes" "owner@example.com" ""
msg_from "$W/spoof" '"alice@example.org" <evil@example.net>'
go "$W/spoof" -f evil@example.net dev
is "$(qstate)|$(pl_rcpts "${OUTS[@]}")" "in=0 out=1 hold=0 bad=0|evil@example.net" \
    "poster: a member's address in the display name only is not a member"

policy_list discard 'allowed_posters = ["outsider@example.net"];'
msg_from "$W/outsider" "Out Sider <Outsider@example.net>"
go "$W/outsider" -f somewhere@example.org dev
is "$(qstate)" "in=0 out=1 hold=0 bad=0" "allowed_posters: a listed non-member passes (From:)"
go "$W/stranger" -f stranger@example.net dev
is "$(qstate)" "in=0 out=0 hold=0 bad=0" "allowed_posters: others still discarded"
policy_list discard 'posters = "list";' 'allowed_posters = ["announcer@example.org"];'
msg_from "$W/announcer" "Press <press@example.org>"
go "$W/announcer" -f announcer@example.org dev
is "$(qstate)" "in=0 out=1 hold=0 bad=0" "posters=list: an allowed poster passes (envelope sender)"
msg_from "$W/alice" "alice@example.org"
go "$W/alice" -f alice@example.org dev
is "$(qstate)" "in=0 out=0 hold=0 bad=0" "posters=list: a member who is not allowed is discarded"
policy_list hold 'posters = "anyone";'
go "$W/stranger" -f stranger@example.net dev
is "$(qstate)" "in=0 out=1 hold=0 bad=0" "posters=anyone: a non-member passes"

# ------------------------------------------------------------------ 6
sized() { # sized FILE BYTES: a member's message of exactly BYTES bytes
    local pad
    msg_from "$1" alice@example.org
    pad=$(($2 - $(stat -c %s "$1")))
    head -c "$pad" /dev/zero | tr '\0' 'x' >>"$1"
}
sized "$W/s600" 600
sized "$W/s601" 601
pl_list dev 'max_message_size = 600;' 'oversize = "hold";' 'others = "discard";'
go "$W/s600" -f alice@example.org dev
is "$(qstate)" "in=0 out=1 hold=0 bad=0" "oversize: a message of max_message_size bytes passes"
go "$W/s601" -f alice@example.org dev
is "$(qstate)" "in=0 out=1 hold=1 bad=0" "oversize=hold: one byte more is held (the poster told; no owners)"
check "oversize=hold: as hold/BB/NAME@in" test -f "$SPOOL/hold/${IN_NAME:18:2}/$IN_NAME@in"
find "$SPOOL/hold" -type f -delete
pl_list dev 'max_message_size = 600;' 'oversize = "reject";'
go "$W/s601" -f alice@example.org dev
is "$(qstate)|$(pl_rcpts "${OUTS[@]}")" "in=0 out=1 hold=0 bad=0|alice@example.org" \
    "oversize=reject: a notice to the poster"
check "oversize=reject: the notice names the limit" grep -q '600 bytes' "$GOT"
pl_list dev 'max_message_size = 600;' 'oversize = "discard";'
go "$W/s601" -f alice@example.org dev
is "$(qstate)" "in=0 out=0 hold=0 bad=0" "oversize=discard: nothing queued"

# ------------------------------------------------------------------ 7
pl_list dev 'owners = ["owner1@example.com", "Owner2@example.org"];' \
    'subject_prefix = "[dev]";' 'others = "reject";'
go "$W/stranger" -f stranger@example.net -r "dev-request@$D" dev
is "$(qstate)|$(pl_rcpts "${OUTS[@]}" | tr '\n' ' ')" "in=0 out=1 hold=0 bad=0|stranger@example.net " \
    "request mail: answered (help: no command in it), not forwarded to the owners"
for role in owner; do
    go "$W/stranger" -f stranger@example.net -r "dev-$role@$D" dev
    is "$(qstate)|$(pl_rcpts "${OUTS[@]}" | tr '\n' ' ')" \
        "in=0 out=1 hold=0 bad=0|owner1@example.com Owner2@example.org " \
        "$role mail: one entry to the owners (no policy, no notice)"
    check "$role mail: forwarded unchanged" entry_matches "${OUTS[0]}" "$W/stranger"
    is "$(pl_sender "${OUTS[0]}")" "$BOUNCES" "$role mail: envelope sender dev-bounces@$D"
done
go "$W/stranger" -f stranger@example.net dev-owner
is "$(qstate)|$(pl_rcpts "${OUTS[@]}" | tr '\n' ' ')" \
    "in=0 out=1 hold=0 bad=0|owner1@example.com Owner2@example.org " \
    "owner mail queued as list dev-owner: to the owners"
pl_list dev
go "$W/stranger" -f stranger@example.net -r "dev-owner@$D" dev
is "$(qstate)" "in=0 out=0 hold=1 bad=0" "owner mail for a list without owners is held"
find "$SPOOL/hold" -type f -delete

# ------------------------------------------------------------------ 8
pl_list dev 'posters = "anyone";' 'verp = true;' 'recipients_per_entry = 3;'
pl_members dev v1@example.org first.last@sub.example.net v3+tag@example.com \
    v4@example.org v5@example.org
msg_from "$W/verp" alice@example.org
go "$W/verp" -f alice@example.org dev
nverp=0
for f in "${OUTS[@]}"; do
    entry_parse "$f"
    [ "${ENV_FIELDS[verp]:-}" == 1 ] && nverp=$((nverp + 1))
done
is "${#OUTS[@]}/$nverp" "2/2" "verp: both out/ entries carry \"verp 1\""
if [ -x "$MMQ_DELIVER" ] && pl_sink_start "$W/sink"; then
    write_conf 'relay_host = "127.0.0.1";' "relay_port = $SINK_PORT;" 'connections = 1;' \
        'smtp_timeout = 10;'
    timeout 60 "$MMQ_DELIVER" -c "$CONF" -1 -e 2>"$W/deliver.log"
    is "$?" 0 "verp: mmq-deliver -1 drains out/"
    pairs=$(sink_dumps "$W/sink" | while IFS= read -r f; do
        printf '%s %s\n' "$(awk '/^Received: /{exit} /^X-Mail-Args:/{print $2}' "$f")" \
            "$(awk '/^Received: /{exit} /^X-Rcpt-Args:/{print $2}' "$f" | tr '\n' ' ')"
    done | sort)
    want=$(for r in v1@example.org first.last@sub.example.net v3+tag@example.com v4@example.org v5@example.org; do
        printf '<dev-bounces+%s=%s@%s> <%s> \n' "${r%@*}" "${r#*@}" "$D" "$r"
    done | sort)
    is "$pairs" "$want" "verp: one transaction per member, MAIL FROM dev-bounces+user=host@$D"
    sink_stop
else
    skip "smtp-sink or mmq-deliver not available" 2
fi

# a VERP post is cut for the connections: 100 members, connections = 2:
# entries of at most 100 / (2 x 2) = 25 (recipients_per_entry 500), and a
# bulk post of the same list stays in one entry
write_conf 'connections = 2;'
pl_list dev 'posters = "anyone";' 'verp = true;'
pl_members dev $(seq -f 'm%03g@example.org' 1 100)
go "$W/verp" -f alice@example.org dev
sizes=$(for f in "${OUTS[@]}"; do grep -c '^rcpt ' "$f"; done | sort -n | uniq -c | awk '{ print $1 "x" $2 }' | tr '\n' ' ')
is "${#OUTS[@]}/${sizes% }" "4/4x25" "verp: 100 members with 2 connections make 4 entries of 25"
pl_list dev 'posters = "anyone";'
go "$W/verp" -f alice@example.org dev
is "${#OUTS[@]}" 1 "no verp: the same 100 members in one entry"
write_conf
# ------------------------------------------------------------------ 9
mk_spool
pl_list dev 'posters = "anyone";'
MF=$LISTS/dev.members
{
    printf '# members of dev\n'                    # 1
    printf '   # an indented comment\n'            # 2
    printf 'alice@example.org\n'                   # 3
    printf '  bob@example.org \t\n'                # 4 blanks around: fine
    printf 'no-at-sign.example.org\n'              # 5 junk
    printf 'has space@example.org\n'               # 6 junk
    printf 'ctl\001char@example.org\n'             # 7 junk
    printf 'del\177@example.org\n'                 # 8 junk
    printf 'ALICE@EXAMPLE.ORG\n'                   # 9 duplicate
    printf 'carol@example.org\r\n'                 # 10 CRLF
    printf 'dave@example.org\r\n'                  # 11 CRLF
    printf '<eve@example.org>\n'                   # 12 junk
    printf '@example.org\n'                        # 13 junk
    printf 'frank@\n'                              # 14 junk
    printf 'x@y@example.org\n'                     # 15 junk
    printf '\n'                                    # 16 empty
    printf '\t\r\n'                                # 17 blank
    printf '%s@example.org\n' "$(head -c 260 /dev/zero | tr '\0' a)" # 18 too long
    printf 'Bob@Example.Org\n'                     # 19 duplicate
    printf 'gina@example.org'                      # 20 no final LF
} >"$MF"
printf 'From: a@example.org\nSubject: s\n\nb\n' >"$W/simple"
go "$W/simple" -f a@example.org dev
is "$(pl_rcpts "${OUTS[@]}" | tr '\n' ' ')" \
    "alice@example.org bob@example.org carol@example.org dave@example.org gina@example.org " \
    "members: exactly the good unique members, in file order"
is "$(sed -n 's/.*dev\.members:\([0-9]*\): not an address.*/\1/p' "$PLOG" | tr '\n' ' ')" \
    "5 6 7 8 12 13 14 15 18 " "members: one warning naming file:line for each junk line"
printf 'nul@example.org\0junk\nok@example.org\n' >"$MF"
go "$W/simple" -f a@example.org dev
is "${#OUTS[@]}:$(count_files "$SPOOL/in")" "0:1" \
    "members: a file with a NUL byte is not a text file: the post stays in in/"
check "members: a file with a NUL byte: file: reason" grep -q "dev.members: a binary file (NUL bytes)" "$PLOG"
find "$SPOOL/in" -type f -delete

# re-read when the file changes: a running mmq-process (no -1)
pl_members dev a1@example.org a2@example.org
"$MMQ_PROCESS" -c "$CONF" -e 2>"$W/daemon.log" &
DAEMON=$!
at_exit kill_pid "$DAEMON"
wait_out() { # until in/ is empty and out/ has an entry, at most 10 s
    local i
    for i in $(seq 200); do
        [ "$(count_files "$SPOOL/in")" -eq 0 ] && [ "$(count_files "$SPOOL/out")" -gt 0 ] && return 0
        sleep 0.05
    done
    return 1
}
reread() { # reread NAME WANT
    pl_clear_out
    pl_post "$W/simple" -f a@example.org dev
    wait_out
    pl_outs
    is "$(pl_rcpts "${OUTS[@]}" | tr '\n' ' ')" "$2" "members re-read: $1"
}
reread "first post" "a1@example.org a2@example.org "
printf 'b1@example.org\na2@example.org\n' >"$MF" # same size, same inode
reread "rewritten in place, same size" "b1@example.org a2@example.org "
printf 'c1@example.org\nc2@example.org\nc3@example.org\n' >"$MF.new"
mv "$MF.new" "$MF"
reread "replaced by rename" "c1@example.org c2@example.org c3@example.org "
printf 'c4@example.org\n' >>"$MF"
reread "appended to" "c1@example.org c2@example.org c3@example.org c4@example.org "
kill -TERM "$DAEMON"
wait "$DAEMON"
is "$?" 0 "members re-read: the running mmq-process stops on SIGTERM with 0"

# ----------------------------------------------------------------- 10
mk_spool
pl_list dev 'posters = "anyone";' 'recipients_per_entry = 7;'
pl_gen_members 50 "$LISTS/dev.members"
go "$W/simple" -f a@example.org dev
is "${#OUTS[@]}" 8 "per_entry 7: 50 members give 8 out/ entries"
is "$(for f in "${OUTS[@]}"; do pl_rcpts "$f" | wc -l; done | sort -n | tr '\n' ' ')" \
    "1 7 7 7 7 7 7 7 " "per_entry 7: seven entries of 7 and one of 1"
is "$(pl_rcpts "${OUTS[@]}" | sort | tr '\n' ' ')" "$(sort "$LISTS/dev.members" | tr '\n' ' ')" \
    "per_entry 7: every member exactly once"
names=$(for f in "${OUTS[@]}"; do printf '%s\n' "${f##*/}"; done)
is "$(printf '%s\n' "$names" | cut -c19- | sort -u | wc -l)" 8 "per_entry 7: 8 distinct hashes"
is "$(printf '%s\n' "$names" | cut -c1-18 | sort -u)" "${IN_NAME:0:18}" \
    "per_entry 7: the names keep the post's arrival stamp"
badb=0
for f in "${OUTS[@]}"; do
    n=${f##*/}
    [ "${f%/*}" == "$SPOOL/out/${n:18:2}" ] || badb=1
done
ok "$badb" "per_entry 7: each entry lies in the bucket of its hash"
nb=$(printf '%s\n' "$names" | cut -c19-20 | sort -u | wc -l)
ns=$(printf '%s\n' "$names" | cut -c19 | sort -u | wc -l)
diag "8 entries in $nb buckets, $ns of the 16 slices"
check "per_entry 7: spread over different buckets (>= 4 of 8)" test "$nb" -ge 4
is "$(find "$SPOOL/stage" -type f | wc -l)" 0 "per_entry 7: nothing left in stage/"

# ----------------------------------------------------------------- 11
broken() { # broken NAME LOG-REGEX CONF-LINES...
    local name=$1 re=$2 f
    shift 2
    mk_spool
    printf '%s\n' "$@" >"$LISTS/dev.conf"
    pl_members dev m@example.org
    pl_clear_out
    pl_post "$W/simple" -f a@example.org dev
    PL_TIMEOUT=3 pl_process
    isnt_timeout=$([ "$PRC" -ne 124 ] && echo exited || echo "still running after 3 s")
    is "$isnt_timeout/$PRC" "exited/0" "broken list ($name): mmq-process -1 exits 0"
    f=$SPOOL/in/${IN_NAME:18:2}/$IN_NAME
    is "$(qstate)" "in=1 out=0 hold=0 bad=0" "broken list ($name): the post stays in in/"
    check "broken list ($name): under its ready name" test -f "$f"
    if grep -Eq "$re" "$PLOG"; then pass "broken list ($name): logs \"$(grep -Eo "$re" "$PLOG" | head -n 1)\""; else
        fail "broken list ($name): log matches /$re/"
        diag "$(head -n 3 "$PLOG")"
    fi
    n=$(grep -c 'error' "$PLOG")
    check "broken list ($name): the error is logged a few times, not in a busy loop ($n lines)" test "$n" -le 3
    pl_list dev 'posters = "anyone";'
    pl_process
    is "$(qstate)" "in=0 out=1 hold=0 bad=0" "broken list ($name): processed once the file is fixed"
}
broken "syntax error" 'lists/dev\.conf:2: syntax error' 'domain = "lists.example.org";' 'posters = ;'
broken "missing domain" 'lists/dev\.conf: domain = .* is required' 'posters = "anyone";' 'verp = false;'
broken "unknown setting" 'lists/dev\.conf:3: colour: unknown setting' \
    'domain = "lists.example.org";' 'posters = "anyone";' 'colour = "blue";'
broken "wrong type" 'lists/dev\.conf:2: verp: expected true or false' \
    'domain = "lists.example.org";' 'verp = "yes";'

# a running mmq-process (no -1) does not spin on an entry it must keep
mk_spool
printf 'domain = "lists.example.org";\nposters = ;\n' >"$LISTS/dev.conf"
pl_members dev m@example.org
"$MMQ_PROCESS" -c "$CONF" -e 2>"$W/daemon2.log" &
DAEMON2=$!
at_exit kill_pid "$DAEMON2"
sleep 0.3
pl_post "$W/simple" -f a@example.org dev
sleep 2
ticks=$(awk '{ print $14 + $15 }' "/proc/$DAEMON2/stat" 2>/dev/null)
n=$(grep -c 'syntax error' "$W/daemon2.log")
is "$n" 1 "broken list, running mmq-process: the error logged once in 2 s (no busy retry)"
check "broken list, running mmq-process: under 0.3 s of CPU in 2 s ($ticks ticks)" \
    test "${ticks:-999}" -lt 30
kill -TERM "$DAEMON2"
wait "$DAEMON2"
is "$?/$(qstate)" "0/in=1 out=0 hold=0 bad=0" "broken list, running mmq-process: exits 0 on SIGTERM, the post still in in/"

# ----------------------------------------------------------------- 12
mk_spool
pl_list dev 'posters = "anyone";' 'archive = true;' 'subject_prefix = "[dev]";'
pl_members dev m@example.org
{
    printf 'From: Alice <alice@example.org>\nSubject: arch\nDate: Sun, 22 Nov 2026 10:00:00 +0000\n'
    printf 'Message-ID: <arch1@example.org>\n\n'
    printf 'From here\n>From there\n>>From everywhere\nFrom\nFromage\n >From indented\nlast\n'
} >"$W/arch1"
go "$W/arch1" -f alice@example.org dev
when1=$(date -u -d "@$((10#${IN_NAME:0:10}))" '+%a %b %e %H:%M:%S %Y')
{
    printf 'From alice@example.org %s\n' "$when1"
    printf 'From: Alice <alice@example.org>\nSubject: [dev] arch\nDate: Sun, 22 Nov 2026 10:00:00 +0000\n'
    printf 'Message-ID: <arch1@example.org>\n'
    printf 'List-Id: <dev.%s>\nList-Post: <mailto:dev@%s>\n' "$D" "$D"
    printf 'List-Help: <mailto:dev-request@%s?subject=help>\n' "$D"
    printf 'List-Unsubscribe: <mailto:dev-request@%s?subject=unsubscribe>\n' "$D"
    printf 'List-Owner: <mailto:dev-owner@%s>\nPrecedence: list\nX-BeenThere: dev@%s\n\n' "$D" "$D"
    printf '>From here\n>>From there\n>>>From everywhere\nFrom\nFromage\n >From indented\nlast\n\n'
} >"$W/arch.expected"
MBOX=$SPOOL/archive/dev.mbox
if cmp -s "$MBOX" "$W/arch.expected"; then pass "archive: an mboxrd record with \">From \" quoting"; else
    fail "archive: an mboxrd record with \">From \" quoting"
    diag "$(diff "$W/arch.expected" "$MBOX" 2>&1 | head -n 20)"
fi
printf 'From: b@example.org\r\nSubject: [dev] two\r\nDate: Sun, 22 Nov 2026 11:00:00 +0000\r\nMessage-ID: <arch2@example.org>\r\n\r\nFrom CRLF\r\nend' >"$W/arch2"
go "$W/arch2" -f "" dev
when2=$(date -u -d "@$((10#${IN_NAME:0:10}))" '+%a %b %e %H:%M:%S %Y')
{
    cat "$W/arch.expected"
    printf 'From MAILER-DAEMON %s\n' "$when2"
    printf 'From: b@example.org\nSubject: [dev] two\nDate: Sun, 22 Nov 2026 11:00:00 +0000\nMessage-ID: <arch2@example.org>\n'
    printf 'List-Id: <dev.%s>\nList-Post: <mailto:dev@%s>\n' "$D" "$D"
    printf 'List-Help: <mailto:dev-request@%s?subject=help>\n' "$D"
    printf 'List-Unsubscribe: <mailto:dev-request@%s?subject=unsubscribe>\n' "$D"
    printf 'List-Owner: <mailto:dev-owner@%s>\nPrecedence: list\nX-BeenThere: dev@%s\n\n' "$D" "$D"
    printf '>From CRLF\nend\n\n'
} >"$W/arch.expected2"
if cmp -s "$MBOX" "$W/arch.expected2"; then pass "archive: a second record appended (LF line ends, <> as MAILER-DAEMON)"; else
    fail "archive: a second record appended (LF line ends, <> as MAILER-DAEMON)"
    diag "$(diff "$W/arch.expected2" "$MBOX" 2>&1 | head -n 20)"
fi
is "$(qstate)" "in=0 out=1 hold=0 bad=0" "archive: the post is delivered as well"

done_testing
