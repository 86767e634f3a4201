#!/bin/bash
# process-dmarc: DMARC mitigation end to end against a real DNS server.
#
# The test runs in a private mount namespace (unshare -m) where a private
# /etc/resolv.conf is bind-mounted over the machine's, naming a dnsmasq
# that the test starts on a random 127.x.y.z address (not 127.0.0.1:53,
# which concurrent tests would fight over).  dnsmasq serves _dmarc records
# (reject, quarantine, none, absent, an organisational domain, sp=none for
# subdomains, two v=DMARC1 records, a record too big for UDP, garbage) and
# forwards dead.example to an address where nothing listens, so that its
# lookups really time out.  23 posts go filter -> mmq-process -1 ->
# mmq-deliver -1 -> smtp-sink, to lists with every dmarc_mitigate_action
# and the trigger settings, and each copy the sink receives is checked,
# headers and body; the rejection notice too.  Also: one DNS question per
# name for all the posts (cache), a timed-out domain costs the timeout
# once (remembered), dmarc_timeout bounds the lookup.
set -u
if [ -z "${MMQ_DMARC_NS:-}" ]; then
    [ "$(id -u)" -eq 0 ] || {
        echo "1..0 # SKIP needs root (a mount namespace and bind mounts)"
        exit 0
    }
    command -v unshare >/dev/null 2>&1 || {
        echo "1..0 # SKIP unshare(1) not installed"
        exit 0
    }
    MMQ_DMARC_NS=1 exec unshare -m --propagation private bash "$0" "$@"
    echo "1..0 # SKIP unshare -m failed"
    exit 0
fi
. "${top_srcdir:-$(dirname "$0")/..}/t/lib.sh"
. "${top_srcdir:-$(dirname "$0")/..}/t/process-lib.sh"
. "${top_srcdir:-$(dirname "$0")/..}/t/deliver-lib2.sh"

pl_init
DNSMASQ=$(command -v dnsmasq || echo /usr/sbin/dnsmasq)
[ -x "$DNSMASQ" ] || skip_all "dnsmasq not installed (Debian dnsmasq-base)"
[ -e /etc/resolv.conf ] || skip_all "no /etc/resolv.conf to bind-mount over"
D=$PL_DOMAIN

mk_tmpdir
W=$T
mk_spool

