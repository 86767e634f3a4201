#!/bin/bash
# t/lib.sh - helpers for the shell integration tests; every t/*.sh sources it.
#
# Output is TAP (the automake TAP driver reads it): one "ok N - name" or
# "not ok N - name" per check, "# ..." diagnostics, and the plan "1..N"
# printed by done_testing at the end.  A test that cannot run at all calls
# skip_all, which prints "1..0 # SKIP reason".
#
# The Makefile exports MMQ_FILTER and MMQCTL (absolute paths of the built
# programs), top_srcdir and top_builddir.  Everything a test creates lives
# in directories made by mk_tmpdir / mk_spool under /tmp, removed (after the
# at_exit hooks ran, e.g. an umount) by the EXIT trap.
set -u

export LC_ALL=C # byte semantics for ${#var}, sort, grep
umask 022

if [ -z "${MMQ_FILTER:-}" ] || [ -z "${MMQCTL:-}" ]; then
    echo "1..0 # SKIP MMQ_FILTER and MMQCTL are not set (run through make check)"
    exit 0
fi
if [ ! -x "$MMQ_FILTER" ] || [ ! -x "$MMQCTL" ]; then
    echo "Bail out! $MMQ_FILTER or $MMQCTL is not an executable"
    exit 99
fi

_t_count=0
_t_failed=0
_t_dirs=()
_t_hooks=()

# ------------------------------------------------------------------ TAP

diag() {
    local line
    while IFS= read -r line; do
        printf '# %s\n' "$line"
    done <<<"$*"
}

pass() {
    _t_count=$((_t_count + 1))
    printf 'ok %d - %s\n' "$_t_count" "$1"
}

fail() {
    _t_count=$((_t_count + 1))
    _t_failed=$((_t_failed + 1))
    printf 'not ok %d - %s\n' "$_t_count" "$1"
}

# ok STATUS NAME: passes when STATUS is 0 (e.g. "cmp -s a b; ok $? name").
ok() {
    if [ "$1" -eq 0 ] 2>/dev/null; then
        pass "$2"
    else
        fail "$2"
    fi
}

# check NAME COMMAND...: passes when COMMAND exits 0.
check() {
    local name=$1
    shift
    if "$@"; then
        pass "$name"
    else
        fail "$name"
        diag "command failed: $*"
    fi
}

# is GOT WANT NAME
is() {
    if [ "$1" == "$2" ]; then
        pass "$3"
    else
        fail "$3"
        diag "     got: $(printf '%q' "$1")"
        diag "expected: $(printf '%q' "$2")"
    fi
}

# starts_with GOT PREFIX NAME
starts_with() {
    if [ "${1:0:${#2}}" == "$2" ]; then
        pass "$3"
    else
        fail "$3"
        diag "     got: $(printf '%q' "$1")"
        diag "expected: a text starting with $(printf '%q' "$2")"
    fi
}

# skip REASON [COUNT]: COUNT checks that cannot run here.
skip() {
    local i n=${2:-1}
    for ((i = 0; i < n; i++)); do
        _t_count=$((_t_count + 1))
        printf 'ok %d # SKIP %s\n' "$_t_count" "$1"
    done
}

skip_all() {
    printf '1..0 # SKIP %s\n' "$1"
    exit 0
}

bail_out() {
    printf 'Bail out! %s\n' "$1"
    exit 99
}

done_testing() {
    printf '1..%d\n' "$_t_count"
    if [ "$_t_failed" -ne 0 ]; then
        diag "failed $_t_failed of $_t_count checks"
        exit 1
    fi
    exit 0
}

is_root() {
    [ "$(id -u)" -eq 0 ]
}

# UNPRIV: a command prefix that runs a command as an unprivileged user:
# empty when the suite does not run as root, "runuser -u nobody --" when it
# does, so that the checks root's privileges would defeat (an unreadable
# file, a directory it may not write) still run in CI, which runs as root.
# unpriv_ok: 0 if such checks can run here.
UNPRIV=()
if is_root && command -v runuser >/dev/null 2>&1 &&
    runuser -u nobody -- true 2>/dev/null; then
    UNPRIV=(runuser -u nobody --)
fi
unpriv_ok() {
    ! is_root || [ "${#UNPRIV[@]}" -gt 0 ]
}

