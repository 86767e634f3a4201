/*
 * dmarc_test - the DMARC record parser and DNS answer reader (dmarcrec.h)
 * and the From: munging and wrapping (munge.h).
 *
 * Records: tags in any case and order after v=DMARC1, blanks, empty and
 * malformed tags, invalid p/sp/pct, v= not first, NUL bytes, huge text.
 * Answers are built here byte by byte: NXDOMAIN with and without SOA,
 * NODATA, several v=DMARC1 records (strictest wins), records split in
 * many character-strings (RFC 7489: concatenated), other TXT records and
 * names ignored, CNAME chains and loops, truncated and lying messages,
 * SERVFAIL, a wrong question.
 */
#include "autoconf.h"

#include <arpa/nameser.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dmarcrec.h"
#include "header.h"
#include "munge.h"
#include "tap.h"

/* ------------------------------------------------------ building DNS */

struct msg {
    unsigned char b[70000];
    size_t n;
};

static void put16(struct msg *m, unsigned v)
{
    m->b[m->n++] = (unsigned char)(v >> 8);
    m->b[m->n++] = (unsigned char)v;
}

static void put32(struct msg *m, unsigned long v)
{
    put16(m, (unsigned)(v >> 16));
    put16(m, (unsigned)(v & 0xffff));
}

static void name(struct msg *m, const char *s)
{
    while (*s) {
        const char *dot = strchr(s, '.');
        size_t l = dot ? (size_t)(dot - s) : strlen(s);
        m->b[m->n++] = (unsigned char)l;
        memcpy(m->b + m->n, s, l);
        m->n += l;
        s += l + (dot ? 1 : 0);
    }
    m->b[m->n++] = 0;
}

/* header + question for TXT qname */
static void start(struct msg *m, unsigned flags, unsigned an, unsigned ns,
                  const char *qname)
{
    m->n = 0;
    put16(m, 0x1234);
    put16(m, flags);
    put16(m, 1);
    put16(m, an);
    put16(m, ns);
    put16(m, 0);
    name(m, qname);
    put16(m, ns_t_txt);
    put16(m, ns_c_in);
}

/* a TXT record of owner with strings separated by '|' */
static void txt(struct msg *m, const char *owner, unsigned long ttl,
                const char *strings)
{
    size_t len_at;
    const char *s = strings;

    name(m, owner);
    put16(m, ns_t_txt);
    put16(m, ns_c_in);
    put32(m, ttl);
    len_at = m->n;
    put16(m, 0);
    for (;;) {
        const char *bar = strchr(s, '|');
        size_t l = bar ? (size_t)(bar - s) : strlen(s);
        m->b[m->n++] = (unsigned char)l;
        memcpy(m->b + m->n, s, l);
        m->n += l;
        if (!bar)
            break;
        s = bar + 1;
    }
    m->b[len_at] = (unsigned char)((m->n - len_at - 2) >> 8);
    m->b[len_at + 1] = (unsigned char)(m->n - len_at - 2);
}

static void cname(struct msg *m, const char *owner, unsigned long ttl,
                  const char *target)
{
    size_t len_at;

    name(m, owner);
    put16(m, ns_t_cname);
    put16(m, ns_c_in);
    put32(m, ttl);
    len_at = m->n;
    put16(m, 0);
    name(m, target);
    m->b[len_at + 1] = (unsigned char)(m->n - len_at - 2);
}

static void soa(struct msg *m, const char *owner, unsigned long ttl,
                unsigned long minimum)
{
    size_t len_at;

    name(m, owner);
    put16(m, ns_t_soa);
    put16(m, ns_c_in);
    put32(m, ttl);
    len_at = m->n;
    put16(m, 0);
    name(m, "ns.example");
    name(m, "hostmaster.example");
    put32(m, 1);
    put32(m, 3600);
    put32(m, 600);
    put32(m, 86400);
    put32(m, minimum);
    m->b[len_at + 1] = (unsigned char)(m->n - len_at - 2);
}

#define QR_RD_RA 0x8180
#define Q "_dmarc.example.com"

