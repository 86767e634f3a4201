#!/bin/bash
# t/mta-lib.sh - helpers shared by the tests that run mmq behind a real MTA
# (t/mta-postfix.sh, t/mta-exim.sh).  Source it after t/lib.sh and
# t/process-lib.sh.
#
#   mta_init                 skip unless root, with swaks, runuser and
#                            smtp-sink; create user and group mmq if absent
#   mta_setup                a fresh $T: $SPOOL (owned by mmq:mmq, made by
#                            mmqctl init -u mmq -g mmq), $CONF, $LISTS with
#                            the list "announce" (domain $D, 3 members in
#                            example.net: $MEMBERS), $BIN/mmq-filter (a copy
#                            of the built one, so that user mmq can run it),
#                            the members' sink ($SINK_DIR, $SINK_PORT)
#   mta_conf RELAY_PORT      write $CONF with relay_port = RELAY_PORT
#   mta_free_port            print a free TCP port on 127.0.0.1
#   mta_wait_port PORT SECS  wait until something listens on 127.0.0.1:PORT
#   mta_swaks FILE ARG...    swaks --server 127.0.0.1:$MTA_PORT ARG...;
#                            output to FILE; returns swaks's status
#   mta_as_mmq CMD...        run CMD as user mmq (runuser)
#   mta_process              mmq-process -1 -e as mmq ($T/process.log)
#   mta_deliver              mmq-deliver -1 -e as mmq ($T/deliver.log)
#   mta_wait_files DIR N SECS  wait until DIR holds N files (or more)
#   mta_wait_grep FILE ERE SECS  wait until FILE has a line matching ERE
#   mta_list_id_copies TEXT  of the sink's dumps holding TEXT: MTA_NDUMPS how
#                            many, MTA_HDRS how many carry List-Id:
#                            Announcements <announce.$D> (quoted or not)
#   sink_rcpts_of TEXT       recipients of the sink's transactions whose
#                            dump holds TEXT
#   wait_rcpts_of TEXT N     wait (10 s at most) for N such recipients
#   mta_stop_pid PID EXE N   TERM PID if it runs EXE, wait N tenths of a
#                            second, KILL it, reap it
#
# Email commands end to end (process/command.c; issue 12):
#   mta_commands RUNQ        subscribe by mail to announce-join@ and by a
#                            "subscribe" line to announce-request@, the
#                            confirmations reach the subscribers at the
#                            sink, their replies to announce-confirm+TOKEN@
#                            through the MTA (the +TOKEN must reach
#                            mmq-filter's -r) make them members, a post
#                            reaches them; an approval round (the owner
#                            replies through the MTA); unsubscribe the
#                            same two ways, and the next post does not
#                            reach them.  RUNQ: what makes the MTA deliver
#                            what it queued (exim_q for Exim, : for Postfix)
#
# DKIM (the list mail leaves signed by the list's domain; a real verifier
# on the members' side, with the public key in the test's own DNS):
#   mta_dkim_init [OWNER [MODE]]  skip unless opendkim-genkey, dkimverify
#                            (python3-dkim), dnsmasq and unshare are there;
#                            make the list's key with opendkim-genkey
#                            (selector $DKIM_SEL, domain $D) in $DKIM_DIR
#                            (under /run: OpenDKIM refuses files in paths
#                            others can write), key owned by OWNER (default
#                            opendkim:opendkim), mode MODE (600), removed
#                            at exit; DKIM_TXT: the record's value
#   mta_dns_start            dnsmasq on a random 127.x.y.z port 53 (never
#                            127.0.0.1, which concurrent tests would want)
#                            answering $DKIM_SEL._domainkey.$D TXT and
#                            NXDOMAIN for all else; $T/resolv.conf names it
#   mta_dkim_verify FILE     dkimverify < FILE (made CRLF) in a private
#                            mount namespace whose /etc/resolv.conf is
#                            $T/resolv.conf; prints its verdict, its status
#   mta_dkim_copies TEXT     of the sink's dumps holding TEXT: MTA_NDUMPS
#                            how many, MTA_DKIM_PASS how many dkimverify
#                            passes, MTA_DKIM_D their d=/s= values (sort -u)
#   mta_dkim_check TEXT [N]  three checks: dkimverify says "signature ok"
#                            for every such dump, one per member (N, default
#                            ${#MEMBERS[@]}: the test MTAs send one member
#                            per transaction), all are
#                            signed d=$D s=$DKIM_SEL, and one of them with
#                            its Subject changed fails
#
# Both tests create, when they are missing, the system group and user mmq
# (groupadd --system mmq; useradd --system -g mmq -d /nonexistent
# -s /usr/sbin/nologin mmq), as the README of contrib/postfix describes
# for a real installation.  Nothing is setuid or setgid.
set -u

