#!/bin/bash
# filter-exit-codes: every exit status of mmq-filter, provoked on purpose,
# with the status text it prints for the MTA, and nothing left behind:
#   0 stored; 65 empty message, sender too long; 67 no such list, invalid
#   name; 69 message too large; 75 everything that is our fault
#   (configuration, spool, lists directory, usage, signals, time-out).
set -u
. "${top_srcdir:-$(dirname "$0")/..}/t/lib.sh"

mk_spool
M=$T/msgs
mkdir "$M"
printf 'From: alice@example.org\nSubject: exit codes\n\nbody\n' >"$M/ok"

# spool_clean NAME: no entry and nothing in tmp/ of $SPOOL.
spool_clean() {
    local n
    n=$(count_files "$SPOOL")
    if [ "$n" -eq 0 ]; then
        pass "$1: nothing left in the spool"
    else
        fail "$1: nothing left in the spool"
        diag "$(find "$SPOOL" -type f)"
        find "$SPOOL" -type f -delete
    fi
}

# refused NAME WANT_RC WANT_PREFIX INPUT ARG...: the filter (-c $CONF)
# exits WANT_RC, its stdout starts with WANT_PREFIX, and $SPOOL is clean.
refused() {
    local name=$1 want=$2 prefix=$3 input=$4
    shift 4
    run_filter "$input" "$@"
    is "$RC" "$want" "$name: exit $want"
    starts_with "$OUT" "$prefix" "$name: says \"$prefix...\""
    spool_clean "$name"
}

# ---------------------------------------------------------------- 0

run_filter "$M/ok" announce
is "$RC" 0 "good message: exit 0"
is "$OUT" "" "good message: nothing on stdout"
is "$(count_files "$SPOOL/in")" 1 "good message: one entry"
find "$SPOOL" -type f -delete

# --------------------------------------------------------------- 67

refused "unknown list" 67 "5.1.1" "$M/ok" nosuchlist
is "$OUT" "5.1.1 <nosuchlist>: no such mailing list here" "unknown list: names the list"
refused "unknown list with a role suffix" 67 "5.1.1" "$M/ok" nosuchlist-bounces
refused "unknown list close to a known one" 67 "5.1.1" "$M/ok" -r announce@example.org announcex
mkdir "$LISTS/dirlist.conf"
refused "LIST.conf that is a directory" 67 "5.1.1" "$M/ok" dirlist
long64=$(printf 'a%.0s' {1..64})
refused "64-character name, no such list" 67 "5.1.1" "$M/ok" "$long64"

long65=$(printf 'a%.0s' {1..65})
: >"$LISTS/$long65.conf" # even if it existed, the name is invalid
for bad in "../x" "a/b" "a..b" $'ann\001ounce' $'announce\n' $'announce\x7f' \
    "$long65" "" ".announce" "announce." "-announce" "_announce" \
    "announce@example.org" "announce list" "/etc/passwd" "announce%2f"; do
    refused "invalid list name $(printf '%q' "$bad")" 67 "5.1.1" "$M/ok" -- "$bad"
done
rm -f "$LISTS/$long65.conf"

# ------------------------------------------------------------------ 65

refused "empty message" 65 "5.6.0" /dev/null announce
printf 'From alice@example.org Sat Nov 22 10:00:00 2025\n' >"$M/fromonly"
refused "message that is only a From_ line" 65 "5.6.0" "$M/fromonly" announce
printf 'From alice@example.org Sat Nov 22 10:00:00 2025\r\n' >"$M/fromonlycrlf"
refused "message that is only a From_ line (CRLF)" 65 "5.6.0" "$M/fromonlycrlf" announce
out=$({
    printf 'From alice@example.org Sat'
    sleep 0.2
    printf ' Nov 22 10:00:00 2025\n'
    sleep 0.2
} | "$MMQ_FILTER" -c "$CONF" announce 2>/dev/null)
rc=$?
is "$rc" 65 "only a From_ line, slowly through a pipe: exit 65"
starts_with "$out" "5.6.0" "only a From_ line, slowly: says 5.6.0"
spool_clean "only a From_ line, slowly"

sender2049=$(printf 's%.0s' {1..2037})@example.org
sender2048=${sender2049:1}
refused "sender of 2049 bytes" 65 "5.1.7" "$M/ok" -f "$sender2049" announce
run_filter "$M/ok" -f "$sender2048" announce
is "$RC" 0 "sender of 2048 bytes: exit 0"
find "$SPOOL" -type f -delete