static struct dmarc_answer parse(const struct msg *m)
{
    struct dmarc_answer a;

    dmarc_answer_parse(m->b, m->n, Q, &a);
    return a;
}

/* ----------------------------------------------------------- records */

static void test_records(void)
{
    struct dmarc_record r;
    static const char nul[] = "v=DMARC1; p=reject\0; sp=none";
    char *big;
    size_t i;

#define REC(s) dmarc_record_parse(s, strlen(s), &r)
    is_int(REC("v=DMARC1; p=reject"), 1, "plain record");
    is_int(r.p, DMARC_P_REJECT, "p=reject");
    is_int(r.sp, DMARC_P_UNSET, "no sp");
    is_int(r.pct, 100, "pct defaults to 100");
    is_int(REC("  V = dmarc1 ;P=Quarantine;  sp = none ; pct=20;"), 1,
           "case and blanks");
    is_int(r.p * 10 + r.sp, DMARC_P_QUARANTINE * 10 + DMARC_P_NONE,
           "p=quarantine sp=none");
    is_int(r.pct, 20, "pct=20");
    is_int(REC("v=DMARC1;sp=reject;rua=mailto:d@example.com;p=none"), 1,
           "p after other tags");
    is_int(r.p * 10 + r.sp, DMARC_P_NONE * 10 + DMARC_P_REJECT,
           "p=none sp=reject");
    is_int(REC("v=DMARC1"), 1, "v alone is a record");
    is_int(r.p, DMARC_P_UNSET, "with p unset (acts as none)");
    is_int(REC("v=DMARC1; p=rejected; sp=; pct=abc"), 1, "invalid values");
    is_int(r.p * 10 + r.sp + r.pct, 100, "invalid p and sp unset, pct 100");
    is_int(REC("v=DMARC1;;; ; =; p; ==; p=reject;"), 1, "junk tags skipped");
    is_int(r.p, DMARC_P_REJECT, "and p read after them");
    is_int(REC("p=reject; v=DMARC1"), 0, "v not first: not DMARC");
    is_int(r.p, DMARC_P_UNSET, "not DMARC leaves r zeroed");
    is_int(REC("v=spf1 -all"), 0, "SPF record");
    is_int(REC("v=DMARC2; p=reject"), 0, "another version");
    is_int(REC(""), 0, "empty");
    is_int(REC("; ;"), 0, "only separators");
    is_int(REC("v=DMARC1x; p=reject"), 0, "DMARC1x");
    is_int(REC("v=DMARC1; pct=1000"), 1, "pct out of range");
    is_int(r.pct, 100, "pct 1000 reads as 100");
    is_int(dmarc_record_parse(nul, sizeof(nul) - 1, &r), 1, "NUL inside");
    is_int(r.p * 10 + r.sp, DMARC_P_UNSET * 10 + DMARC_P_NONE,
           "a NUL breaks only its own tag");
    big = malloc(70000);
    memcpy(big, "v=DMARC1; ", 10);
    for (i = 10; i < 69980; i++)
        big[i] = (char)(i % 7 == 0 ? ';' : 'a' + i % 26);
    memcpy(big + 69980, ";p=reject;", 10);
    is_int(dmarc_record_parse(big, 69990, &r), 1, "70 kB of tags");
    is_int(r.p, DMARC_P_REJECT, "p found at its end");
    free(big);
#undef REC
    is_str(dmarc_p_name(DMARC_P_QUARANTINE), "quarantine", "policy names");
}

/* ----------------------------------------------------------- answers */

