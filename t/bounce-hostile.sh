#!/bin/bash
# bounce-hostile: mmq-bounce -p on hostile messages: MIME nesting 1,000
# deep, a 30 MB part (base64 and plain), 20,000 empty parts, NULs, no
# boundary, a boundary that never occurs, malformed and 1 MB long DSN
# fields, a 1 MB header line, binary noise.  Each run must exit 0 within
# its timeout with nothing on stderr (a sanitizer build reports there),
# and, outside sanitizer builds, its peak RSS must stay under the file's
# size plus 32 MB (the parser reads the file whole and copies at most
# 256 KB per part it decodes).
set -u
. "${top_srcdir:-$(dirname "$0")/..}/t/lib.sh"

B=${MMQ_BOUNCE:-$top_builddir/bounce/mmq-bounce}
[ -x "$B" ] || skip_all "$B not built"
[ -x /usr/bin/time ] || skip_all "/usr/bin/time (Debian package time) is not installed"
mk_tmpdir
asan=0
ldd "$B" 2>/dev/null | grep -q libasan && asan=1

python3 - "$T" <<'PY' || bail_out "cannot write the hostile samples"
import os, random, sys
d = sys.argv[1]
head = ("From: MAILER-DAEMON@mx.example.com\nTo: l-bounces@lists.example.org\n"
        "Subject: Undelivered Mail Returned to Sender\nMIME-Version: 1.0\n")
dsn = ("Content-Type: message/delivery-status\n\nReporting-MTA: dns; mx\n\n"
       "Final-Recipient: rfc822; found@example.net\nAction: failed\nStatus: 5.1.1\n")
def w(name, data):
    with open(os.path.join(d, name), "wb") as f:
        f.write(data.encode("latin-1") if isinstance(data, str) else data)
w("deep.eml", head + "".join("Content-Type: multipart/mixed; boundary=\"d%d\"\n\n--d%d\n" % (i, i)
                              for i in range(1000)) + dsn)
w("deep-closed.eml", head + "".join("Content-Type: multipart/mixed; boundary=\"d%d\"\n\n--d%d\n" % (i, i)
                                     for i in range(1000)) + dsn
  + "".join("\n--d%d--\n" % i for i in reversed(range(1000))))
line = "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVowMTIzNDU2Nzg5YWJjZGVmZ2hpamtsbW5vcHFy\n"
big = line * (30 * 1024 * 1024 // len(line))
w("big-base64.eml", head + "Content-Type: multipart/report; report-type=delivery-status; boundary=b\n\n"
  "--b\nContent-Type: text/plain\nContent-Transfer-Encoding: base64\n\n" + big +
  "--b\n" + dsn + "--b--\n")
w("big-text.eml", head + "Content-Type: multipart/mixed; boundary=b\n\n--b\n"
  "Content-Type: text/plain\n\n" + ("user unknown <x@example.net> 550 " * 16 + "\n") * 60000 + "--b\n" + dsn + "--b--\n")
w("big-qp.eml", head + "Content-Type: text/plain\nContent-Transfer-Encoding: quoted-printable\n\n"
  + ("=3D=\n" * 6000000))
w("many-parts.eml", head + "Content-Type: multipart/mixed; boundary=p\n\n" + "--p\n\n" * 20000 + "--p\n" + dsn + "--p--\n")
w("nul.eml", (head + "Content-Type: multipart/report; boundary=\"n\"\n\n--n\n" + dsn +
              "Final-Recipient: rfc822; a\0b@example.net\nAction: failed\0\nStatus: 5.\0.1\n").encode("latin-1"))
w("no-boundary.eml", head + "Content-Type: multipart/report; report-type=delivery-status\n\n" + "--x\n" + dsn)
w("lost-boundary.eml", head + "Content-Type: multipart/report; boundary=\"never\"\n\n--other\n" + dsn)
w("malformed.eml", head + "Content-Type: message/delivery-status\n\n" +
  "Final-Recipient: rfc822;\nAction:\nStatus: 9.9.9\n\nFinal-Recipient\nAction failed\n\n" +
  "Final-Recipient: ;;;;<<<>>>@@@\nAction: failed\nStatus: 5.1.1\n\n" +
  "Final-Recipient: rfc822; " + "a" * 1000000 + "@example.net\nAction: failed\nStatus: 5.1.1\n\n" +
  "Diagnostic-Code: smtp; " + "x " * 500000 + "\n" +
  "Original-Recipient: rfc822; <" + "+" * 100000 + ">\nAction: failed\n")
w("long-header.eml", "Subject: " + "y" * (1 << 20) + "\nFrom: MAILER-DAEMON@mx.example.com\n\n" + "z" * (1 << 20))
random.seed(11)
w("noise.eml", bytes(random.getrandbits(8) for _ in range(2 << 20)))
w("angles.eml", head + "Content-Type: text/plain\n\nThis is the qmail-send program\n" + "<" * 500000 + "\n" + "<a@b.example>:\n" * 20000)
PY

for f in deep deep-closed big-base64 big-text big-qp many-parts nul no-boundary \
    lost-boundary malformed long-header noise angles; do
    size_kb=$(($(stat -c %s "$T/$f.eml") / 1024))
    timeout 60 /usr/bin/time -f '%M %e' -o "$T/$f.time" "$B" -p "$T/$f.eml" >"$T/$f.out" 2>"$T/$f.err"
    rc=$?
    read -r rss secs <"$T/$f.time" 2>/dev/null || { rss=0; secs=?; }
    if [ $rc -eq 0 ] && [ ! -s "$T/$f.err" ]; then
        pass "$f ($size_kb KB): exit 0, nothing on stderr (${secs}s, peak RSS ${rss} KB)"
    else
        fail "$f ($size_kb KB): exit $rc"
        diag "$(head -c 2000 "$T/$f.err")"
    fi
    if [ $asan -eq 0 ]; then
        ok "$([ "${rss:-0}" -le $((size_kb + 32768)) ] && echo 0 || echo 1)" \
            "$f: peak RSS $rss KB <= file + 32 MB"
    fi
done

# what the structure still allows to be found is found, and no more
is "$(cut -f2- "$T/big-base64.out")" "$(printf 'failed\tfound@example.net\t5.1.1')" \
    "after a 30 MB base64 part the report is still found"
is "$(cut -f2- "$T/many-parts.out")" "" "beyond 256 parts nothing more is read"
is "$(cut -f2- "$T/deep.out")" "" "beyond 12 levels of nesting nothing is read"
is "$(cut -f2- "$T/nul.out")" "$(printf 'failed\tfound@example.net\t5.1.1')" \
    "NULs: the clean recipient, and not the one with a NUL"
is "$(cut -f2- "$T/malformed.out")" "" "malformed fields name nobody"
done_testing
