#!/bin/bash
# command-kill: kill -9 of mmq-process while it runs a batch of email
# commands (process/command.c), then mmq-process -1 again, as a supervisor
# would.  The batch (47 in/ entries, queued once and restored before every
# round) on two lists:
#   dev (subscribe_policy and unsubscribe_policy "confirm"):
#     12 replies to confirmation requests of subscriptions (LIST-confirm+TOKEN),
#      3 second replies with the same tokens as three of them (two in/
#        entries for one token: exactly one may use it),
#      8 replies to confirmation requests of unsubscriptions,
#      8 new subscriptions by LIST-join (a confirmation request each);
#   opn (both policies "open"): 8 subscriptions by LIST-join and
#      8 "unsubscribe" lines to LIST-request, applied at once.
# Kill instants: odd rounds at a random instant between 0 and the wall
# time of a clean run; even rounds once out/ holds a random number of the
# replies (so that the kill surely lands mid-batch).  After the restart:
#   - each command applied exactly once: both members files are exactly the
#     expected set, no line lost, none twice;
#   - no token used twice: used/ holds one mark per token, and of the two
#     replies with one token exactly one subscribed, the other was refused;
#   - each command mail answered exactly once (the rerun replaces a reply
#     still in out/: no mmq-deliver runs here, so there is no documented
#     duplicate to allow), one confirmation request per new subscriber,
#     one welcome or goodbye message per completed change;
#   - in/, tmp/ and the member store's tmp/ are empty, nothing went to bad/.
# CMDKILL_ROUNDS (default 6) and CMDKILL_SEED override.
set -u
. "${top_srcdir:-$(dirname "$0")/..}/t/lib.sh"
. "${top_srcdir:-$(dirname "$0")/..}/t/process-lib.sh"

pl_init
ROUNDS=${CMDKILL_ROUNDS:-6}
SEED=${CMDKILL_SEED:-$(($(date +%s%N) % 32768))}
RANDOM=$SEED
diag "seed $SEED (CMDKILL_SEED=$SEED reproduces the kill instants)"
T0=$(now)

mk_spool
D=$PL_DOMAIN
W=$T
BIG='max_autoresponses_per_day = 1000;'
pl_list dev 'owners = ["owner@example.org"];' "$BIG"
pl_list opn 'owners = ["owner@example.org"];' "$BIG" 'subscribe_policy = "open";' \
    'unsubscribe_policy = "open";'
seq -f 'b%02g@example.org' 1 20 >"$LISTS/dev.members"
seq -f 'p%02g@example.org' 1 20 >"$LISTS/opn.members"
J=($(seq -f 'j%02g@example.org' 1 12))
N=($(seq -f 'n%02g@example.org' 1 8))
O=($(seq -f 'o%02g@example.org' 1 8))
NBATCH=47

# cmail FILE FROM SUBJECT [BODY]
cmail() {
    printf 'From: %s\nTo: x@%s\nSubject: %s\nMessage-ID: <%s.%s@example.net>\n\n%s\n' \
        "$2" "$D" "$3" "$RANDOM$RANDOM" "${2%@*}" "${4:-}" >"$1"
}
# queue FROM LOCALPART LIST [SUBJECT [BODY]]: one command mail into in/
queue() {
    cmail "$W/mail" "$1" "${4:-hello}" "${5:-}"
    run_filter "$W/mail" -f "$1" -r "$2@$D" -- "${2%%+*}"
    [ "$RC" -eq 0 ] || bail_out "mmq-filter -r $2@$D exited $RC: $ERR"
}

# ------------------------------------------------------- preparation
# subscriptions of J and unsubscriptions of b01..b08 on dev, processed
# cleanly: their confirmation tokens
for a in "${J[@]}"; do queue "$a" dev-join dev; done
for i in $(seq -f '%02g' 1 8); do queue "b$i@example.org" dev-leave dev; done
pl_process
[ "$PRC" -eq 0 ] || bail_out "mmq-process (preparation) exited $PRC: $(tail -n 3 "$PLOG")"
declare -A TOK
pl_outs
for f in "${OUTS[@]}"; do
    s=$(entry_message "$f" | tr -d '\r' | sed -n 's/^Subject: confirm \([0-9a-z]*\)$/\1/p')
    [ -n "$s" ] && TOK[$(pl_rcpts "$f")]=$s
done
is "${#TOK[@]}" 20 "preparation: 20 confirmation tokens (12 subscriptions, 8 unsubscriptions)"
pl_clear_out

# the batch
for a in "${J[@]}"; do queue "$a" "dev-confirm+${TOK[$a]}" dev "Re: confirm ${TOK[$a]}" "> confirm"; done
for a in "${J[@]:0:3}"; do queue "$a" "dev-confirm+${TOK[$a]}" dev "Re: confirm ${TOK[$a]}" "again"; done
for i in $(seq -f '%02g' 1 8); do
    a=b$i@example.org
    queue "$a" "dev-confirm+${TOK[$a]}" dev "Re: confirm ${TOK[$a]}" "yes"
done
for a in "${N[@]}"; do queue "$a" dev-join dev join; done
for a in "${O[@]}"; do queue "$a" opn-join opn join; done
for i in $(seq -f '%02g' 1 8); do queue "p$i@example.org" opn-request opn hello unsubscribe; done
is "$(count_files "$SPOOL/in")" "$NBATCH" "the batch: $NBATCH command mails in in/"
rm -rf "$W/base"
mkdir "$W/base" && cp -a "$SPOOL" "$LISTS" "$W/base/" || bail_out "cannot save the batch"