static void test_answers(void)
{
    static struct msg m;
    struct dmarc_answer a;
    char chunk[300];
    size_t i;

    start(&m, QR_RD_RA, 1, 0, Q);
    txt(&m, Q, 3600, "v=DMARC1; p=reject");
    a = parse(&m);
    is_int(a.kind, DMARC_ANS_RECORD, "one record");
    is_int(a.rec.p, DMARC_P_REJECT, "p=reject");
    is_int(a.ttl, 3600, "ttl 3600");
    is_int(a.nrecords, 1, "one DMARC record");

    start(&m, QR_RD_RA, 1, 0, "_DMARC.Example.COM");
    txt(&m, "_dmarc.EXAMPLE.com", 60, "v=DMARC1; p=quarantine");
    a = parse(&m);
    is_int(a.kind * 10 + a.rec.p, DMARC_ANS_RECORD * 10 + DMARC_P_QUARANTINE,
           "names compared in any case");

    start(&m, QR_RD_RA, 3, 0, Q);
    txt(&m, Q, 300, "v=spf1 -all");
    txt(&m, Q, 200, "v=DMARC1;| p=|quarantine");
    txt(&m, "_dmarc.other.example", 1, "v=DMARC1; p=reject");
    a = parse(&m);
    is_int(a.kind * 10 + a.rec.p, DMARC_ANS_RECORD * 10 + DMARC_P_QUARANTINE,
           "strings concatenated; other TXT and other names ignored");
    is_int(a.ttl, 200, "least ttl of the records at the name");

    start(&m, QR_RD_RA, 3, 0, Q);
    txt(&m, Q, 300, "v=DMARC1; p=none; sp=quarantine");
    txt(&m, Q, 300, "v=DMARC1; p=reject; sp=none");
    txt(&m, Q, 300, "v=DMARC1; p=quarantine");
    a = parse(&m);
    is_int(a.nrecords, 3, "three v=DMARC1 records counted");
    is_int(a.rec.p * 10 + a.rec.sp, DMARC_P_REJECT * 10 + DMARC_P_QUARANTINE,
           "several records: the strictest p and the strictest sp");

    start(&m, QR_RD_RA, 1, 0, Q);
    txt(&m, Q, 300, "v=spf1 -all");
    a = parse(&m);
    is_int(a.kind, DMARC_ANS_NONE, "only a non-DMARC TXT: none");
    is_int(a.ttl, 300, "with that record's ttl");

    start(&m, 0x8183, 0, 1, Q);
    soa(&m, "example.com", 900, 300);
    a = parse(&m);
    is_int(a.kind * 1000 + a.ttl, DMARC_ANS_NONE * 1000 + 300,
           "NXDOMAIN: none, ttl min(SOA ttl, minimum)");
    start(&m, 0x8183, 0, 1, Q);
    soa(&m, "example.com", 120, 3600);
    a = parse(&m);
    is_int(a.ttl, 120, "NXDOMAIN with a shorter SOA ttl");
    start(&m, 0x8183, 0, 0, Q);
    a = parse(&m);
    is_int(a.kind * 1000 + a.ttl, DMARC_ANS_NONE * 1000 - 1,
           "NXDOMAIN without SOA: none, no ttl");
    start(&m, QR_RD_RA, 0, 1, Q);
    soa(&m, "example.com", 900, 600);
    a = parse(&m);
    is_int(a.kind * 1000 + a.ttl, DMARC_ANS_NONE * 1000 + 600, "NODATA");

    start(&m, 0x8182, 0, 0, Q);
    a = parse(&m);
    is_int(a.kind * 100 + a.rcode, DMARC_ANS_FAIL * 100 + 2, "SERVFAIL: fail");
    start(&m, 0x8185, 0, 0, Q);
    is_int(parse(&m).kind, DMARC_ANS_FAIL, "REFUSED: fail");
    start(&m, 0x0100, 1, 0, Q);
    txt(&m, Q, 300, "v=DMARC1; p=reject");
    is_int(parse(&m).kind, DMARC_ANS_FAIL, "a query, not a response: fail");
    start(&m, 0x8380, 0, 0, Q);
    is_int(parse(&m).kind, DMARC_ANS_FAIL, "truncated (TC): fail");
    start(&m, QR_RD_RA, 1, 0, "_dmarc.other.example");
    txt(&m, "_dmarc.other.example", 300, "v=DMARC1; p=reject");
    is_int(parse(&m).kind, DMARC_ANS_FAIL, "answer to another question: fail");

    start(&m, QR_RD_RA, 2, 0, Q);
    txt(&m, Q, 300, "v=DMARC1; p=reject");
    i = m.n;
    txt(&m, Q, 300, "v=DMARC1; p=none");
    a = parse(&m);
    m.n = i + 5; /* cut inside the second record */
    is_int(parse(&m).kind, DMARC_ANS_FAIL, "message cut inside a record: fail");
    start(&m, QR_RD_RA, 1, 0, Q);
    txt(&m, Q, 300, "v=DMARC1; p=reject");
    m.b[m.n - 19] = 200; /* a string length past the rdata */
    a = parse(&m);
    is_int(a.kind, DMARC_ANS_NONE,
           "a TXT string longer than its rdata: ignored");
    start(&m, QR_RD_RA, 9, 0, Q);
    txt(&m, Q, 300, "v=DMARC1; p=reject");
    is_int(parse(&m).kind, DMARC_ANS_FAIL, "more answers announced than sent");
    is_int(dmarc_answer_parse((const unsigned char *)"", 0, Q, &a), 0,
           "empty message parsed");
    is_int(a.kind, DMARC_ANS_FAIL, "empty message: fail");

    start(&m, QR_RD_RA, 3, 0, Q);
    cname(&m, Q, 100, "_dmarc.b.example");
    cname(&m, "_dmarc.b.example", 50, "_dmarc.c.example");
    txt(&m, "_dmarc.c.example", 300, "v=DMARC1; p=reject");
    a = parse(&m);
    is_int(a.kind * 10 + a.rec.p, DMARC_ANS_RECORD * 10 + DMARC_P_REJECT,
           "CNAME chain followed");
    is_int(a.ttl, 50, "its least ttl");
    start(&m, QR_RD_RA, 3, 0, Q);
    cname(&m, Q, 100, "_dmarc.b.example");
    cname(&m, "_dmarc.b.example", 100, Q);
    txt(&m, Q, 300, "v=DMARC1; p=reject");
    is_int(parse(&m).kind, DMARC_ANS_FAIL, "CNAME loop: fail");

    /* a big answer, as over TCP: 200 strings of 250 bytes */
    start(&m, QR_RD_RA, 1, 0, Q);
    memset(chunk, 'z', 250);
    chunk[250] = 0;
    {
        static char strings[200 * 251 + 32];
        size_t o = (size_t)sprintf(strings, "v=DMARC1; p=reject; x=");
        for (i = 0; i < 200; i++)
            o += (size_t)sprintf(strings + o, "|%s", chunk);
        txt(&m, Q, 300, strings);
    }
    a = parse(&m);
    is_int(a.kind * 10 + a.rec.p, DMARC_ANS_RECORD * 10 + DMARC_P_REJECT,
           "a 50 kB record of 201 strings");
}

