#!/bin/sh
# run.sh - build the libFuzzer target for envelope_parse() and run it.
#
#   t/fuzz/run.sh [SECONDS]        fuzz for SECONDS (default 60)
#   t/fuzz/run.sh --repro FILE...  run the target once on each FILE
#
# Needs clang with libFuzzer (Debian: clang and libclang-rt-NN-dev).
# Environment: CC (default clang), WORK (build and corpus directory,
# default a new one under /tmp, kept so that a crash can be replayed),
# JOBS (parallel fuzzing processes, default 1).
# Exit status: 0 when the run found nothing, non-zero otherwise; a crashing
# input is left in $WORK as crash-* and named on stderr.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
CC=${CC:-clang}
JOBS=${JOBS:-1}
WORK=${WORK:-$(mktemp -d /tmp/mmq-fuzz.XXXXXX)}
mkdir -p "$WORK/corpus"

# envelope.c and buf.c only need what configure's autoconf.h would give
# them: the system extensions (strndup, ...).
printf '#define _GNU_SOURCE 1\n' > "$WORK/autoconf.h"

"$CC" -g -O1 -fno-omit-frame-pointer \
    -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
    -I"$WORK" -I"$top/shared" \
    -o "$WORK/envelope_fuzz" \
    "$here/envelope_fuzz.c" "$top/shared/envelope.c" "$top/shared/buf.c"

if [ "${1:-}" = "--repro" ]; then
    shift
    exec "$WORK/envelope_fuzz" "$@"
fi
seconds=${1:-60}

# Seeds: a few valid envelopes (with a message after them).
seed() { printf '%b' "$2" > "$WORK/corpus/$1"; }
seed plain 'MMQ 1\nlist announce\nrole post\nsender alice@example.org\narrival 1732312345.123456\nattempts 0\nnext-attempt 0\nrecoveries 0\nsize 00000000000000000006\nrcpt bob@example.org\n\nhello\n'
seed full 'MMQ 1\nlist l\nrole bounces\nsender \narrival 0.000000\nattempts 3\nnext-attempt 1732400000\nrecoveries 1\nlast-error 4.4.1%20connection%20refused\nmbox-from From%20a@b%20Sat\nsize 00000000000000000000\nrcpt a%40b extra text\nrcpt c\nx-future v 1\n\n'
seed escapes 'MMQ 1\nlist %FF%e4\nrole owner\nsender %25%0D%0A\narrival 9.999999\nsize 1\nz-z \n\nx'

# A dictionary of the format's tokens.
cat > "$WORK/envelope.dict" <<'DICT'
"MMQ 1\x0a"
"MMQ 2\x0a"
"list "
"role "
"post"
"bounces"
"owner"
"request"
"sender "
"arrival "
"attempts "
"next-attempt "
"recoveries "
"last-error "
"mbox-from "
"size "
"rcpt "
"x-unknown "
"%00"
"%25"
"%0A"
"%FF"
"%"
"\x0a\x0a"
".000000"
"00000000000000000000"
"9223372036854775807"
"18446744073709551616"
DICT

echo "fuzzing envelope_parse for ${seconds}s in $WORK" >&2
set +e
"$WORK/envelope_fuzz" -max_total_time="$seconds" -max_len=4096 \
    -dict="$WORK/envelope.dict" -artifact_prefix="$WORK/" \
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