# Seconds since the epoch with microseconds, and the difference of two
# such values in milliseconds (no fork: bash 5's EPOCHREALTIME).
now() {
    printf '%s' "${EPOCHREALTIME/,/.}"
}
elapsed_ms() { # elapsed_ms START END
    local s=${1/./} e=${2/./}
    echo $(((10#$e - 10#$s) / 1000))
}

# ------------------------------------------------------------- clean-up

# at_exit COMMAND...: run at exit (last registered first), before the
# temporary directories are removed.
at_exit() {
    local cmd
    printf -v cmd '%q ' "$@"
    _t_hooks+=("$cmd")
}

_t_pid=$BASHPID
_t_cleanup() {
    local i d
    # Only the test's own shell cleans up: a forked child (e.g. a background
    # job hit by a signal before it could exec) must not remove anything.
    [ "$BASHPID" == "$_t_pid" ] || return 0
    for ((i = ${#_t_hooks[@]} - 1; i >= 0; i--)); do
        eval "${_t_hooks[i]}" >/dev/null 2>&1
    done
    for d in "${_t_dirs[@]}"; do
        case $d in
        /tmp/mmq-test.*)
            chmod -R u+rwx "$d" 2>/dev/null
            rm -rf -- "$d"
            ;;
        esac
    done
}
trap _t_cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# mk_tmpdir: a fresh directory under /tmp in $T, removed at exit.
mk_tmpdir() {
    T=$(mktemp -d /tmp/mmq-test.XXXXXXXX) || bail_out "mktemp -d failed"
    _t_dirs+=("$T")
    chmod 755 "$T"
}

# write_conf [LINE...]: write $CONF for $SPOOL and $LISTS, node "testnode",
# plus the extra lines given (libconfig syntax, e.g. "max_message_size = 1000;")
# and those of the array TEST_CONF_LINES (a test's own defaults).
TEST_CONF_LINES=()
write_conf() {
    {
        printf 'spool = "%s";\n' "$SPOOL"
        printf 'lists_dir = "%s";\n' "$LISTS"
        printf 'node = "testnode";\n'
        local line
        for line in ${TEST_CONF_LINES[@]+"${TEST_CONF_LINES[@]}"} "$@"; do
            printf '%s\n' "$line"
        done
    } >"$CONF"
}

# mk_spool [CONFIG_LINE...]: a fresh temporary directory $T holding
# $CONF (mmq.conf), $LISTS (lists "announce" and "dev") and an initialised
# spool $SPOOL.
mk_spool() {
    mk_tmpdir
    SPOOL=$T/spool
    LISTS=$T/lists
    CONF=$T/mmq.conf
    mkdir "$LISTS" || bail_out "mkdir $LISTS failed"
    : >"$LISTS/announce.conf"
    : >"$LISTS/dev.conf"
    write_conf "$@"
    if ! "$MMQCTL" -c "$CONF" init >"$T/init.out" 2>&1; then
        diag "$(cat "$T/init.out")"
        bail_out "mmqctl init failed for $SPOOL"
    fi
}

# ---------------------------------------------------------- the filter

# run_filter INPUT ARG...: run mmq-filter -c $CONF ARG... <INPUT, behind
# the command prefix in the array FILTER_AS if set (e.g. "${UNPRIV[@]}").
# Sets RC (exit status), OUT (stdout) and ERR (stderr).
FILTER_AS=()
run_filter() {
    local input=$1
    shift
    ${FILTER_AS[@]+"${FILTER_AS[@]}"} "$MMQ_FILTER" -c "$CONF" "$@" <"$input" >"$T/filter.out" 2>"$T/filter.err"
    RC=$?
    OUT=$(cat "$T/filter.out")
    ERR=$(cat "$T/filter.err")
}

# ------------------------------------------------------- spool entries

# entries [QUEUE...]: set ENTRIES to the entry files of the queues (all by
# default), sorted; prints nothing.
entries() {
    local q dirs=()
    [ $# -eq 0 ] && set -- in bounces out deferred hold bad
    for q in "$@"; do
        dirs+=("$SPOOL/$q")
    done
    mapfile -t ENTRIES < <(find "${dirs[@]}" -type f 2>/dev/null | sort)
}

# count_files DIR: number of regular files below DIR.
count_files() { # (the token secret of mmqctl init is not an entry)
    find "$1" -type f ! -path "${SPOOL:-/nonexistent}/secret" 2>/dev/null | wc -l
}

# tmp_files: the names in $SPOOL/tmp, one a line (empty when clean).
tmp_files() {
    ls -A "$SPOOL/tmp" 2>/dev/null
}

# one_entry [QUEUE...]: set ENTRY to the only entry of the queues; returns
# non-zero (with a diagnostic) if there is not exactly one.
one_entry() {
    entries "$@"
    ENTRY=
    if [ "${#ENTRIES[@]}" -ne 1 ]; then
        diag "expected exactly one entry in ${*:-the spool}, found ${#ENTRIES[@]}: ${ENTRIES[*]}"
        return 1
    fi
    ENTRY=${ENTRIES[0]}
}

# pct_decode VALUE: print an envelope value decoded (%XX -> byte).
pct_decode() {
    local v=$1
    v=${v//\\/\\\\}
    v=${v//%/\\x}
    printf '%b' "$v"
}

# entry_parse FILE [msgid]: read the envelope of an entry without forking.
# Sets ENV_OFF (offset of the message), ENV_FIRST (its first line),
# ENV_FIELDS (associative: key -> raw
# value of its first line) and ENV_RCPT (array of raw rcpt values); with
# "msgid", also ENV_MSGID: the Message-ID header of the message if it is
# in its first 20 lines.  Returns non-zero if no empty line ends the
# envelope.
entry_parse() {
    local f=$1 scan=${2:-} line n=0 k body=0
    ENV_OFF=0
    ENV_FIRST=
    ENV_RCPT=()
    ENV_MSGID=
    unset ENV_FIELDS
    declare -gA ENV_FIELDS=()
    while IFS= read -r line; do
        n=$((n + 1))
        if [ "$body" -eq 0 ]; then
            ENV_OFF=$((ENV_OFF + ${#line} + 1))
            if [ -z "$line" ]; then
                body=1
                n=0
                [ "$scan" == msgid ] || break
                continue
            fi
            [ "$n" -gt 1000 ] && return 1
            [ "$n" -eq 1 ] && ENV_FIRST=$line
            k=${line%% *}
            if [ "$k" == rcpt ]; then
                ENV_RCPT+=("${line#* }")
            elif [ -z "${ENV_FIELDS[$k]+set}" ]; then
                ENV_FIELDS[$k]=${line#* }
            fi
        else
            case $line in
            [Mm]essage-[Ii][Dd]:*)
                ENV_MSGID=${line#*:}
                ENV_MSGID=${ENV_MSGID# }
                ENV_MSGID=${ENV_MSGID%$'\r'}
                break
                ;;
            esac
            [ "$n" -ge 20 ] && break
        fi
    done <"$f"
    [ "$body" -eq 1 ]
}

# entry_field FILE KEY: print the decoded value of KEY in FILE's envelope.
entry_field() {
    entry_parse "$1" || return 1
    [ -n "${ENV_FIELDS[$2]+set}" ] || return 1
    pct_decode "${ENV_FIELDS[$2]}"
}

# entry_message FILE: print the message part (after the first empty line).
entry_message() {
    entry_parse "$1" || return 1
    tail -c +"$((ENV_OFF + 1))" -- "$1"
}

# entry_matches FILE INPUT: the entry is well formed, its size field is
# the number of message bytes it holds, and the message is byte for byte
# INPUT (cmp).  Diagnostics on failure.
entry_matches() {
    local f=$1 input=$2 sizes fsize isize size
    if ! entry_parse "$f"; then
        diag "$f: no empty line ends the envelope"
        return 1
    fi
    if [ "$ENV_FIRST" != "MMQ 1" ]; then
        diag "$f: first line is not \"MMQ 1\""
        return 1
    fi
    size=${ENV_FIELDS[size]:-}
    if ! [[ $size =~ ^[0-9]{20}$ ]]; then
        diag "$f: size field is not 20 digits: '$size'"
        return 1
    fi
    size=$((10#$size))
    sizes=$(stat -L -c %s -- "$f" "$input")
    fsize=${sizes%%$'\n'*}
    isize=${sizes##*$'\n'}
    if [ "$size" -ne $((fsize - ENV_OFF)) ] || [ "$size" -ne "$isize" ]; then
        diag "$f: size field $size, message bytes in the file $((fsize - ENV_OFF)), input $isize bytes"
        return 1
    fi
    if ! cmp -s -i "$ENV_OFF:0" -- "$f" "$input"; then
        diag "$f: message differs from $input: $(cmp -i "$ENV_OFF:0" -- "$f" "$input" 2>&1)"
        return 1
    fi
    return 0
}
