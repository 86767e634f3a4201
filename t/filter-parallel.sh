#!/bin/bash
# filter-parallel: 1,000 distinct messages written by two concurrent
# writer loops (500 each) are all in the spool, each byte-identical to its
# input, under distinct names, and nothing is left in tmp/.
set -u
. "${top_srcdir:-$(dirname "$0")/..}/t/lib.sh"

N=1000
mk_spool
M=$T/msgs
mkdir "$M"

# Distinct messages of varied sizes and contents, each with a unique
# Message-ID <par-I@mmq.test>; every fifth one CRLF, every seventh with a
# leading From_ line (then the stored message is the part after it).
pad=$(head -c 8192 /dev/zero | tr '\0' 'p')
for ((i = 1; i <= N; i++)); do
    eol=$'\n'
    [ $((i % 5)) -eq 0 ] && eol=$'\r\n'
    msg="Message-ID: <par-$i@mmq.test>${eol}Subject: parallel $i${eol}${eol}"
    msg+="body of message $i${eol}${pad:0:$((i * 37 % 8000))}${eol}"
    [ $((i % 3)) -eq 0 ] && msg+=$'8-bit \xe9\xff and tab\t end'
    printf '%s' "$msg" >"$M/$i"
    if [ $((i % 7)) -eq 0 ]; then
        printf 'From sender%d@example.org Sat Nov 22 10:00:00 2025\n%s' "$i" "$msg" >"$M/$i.in"
    fi
done

# writer FIRST LAST: one message after the other; a failure is recorded.
writer() {
    local i in
    for ((i = $1; i <= $2; i++)); do
        in=$M/$i
        [ -f "$M/$i.in" ] && in=$M/$i.in
        "$MMQ_FILTER" -c "$CONF" -f "sender$i@example.org" -r announce@example.org \
            announce <"$in" >/dev/null 2>&1 || echo "message $i: exit $?" >>"$T/failures.$1"
    done
}

start=$(now)
writer 1 $((N / 2)) &
w1=$!
writer $((N / 2 + 1)) "$N" &
w2=$!
wait "$w1"
rc1=$?
wait "$w2"
rc2=$?
end=$(now)
ms=$(elapsed_ms "$start" "$end")
diag "$N messages by two writers in $ms ms"
is "$rc1:$rc2" "0:0" "both writers ran to the end"
failures=$(cat "$T"/failures.* 2>/dev/null)
is "$failures" "" "every mmq-filter run exited 0"

entries in
is "${#ENTRIES[@]}" "$N" "$N entries in in/*/"
is "$(count_files "$SPOOL")" "$N" "no file anywhere else in the spool"
is "$(tmp_files)" "" "tmp/ empty"

declare -A seen=()
bad=0 dup=0 unknown=0 badname=0
for e in "${ENTRIES[@]}"; do
    base=${e##*/}
    bucket=${e%/*}
    if ! [[ $base =~ ^[0-9]{10}\.[0-9]{6}\+[0-9a-f]{40}$ ]] || [ "${bucket##*/}" != "${base:18:2}" ]; then
        badname=$((badname + 1))
        diag "bad entry name: $e"
    fi
    if ! entry_parse "$e" msgid || ! [[ $ENV_MSGID =~ ^\<par-([0-9]+)@mmq\.test\>$ ]]; then
        unknown=$((unknown + 1))
        diag "no known Message-ID in $e"
        continue
    fi
    i=${BASH_REMATCH[1]}
    if [ -n "${seen[$i]+set}" ]; then
        dup=$((dup + 1))
        diag "message $i stored twice: ${seen[$i]} and $e"
        continue
    fi
    seen[$i]=$e
    if ! entry_matches "$e" "$M/$i"; then
        bad=$((bad + 1))
    elif [ "$(pct_decode "${ENV_FIELDS[sender]:-}")" != "sender$i@example.org" ]; then
        bad=$((bad + 1))
        diag "message $i: sender '${ENV_FIELDS[sender]:-}'"
    fi
done
is "$badname" 0 "every entry well named, in its bucket"
is "$unknown" 0 "every entry holds one of the messages sent"
is "$dup" 0 "no message stored twice"
is "${#seen[@]}" "$N" "every message stored"
is "$bad" 0 "every entry byte-identical to its input (cmp), with its sender"
missing=
for ((i = 1; i <= N; i++)); do
    [ -n "${seen[$i]+set}" ] || missing+=" $i"
done
is "$missing" "" "no message missing"

n7=0
for ((i = 7; i <= N; i += 7)); do
    e=${seen[$i]:-}
    [ -n "$e" ] && [ "$(entry_field "$e" mbox-from)" == "From sender$i@example.org Sat Nov 22 10:00:00 2025" ] &&
        n7=$((n7 + 1))
done
is "$n7" $((N / 7)) "From_ lines recorded in the envelopes, not in the messages"

if [ "$ms" -lt 60000 ]; then
    pass "$N messages stored in under 60 s"
else
    fail "$N messages stored in under 60 s"
fi

done_testing
