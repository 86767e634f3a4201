#!/bin/sh
# bounce-run.sh - build the libFuzzer target for bounce_parse() and run it
# (the bounce parser's sibling of run.sh).
#
#   t/fuzz/bounce-run.sh [SECONDS]        fuzz for SECONDS (default 60)
#   t/fuzz/bounce-run.sh --repro FILE...  run the target once on each FILE
#
# Needs clang with libFuzzer (Debian: clang and libclang-rt-NN-dev).
# Seeds: the samples of t/bounce-samples.  Environment: CC (default
# clang), WORK (build and corpus directory, default a new one under /tmp,
# kept so that a crash can be replayed), JOBS (parallel fuzzing processes,
# default 1).  Exit status: 0 when the run found nothing, non-zero
# otherwise; a crashing input is left in $WORK as crash-* and named on
# stderr.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
CC=${CC:-clang}
JOBS=${JOBS:-1}
WORK=${WORK:-$(mktemp -d /tmp/mmq-bfuzz.XXXXXX)}
mkdir -p "$WORK/corpus"

# the bounce modules only need what configure's autoconf.h would give
# them: the system extensions (strndup, ...).
printf '#define _GNU_SOURCE 1\n' > "$WORK/autoconf.h"

"$CC" -g -O1 -fno-omit-frame-pointer \
    -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
    -I"$WORK" -I"$top/bounce" \
    -o "$WORK/bounce_fuzz" "$here/bounce_fuzz.c" \
    "$top/bounce/bparse.c" "$top/bounce/bputil.c" "$top/bounce/dsnparse.c" \
    "$top/bounce/textbounce.c" "$top/bounce/mime.c"

if [ "${1:-}" = "--repro" ]; then
    shift
    exec "$WORK/bounce_fuzz" "$@"
fi
seconds=${1:-60}

# Seeds: every sample small enough for -max_len.
for f in "$top"/t/bounce-samples/*.eml; do
    [ "$(wc -c <"$f")" -le 16384 ] && cp "$f" "$WORK/corpus/"
done

# A dictionary of the formats' tokens.
cat > "$WORK/bounce.dict" <<'DICT'
"Content-Type: multipart/report; report-type=delivery-status; boundary=b\x0a\x0a"
"Content-Type: message/delivery-status\x0a\x0a"
"Content-Type: message/rfc822\x0a\x0a"
"Content-Type: text/html\x0a"
"Content-Transfer-Encoding: base64\x0a"
"Content-Transfer-Encoding: quoted-printable\x0a"
"\x0a--b\x0a"
"\x0a--b--\x0a"
"boundary="
"Final-Recipient: rfc822; "
"Original-Recipient: rfc822;"
"Action: failed\x0a"
"Action: delayed\x0a"
"Action: delivered\x0a"
"Status: 5.1.1\x0a"
"Status: 4.4.1\x0a"
"Status: 5.7.1\x0a"
"Diagnostic-Code: smtp; 550 "
"From: MAILER-DAEMON@mx.example.com\x0a"
"Auto-Submitted: auto-replied\x0a"
"Subject: Undelivered Mail\x0a"
"<a@example.net>:"
"a@example.net"
"+2B"
"=3D"
"I'm afraid I wasn't able to deliver your message"
"--- Below this line is a copy of the message."
"The following address(es) failed:"
"This is the mail system at host"
"Delivery has failed to these recipients or groups:"
"Your message to "
" couldn't be delivered"
"Delivery to the following recipient failed permanently:"
"RCPT TO:<"
"user unknown"
"spam"
DICT

echo "fuzzing bounce_parse for ${seconds}s in $WORK" >&2
set +e
"$WORK/bounce_fuzz" -max_total_time="$seconds" -max_len=16384 \
    -dict="$WORK/bounce.dict" -artifact_prefix="$WORK/" \
    -jobs="$JOBS" -workers="$JOBS" -print_final_stats=1 \
    "$WORK/corpus" >"$WORK/fuzz.log" 2>&1
rc=$?
set -e
tail -n 25 "$WORK/fuzz.log" >&2
for f in "$WORK"/crash-* "$WORK"/leak-* "$WORK"/timeout-* "$WORK"/oom-*; do
    [ -e "$f" ] || continue
    echo "FOUND: $f (replay: WORK=$WORK $0 --repro $f)" >&2
    rc=1
done
exit $rc
