#!/bin/sh
# run.sh - build a libFuzzer target and run it: envelope_parse()
# (TARGET=envelope, the default) or the DMARC record and DNS answer
# parsers and the From: munging (TARGET=dmarc, t/fuzz/dmarc_fuzz.c).
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
TARGET=${TARGET:-envelope}
JOBS=${JOBS:-1}
WORK=${WORK:-$(mktemp -d /tmp/mmq-fuzz.XXXXXX)}
mkdir -p "$WORK/corpus"

# envelope.c and buf.c only need what configure's autoconf.h would give
# them: the system extensions (strndup, ...).
printf '#define _GNU_SOURCE 1\n' > "$WORK/autoconf.h"

case $TARGET in
envelope) srcs="$here/envelope_fuzz.c $top/shared/envelope.c $top/shared/buf.c" libs= ;;
dmarc) srcs="$here/dmarc_fuzz.c $top/process/dmarcrec.c $top/process/munge.c
    $top/shared/header.c $top/shared/buf.c" libs="-lresolv -lcrypto" ;;
*) echo "run.sh: unknown TARGET $TARGET (envelope or dmarc)" >&2; exit 2 ;;
esac
# shellcheck disable=SC2086 # srcs and libs are word lists
"$CC" -g -O1 -fno-omit-frame-pointer \
    -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
    -I"$WORK" -I"$top/shared" -I"$top/process" \
    -o "$WORK/${TARGET}_fuzz" $srcs $libs

if [ "${1:-}" = "--repro" ]; then
    shift
    exec "$WORK/${TARGET}_fuzz" "$@"
fi
seconds=${1:-60}

if [ "$TARGET" = dmarc ]; then
    # Seeds: DNS answers (NOERROR with two TXT records of several strings,
    # NXDOMAIN with an SOA, a CNAME), records, From: values, a message.
    python3 - "$WORK/corpus" <<'PY'
import struct, sys
d = sys.argv[1]
def name(n):
    return b"".join(bytes([len(l)]) + l.encode() for l in n.split(".")) + b"\0"
def msg(flags, an, ns, body):
    q = name("_dmarc.example.com") + struct.pack(">HH", 16, 1)
    return struct.pack(">HHHHHH", 7, flags, 1, an, ns, 0) + q + body
def rr(owner, typ, ttl, rdata):
    o = b"\xc0\x0c" if owner is None else name(owner)
    return o + struct.pack(">HHIH", typ, 1, ttl, len(rdata)) + rdata
def txt(*s):
    return b"".join(bytes([len(x)]) + x for x in s)
soa = name("ns.example") + name("h.example") + struct.pack(">IIIII", 1, 2, 3, 4, 300)
seeds = {
    "two": msg(0x8180, 2, 0, rr(None, 16, 3600, txt(b"v=DMARC1; ", b"p=reject; sp=none"))
                           + rr(None, 16, 60, txt(b"v=DMARC1; p=quarantine; pct=5"))),
    "nx": msg(0x8183, 0, 1, rr("example.com", 6, 900, soa)),
    "cname": msg(0x8180, 2, 0, rr(None, 5, 60, name("_dmarc.b.example"))
                             + rr("_dmarc.b.example", 16, 60, txt(b"v=DMARC1;p=none"))),
    "rec": b"v=DMARC1; p=reject; sp=quarantine; pct=100; rua=mailto:a@b",
    "from1": b"\"Doe, Alice\" <alice@example.com>",
    "from2": b"=?utf-8?q?Ren=C3=A9?= <r@example.com>",
    "msg": b"From: Alice <a@example.com>\nReply-To: x@y\nCc: c@d\n\nbody\n--=_mmq_fuzz_0\n",
}
for k, v in seeds.items():
    open(d + "/" + k, "wb").write(v)
PY
    cat > "$WORK/dmarc.dict" <<'DICT'
"v=DMARC1"
"p=reject"
"p=quarantine"
"p=none"
"sp="
"pct="
";"
"\xc0\x0c"
"\x00\x10\x00\x01"
"\x00\x05\x00\x01"
"\x00\x06\x00\x01"
"=?utf-8?q?"
"=?utf-8?b?"
"?="
"From: "
"Reply-To: "
"Cc: "
"\x0a\x0a"
DICT
    dict=$WORK/dmarc.dict maxlen=8192 what="the DMARC parsers and munging"
else
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
    dict=$WORK/envelope.dict maxlen=4096 what=envelope_parse
fi

echo "fuzzing $what for ${seconds}s in $WORK" >&2
set +e
"$WORK/${TARGET}_fuzz" -max_total_time="$seconds" -max_len="$maxlen" \
    -dict="$dict" -artifact_prefix="$WORK/" \
    -jobs="$JOBS" -workers="$JOBS" -print_final_stats=1 \
    "$WORK/corpus" >"$WORK/fuzz.log" 2>&1
rc=$?
set -e
tail -n 25 "$WORK/fuzz.log" >&2
for f in "$WORK"/crash-* "$WORK"/leak-* "$WORK"/timeout-* "$WORK"/oom-*; do
    [ -e "$f" ] || continue
    echo "FOUND: $f (replay: TARGET=$TARGET WORK=$WORK $0 --repro $f)" >&2
    rc=1
done
exit $rc
