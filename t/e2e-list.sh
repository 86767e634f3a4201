#!/bin/bash
# e2e-list: one post through the whole chain for a list of 1,000 members:
# mmq-filter (as the MTA runs it, with a leading mbox "From " line) ->
# mmq-process -1 -> mmq-deliver -1 -> smtp-sink on loopback.  Every member
# receives the post exactly once, from LIST-bounces@DOMAIN, and every
# transaction carries the list's message byte for byte: the post with
# List-Id, List-Post, List-Help, List-Unsubscribe, List-Owner, Precedence,
# X-BeenThere and the subject prefix added, the rest (body included)
# unchanged.  The spool is empty at the end.
set -u
. "${top_srcdir:-$(dirname "$0")/..}/t/lib.sh"
. "${top_srcdir:-$(dirname "$0")/..}/t/process-lib.sh"
. "${top_srcdir:-$(dirname "$0")/..}/t/deliver-lib2.sh"

pl_init
NMEMBERS=1000
PER_ENTRY=100
PER_TXN=50
D=$PL_DOMAIN

mk_tmpdir
W=$T
mk_spool
dl_sink_start "$W/sink"
dl_conf "recipients_per_transaction = $PER_TXN;" "connections = 2;"
pl_list announce 'description = "Announcements";' 'subject_prefix = "[ann]";' \
    'owners = ["owner@example.com"];' "recipients_per_entry = $PER_ENTRY;"
{
    printf 'Alice@Example.org\n' # the poster is a member (posters = members)
    seq -f 'member%04g@example.net' 1 $((NMEMBERS - 1))
} >"$LISTS/announce.members"

LONG=$(head -c 900 /dev/zero | tr '\0' 'x')
head1() {
    printf 'Received: from mail.example.org (mail.example.org [192.0.2.1])\n'
    printf '\tby lists.example.org (Postfix) with ESMTP id 4Xq2Lm\n'
    printf '\tfor <announce@lists.example.org>; Sun, 22 Nov 2026 10:00:00 +0000\n'
    printf 'Date: Sun, 22 Nov 2026 10:00:00 +0000\n'
    printf 'From: Alice Example <alice@example.org>\n'
    printf 'To: announce@lists.example.org\n'
}
head2() {
    printf 'Message-ID: <e2e.1@example.org>\n'
    printf 'MIME-Version: 1.0\n'
    printf 'Content-Type: text/plain; charset=utf-8\n'
    printf 'Content-Transfer-Encoding: 8bit\n'
}
body() {
    printf '\n'
    printf 'Hello members,\n'
    printf '.a line starting with a dot\n'
    printf '..two dots\n'
    printf '.\n'
    printf 'From the start of a line, as in mbox\n'
    printf 'caf\xc3\xa9 \xe2\x82\xac\n'
    printf '%s\n' "$LONG"
    printf '\n'
    printf 'last line\n'
}
{
    printf 'From alice@example.org  Sun Nov 22 10:00:00 2026\n' # the MTA's
    head1
    printf 'Subject: release 1.0\n'
    head2
    body
} >"$W/input"
expected() { # expected LIST-ID: the message every member must receive
    head1
    printf 'Subject: [ann] release 1.0\n'
    head2
    printf 'List-Id: %s\n' "$1"
    printf 'List-Post: <mailto:announce@%s>\n' "$D"
    printf 'List-Help: <mailto:announce-request@%s?subject=help>\n' "$D"
    printf 'List-Unsubscribe: <mailto:announce-request@%s?subject=unsubscribe>\n' "$D"
    printf 'List-Owner: <mailto:announce-owner@%s>\n' "$D"
    printf 'Precedence: list\n'
    printf 'X-BeenThere: announce@%s\n' "$D"
    body
}

# ------------------------------------------------------------ the chain
s=$(now)
"$MMQ_FILTER" -c "$CONF" -f alice@example.org -r "announce@$D" announce \
    <"$W/input" >"$W/filter.out" 2>"$W/filter.err"