# ------------------------------------------------------------------ 69

CONF_MAIN=$CONF
CONF=$T/small.conf
write_conf "max_message_size = 1000;"
head -c 1000 /dev/zero | tr '\0' 'm' >"$M/1000"
head -c 1001 /dev/zero | tr '\0' 'm' >"$M/1001"
{
    printf 'Subject: big\n\n'
    head -c 2000 /dev/zero | tr '\0' 'b'
} >"$M/2000"
{
    printf 'From alice@example.org Sat Nov 22 10:00:00 2025\n'
    cat "$M/1000"
} >"$M/from1000"
run_filter "$M/1000" announce
is "$RC" 0 "message of exactly max_message_size bytes: exit 0"
if one_entry; then
    check "message of exactly max_message_size: stored" entry_matches "$ENTRY" "$M/1000"
    rm -f -- "$ENTRY"
else
    fail "message of exactly max_message_size: stored"
fi
run_filter "$M/from1000" announce
is "$RC" 0 "From_ line + max_message_size bytes: exit 0 (the From_ line does not count)"
find "$SPOOL" -type f -delete
refused "message of max_message_size + 1 bytes" 69 "5.3.4" "$M/1001" announce
refused "message of 2000 bytes, limit 1000" 69 "5.3.4" "$M/2000" announce
is "$OUT" "5.3.4 Message too big for list announce (limit 1000 bytes)" "too big: names list and limit"

# Larger than one read: refused while reading, and the rest is drained so
# that the MTA's write does not fail.
{
    printf 'Subject: bigger\n\n'
    head -c 300000 /dev/zero | tr '\0' 'B'
} >"$M/300k"
cat "$M/300k" | "$MMQ_FILTER" -c "$CONF" announce >"$T/out" 2>/dev/null
st=("${PIPESTATUS[@]}")
out=$(cat "$T/out")
is "${st[1]}" 69 "300 KB through a pipe, limit 1000: exit 69"
starts_with "$out" "5.3.4" "300 KB through a pipe: says 5.3.4"
is "${st[0]}" 0 "300 KB through a pipe: the writer could write everything (drained)"
spool_clean "300 KB through a pipe"
out=$({
    printf 'Subject: slow big\n\n'
    for i in 1 2 3 4 5; do
        head -c 400 /dev/zero | tr '\0' 's'
        sleep 0.05
    done
} | "$MMQ_FILTER" -c "$CONF" announce 2>/dev/null)
is "$?" 69 "2 KB in slow pieces, limit 1000: exit 69"
starts_with "$out" "5.3.4" "2 KB in slow pieces: says 5.3.4"
spool_clean "2 KB in slow pieces"
CONF=$CONF_MAIN

# ------------------------------------------------------- 75: configuration

CONF_MAIN=$CONF
CONF=$T/nonexistent.conf
refused "missing configuration file" 75 "4.3.5" "$M/ok" announce
CONF=$T/syntax.conf
write_conf 'max_message_size = = 5;'
refused "configuration syntax error" 75 "4.3.5" "$M/ok" announce
CONF=$T/unterminated.conf
write_conf 'node2 = "unterminated;'
refused "configuration: unterminated string" 75 "4.3.5" "$M/ok" announce
CONF=$T/unknown.conf
write_conf 'max_mesage_size = 1000;'
refused "unknown configuration setting" 75 "4.3.5" "$M/ok" announce
CONF=$T/type.conf
write_conf 'max_message_size = "big";'
refused "configuration value of the wrong type" 75 "4.3.5" "$M/ok" announce
CONF=$T/range.conf
write_conf 'filter_timeout = 0;'
refused "configuration value out of range" 75 "4.3.5" "$M/ok" announce
CONF=$T/relative.conf
{
    printf 'spool = "spool";\nlists_dir = "%s";\nnode = "testnode";\n' "$LISTS"
} >"$CONF"
refused "relative spool path" 75 "4.3.5" "$M/ok" announce
CONF=$T/badnode.conf
{
    printf 'spool = "%s";\nlists_dir = "%s";\nnode = "bad node";\n' "$SPOOL" "$LISTS"
} >"$CONF"
refused "invalid node name" 75 "4.3.5" "$M/ok" announce
# As root (CI) the checks that root's privileges would defeat run as
# nobody (UNPRIV, t/lib.sh).
if unpriv_ok; then
    CONF=$T/unreadable.conf
    write_conf
    chmod 000 "$CONF"
    FILTER_AS=(${UNPRIV[@]+"${UNPRIV[@]}"})
    refused "unreadable configuration file" 75 "4.3.5" "$M/ok" announce
    FILTER_AS=()