{ seq -f 'b%02g@example.org' 9 20; printf '%s\n' "${J[@]}"; } | sort >"$W/dev.want"
{ seq -f 'p%02g@example.org' 9 20; printf '%s\n' "${O[@]}"; } | sort >"$W/opn.want"
# the replies wanted: RCPT KIND OUTCOME, one line per out/ entry
{
    # (and one welcome or goodbye message per completed change)
    for a in "${J[@]:3}"; do echo "$a reply subscribed"; echo "$a welcome -"; done
    for a in "${J[@]:0:3}"; do
        echo "$a reply subscribed"
        echo "$a reply used"
        echo "$a welcome -"
    done
    for i in $(seq -f '%02g' 1 8); do
        echo "b$i@example.org reply unsubscribed"
        echo "b$i@example.org goodbye -"
    done
    for a in "${N[@]}"; do echo "$a reply requested"; echo "$a confirm -"; done
    for a in "${O[@]}"; do echo "$a reply subscribed"; echo "$a welcome -"; done
    for i in $(seq -f '%02g' 1 8); do
        echo "p$i@example.org reply unsubscribed"
        echo "p$i@example.org goodbye -"
    done
} | sort >"$W/replies.want"
NOUT=$(wc -l <"$W/replies.want")

restore() {
    rm -rf "$SPOOL" "$LISTS"
    cp -a "$W/base/spool" "$W/base/lists" "$T/" || bail_out "cannot restore the batch"
}

# replies: RCPT KIND OUTCOME of every out/ entry (KIND reply or confirm)
replies() {
    local f r m
    pl_outs
    for f in "${OUTS[@]}"; do
        r=$(pl_rcpts "$f")
        m=$(entry_message "$f" | tr -d '\r')
        case $m in
        *"Subject: confirm "*) echo "$r confirm -" ;;
        *"Subject: Welcome to the list "*) echo "$r welcome -" ;;
        *"Subject: You have left the list "*) echo "$r goodbye -" ;;
        *"token was used already"*) echo "$r reply used" ;;
        *" unsubscribed"*) echo "$r reply unsubscribed" ;;
        *" subscribed"* | *"is already a member"*) echo "$r reply subscribed" ;;
        *"is not a member"*) echo "$r reply unsubscribed" ;;
        *"confirmation request was sent"*) echo "$r reply requested" ;;
        *) echo "$r reply ?" ;;
        esac
    done | sort
}

# the wall time of a clean run (the slower of two)
X=0
for _ in 1 2; do
    restore
    t=$(now)
    pl_process
    e=$(elapsed_ms "$t" "$(now)")
    [ "$e" -gt "$X" ] && X=$e
done
is "$(replies | diff - "$W/replies.want" && echo same)" same "a clean run: one reply per command mail, as wanted"
check "a clean run: dev's members as wanted" cmp -s <(sort "$LISTS/dev.members") "$W/dev.want"
diag "a clean run of the batch takes $X ms"

PROC_PID=
kill_proc() { kill_pid "$PROC_PID"; }
at_exit kill_proc

for ((r = 1; r <= ROUNDS; r++)); do
    restore
    "$MMQ_PROCESS" -c "$CONF" -1 -e 2>"$W/killed.log" &
    PROC_PID=$!
    if ((r % 2)); then
        delay=$((RANDOM % (X + 1)))
        sleep "$(printf '%d.%03d' $((delay / 1000)) $((delay % 1000)))"
        how="at $delay ms"
    else
        want=$((RANDOM % (NOUT - 2) + 1))
        for ((i = 0; i < 3000; i++)); do
            [ "$(count_files "$SPOOL/out")" -ge "$want" ] && break
            kill -0 "$PROC_PID" 2>/dev/null || break
            sleep 0.01
        done
        how="once out/ held $want"
    fi
    kill -KILL "$PROC_PID" 2>/dev/null
    wait "$PROC_PID" 2>/dev/null
    PROC_PID=
    st="in=$(count_files "$SPOOL/in") out=$(count_files "$SPOOL/out") used=$(count_files "$SPOOL/members/dev/used")"
    tag="round $r (killed $how: $st)"
    pl_process
    is "$PRC" 0 "$tag: the restart exits 0"
    [ "$PRC" -eq 0 ] || diag "$(tail -n 5 "$PLOG")"
    sort "$LISTS/dev.members" >"$W/dev.got"
    sort "$LISTS/opn.members" >"$W/opn.got"
    if cmp -s "$W/dev.got" "$W/dev.want" && cmp -s "$W/opn.got" "$W/opn.want"; then
        pass "$tag: each command applied once: the members files are exactly as wanted"
    else
        fail "$tag: each command applied once: the members files are exactly as wanted"
        diag "$(diff "$W/dev.got" "$W/dev.want"; diff "$W/opn.got" "$W/opn.want")"
    fi
    is "$(count_files "$SPOOL/members/dev/used")" 20 "$tag: one used/ mark per token (20)"
    replies >"$W/replies.got"
    if cmp -s "$W/replies.got" "$W/replies.want"; then
        pass "$tag: every command mail answered once, one confirmation request per new subscriber, the second use of a token refused"
    else
        fail "$tag: every command mail answered once, one confirmation request per new subscriber, the second use of a token refused"
        diag "$(diff "$W/replies.got" "$W/replies.want" | head -n 10)"
    fi
    is "in=$(count_files "$SPOOL/in") bad=$(count_files "$SPOOL/bad") tmp=$(count_files "$SPOOL/tmp") store-tmp=$(count_files "$SPOOL/members/dev/tmp")$(count_files "$SPOOL/members/opn/tmp") lists-tmp=$(find "$LISTS" -name '*.mmq-tmp*' | wc -l)" \
        "in=0 bad=0 tmp=0 store-tmp=00 lists-tmp=0" "$tag: nothing left in in/, bad/ or any tmp/"
done
diag "$ROUNDS rounds in $(elapsed_ms "$T0" "$(now)") ms"
done_testing