/* ----------------------------------------------------------- munging */

static struct listdef list(enum list_reply_to rt)
{
    static char dom[] = "lists.example.org";
    struct listdef ld;

    memset(&ld, 0, sizeof(ld));
    snprintf(ld.name, sizeof(ld.name), "announce");
    ld.domain = dom;
    ld.reply_to = rt;
    return ld;
}

static char *from_value(const char *v, const struct listdef *ld)
{
    struct buf b;

    buf_init(&b);
    if (munge_from_value(v, ld, &b) != 0)
        return strdup("(error)");
    return b.data;
}

static void test_from_value(void)
{
    struct listdef ld = list(REPLYTO_NONE);
    char *v;

#define FROM(in, want, what)                                                   \
    do {                                                                       \
        v = from_value(in, &ld);                                               \
        is_str(v, want, what);                                                 \
        free(v);                                                               \
    } while (0)
    FROM("Alice Doe <alice@example.com>",
         "\"Alice Doe via announce\" <announce@lists.example.org>",
         "plain name");
    FROM("\"Doe, Alice\" <alice@example.com>",
         "\"Doe, Alice via announce\" <announce@lists.example.org>",
         "quoted name unquoted and quoted again");
    FROM("\"A \\\"q\\\" \\\\ b\" <a@example.com>",
         "\"A \\\"q\\\" \\\\ b via announce\" <announce@lists.example.org>",
         "escapes kept valid");
    FROM("alice@example.com",
         "\"alice at example.com via announce\" <announce@lists.example.org>",
         "bare address: \"at\" form");
    FROM("<alice@example.com>",
         "\"alice at example.com via announce\" <announce@lists.example.org>",
         "angle address only");
    FROM("=?utf-8?q?Ren=C3=A9_Doe?= <rene@example.com>",
         "=?utf-8?q?Ren=C3=A9_Doe?= via announce <announce@lists.example.org>",
         "encoded-word kept");
    FROM("Ren\xc3\xa9 <rene@example.com>",
         "=?utf-8?b?UmVuw6kgdmlhIGFubm91bmNl?= <announce@lists.example.org>",
         "raw UTF-8 name encoded");
    FROM("Ren\xe9 <rene@example.com>",
         "\"rene at example.com via announce\" <announce@lists.example.org>",
         "raw Latin-1 name: the address instead");
    FROM("=?utf-8?q?x?=, \"y\" <a@example.com>",
         "\"a at example.com via announce\" <announce@lists.example.org>",
         "encoded words with specials: the address instead");
    FROM("no address at all",
         "\"unknown via announce\" <announce@lists.example.org>", "no address");
    snprintf(ld.name, sizeof(ld.name), "dev.team");
    FROM("=?utf-8?q?x?= <a@example.com>",
         "=?utf-8?q?x?= \"via dev.team\" <dev.team@lists.example.org>",
         "list name with a dot quoted after an encoded-word");
#undef FROM
    {
        char longname[400], in[500];
        memset(longname, 0, sizeof(longname));
        for (int i = 0; i < 150; i++)
            memcpy(longname + 2 * i, "\xc3\xa9", 2);
        snprintf(in, sizeof(in), "%s <a@example.com>", longname);
        snprintf(ld.name, sizeof(ld.name), "announce");
        v = from_value(in, &ld);
        ok(strncmp(v, "=?utf-8?b?", 10) == 0 && strlen(v) < 400 &&
               strstr(v, "?= =?utf-8?b?") != NULL,
           "a long name becomes several encoded-words, cut: %.60s...", v);
        free(v);
    }
}