# D and MEMBERS are for the tests
# shellcheck disable=SC2034
D=lists.example.org
MEMBERS=(m1@example.net m2@example.net m3@example.net)
MTA_PORT=
DKIM_SEL=mmq

mta_init() {
    is_root || skip_all "the MTA tests need root (they start an MTA and run mmq-filter as user mmq)"
    command -v swaks >/dev/null 2>&1 || skip_all "swaks is not installed"
    command -v runuser >/dev/null 2>&1 || skip_all "runuser (util-linux) is not installed"
    pl_init
    [ -x "$MMQ_DELIVER" ] || skip_all "$MMQ_DELIVER not built"
    # shellcheck source=t/smtp-sink-lib.sh
    . "${top_srcdir:?}/t/smtp-sink-lib.sh"
    [ -x "$SMTP_SINK" ] || skip_all "smtp-sink (Debian package postfix) is not installed"
    if ! getent group mmq >/dev/null; then
        groupadd --system mmq 2>/dev/null || getent group mmq >/dev/null ||
            bail_out "cannot create the group mmq"
    fi
    if ! id -u mmq >/dev/null 2>&1; then
        useradd --system -g mmq -d /nonexistent -s /usr/sbin/nologin mmq 2>/dev/null ||
            id -u mmq >/dev/null 2>&1 || bail_out "cannot create the user mmq"
    fi
}

mta_free_port() {
    python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
}

mta_wait_port() {
    local port=$1 i n=$(($2 * 10))
    for ((i = 0; i < n; i++)); do
        python3 -c "import socket; socket.create_connection(('127.0.0.1', $port), 1).close()" \
            2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}

mta_conf() {
    write_conf 'spool_user = "mmq";' 'relay_host = "127.0.0.1";' "relay_port = $1;" \
        'helo_name = "mmq.test";' 'smtp_timeout = 20;' 'connections = 2;' \
        'retry_min = 1;' 'retry_max = 2;' 'filter_timeout = 60;' \
        'max_message_size = 100000;' "log_file = \"$T/mmq.log\";"
}

mta_setup() {
    mk_tmpdir
    SPOOL=$T/spool
    LISTS=$T/lists
    CONF=$T/mmq.conf
    BIN=$T/bin
    mkdir "$LISTS" "$BIN" || bail_out "mkdir failed"
    # mmq-process (email commands) and mmq-bounce rewrite a members file by
    # rename: its directory must be writable by mmq (contrib READMEs)
    chown mmq:mmq "$LISTS" || bail_out "chown mmq:mmq $LISTS failed"
    # mmq's log_file (no syslog here): every program appends, mmq-filter
    # as the MTA's pipe user mmq
    install -o mmq -g mmq -m 640 /dev/null "$T/mmq.log" || bail_out "cannot create $T/mmq.log"
    if ! cp "$MMQ_FILTER" "$BIN/mmq-filter" || ! chmod 755 "$BIN/mmq-filter"; then
        bail_out "cannot copy $MMQ_FILTER"
    fi
    mta_conf 25
    if ! "$MMQCTL" -c "$CONF" init -u mmq -g mmq >"$T/init.out" 2>&1; then
        diag "$(cat "$T/init.out")"
        bail_out "mmqctl init -u mmq -g mmq failed for $SPOOL"
    fi
    pl_list announce 'description = "Announcements";' 'posters = "anyone";' \
        'owners = ["owner@example.net"];'
    pl_members announce "${MEMBERS[@]}"
    printf '%s\n' "${MEMBERS[@]}" >"$T/members"
    # the members' mail server: smtp-sink, run as the owner of the directory
    mkdir "$T/sink"
    pl_sink_start "$T/sink" || bail_out "cannot start smtp-sink"
}

