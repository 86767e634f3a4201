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
