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
    [ -n "$MTA_DNS_PID" ] || return 0
    [ "$(readlink "/proc/$MTA_DNS_PID/exe" 2>/dev/null)" = /usr/sbin/dnsmasq ] &&
        kill -TERM "$MTA_DNS_PID" 2>/dev/null
    wait "$MTA_DNS_PID" 2>/dev/null
    MTA_DNS_PID=
    return 0
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