mta_swaks() {
    local out=$1
    shift
    timeout 60 swaks --server "127.0.0.1:$MTA_PORT" --helo client.test "$@" >"$out" 2>&1
}

mta_as_mmq() {
    runuser -u mmq -- "$@"
}

mta_process() {
    timeout 30 runuser -u mmq -- "$MMQ_PROCESS" -c "$CONF" -1 -e 2>>"$T/process.log"
}

mta_deliver() {
    timeout 60 runuser -u mmq -- "$MMQ_DELIVER" -c "$CONF" -1 -e 2>>"$T/deliver.log"
}

mta_wait_files() {
    local dir=$1 want=$2 i n=$(($3 * 10))
    for ((i = 0; i < n; i++)); do
        [ "$(count_files "$dir")" -ge "$want" ] && return 0
        sleep 0.1
    done
    return 1
}

mta_wait_grep() {
    local file=$1 re=$2 i n=$(($3 * 10))
    for ((i = 0; i < n; i++)); do
        grep -Eq -- "$re" "$file" 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}

# shellcheck disable=SC2034 # MTA_HDRS and MTA_NDUMPS are for the caller
mta_list_id_copies() {
    local f
    MTA_HDRS=0
    MTA_NDUMPS=0
    while IFS= read -r f; do
        MTA_NDUMPS=$((MTA_NDUMPS + 1))
        sink_message "$f" >"$T/msg"
        case $(pl_hvals "$T/msg" List-Id) in
        "Announcements <announce.$D>" | "\"Announcements\" <announce.$D>")
            MTA_HDRS=$((MTA_HDRS + 1))
            ;;
        esac
    done < <(grep -l "$1" "$T"/sink/dump.*)
}

mta_dkim_init() {
    local c
    for c in opendkim-genkey dnsmasq unshare; do
        command -v "$c" >/dev/null 2>&1 || [ -x "/usr/sbin/$c" ] ||
            skip_all "$c is not installed (scripts/deps.sh)"
    done
    [ -x /usr/bin/dkimverify ] || skip_all "dkimverify (python3-dkim) is not installed"
    local owner=${1:-opendkim:opendkim}
    id -u "${owner%%:*}" >/dev/null 2>&1 || skip_all "no user ${owner%%:*} (to own the DKIM key)"
    # OpenDKIM refuses a configuration file or key in a path that others
    # may write (/tmp): the key and the test's opendkim.conf live in a
    # directory of their own under /run (root's, mode 755), removed at exit
    DKIM_DIR=$(mktemp -d /run/mmq-dkim.XXXXXXXX) || bail_out "mktemp -d /run/mmq-dkim.XXXXXXXX failed"
    at_exit mta_dkim_rmdir "$DKIM_DIR"
    # as the contrib READMEs show: a 2048-bit RSA key, selector and domain
    if ! PATH=$PATH:/usr/sbin opendkim-genkey -b 2048 -d "$D" -s "$DKIM_SEL" \
        -D "$DKIM_DIR" >"$T/genkey.out" 2>&1; then
        diag "$(cat "$T/genkey.out")"
        bail_out "opendkim-genkey failed"
    fi
    if ! chown -R "$owner" "$DKIM_DIR" || ! chmod 755 "$DKIM_DIR" ||
        ! chmod "${2:-600}" "$DKIM_DIR/$DKIM_SEL.private"; then
        bail_out "chown/chmod of the key failed"
    fi
    # the record's value: the quoted strings of SEL.txt, joined
    DKIM_TXT=$(sed -n 's/[^"]*"\([^"]*\)"[^"]*/\1/gp' "$DKIM_DIR/$DKIM_SEL.txt" | tr -d '\n')
    case $DKIM_TXT in
    *"v=DKIM1"*"p=M"*) ;;
    *) bail_out "no DKIM record in $DKIM_DIR/$DKIM_SEL.txt: $(cat "$DKIM_DIR/$DKIM_SEL.txt")" ;;
    esac
}