else
    skip "unreadable configuration file: no unprivileged user (runuser)" 3
fi
CONF=$CONF_MAIN

# -------------------------------------------------------- 75: lists_dir

# A lists directory that is missing, not a directory or unreadable is a
# fault of the configuration (or of a mount), not of the message: 75, or
# every post would bounce.
LISTS_MAIN=$LISTS
CONF=$T/nolists.conf
LISTS=$T/no-such-lists-dir
write_conf
refused "missing lists directory" 75 "4.3.0" "$M/ok" announce
CONF=$T/filelists.conf
LISTS=$T/lists-is-a-file
: >"$LISTS"
write_conf
refused "lists_dir is a regular file" 75 "4.3.0" "$M/ok" announce
LISTS=$LISTS_MAIN
CONF=$CONF_MAIN
if unpriv_ok; then
    chmod 000 "$LISTS"
    FILTER_AS=(${UNPRIV[@]+"${UNPRIV[@]}"})
    refused "unreadable lists directory" 75 "4.3.0" "$M/ok" announce
    FILTER_AS=()
    chmod 755 "$LISTS"
else
    skip "unreadable lists directory: no unprivileged user (runuser)" 3
fi

# ------------------------------------------------------------ 75: spool

SPOOL_MAIN=$SPOOL
CONF=$T/other-spool.conf
SPOOL=$T/no-such-spool
write_conf
refused "missing spool" 75 "4.3.0" "$M/ok" announce
SPOOL=$T/bare-spool
mkdir -m 2770 "$SPOOL"
write_conf
refused "spool not initialised (no queues)" 75 "4.3.0" "$M/ok" announce
is "$(ls -A "$SPOOL")" "" "spool not initialised: the filter created nothing"

SPOOL=$T/partial-spool
write_conf
"$MMQCTL" -c "$CONF" init >/dev/null 2>&1 || bail_out "init $SPOOL"
rm -rf "$SPOOL/bounces"
refused "spool with a queue missing" 75 "4.3.0" "$M/ok" announce
"$MMQCTL" -c "$CONF" init >/dev/null 2>&1
rm -rf "$SPOOL/tmp"
refused "spool without tmp/" 75 "4.3.0" "$M/ok" announce
"$MMQCTL" -c "$CONF" init >/dev/null 2>&1
run_filter "$M/ok" announce
is "$RC" 0 "spool completed again by init: exit 0"
find "$SPOOL" -type f -delete

mv "$SPOOL/in" "$T/in-elsewhere"
ln -s "$T/in-elsewhere" "$SPOOL/in"
refused "queue directory is a symlink" 75 "4.3.0" "$M/ok" announce
is "$(count_files "$T/in-elsewhere")" 0 "symlinked queue: nothing written through the link"
rm -f "$SPOOL/in"
mv "$T/in-elsewhere" "$SPOOL/in"

chmod o+w "$SPOOL"
refused "world-writable spool" 75 "4.3.0" "$M/ok" announce
chmod o-w "$SPOOL"
chmod o+w "$SPOOL/in"
refused "world-writable queue directory" 75 "4.3.0" "$M/ok" announce
chmod o-w "$SPOOL/in"
chmod o+w "$SPOOL/tmp"
refused "world-writable tmp/" 75 "4.3.0" "$M/ok" announce
chmod o-w "$SPOOL/tmp"

if is_root; then
    chown nobody "$SPOOL"
    refused "spool owned by another user" 75 "4.3.0" "$M/ok" announce
    write_conf 'spool_user = "nobody";'
    run_filter "$M/ok" announce
    is "$RC" 0 "spool owned by spool_user: exit 0"
    find "$SPOOL" -type f -delete
    write_conf
    chown root "$SPOOL"
    chown nobody "$SPOOL/bounces"
    refused "queue directory owned by another user" 75 "4.3.0" "$M/ok" announce
    chown root "$SPOOL/bounces"