is "$?" 0 "mmq-filter queues the post (exit 0)"
t1=$(now)
pl_process
is "$PRC" 0 "mmq-process -1 exits 0"
is "$(count_files "$SPOOL/out")" $((NMEMBERS / PER_ENTRY)) \
    "the list stage made $((NMEMBERS / PER_ENTRY)) out/ entries"
t2=$(now)
timeout 120 "$MMQ_DELIVER" -c "$CONF" -1 -e 2>"$W/deliver.log"
rc=$?
t3=$(now)
is "$rc" 0 "mmq-deliver -1 exits 0"
[ "$rc" -eq 0 ] || diag "$(tail -n 10 "$W/deliver.log")"
diag "filter $(elapsed_ms "$s" "$t1") ms, process $(elapsed_ms "$t1" "$t2") ms, deliver $(elapsed_ms "$t2" "$t3") ms"

# ------------------------------------------------------------ what arrived
dl_tally "$LISTS/announce.members" "$W/sink"
is "got=$DL_GOT missing=$DL_MISSING dups=$DL_DUPS unexpected=$DL_UNEXPECTED" \
    "got=$NMEMBERS missing=0 dups=0 unexpected=0" "every member received the post exactly once"
ndumps=$(sink_dumps "$W/sink" | wc -l)
is "$ndumps" $((NMEMBERS / PER_TXN)) "$((NMEMBERS / PER_TXN)) transactions of $PER_TXN recipients"
is "$(sink_senders "$W/sink" | sort | uniq -c | sed 's/^ *//')" "$ndumps announce-bounces@$D" \
    "every transaction's MAIL FROM is announce-bounces@$D"

# the headers that matter, in every transaction (read from the dumps)
mkdir "$W/msgs"
i=0
sink_dumps "$W/sink" | while IFS= read -r f; do
    i=$((i + 1))
    dl_sink_message "$f" >"$W/msgs/$i"
done
hdr_all() { # hdr_all NAME: distinct values of header NAME over all dumps, with counts
    local f
    for f in "$W/msgs"/*; do
        pl_hvals "$f" "$1"
    done | sort | uniq -c | sed 's/^ *//'
}
# RFC 2919: the description as a phrase or as a quoted-string, both valid
LISTID="\"Announcements\" <announce.$D>"
[ "$(hdr_all List-Id)" == "$ndumps Announcements <announce.$D>" ] && LISTID="Announcements <announce.$D>"
is "$(hdr_all List-Id)" "$ndumps $LISTID" "every copy has List-Id: $LISTID"
expected "$LISTID" >"$W/expected"
is "$(hdr_all X-BeenThere)" "$ndumps announce@$D" "every copy has X-BeenThere: announce@$D"
is "$(hdr_all Subject)" "$ndumps [ann] release 1.0" "every copy has the subject prefix, once"
is "$(hdr_all List-Unsubscribe)" "$ndumps <mailto:announce-request@$D?subject=unsubscribe>" \
    "every copy has List-Unsubscribe"
out=$(dl_dumps_match "$W/expected" "$W/sink")
ok $? "every copy is the list's message byte for byte (headers and body)"
diag "$out"
is "$(cat "$W/msgs"/* | grep -c '^From alice@example.org  Sun')" 0 \
    "the MTA's mbox From line is in no copy"

# ------------------------------------------------------------ the spool
is "in=$(count_files "$SPOOL/in") out=$(count_files "$SPOOL/out") stage=$(count_files "$SPOOL/stage") deferred=$(count_files "$SPOOL/deferred") bad=$(count_files "$SPOOL/bad") hold=$(count_files "$SPOOL/hold") tmp=$(count_files "$SPOOL/tmp")" \
    "in=0 out=0 stage=0 deferred=0 bad=0 hold=0 tmp=0" "the spool is empty afterwards"
dl_sink_stop "$SINK_PID"

done_testing