mta_dkim_rmdir() {
    case $1 in
    /run/mmq-dkim.????????) rm -rf -- "$1" ;;
    esac
}

MTA_DNS_PID=
mta_dns_stop() {
    mta_stop_pid "$MTA_DNS_PID" /usr/sbin/dnsmasq 30
    MTA_DNS_PID=
}

mta_dns_start() {
    local txt chunks="" rest try
    # a TXT record's strings hold at most 255 bytes each
    rest=$DKIM_TXT
    while [ -n "$rest" ]; do
        chunks+=",${rest:0:250}" # (no quotes: dnsmasq would keep them)
        rest=${rest:250}
    done
    at_exit mta_dns_stop
    for try in 1 2 3 4 5; do
        MTA_DNS_IP=127.$((RANDOM % 200 + 20)).$((RANDOM % 250 + 1)).$((RANDOM % 250 + 1))
        echo "nameserver $MTA_DNS_IP" >"$T/resolv.conf"
        txt="$DKIM_SEL._domainkey.$D$chunks"
        /usr/sbin/dnsmasq --keep-in-foreground --no-resolv --no-hosts --user=root \
            --pid-file= --listen-address="$MTA_DNS_IP" --bind-interfaces --port=53 \
            --address=/#/ --txt-record="$txt" --log-facility="$T/dnsmasq.log" \
            >>"$T/dnsmasq.out" 2>&1 &
        MTA_DNS_PID=$!
        for _ in $(seq 30); do
            python3 - "$MTA_DNS_IP" <<'PY' 2>/dev/null && return 0
import socket, sys
# a bare DNS query for "." NS: any answer means the server is up
q = b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\x01"
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(0.2)
s.sendto(q, (sys.argv[1], 53))
sys.exit(0 if s.recv(512)[:2] == b"\x12\x34" else 1)
PY
            kill -0 "$MTA_DNS_PID" 2>/dev/null || break
            sleep 0.1
        done
        mta_dns_stop
    done
    diag "$(tail -n 5 "$T/dnsmasq.out")"
    bail_out "dnsmasq did not start"
}

mta_dkim_verify() {
    sed 's/\r*$/\r/' "$1" >"$1.crlf"
    # shellcheck disable=SC2016 # $1 is the inner shell's
    timeout 30 unshare -m --propagation private sh -c \
        'mount --bind "$1" /etc/resolv.conf && exec /usr/bin/dkimverify' sh "$T/resolv.conf" \
        <"$1.crlf" 2>&1
}

# shellcheck disable=SC2034 # for the caller
mta_dkim_copies() {
    local f n=0 out
    MTA_NDUMPS=0
    MTA_DKIM_PASS=0
    MTA_DKIM_D=
    while IFS= read -r f; do
        n=$((n + 1))
        sink_message "$f" >"$T/dkim-msg.$n"
        out=$(mta_dkim_verify "$T/dkim-msg.$n")
        if [ "$out" = "signature ok" ]; then
            MTA_DKIM_PASS=$((MTA_DKIM_PASS + 1))
        else
            diag "dkimverify of $f: $out"
            [ -n "${MTA_DEBUG_COPY:-}" ] && mkdir -p "$MTA_DEBUG_COPY" && cp "$T/dkim-msg.$n" "$T/resolv.conf" "$DKIM_DIR/$DKIM_SEL.txt" "$MTA_DEBUG_COPY/"
        fi
        MTA_DKIM_D+=$(awk '/^DKIM-Signature:/{h=1} h&&!/^DKIM-Signature:/&&!/^[ \t]/{h=0} h' "$T/dkim-msg.$n" |
            tr -d ' \t\n' | tr ';' '\n' | grep -E '^(DKIM-Signature:)?[ds]=' |
            sed 's/^DKIM-Signature://' | sort | tr '\n' ' ')$'\n'
    done < <(grep -l "$1" "$T"/sink/dump.*)
    MTA_NDUMPS=$n
    MTA_DKIM_D=$(printf '%s' "$MTA_DKIM_D" | sort -u | sed 's/ $//')
}