else
    skip "spool owned by another user: needs root to chown" 4
    skip "queue directory owned by another user: needs root to chown" 3
fi

if unpriv_ok; then
    # a spool of the unprivileged user's own, as the MTA's pipe user has
    SPOOL=$T/unpriv-spool
    write_conf
    "$MMQCTL" -c "$CONF" init >/dev/null 2>&1 || bail_out "init $SPOOL"
    is_root && chown -R nobody "$SPOOL"
    FILTER_AS=(${UNPRIV[@]+"${UNPRIV[@]}"})
    run_filter "$M/ok" announce
    is "$RC" 0 "unprivileged user's own spool: exit 0"
    find "$SPOOL" -type f -delete
    chmod 550 "$SPOOL/tmp"
    refused "tmp/ not writable" 75 "4.3.0 mail list spool unavailable" "$M/ok" announce
    chmod 2770 "$SPOOL/tmp"
    # the write path's last step: the rename into the bucket
    for b in "$SPOOL"/in/??; do chmod 2550 "$b"; done
    refused "queue bucket not writable" 75 "4.3.0 cannot queue the message" "$M/ok" announce
    for b in "$SPOOL"/in/??; do chmod 2770 "$b"; done
    FILTER_AS=()
else
    skip "unprivileged spool checks: no unprivileged user (runuser)" 10
fi

SPOOL=$SPOOL_MAIN
CONF=$CONF_MAIN

# The write path failing in the middle, for any user (root included):
# RLIMIT_FSIZE makes write(2) fail with EFBIG (SIGXFSZ ignored), as a
# full disk does in t/filter-diskfull.sh, which needs root to mount one.
head -c 300000 /dev/zero | tr '\0' 'x' | fold -w 70 >"$M/big"
FILTER_AS=(bash -c 'trap "" XFSZ; ulimit -f 64; exec "$0" "$@"')
refused "a write that fails (file size limit)" 75 "4.3.0 cannot queue the message" "$M/big" announce
FILTER_AS=()

# ------------------------------------------------------------ 75: usage

refused "no LIST argument" 75 "4.3.5" "$M/ok"
refused "two LIST arguments" 75 "4.3.5" "$M/ok" announce dev
refused "unknown option" 75 "4.3.5" "$M/ok" -x announce
refused "unknown role" 75 "4.3.5" "$M/ok" -R poster announce
refused "option without its value" 75 "4.3.5" "$M/ok" announce -f

"$MMQ_FILTER" -c "$CONF" announce <&- >"$T/out" 2>/dev/null
is "$?" 75 "stdin closed: exit 75"
spool_clean "stdin closed"

# --------------------------------------------------- 75: signals, time-out