/* munge h built from msg; the edited message as a string */
static char *munged(const char *msg, enum list_reply_to rt, int list_reply)
{
    struct listdef ld = list(rt);
    struct headers h;
    struct buf out;

    buf_init(&out);
    headers_parse(msg, strlen(msg), &h);
    if (list_reply) { /* as list_headers() does */
        headers_drop_all(&h, "Reply-To");
        headers_add(&h, "Reply-To", "<announce@lists.example.org>");
    }
    if (munge_from(&h, &ld) != 0 || headers_write(&h, &out) != 0)
        return strdup("(error)");
    headers_free(&h);
    return out.data;
}

static void test_munge(void)
{
    char *s;

    s = munged(
        "From: Alice <alice@example.com>\nTo: announce@lists.example.org\n"
        "Subject: hi\n\nbody\n",
        REPLYTO_NONE, 0);
    is_str(s,
           "From: \"Alice via announce\" <announce@lists.example.org>\n"
           "To: announce@lists.example.org\nSubject: hi\n"
           "X-Original-From: Alice <alice@example.com>\n"
           "Reply-To: Alice <alice@example.com>\n\nbody\n",
           "reply_to none: author in Reply-To");
    free(s);
    s = munged(
        "From: Alice <alice@example.com>\r\nReply-To: other@example.net\r\n"
        "X-Original-From: forged\r\n\r\nbody\r\n",
        REPLYTO_NONE, 0);
    is_str(s,
           "From: \"Alice via announce\" <announce@lists.example.org>\r\n"
           "X-Original-From: Alice <alice@example.com>\r\n"
           "Reply-To: other@example.net,\r\n Alice <alice@example.com>\r\n"
           "\r\nbody\r\n",
           "existing Reply-To kept, author added (CRLF kept)");
    free(s);
    s = munged(
        "From: Alice <alice@example.com>\nReply-To: ALICE@example.com\n\nb\n",
        REPLYTO_NONE, 0);
    is_str(s,
           "From: \"Alice via announce\" <announce@lists.example.org>\n"
           "X-Original-From: Alice <alice@example.com>\n"
           "Reply-To: ALICE@example.com\n\nb\n",
           "author already in Reply-To: not twice");
    free(s);
    s = munged("From: Alice <alice@example.com>\nCc: bob@example.net\nFrom: "
               "x@y\n\nb\n",
               REPLYTO_LIST, 1);
    is_str(s,
           "From: \"Alice via announce\" <announce@lists.example.org>\n"
           "Reply-To: <announce@lists.example.org>\n"
           "X-Original-From: Alice <alice@example.com>\n"
           "Cc: bob@example.net,\n Alice <alice@example.com>\n\nb\n",
           "reply_to list: author in Cc; a second From: dropped");
    free(s);
    s = munged("Subject: no from\n\nb\n", REPLYTO_NONE, 0);
    is_str(s, "Subject: no from\n\nb\n", "no From: nothing to munge");
    free(s);
}