mta_dkim_check() {
    local want=${2:-${#MEMBERS[@]}}
    mta_dkim_copies "$1"
    if [ "$MTA_NDUMPS" = "$want" ] && [ "$MTA_DKIM_PASS" = "$MTA_NDUMPS" ]; then
        pass "dkimverify (public key from the test's DNS at $MTA_DNS_IP): signature ok for every member's copy ($MTA_DKIM_PASS of $want)"
    else
        fail "dkimverify (public key from the test's DNS at $MTA_DNS_IP): signature ok for every member's copy"
        diag "$MTA_DKIM_PASS of $MTA_NDUMPS copies verified, $want expected"
    fi
    is "$MTA_DKIM_D" "d=$D s=$DKIM_SEL" "signed by the list's domain: d=$D, s=$DKIM_SEL"
    [ "$MTA_NDUMPS" -ge 1 ] && diag "signed header fields: $(awk '/^DKIM-Signature:/{h=1} h&&!/^DKIM-Signature:/&&!/^[ \t]/{h=0} h' "$T/dkim-msg.1" |
        tr -d ' \t\n' | tr ';' '\n' | grep '^h=')"
    # the check can fail: the same copy with its Subject changed does not verify
    if [ "$MTA_NDUMPS" -ge 1 ]; then
        sed 's/^Subject: /Subject: [changed] /' "$T/dkim-msg.1" >"$T/dkim-bad"
        is "$(mta_dkim_verify "$T/dkim-bad")" "signature verification failed" \
            "dkimverify: a copy with its Subject changed fails"
    else
        fail "dkimverify: a copy with its Subject changed fails"
    fi
}

sink_rcpts_of() {
    local f
    grep -l -- "$1" "$T"/sink/dump.* 2>/dev/null | while IFS= read -r f; do
        awk '/^Received: /{exit} /^X-Rcpt-Args:/{sub(/^X-Rcpt-Args: *</,""); sub(/>.*/,""); print}' "$f"
    done
}

wait_rcpts_of() {
    for _ in $(seq 100); do
        [ "$(sink_rcpts_of "$1" | wc -l)" -ge "$2" ] && break
        sleep 0.1
    done
    sleep 0.5 # a duplicate would show now
}

mta_stop_pid() {
    local pid=$1 i
    [ -n "$pid" ] || return 0
    if [ "$(readlink "/proc/$pid/exe" 2>/dev/null)" = "$2" ]; then
        kill -TERM "$pid" 2>/dev/null
        for ((i = 0; i < $3; i++)); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null
    fi
    wait "$pid" 2>/dev/null
    return 0
}

# ------------------------------------------------------ email commands

# _mc_dumps RCPT ERE: the sink's dumps to RCPT whose text matches ERE, oldest first
_mc_dumps() {
    local f
    while IFS= read -r f; do
        awk '/^Received: /{exit} /^X-Rcpt-Args:/{print}' "$f" | grep -qiF "<$1>" || continue
        tr -d '\r' <"$f" | grep -Eq -- "$2" && printf '%s\n' "$f"
    done < <(sink_dumps "$T/sink")
}

# _mc_wait RCPT ERE: wait (15 s at most) for such a dump; print the newest
_mc_wait() {
    local i d
    for ((i = 0; i < 150; i++)); do
        d=$(_mc_dumps "$1" "$2" | tail -n 1)
        [ -n "$d" ] && printf '%s\n' "$d" && return 0
        sleep 0.1
    done
    return 1
}

# _mc_round N FROM TO SUBJECT BODY [FROM TO SUBJECT BODY]...: each message
# through the MTA (swaks; BODY not empty, or swaks asks for one), then the
# N entries in in/ (MC_IN: their roles and recipients), mmq-process,
# mmq-deliver back through the MTA to the sink
_mc_round() {
    local n=$1 i=0 e
    shift
    while [ $# -ge 4 ]; do
        i=$((i + 1))
        mta_swaks "$T/swaks_mc.$i" --from "$1" --to "$2" --header "Subject: $3" \
            --body "$4" || diag "swaks $1 -> $2 failed: $(tail -n 3 "$T/swaks_mc.$i")"
        shift 4
    done
    $MC_RUNQ
    mta_wait_files "$SPOOL/in" "$n" 20 || diag "in/ holds $(count_files "$SPOOL/in") entries, not $n"
    # what reached in/: "ROLE RECIPIENT" lines, sorted (before they are gone)
    entries in
    MC_IN=$(for e in "${ENTRIES[@]}"; do
        printf '%s %s\n' "$(entry_field "$e" role)" "$(entry_parse "$e" && pct_decode "${ENV_RCPT[0]%% *}")"
    done | sort)
    mta_process || diag "mmq-process failed: $(tail -n 5 "$T/process.log")"
    mta_deliver || diag "mmq-deliver failed: $(tail -n 5 "$T/deliver.log")"
    $MC_RUNQ
}

# _mc_token RCPT SUBJECT-ERE: MC_TOK and MC_RT (Reply-To) of the newest
# confirmation request to RCPT at the sink
_mc_token() {
    local d
    MC_TOK=
    MC_RT=
    d=$(_mc_wait "$1" "^Subject: $2") || return 1
    MC_RT=$(tr -d '\r' <"$d" | sed -n 's/^Reply-To: //p' | head -n 1)
    MC_TOK=$(tr -d '\r' <"$d" | sed -n 's/^Subject: confirm \([0-9a-z]*\)$/\1/p' | head -n 1)
    [ -n "$MC_TOK" ]
}

# _mc_member ADDRESS: is ADDRESS a line of the members file?
_mc_member() {
    grep -qix -- "$1" "$LISTS/announce.members"
}

mta_commands() {
    MC_RUNQ=$1
    local s1=sub1@example.net s2=sub2@example.net s3=sub3@example.net
    local o=owner@example.net rt1 rt2 n a

    # subscribe: to announce-join@, and "subscribe" in a -request body
    _mc_round 2 "$s1" "announce-join@$D" "join" "please add me" \
        "$s2" "announce-request@$D" "hello" "subscribe"
    is "$(printf '%s\n' "$MC_IN" | cut -d' ' -f1 | tr '\n' ' ')" \
        "join request " "commands: announce-join@ and announce-request@ reach in/ as roles join and request"
    _mc_token "$s1" "confirm " && rt1=$MC_RT
    ok $? "commands: the confirmation request reached $s1's mailbox (the sink) through the MTA"
    is "$rt1" "announce-confirm+$MC_TOK@$D" "commands: its Reply-To is announce-confirm+TOKEN@$D"
    _mc_token "$s2" "confirm " && rt2=$MC_RT
    ok $? "commands: the confirmation request for the -request 'subscribe' line reached $s2"
    _mc_wait "$s1" "^Subject: The results of your commands" >/dev/null
    ok $? "commands: the reply to $s1's command reached it"
    check "commands: neither is a member before confirming" eval "! _mc_member $s1 && ! _mc_member $s2"

    # the plain replies to the confirmations, through the MTA
    _mc_round 2 "$s1" "$rt1" "Re: confirm ${rt1#*+}" "> reply to confirm" \
        "$s2" "$rt2" "Re: confirm ${rt2#*+}" "thanks"
    is "$(printf '%s\n' "$MC_IN" | tr '\n' ' ')" \
        "$(printf 'confirm %s\nconfirm %s\n' "${rt1,,}" "${rt2,,}" | sort | tr '\n' ' ')" \
        "commands: the replies reach in/ as role confirm, the +TOKEN intact in the recipient"
    check "commands: both replies made members" eval "_mc_member $s1 && _mc_member $s2"
    _mc_wait "$s1" "$s1 subscribed" >/dev/null
    ok $? "commands: the reply 'subscribed' reached $s1"

    # an approval round: subscribe_policy approve
    printf 'subscribe_policy = "approve";\n' >>"$LISTS/announce.conf"
    _mc_round 1 "$s3" "announce-join@$D" "join" "me too"
    _mc_token "$s3" "confirm s"
    ok $? "approve: the confirmation request reached $s3"
    _mc_round 1 "$s3" "$MC_RT" "Re: confirm $MC_TOK" "yes"
    check "approve: $s3 is not a member before the owner approves" eval "! _mc_member $s3"
    _mc_wait "$s3" "awaits an owner's approval" >/dev/null
    ok $? "approve: $s3 was told the subscription awaits approval"
    _mc_token "$o" "confirm a"
    ok $? "approve: the approval request reached the owner ($o) through the MTA"
    is "$MC_RT" "announce-confirm+$MC_TOK@$D" "approve: its Reply-To is announce-confirm+TOKEN@$D"
    _mc_round 1 "$o" "$MC_RT" "Re: confirm $MC_TOK" "approved"
    check "approve: the owner's reply through the MTA made $s3 a member" _mc_member "$s3"
    _mc_wait "$o" "$s3 subscribed" >/dev/null
    ok $? "approve: the owner got the reply '$s3 subscribed'"

    # the next post reaches the new members
    _mc_round 1 alice@example.org "announce@$D" "post after subscribing" "post one, to new members"
    wait_rcpts_of "post one, to new members" 6
    is "$(sink_rcpts_of 'post one, to new members' | sort | tr '\n' ' ')" \
        "$(printf '%s\n' "${MEMBERS[@]}" "$s1" "$s2" "$s3" | sort | tr '\n' ' ')" \
        "commands: the next post reached the three new members and the others, once each"

    # unsubscribe: announce-leave@, and "unsubscribe" in a -request body
    _mc_round 2 "$s1" "announce-leave@$D" "leave" "bye" \
        "$s2" "announce-request@$D" "unsubscribe" "thanks"
    _mc_token "$s1" "confirm u" && rt1=$MC_RT
    ok $? "unsubscribe: the confirmation request reached $s1"
    _mc_token "$s2" "confirm u" && rt2=$MC_RT
    ok $? "unsubscribe: the confirmation request for the -request Subject reached $s2"
    check "unsubscribe: both still members before confirming" eval "_mc_member $s1 && _mc_member $s2"
    _mc_round 2 "$s1" "$rt1" "Re: confirm ${rt1#*+}" "yes" "$s2" "$rt2" "Re: confirm ${rt2#*+}" "yes"
    check "unsubscribe: the replies through the MTA removed both" eval "! _mc_member $s1 && ! _mc_member $s2"
    _mc_round 1 alice@example.org "announce@$D" "post after leaving" "post two, after leaving"
    wait_rcpts_of "post two, after leaving" 4
    is "$(sink_rcpts_of 'post two, after leaving' | sort | tr '\n' ' ')" \
        "$(printf '%s\n' "${MEMBERS[@]}" "$s3" | sort | tr '\n' ' ')" \
        "unsubscribe: the next post no longer reaches them"
    n=$(for a in "$s1" "$s2" "$s3" "$o"; do _mc_dumps "$a" "^Subject: confirm "; done | wc -l)
    is "$n" 6 "commands: six confirmation and approval requests in all, none twice"
    # the members file back as it was, for the tests' later checks
    printf '%s\n' "${MEMBERS[@]}" >"$LISTS/announce.members"
    sed -i '/^subscribe_policy = "approve";$/d' "$LISTS/announce.conf"
}