# wait_exit PID SECONDS: wait for PID to end (kill -9 after SECONDS);
# sets RC.
wait_exit() {
    local pid=$1 limit=$(($2 * 20)) i
    for ((i = 0; i < limit; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.05
    done
    if kill -0 "$pid" 2>/dev/null; then
        diag "process $pid still running after $2 s: killing it"
        kill -KILL "$pid" 2>/dev/null
    fi
    wait "$pid"
    RC=$?
}

# wait_tmp SECONDS: wait until a file appears in $SPOOL/tmp.
wait_tmp() {
    local i
    for ((i = 0; i < $1 * 20; i++)); do
        [ -n "$(tmp_files)" ] && return 0
        sleep 0.05
    done
    return 1
}

# start_fifo_filter ARG...: mmq-filter -c $CONF ARG... reading a fifo that
# this shell keeps open as fd 3 (so stdin never ends); sets FPID.
start_fifo_filter() {
    rm -f "$T/fifo"
    mkfifo "$T/fifo" || bail_out "mkfifo failed"
    exec 3<>"$T/fifo"
    "$MMQ_FILTER" -c "$CONF" "$@" <"$T/fifo" >"$T/fifo.out" 2>/dev/null 3>&- &
    FPID=$!
}

for sig in TERM HUP; do
    start_fifo_filter announce
    {
        printf 'Subject: slow\n\n'
        head -c 20000 /dev/zero | tr '\0' 'w'
    } >&3
    if wait_tmp 5; then
        pass "SIG$sig: the filter is writing its temporary file"
    else
        fail "SIG$sig: the filter is writing its temporary file"
    fi
    sleep 0.3 # well inside the read loop, waiting for more input
    kill -"$sig" "$FPID"
    wait_exit "$FPID" 5
    exec 3>&-
    is "$RC" 75 "SIG$sig during a slow write: exit 75"
    is "$(tmp_files)" "" "SIG$sig during a slow write: tmp/ empty"
    spool_clean "SIG$sig during a slow write"
done

# SIGTERM (what an MTA sends at its time limit) at random instants of a
# whole run, from just after exec to after the end.  Every outcome must be
# clean: exit 75 and nothing stored (the MTA retries), or exit 0 and one
# complete entry; death by the signal before the handler is set up (143)
# stores nothing.  Never a temporary file left behind, and never exit 75
# with the message queued (the MTA would deliver it again: a duplicate).
ROUNDS=100
shopt -s nullglob
leaked=0 dup=0 lost=0 partial=0 other=0
declare -A outcome=()
for ((round = 1; round <= ROUNDS; round++)); do
    "$MMQ_FILTER" -c "$CONF" announce <"$M/ok" >/dev/null 2>&1 &
    FPID=$!
    for ((i = 0; i < 100000; i++)); do # until it runs mmq-filter
        cmd=
        read -r -d '' cmd <"/proc/$FPID/cmdline" 2>/dev/null
        [ "$cmd" == "$MMQ_FILTER" ] && break
        [ -e "/proc/$FPID" ] || break
    done
    for ((i = RANDOM % 1500; i > 0; i--)); do :; done
    kill -TERM "$FPID" 2>/dev/null
    wait "$FPID"
    rc=$?
    e=("$SPOOL"/in/*/*)
    f=("$SPOOL"/tmp/*)
    outcome["exit $rc, ${#e[@]} entries, ${#f[@]} temporary"]=$((${outcome["exit $rc, ${#e[@]} entries, ${#f[@]} temporary"]:-0} + 1))
    [ "${#f[@]}" -gt 0 ] && leaked=$((leaked + 1))
    [ "$rc" -ne 0 ] && [ "${#e[@]}" -gt 0 ] && dup=$((dup + 1))
    [ "$rc" -eq 0 ] && [ "${#e[@]}" -ne 1 ] && lost=$((lost + 1))
    if [ "${#e[@]}" -gt 0 ] && ! entry_matches "${e[0]}" "$M/ok" >/dev/null; then
        partial=$((partial + 1))
    fi
    case $rc in 0 | 75 | 143) ;; *) other=$((other + 1)) ;; esac
    rm -f -- "${e[@]}" "${f[@]}"
done
shopt -u nullglob
for k in "${!outcome[@]}"; do
    diag "SIGTERM at random instants: $k: ${outcome[$k]} times"
done
is "$leaked" 0 "SIGTERM at $ROUNDS random instants: never a temporary file left"
is "$dup" 0 "SIGTERM at $ROUNDS random instants: never exit 75 with the message queued"
is "$lost" 0 "SIGTERM at $ROUNDS random instants: exit 0 always with one entry"
is "$partial" 0 "SIGTERM at $ROUNDS random instants: never a partial entry"
is "$other" 0 "SIGTERM at $ROUNDS random instants: exit 0, 75 or death by SIGTERM only"

CONF=$T/timeout.conf
write_conf "filter_timeout = 1;"
for what in "first line sent" "nothing sent"; do
    start=$(now)
    start_fifo_filter announce
    if [ "$what" == "first line sent" ]; then
        printf 'Subject: never ends\n\n' >&3
        wait_tmp 3 || diag "no temporary file appeared"
    fi
    wait_exit "$FPID" 10
    end=$(now)
    exec 3>&-
    ms=$(elapsed_ms "$start" "$end")
    is "$RC" 75 "filter_timeout = 1, stdin never ends ($what): exit 75"
    if [ "$ms" -ge 900 ] && [ "$ms" -le 2500 ]; then
        pass "filter_timeout = 1 ($what): gave up after about 1 s"
    else
        fail "filter_timeout = 1 ($what): gave up after about 1 s"
    fi
    diag "gave up after $ms ms"
    is "$(tmp_files)" "" "filter_timeout = 1 ($what): tmp/ empty"
    spool_clean "filter_timeout = 1 ($what)"
done
CONF=$CONF_MAIN

done_testing