static void test_wrap(void)
{
    struct listdef ld = list(REPLYTO_NONE);
    const char *orig = "Received: x\nFrom: Alice <alice@example.com>\n"
                       "Subject: hi\nContent-Type: text/plain\n\ncaf\xc3\xa9\n";
    const char *edited =
        "Received: x\nFrom: \"Alice via announce\" "
        "<announce@lists.example.org>\n"
        "Subject: [a] hi\nContent-Type: text/plain\nDKIM-Signature: v=1\n"
        "List-Id: <announce.lists.example.org>\n"
        "Reply-To: Alice <alice@example.com>\n\ncaf\xc3\xa9\n";
    struct buf e, out;
    char text[] = "Line one\nline two";

    buf_init(&e);
    buf_init(&out);
    buf_puts(&e, edited);
    ld.dmarc_wrapped_text = text;
    is_int(munge_wrap(&e, orig, strlen(orig), &ld, "seed", &out), 0, "wrapped");
    is_str(out.data,
           "From: \"Alice via announce\" <announce@lists.example.org>\n"
           "Subject: [a] hi\nList-Id: <announce.lists.example.org>\n"
           "Reply-To: Alice <alice@example.com>\n"
           "MIME-Version: 1.0\n"
           "Content-Type: multipart/mixed; boundary=\"=_mmq_seed_0\"\n"
           "Content-Transfer-Encoding: 8bit\n\n"
           "This message from the list announce@lists.example.org carries a "
           "post as an attachment.\n"
           "\n--=_mmq_seed_0\nContent-Type: text/plain; charset=utf-8\n"
           "Content-Transfer-Encoding: 7bit\n\nLine one\nline two\n"
           "\n--=_mmq_seed_0\nContent-Type: message/rfc822\n"
           "Content-Disposition: inline\n\n"
           "Received: x\nFrom: Alice <alice@example.com>\n"
           "Subject: hi\nContent-Type: text/plain\n\ncaf\xc3\xa9\n"
           "\n--=_mmq_seed_0--\n",
           "outer fields kept, text part, the original as message/rfc822");
    buf_reset(&out);
    ld.dmarc_wrapped_text = NULL;
    {
        const char *o2 = "From: a@example.com\n\n--=_mmq_seed_0\n";
        munge_wrap(&e, o2, strlen(o2), &ld, "seed", &out);
        ok(strstr(out.data, "boundary=\"=_mmq_seed_1\"") != NULL &&
               strstr(out.data, "text/plain; charset") == NULL,
           "a boundary found in the post is not used; no text part");
    }
    buf_free(&e);
    buf_free(&out);
}

int main(void)
{
    test_records();
    test_answers();
    test_from_value();
    test_munge();
    test_wrap();
    return done_testing();
}