# ------------------------------------------------------------- DNS
dns_kill() { # only if PID still is our dnsmasq
    case $(readlink "/proc/$1/exe" 2>/dev/null) in
    */dnsmasq)
        kill -KILL "$1" 2>/dev/null
        wait "$1" 2>/dev/null
        ;;
    esac
    return 0
}
BIG=$(printf 'x%.0s' $(seq 250))
HUGE=
for _ in $(seq 20); do HUGE="$HUGE,$BIG"; done
start_dns() { # start_dns LOG TTL: a dnsmasq on a new random address
    local log=$1 ttl=$2 try i
    for try in 1 2 3; do
        DNS_ADDR=127.$((RANDOM % 200 + 20)).$((RANDOM % 250 + 1)).$((RANDOM % 250 + 1))
        DEAD_ADDR=${DNS_ADDR%.*}.$(((${DNS_ADDR##*.} % 250) + 2))
        # dnsmasq: each ","-separated text is one TXT character-string
        "$DNSMASQ" --keep-in-foreground --conf-file=/dev/null \
            --no-resolv --no-hosts --listen-address="$DNS_ADDR" --bind-interfaces \
            --port=53 --address=/#/ --local-ttl="$ttl" --log-queries --log-facility=- \
            --server=/dead.example/"$DEAD_ADDR" \
            '--txt-record=_dmarc.reject.example,v=DMARC1; p=reject; rua=mailto:d@reject.example' \
            '--txt-record=_dmarc.quar.example,v=DMARC1; p=quarantine; pct=50' \
            '--txt-record=_dmarc.pnone.example,v=DMARC1; p=none' \
            '--txt-record=_dmarc.org.example,v=DMARC1; p=reject' \
            '--txt-record=_dmarc.sp.example,v=DMARC1; p=reject; sp=none' \
            '--txt-record=_dmarc.multi.example,v=DMARC1; p=none' \
            '--txt-record=_dmarc.multi.example,v=DMARC1; p=reject' \
            '--txt-record=_dmarc.multi.example,v=spf1 -all' \
            "--txt-record=_dmarc.huge.example,v=DMARC1; p=reject; x=$HUGE" \
            '--txt-record=_dmarc.garbage.example,v=DMARC1;;; p=rej;ect=;==;sp' \
            '--txt-record=_dmarc.garbage.example,garbage=;;v=DMARC1' \
            '--txt-record=_dmarc.ttl.example,v=DMARC1; p=reject' \
            2>"$log" &
        DNS_PID=$!
        at_exit dns_kill "$DNS_PID"
        for i in $(seq 100); do
            grep -q 'started, version' "$log" 2>/dev/null && return 0
            kill -0 "$DNS_PID" 2>/dev/null || break
            sleep 0.05
        done
        dns_kill "$DNS_PID"
        wait "$DNS_PID" 2>/dev/null
    done
    diag "$(cat "$log")"
    bail_out "dnsmasq did not start"
}
start_dns "$W/dns.log" 300
printf 'nameserver %s\n' "$DNS_ADDR" >"$W/resolv.conf"
mount --bind "$W/resolv.conf" /etc/resolv.conf || bail_out "mount --bind failed"
diag "dnsmasq on $DNS_ADDR; dead.example forwarded to $DEAD_ADDR (nothing listens)"

# ----------------------------------------------------------- lists
dl_sink_start "$W/sink"
dl_conf "dmarc_timeout = 1;"
common=('posters = "anyone";' 'owners = ["owner@example.com"];')
# mf: the defaults (pl_list would add dmarc_mitigate_action = "none")
printf 'domain = "%s";\nposters = "anyone";\n' "$D" >"$LISTS/mf.conf"
pl_list mfl "${common[@]}" 'reply_to = "list";' 'subject_prefix = "[mfl]";' \
    'dmarc_mitigate_action = "munge_from";'
pl_list wrap "${common[@]}" 'dmarc_mitigate_action = "wrap_message";' \
    'dmarc_wrapped_message_text = "The post is attached.\nReply to its author.";'
pl_list rej "${common[@]}" 'dmarc_mitigate_action = "reject";'
pl_list rej2 "${common[@]}" 'dmarc_mitigate_action = "reject";' \
    'dmarc_moderation_notice = "This list takes no posts from domains with p=reject.";'
pl_list disc "${common[@]}" 'dmarc_mitigate_action = "discard";'
pl_list nomit "${common[@]}" 'dmarc_mitigate_action = "none";'
pl_list uncond "${common[@]}" 'dmarc_mitigate_unconditionally = true;' \
    'dmarc_moderation_notice = "unused here";'
pl_list noquar "${common[@]}" 'dmarc_mitigate_action = "munge_from";' \
    'dmarc_quarantine_moderation_action = false;'
pl_list pnon "${common[@]}" 'dmarc_none_moderation_action = true;'
for l in mf mfl wrap rej rej2 disc nomit uncond noquar pnon; do
    pl_members "$l" "member-$l@members.example"
done

# ----------------------------------------------------------- posts
# msg N FROM-VALUE LIST [EXTRA-HEADER]
msg() {
    {
        printf 'Received: from mx.example (mx.example [192.0.2.7])\n\tby lists\n'
        printf 'From: %s\n' "$2"
        printf 'To: %s@%s\n' "$3" "$D"
        [ -n "${4:-}" ] && printf '%s\n' "$4"
        printf 'Subject: t-%s\n' "$1"
        printf 'Message-ID: <t%s@posts.example>\n' "$1"
        printf 'Date: Thu, 03 Dec 2026 09:00:00 +0000\n'
        printf 'DKIM-Signature: v=1; a=rsa-sha256; d=example; s=s; b=AAAA\n'
        printf 'MIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\n'
        printf 'Content-Transfer-Encoding: 8bit\n'
        printf '\nHello from post %s,\n.a dot line\nFrom the start of a line\n' "$1"
        printf 'caf\xc3\xa9\n\nlast line\n'
    } >"$W/post.$1"
}
post() { # post N FROM-VALUE LIST [EXTRA-HEADER]
    local a
    msg "$@"
    a=$(printf '%s' "$2" | sed 's/.*<\(.*\)>.*/\1/')
    run_filter "$W/post.$1" -f "$a" -r "$3@$D" "$3"
    [ "$RC" -eq 0 ] || bail_out "mmq-filter refused post $1: $ERR"
}
post 1 'Alice Doe <alice@reject.example>' mf
post 2 'Carl <carl@quar.example>' mf
post 3 'Dora <dora@pnone.example>' mf
post 4 'Eve <eve@absent.example>' mf
post 5 'Fred <fred@mail.org.example>' mf
post 6 'Gina <gina@news.sp.example>' mf
post 7 'Hans <hans@sp.example>' mf
post 8 'Ida <ida@multi.example>' mf
post 9 'Jon <jon@huge.example>' mf
post 10 'Kim <kim@garbage.example>' mf
post 11 'Lea <lea@dead.example>' mf
post 12 'Max <max@dead.example>' mf
post 13 'bob@reject.example' mf
post 14 'Alice Doe <alice@reject.example>' mfl 'Cc: Zed <zed@elsewhere.example>'
post 15 'Alice Doe <alice@reject.example>' wrap
post 16 'Alice Doe <alice@reject.example>' rej
post 17 'Lea <lea@dead.example>' rej
post 18 'Alice Doe <alice@reject.example>' disc
post 19 'Alice Doe <alice@reject.example>' nomit
post 20 'Eve <eve@only-uncond.example>' uncond
post 21 'Carl <carl@quar.example>' noquar
post 22 'Dora <dora@pnone.example>' pnon
post 23 'Nina <nina@reject.example>' rej2

# ------------------------------------------------------------ chain
s=$(now)
pl_process
t1=$(now)
is "$PRC" 0 "mmq-process -1 exits 0"
ms=$(elapsed_ms "$s" "$t1")
diag "mmq-process: $ms ms for 23 posts"
ok $((!(ms >= 900 && ms < 10000))) "the dead domain's lookup waited dmarc_timeout (1 s), not more ($ms ms)"
timeout 60 "$MMQ_DELIVER" -c "$CONF" -1 -e 2>"$W/deliver.log"
is "$?" 0 "mmq-deliver -1 exits 0"

mkdir "$W/got"
while IFS= read -r f; do
    sink_message "$f" >"$W/got/m" # LF line ends, as the posts have
    n=$(pl_hvals "$W/got/m" Subject | sed -n 's/.*t-\([0-9]*\).*/\1/p' | head -n 1)
    if [ -n "$n" ]; then
        mv "$W/got/m" "$W/got/$n"
    else
        mv "$W/got/m" "$W/got/other.${f##*.}"
    fi
done < <(sink_dumps "$W/sink")
for f in "$W"/got/*; do
    pl_headers "$f" >"$f.h"
done

body_of() { sed -n '/^$/,$p' "$1"; }
# same_body N: the copy of post N has the post's body, byte for byte
same_body() {
    [ -f "$W/got/$1" ] && cmp -s <(body_of "$W/post.$1") <(body_of "$W/got/$1")
}
# hv N NAME: the values of header NAME in the copy of post N, "|" between
hv() {
    [ -f "$W/got/$1.h" ] && awk -v n="$2" '
        BEGIN { n = tolower(n) }
        {
            i = index($0, ":")
            if (i > 1 && tolower(substr($0, 1, i - 1)) == n) {
                v = substr($0, i + 1)
                sub(/^[ \t]+/, "", v)
                out = out (k++ ? "|" : "") v
            }
        }
        END { printf "%s", out }' "$W/got/$1.h"
}

# unchanged N WHY: From: and body as posted, no X-Original-From
unchanged() {
    is "$(hv "$1" From)/$(hv "$1" X-Original-From)" "$(pl_hvals "$W/post.$1" From)/" \
        "post $1 ($2): From: unchanged"
    ok "$(same_body "$1"; echo $?)" "post $1: body unchanged"
}
# munged N LIST NAME FROM WHY: From: munged, author in Reply-To, body kept
munged() {
    is "$(hv "$1" From)" "\"$3 via $2\" <$2@$D>" "post $1 ($5): From: munged"
    is "$(hv "$1" Reply-To)" "$4" "post $1: the author in Reply-To:"
    is "$(hv "$1" X-Original-From)" "$4" "post $1: X-Original-From:"
    ok "$(same_body "$1"; echo $?)" "post $1: body unchanged"
}

munged 1 mf "Alice Doe" "Alice Doe <alice@reject.example>" "p=reject"
munged 2 mf Carl "Carl <carl@quar.example>" "p=quarantine"
unchanged 3 "p=none"
unchanged 4 "no record"
munged 5 mf Fred "Fred <fred@mail.org.example>" "organisational domain's p=reject"
unchanged 6 "subdomain, sp=none"
munged 7 mf Hans "Hans <hans@sp.example>" "the sp=none domain itself: p=reject"
munged 8 mf Ida "Ida <ida@multi.example>" "two v=DMARC1 records: the strictest"
munged 9 mf Jon "Jon <jon@huge.example>" "a record too big for UDP (TCP)"
unchanged 10 "garbage record: no valid p"
munged 11 mf Lea "Lea <lea@dead.example>" "DNS timeout"
munged 12 mf Max "Max <max@dead.example>" "DNS timeout remembered"
munged 13 mf "bob at reject.example" "bob@reject.example" "no display name"

# 14: reply_to = list -> Reply-To: the list, the author in Cc
is "$(hv 14 From)" "\"Alice Doe via mfl\" <mfl@$D>" "post 14 (reply_to list): From: munged"
is "$(hv 14 Reply-To)" "<mfl@$D>" "post 14: Reply-To: the list"
is "$(hv 14 Cc)" "Zed <zed@elsewhere.example>, Alice Doe <alice@reject.example>" \
    "post 14: the author added to Cc:"
is "$(hv 14 Subject)" "[mfl] t-14" "post 14: subject prefix as usual"
ok "$(same_body 14; echo $?)" "post 14: body unchanged"

# 15: wrap_message
G=$W/got/15
is "$(hv 15 From)" "\"Alice Doe via wrap\" <wrap@$D>" "post 15 (wrap_message): outer From: the list's"
starts_with "$(hv 15 Content-Type)" "multipart/mixed; boundary=" "post 15: outer multipart/mixed"
is "$(hv 15 Reply-To)/$(hv 15 Message-ID)/$(hv 15 List-Id)" \
    "Alice Doe <alice@reject.example>/<t15@posts.example>/<wrap.$D>" \
    "post 15: outer Reply-To, Message-ID, List-Id"
is "$(hv 15 DKIM-Signature)$(hv 15 Received)" "" "post 15: no DKIM-Signature or Received outside"
python3 - "$G" "$W/post.15" >"$W/wrap.txt" 2>&1 <<'EOF'
import sys, email, email.policy
got = open(sys.argv[1], 'rb').read()
orig = open(sys.argv[2], 'rb').read()
m = email.message_from_bytes(got, policy=email.policy.compat32)
parts = m.get_payload()
kinds = [p.get_content_type() for p in parts]
print("kinds", " ".join(kinds))
print("text", parts[0].get_payload().replace("\n", "|"))
print("inner-bytes", "yes" if orig in got else "no")
inner = parts[1].get_payload()[0]
print("inner-from", inner["From"])
EOF
is "$(sed -n 's/^kinds //p' "$W/wrap.txt")" "text/plain message/rfc822" "post 15: a text part, then message/rfc822"
is "$(sed -n 's/^text //p' "$W/wrap.txt")" "The post is attached.|Reply to its author.|" \
    "post 15: the text part is dmarc_wrapped_message_text"
is "$(sed -n 's/^inner-bytes //p' "$W/wrap.txt")" yes "post 15: the original post, byte for byte, inside"
is "$(sed -n 's/^inner-from //p' "$W/wrap.txt")" "Alice Doe <alice@reject.example>" \
    "post 15: the inner message keeps the author's From:"
[ "$(sed -n 's/^inner-bytes //p' "$W/wrap.txt")" = yes ] || diag "$(cat "$W/wrap.txt")"

# 16: reject -> nothing to the member, a notice to the poster
is "$([ -f "$W/got/16" ] && echo delivered || echo no)" no "post 16 (reject): not distributed"
notice=$(grep -l 'Subject: Your message to rej was rejected' "$W/got"/other.* 2>/dev/null | head -n 1)
ok "$([ -n "$notice" ]; echo $?)" "post 16: a rejection notice reached the sink"
if [ -n "$notice" ]; then
    ok "$(grep -q 'reject.example publishes the DMARC policy p=reject' "$notice"; echo $?)" \
        "post 16: the notice names the domain and its policy"
    is "$(sink_rcpts "$W/sink" | grep -c '^alice@reject.example$')" 1 "post 16: sent to the poster"
else
    skip "no notice" 2
fi
notice=$(grep -l 'Subject: Your message to rej2 was rejected' "$W/got"/other.* 2>/dev/null | head -n 1)
ok "$([ -n "$notice" ] && grep -q '^ *This list takes no posts from domains with p=reject.$' "$notice"; echo $?)" \
    "post 23: the notice carries dmarc_moderation_notice"
is "$(sink_rcpts "$W/sink" | grep -c '^nina@reject.example$')/$([ -f "$W/got/23" ] && echo delivered)" "1/" \
    "post 23: sent to the poster, not distributed"
munged 17 rej Lea "Lea <lea@dead.example>" "reject list, DNS timeout: munged, not rejected"
is "$([ -f "$W/got/18" ] && echo delivered || echo no)" no "post 18 (discard): not distributed"
ok "$(grep -q 'discarded: .*reject.example publishes the DMARC policy p=reject' "$PLOG"; echo $?)" \
    "post 18: the log says discarded, and why"
unchanged 19 "dmarc_mitigate_action none"
munged 20 uncond Eve "Eve <eve@only-uncond.example>" "dmarc_mitigate_unconditionally"
unchanged 21 "p=quarantine, dmarc_quarantine_moderation_action false"
munged 22 pnon Dora "Dora <dora@pnone.example>" "p=none, dmarc_none_moderation_action true"

# ------------------------------------------------------ DNS and log
is "$(grep -c 'query\[TXT\] _dmarc.reject.example from' "$W/dns.log")" 1 \
    "eight posts from reject.example: one DNS question (cached for its TTL)"
is "$(grep -c 'query\[TXT\] _dmarc.org.example from' "$W/dns.log")" 1 \
    "the organisational domain asked once"
is "$(grep -c 'DMARC: munge_from: the DMARC policy lookup of _dmarc.dead.example failed (no answer in time)' "$PLOG")" 1 \
    "the first dead.example post waited for the timeout"
is "$(grep -c 'lookup of _dmarc.dead.example failed (no answer in time, remembered)' "$PLOG")" 2 \
    "the next two were answered from the cache"
is "$(grep -c 'query\[TXT\] _dmarc.only-uncond.example' "$W/dns.log")" 0 \
    "no lookup for a list with dmarc_mitigate_unconditionally"
grep 'DMARC' "$PLOG" | sed 's/^/    /' >"$W/dmarc.log"
diag "$(head -n 30 "$W/dmarc.log")"
is "in=$(count_files "$SPOOL/in") out=$(count_files "$SPOOL/out") bad=$(count_files "$SPOOL/bad") hold=$(count_files "$SPOOL/hold")" \
    "in=0 out=0 bad=0 hold=0" "the spool is empty afterwards"
dl_sink_stop "$SINK_PID"

# ------------------------------------- a running daemon: TTL, resolv.conf
# mmq-process as a daemon: a post with the first dnsmasq, then that one
# is replaced by one on another address with TTLs of 1 s, and
# resolv.conf is rewritten in place: the daemon must ask the new server
# (no failed lookup), and ask again once the 1 s TTL has passed.
"$MMQ_PROCESS" -c "$CONF" -e 2>"$W/daemon.log" &
DPID=$!
at_exit kill_pid "$DPID"
wait_out() { # wait_out N: until out/ holds N entries (10 s at most)
    local i
    for i in $(seq 200); do
        [ "$(count_files "$SPOOL/out")" -ge "$1" ] && return 0
        sleep 0.05
    done
    return 1
}
post 31 'Alice Doe <alice@reject.example>' mf
wait_out 1
ok $? "daemon: the first post is expanded"
dns_kill "$DNS_PID"
OLD_ADDR=$DNS_ADDR
start_dns "$W/dns2.log" 1
printf 'nameserver %s\n' "$DNS_ADDR" >"$W/resolv.conf" # same inode: the bind mount shows it
diag "second dnsmasq on $DNS_ADDR (was $OLD_ADDR), TTL 1 s"
post 32 'Tess <tess@ttl.example>' mf
wait_out 2
ok $? "daemon: the second post is expanded"
sleep 1.5
post 33 'Tom <tom@ttl.example>' mf
wait_out 3
ok $? "daemon: the third post is expanded"
kill -TERM "$DPID"
wait "$DPID"
is "$?" 0 "daemon: SIGTERM, exit 0"
is "$(grep -c 'DMARC: munge_from: ttl.example publishes the DMARC policy p=reject' "$W/daemon.log")" 2 \
    "daemon: after resolv.conf changed, the new server answered both ttl.example posts"
is "$(grep -c 'lookup of .* failed' "$W/daemon.log")" 0 "daemon: no failed lookup"
is "$(grep -c 'query\[TXT\] _dmarc.ttl.example from' "$W/dns2.log")" 2 \
    "daemon: a 1 s TTL expired between the two posts: asked twice"
n=0
for f in $(find "$SPOOL/out" -type f); do
    pl_msg "$f" "$W/out.msg"
    case $(pl_hvals "$W/out.msg" From) in
    '"Alice Doe via mf" <mf@'"$D"'>' | '"Tess via mf" <mf@'"$D"'>' | '"Tom via mf" <mf@'"$D"'>') n=$((n + 1)) ;;
    esac
done
is "$n" 3 "daemon: the three posts munged in out/"
pl_clear_out
done_testing
