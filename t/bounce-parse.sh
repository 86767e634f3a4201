#!/bin/bash
# bounce-parse: the table test of the bounce parser.  Every sample in
# t/bounce-samples (real bounces from the Postfix and Exim of the MTA
# tests, mmq-deliver's own DSNs, and samples written after the documented
# formats of qmail, Exchange, Gmail, Yahoo, sendmail, auto-replies,
# challenges and receipts) is parsed with "mmq-bounce -p" and the output
# compared with NAME.expect beside it (empty for a message that names
# nobody).  Also: all samples in one run give the concatenation, an
# unreadable FILE exits 66 and the others are still parsed, no FILE is
# a usage error (64).
set -u
. "${top_srcdir:-$(dirname "$0")/..}/t/lib.sh"

B=${MMQ_BOUNCE:-$top_builddir/bounce/mmq-bounce}
[ -x "$B" ] || skip_all "$B not built"
S=$top_srcdir/t/bounce-samples
mk_tmpdir

cd "$S" || bail_out "no $S"
n=0
for f in *.eml; do
    n=$((n + 1))
    name=${f%.eml}
    if [ ! -f "$name.expect" ]; then
        fail "$f: no $name.expect"
        continue
    fi
    "$B" -p "$f" >"$T/out" 2>"$T/err"
    rc=$?
    if [ $rc -eq 0 ] && [ ! -s "$T/err" ] && cmp -s "$T/out" "$name.expect"; then
        pass "$f: $(wc -l <"$name.expect") line(s) as expected"
    else
        fail "$f: exit $rc, output differs from $name.expect"
        diag "$(diff "$name.expect" "$T/out"; cat "$T/err")"
    fi
done
ok "$([ "$n" -ge 40 ] && echo 0 || echo 1)" "at least 40 samples ($n)"

# one run over all of them
cat ./*.expect >"$T/all.expect"
"$B" -p ./*.eml 2>"$T/err" | sed 's|^\./||' >"$T/all.out"
is "$(cmp -s "$T/all.out" <(sed 's|^\./||' "$T/all.expect") && echo same)" same \
    "one run over all samples prints every expected line in order"

"$B" -p "$S/nonexistent.eml" postfix-unknown-failed.eml >"$T/out" 2>"$T/err"
rc=$?
is "$rc" 66 "an unreadable FILE: exit 66"
is "$(cut -f2,3 "$T/out")" "$(printf 'failed\tunknown.user@example.net')" \
    "... and the other FILE is still parsed"
grep -q "nonexistent.eml" "$T/err"
ok $? "... and the unreadable one is named on stderr"
"$B" -p >"$T/out" 2>&1
is $? 64 "-p without FILE: usage, exit 64"
"$B" -p /dev/null >"$T/out" 2>&1
is "$?:$(wc -c <"$T/out")" "0:0" "an empty message: nothing, exit 0"
done_testing
