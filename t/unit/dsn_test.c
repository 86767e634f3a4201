/*
 * dsn_test - delivery status notifications (dsn.h): the structure every
 * DSN must have (CRLF lines of at most 998 bytes, no bare CR/LF/NUL, one
 * boundary that occurs only as the delimiters, three parts, the required
 * fields), the content for one and three recipients, delay warnings,
 * status derivation, dates, and hostile input: CRLF injection in the
 * reply and the address, a 10 KB reply, a header section holding
 * boundary-like lines, 8-bit bytes, NULs, no header/body separator, LF-only
 * and empty originals, a header section over 64 KiB, invalid info.
 *
 * With DSN_SAMPLE_DIR set in the environment, every DSN built is also
 * written to DSN_SAMPLE_DIR/NAME.eml, for t/dsn-parse.py and for eyes.
 */
#include "autoconf.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "buf.h"
#include "dsn.h"
#include "tap.h"

/* ------------------------------------------------------------- helpers */

static void save_sample(const char *name, const struct buf *m)
{
    const char *dir = getenv("DSN_SAMPLE_DIR");
    char path[4096];
    FILE *f;

    if (!dir || !*dir)
        return;
    snprintf(path, sizeof(path), "%s/%s.eml", dir, name);
    if (!(f = fopen(path, "wb")) || fwrite(m->data, 1, m->len, f) != m->len ||
        fclose(f) != 0)
        diag("cannot write %s: %s", path, strerror(errno));
}

static const char *find(const char *p, size_t len, const char *s)
{
    return memmem(p, len, s, strlen(s));
}

static int has(const char *p, size_t len, const char *s)
{
    return memmem(p, len, s, strlen(s)) != NULL;
}

static size_t count_mem(const char *hay, size_t len, const char *needle)
{
    size_t n = 0, nl = strlen(needle);
    const char *p = hay, *end = hay + len, *q;

    while (p < end && (q = memmem(p, (size_t)(end - p), needle, nl))) {
        n++;
        p = q + nl;
    }
    return n;
}

/* The parts of a DSN, as pointers into the message. */
struct dsn_view {
    const char *head; /* top-level header section, without the empty line */
    size_t head_len;
    char bnd[128];
    const char *part_head[3], *body[3];
    size_t part_head_len[3], body_len[3];
};

/*
 * Check what every DSN must satisfy and split it into a view.  Emits a
 * fixed number of test points (STRUCT_TESTS) so the plan stays simple.
 */
#define STRUCT_TESTS 9

static int check_structure(const char *name, const struct buf *m,
                           struct dsn_view *v, size_t nrcpt)
{
    const char *p = m->data, *end = m->data + m->len, *q, *b;
    size_t i, lines = 0, longest = 0, bad_end = 0, nul = 0, eight = 0;
    char delim[160], close[160];
    int good = 1;

    memset(v, 0, sizeof(*v));
    /* 1: lines */
    for (q = p; q < end; q++) {
        if (*q == 0)
            nul++;
        if (*q == '\n' && (q == p || q[-1] != '\r'))
            bad_end++;
        if (*q == '\r' && (q + 1 == end || q[1] != '\n'))
            bad_end++;
    }
    for (q = p; q < end; lines++) {
        const char *e = find(q, (size_t)(end - q), "\r\n");
        size_t l = e ? (size_t)(e - q) : (size_t)(end - q);

        if (l > longest)
            longest = l;
        q = e ? e + 2 : end;
    }
    good &= ok(m->len > 2 && !memcmp(end - 2, "\r\n", 2) && bad_end == 0 &&
                   nul == 0,
               "%s: every line ends in CRLF, no bare CR/LF, no NUL "
               "(%zu lines, %zu bad ends, %zu NULs)",
               name, lines, bad_end, nul);
    good &=
        ok(longest <= 998, "%s: longest line %zu <= 998 bytes", name, longest);

    /* 2: top-level header */
    q = find(p, m->len, "\r\n\r\n");
    v->head = p;
    v->head_len = q ? (size_t)(q - p) + 2 : 0;
    for (i = 0; i < v->head_len; i++)
        if ((unsigned char)p[i] > 0x7e)
            eight++;
    good &=
        ok(q && eight == 0 && !strncmp(p, "Date: ", 6) &&
               has(p, v->head_len, "\r\nFrom: Mail Delivery System <") &&
               has(p, v->head_len, "\r\nTo: <") &&
               has(p, v->head_len, "\r\nSubject: ") &&
               has(p, v->head_len, "\r\nMessage-ID: <") &&
               has(p, v->head_len, "\r\nAuto-Submitted: auto-replied\r\n") &&
               has(p, v->head_len, "\r\nMIME-Version: 1.0\r\n") &&
               has(p, v->head_len,
                   "\r\nContent-Type: multipart/report; "
                   "report-type=delivery-status;\r\n\tboundary=\""),
           "%s: top-level header has Date, From, To, Subject, Message-ID, "
           "Auto-Submitted, MIME-Version, Content-Type, all ASCII",
           name);
    b = v->head_len ? find(p, v->head_len, "boundary=\"") : NULL;
    if (b) {
        b += 10;
        for (i = 0;
             b + i < p + v->head_len && b[i] != '"' && i < sizeof(v->bnd) - 1;
             i++)
            v->bnd[i] = b[i];
        v->bnd[i] = 0;
    }
    good &= ok(strlen(v->bnd) >= 20, "%s: boundary \"%s\" found", name, v->bnd);
    if (!good || !v->bnd[0]) {
        skip(STRUCT_TESTS - 4, "no usable structure");
        return 0;
    }

    /* 3: the boundary occurs only in Content-Type and the 4 delimiters */
    good &= is_int((long long)count_mem(p, m->len, v->bnd), 5,
                   "%s: boundary occurs exactly 5 times", name);
    snprintf(delim, sizeof(delim), "\r\n--%s\r\n", v->bnd);
    snprintf(close, sizeof(close), "\r\n--%s--\r\n", v->bnd);
    good &=
        ok(count_mem(p, m->len, delim) == 3 && m->len >= strlen(close) &&
               !memcmp(end - strlen(close), close, strlen(close)),
           "%s: 3 delimiter lines and the close delimiter at the end", name);

    /* split into parts */
    q = p;
    for (i = 0; i < 3; i++) {
        const char *ph = memmem(q, (size_t)(end - q), delim, strlen(delim));
        const char *pe, *next;

        if (!ph)
            break;
        ph += strlen(delim);
        pe = find(ph, (size_t)(end - ph), "\r\n\r\n");
        if (!pe)
            break;
        v->part_head[i] = ph;
        v->part_head_len[i] = (size_t)(pe - ph) + 2;
        v->body[i] = pe + 4;
        /* the body ends at the CRLF of the next delimiter (an empty body:
           the delimiter follows the empty line at once) */
        next = find(v->body[i], (size_t)(end - v->body[i]), "\r\n--");
        while (next && ((size_t)(end - next - 4) < strlen(v->bnd) ||
                        memcmp(next + 4, v->bnd, strlen(v->bnd)) != 0))
            next = find(next + 4, (size_t)(end - next - 4), "\r\n--");
        if (!next)
            break;
        v->body_len[i] = (size_t)(next - v->body[i]);
        q = next;
    }
    good &= ok(i == 3 &&
                   has(v->part_head[0], v->part_head_len[0],
                       "Content-Type: text/plain; charset=us-ascii\r\n") &&
                   has(v->part_head[1], v->part_head_len[1],
                       "Content-Type: message/delivery-status\r\n") &&
                   has(v->part_head[2], v->part_head_len[2],
                       "Content-Type: text/rfc822-headers\r\n"),
               "%s: parts text/plain, message/delivery-status, "
               "text/rfc822-headers",
               name);
    if (i < 3) {
        skip(STRUCT_TESTS - 7, "parts not found");
        return 0;
    }
    eight = 0;
    for (i = 0; i < v->body_len[0]; i++)
        eight += (unsigned char)v->body[0][i] > 0x7e;
    for (i = 0; i < v->body_len[1]; i++)
        eight += (unsigned char)v->body[1][i] > 0x7e;
    good &= ok(eight == 0, "%s: parts 1 and 2 are 7-bit", name);
    good &=
        ok(!strncmp(v->body[1], "Reporting-MTA: dns; ", 20) &&
               count_mem(v->body[1], v->body_len[1],
                         "\r\nFinal-Recipient: "
                         "rfc822; ") == nrcpt &&
               count_mem(v->body[1], v->body_len[1], "\r\nAction: ") == nrcpt &&
               count_mem(v->body[1], v->body_len[1], "\r\nStatus: ") == nrcpt &&
               count_mem(v->body[1], v->body_len[1], "\r\n\r\n") == nrcpt,
           "%s: delivery-status has Reporting-MTA and %zu recipient blocks "
           "with Final-Recipient, Action, Status",
           name, nrcpt);
    save_sample(name, m);
    return good;
}

/* Build a DSN into a fresh buffer; 0 on success (the test point is
   emitted by the caller). */
static int build(const struct dsn_info *info, struct buf *m, char *err,
                 size_t errlen)
{
    buf_init(m);
    return dsn_build(info, m, err, errlen);
}

/* Has region [p, p+len) a line that starts with prefix? */
static int has_line(const char *p, size_t len, const char *prefix)
{
    const char *end = p + len, *q = p;
    size_t pl = strlen(prefix);

    while (q < end) {
        const char *e = find(q, (size_t)(end - q), "\r\n");

        if ((size_t)(end - q) >= pl && !memcmp(q, prefix, pl))
            return 1;
        if (!e)
            break;
        q = e + 2;
    }
    return 0;
}

/* The unfolded value of the first field name in [p, p+len), kept in out;
   NULL if there is no such field. */
static const char *field_value(const char *p, size_t len, const char *name,
                               struct buf *out)
{
    char pat[128];
    const char *q, *end = p + len;

    buf_reset(out);
    snprintf(pat, sizeof(pat), "\r\n%s: ", name);
    if (len >= strlen(pat) - 2 && !memcmp(p, pat + 2, strlen(pat) - 2))
        q = p + strlen(pat) - 2;
    else if ((q = memmem(p, len, pat, strlen(pat))))
        q += strlen(pat);
    else
        return NULL;
    while (q < end) {
        const char *e = find(q, (size_t)(end - q), "\r\n");

        if (!e)
            e = end;
        buf_append(out, q, (size_t)(e - q));
        if (e + 2 < end && (e[2] == ' ' || e[2] == '\t'))
            q = e + 2;
        else
            break;
    }
    if (!out->data)
        buf_puts(out, "");
    return out->data;
}

static const char orig_crlf[] = "Return-Path: <alice@example.org>\r\n"
                                "From: Alice <alice@example.org>\r\n"
                                "To: announce@lists.example.org\r\n"
                                "Subject: Hello list\r\n"
                                "Message-ID: <hello.1@example.org>\r\n"
                                "\r\n"
                                "Body line one.\r\n";

static const char orig_headers_crlf[] = "Return-Path: <alice@example.org>\r\n"
                                        "From: Alice <alice@example.org>\r\n"
                                        "To: announce@lists.example.org\r\n"
                                        "Subject: Hello list\r\n"
                                        "Message-ID: <hello.1@example.org>\r\n";

static void base_info(struct dsn_info *info, const struct dsn_rcpt *r, size_t n)
{
    memset(info, 0, sizeof(*info));
    info->reporting_mta = "mx.example.org";
    info->to = "alice@example.org";
    info->list = "announce";
    info->queue_id =
        "1732312345.123456+0123456789abcdef0123456789abcdef01234567";
    info->arrival = 1732312345;
    info->rcpt = r;
    info->nrcpt = n;
    info->orig = orig_crlf;
    info->orig_len = sizeof(orig_crlf) - 1;
}

/* --------------------------------------------------------------- tests */

static void test_status(void)
{
    static const struct {
        const char *action, *status, *diag, *want;
    } t[] = {
        {"failed", "5.1.1", NULL, "5.1.1"},
        {"failed", NULL, "550 5.1.1 <x@y>: user unknown", "5.1.1"},
        {"failed", NULL, "550-5.7.1 rejected", "5.7.1"},
        {"failed", NULL, "550 user unknown", "5.0.0"},
        {"failed", NULL, "554 4.1.1 classes disagree", "5.0.0"},
        {"failed", NULL, "  452 4.2.2 mailbox full", "4.2.2"},
        {"failed", NULL, "421", "4.0.0"},
        {"delayed", NULL, "connect to x: Connection refused", "4.0.0"},
        {"failed", NULL, "connect to x: Connection refused", "5.0.0"},
        {"delayed", NULL, NULL, "4.0.0"},
        {"failed", "", "550 5.1.1 x", "5.1.1"},
        {"failed", "5.1.1\r\nX: y", "550 5.1.2 x", "5.1.2"},
        {"failed", "2.0.0", NULL, "5.0.0"},
        {"failed", "5.1234.1", NULL, "5.0.0"},
        {"failed", "5.01.1", NULL, "5.01.1"},
        {"failed", "5.123.456", NULL, "5.123.456"},
        {"failed", NULL, "550 5.1.1x", "5.0.0"},
        {"failed", NULL, "5501 5.1.1 x", "5.0.0"},
        {"delayed", "4.4.1", "550 5.1.1 x", "4.4.1"},
        {"delayed", NULL, "550 5.1.1 x", "4.1.1"},
        {"delayed", "5.2.2", NULL, "4.2.2"},
        {"delayed", NULL, "554 no", "4.0.0"},
        {"failed", "4.4.1", "connect: timed out", "4.4.1"},
        {NULL, NULL, NULL, "5.0.0"},
    };
    char out[DSN_STATUS_MAX];
    size_t i;

    for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        memset(out, 'x', sizeof(out));
        dsn_status(t[i].action, t[i].status, t[i].diag, out);
        is_str(out, t[i].want, "dsn_status(%s, %s, %s)", t[i].action,
               t[i].status ? t[i].status : "NULL",
               t[i].diag ? t[i].diag : "NULL");
    }
}

static void test_date(void)
{
    char d[DSN_DATE_MAX];

    setenv("TZ", "UTC0", 1);
    tzset();
    ok(dsn_date(0, d, sizeof(d)) == 0 &&
           !strcmp(d, "Thu, 1 Jan 1970 00:00:00 +0000"),
       "dsn_date(0) in UTC: %s", d);
    ok(dsn_date(1732312345, d, sizeof(d)) == 0 &&
           !strcmp(d, "Fri, 22 Nov 2024 21:52:25 +0000"),
       "dsn_date(1732312345) in UTC: %s", d);
    setenv("TZ", "XST-5:30", 1);
    tzset();
    ok(dsn_date(0, d, sizeof(d)) == 0 &&
           !strcmp(d, "Thu, 1 Jan 1970 05:30:00 +0530"),
       "dsn_date(0) at +05:30: %s", d);
    setenv("TZ", "EST5", 1);
    tzset();
    ok(dsn_date(0, d, sizeof(d)) == 0 &&
           !strcmp(d, "Wed, 31 Dec 1969 19:00:00 -0500"),
       "dsn_date(0) at -05:00: %s", d);
    ok(dsn_date((int64_t)1 << 50, d, sizeof(d)) == -1,
       "dsn_date refuses a year past 9999");
    ok(dsn_date(0, d, 10) == -1, "dsn_date refuses a short buffer");
    setenv("TZ", "UTC0", 1);
    tzset();
}

static void test_one(void)
{
    struct dsn_rcpt r[] = {{"bob@example.net", "failed", "5.1.1",
                            "550 5.1.1 <bob@example.net>: user unknown",
                            "127.0.0.1"}};
    struct dsn_info info;
    struct dsn_view v;
    struct buf m, val;
    const char *fv;
    char err[256];

    base_info(&info, r, 1);
    buf_init(&val);
    if (!is_int(build(&info, &m, err, sizeof(err)), 0, "one: built") ||
        !check_structure("one", &m, &v, 1)) {
        skip(14, "one: no DSN");
        buf_free(&m);
        return;
    }
    fv = field_value(v.head, v.head_len, "Subject", &val);
    ok(fv && !strcmp(fv, "Undelivered Mail Returned to Sender "
                         "(list announce)"),
       "one: Subject: %s", fv ? fv : "");
    ok(has_line(v.head, v.head_len,
                "From: Mail Delivery System "
                "<MAILER-DAEMON@mx.example.org>\r\n"),
       "one: From is MAILER-DAEMON@reporting MTA");
    ok(has_line(v.head, v.head_len, "To: <alice@example.org>\r\n"),
       "one: To is the envelope sender");
    ok(has_line(v.head, v.head_len, "Message-ID: <") &&
           has(v.head, v.head_len, "@mx.example.org>\r\n"),
       "one: Message-ID in the reporting MTA's domain");
    ok(has(v.body[1], v.body_len[1],
           "Reporting-MTA: dns; mx.example.org\r\n"
           "X-MMQ-Queue-ID: 1732312345.123456+"
           "0123456789abcdef0123456789abcdef01234567\r\n"
           "X-MMQ-Sender: rfc822; alice@example.org\r\n"
           "Arrival-Date: Fri, 22 Nov 2024 21:52:25 +0000\r\n"
           "\r\n"),
       "one: per-message fields");
    ok(has(v.body[1], v.body_len[1],
           "\r\nFinal-Recipient: rfc822; bob@example.net\r\n"
           "Action: failed\r\n"
           "Status: 5.1.1\r\n"
           "Remote-MTA: dns; 127.0.0.1\r\n"),
       "one: per-recipient fields");
    fv = field_value(v.body[1], v.body_len[1], "Diagnostic-Code", &val);
    ok(fv && !strcmp(fv, "smtp; 550 5.1.1 <bob@example.net>: user unknown"),
       "one: Diagnostic-Code: %s", fv ? fv : "");
    is_mem(v.body[2], v.body_len[2], orig_headers_crlf,
           sizeof(orig_headers_crlf) - 1,
           "one: part 3 is the original header section");
    ok(!has(v.body[2], v.body_len[2], "Body line"),
       "one: the original body is not included");
    ok(has(v.body[0], v.body_len[0],
           "<bob@example.net>: failed, status "
           "5.1.1\r\n") &&
           has(v.body[0], v.body_len[0],
               "    host 127.0.0.1 said: 550 5.1.1 <bob@example.net>: "
               "user unknown\r\n"),
       "one: text part lists the recipient and the reply");
    ok(has(v.body[0], v.body_len[0], "mailing list announce") &&
           has(v.body[0], v.body_len[0], "at host mx.example.org."),
       "one: text part names the list and the host");
    ok(!has(m.data, m.len, "Content-Transfer-Encoding"),
       "one: no 8bit label for an ASCII message");
    ok(!has(v.body[0], v.body_len[0], "WARNING"),
       "one: a failure is no warning");
    {
        struct buf m2;
        struct dsn_view v2;
        struct buf id1, id2;

        buf_init(&id1);
        buf_init(&id2);
        build(&info, &m2, err, sizeof(err));
        field_value(m.data, m.len, "Message-ID", &id1);
        field_value(m2.data, m2.len, "Message-ID", &id2);
        memset(&v2, 0, sizeof(v2));
        ok(id1.data && id2.data && strcmp(id1.data, id2.data) != 0 &&
               !memmem(m2.data, m2.len, v.bnd, strlen(v.bnd)),
           "one: a second DSN has another Message-ID (%s, %s) and boundary",
           id1.data ? id1.data : "", id2.data ? id2.data : "");
        buf_free(&id1);
        buf_free(&id2);
        buf_free(&m2);
    }
    buf_free(&val);
    buf_free(&m);
}

static void test_three(void)
{
    struct dsn_rcpt r[] = {
        {"bob@example.net", "failed", NULL,
         "550 5.7.1 <bob@example.net>: Recipient address rejected: "
         "Access denied",
         "192.0.2.25"},
        {"carol@example.com", "delayed", NULL,
         "451 4.3.0 <carol@example.com>: Temporary lookup failure",
         "mx.example.com"},
        {"<dave@example.com>", "failed", NULL,
         "connect to mx.example.com[198.51.100.7]:25: Connection refused",
         NULL},
    };
    struct dsn_info info;
    struct dsn_view v;
    struct buf m, val;
    const char *fv;
    char err[256];

    base_info(&info, r, 3);
    info.postmaster = "postmaster@lists.example.org";
    buf_init(&val);
    if (!is_int(build(&info, &m, err, sizeof(err)), 0, "three: built") ||
        !check_structure("three", &m, &v, 3)) {
        skip(8, "three: no DSN");
        buf_free(&m);
        return;
    }
    ok(has_line(v.head, v.head_len,
                "From: Mail Delivery System "
                "<postmaster@lists.example.org>\r\n"),
       "three: From is the given postmaster");
    fv = field_value(v.head, v.head_len, "Subject", &val);
    ok(fv && !strncmp(fv, "Undelivered Mail Returned to Sender", 35),
       "three: a failure among delays makes an undelivered subject");
    ok(has(v.body[1], v.body_len[1],
           "Final-Recipient: rfc822; bob@example.net\r\n"
           "Action: failed\r\nStatus: 5.7.1\r\n"
           "Remote-MTA: dns; 192.0.2.25\r\n"
           "Diagnostic-Code: smtp; 550 5.7.1 <bob@example.net>:"),
       "three: 1st recipient, status from the reply");
    ok(has(v.body[1], v.body_len[1],
           "Final-Recipient: rfc822; carol@example.com\r\n"
           "Action: delayed\r\nStatus: 4.3.0\r\n"
           "Remote-MTA: dns; mx.example.com\r\n"
           "Diagnostic-Code: smtp; 451 4.3.0"),
       "three: 2nd recipient delayed, status 4.3.0");
    ok(has(v.body[1], v.body_len[1],
           "Final-Recipient: rfc822; dave@example.com\r\n"
           "Action: failed\r\nStatus: 5.0.0\r\n"
           "Diagnostic-Code: X-MMQ; connect to"),
       "three: 3rd recipient, local reason, no Remote-MTA, 5.0.0, "
       "angles stripped");
    {
        const char *b1 = memmem(v.body[1], v.body_len[1], "bob@", 4);
        const char *b2 = memmem(v.body[1], v.body_len[1], "carol@", 6);
        const char *b3 = memmem(v.body[1], v.body_len[1], "dave@", 5);

        ok(b1 && b2 && b3 && b1 < b2 && b2 < b3,
           "three: recipient blocks in the given order");
    }
    ok(has(v.body[0], v.body_len[0], "<carol@example.com>: delayed") &&
           has(v.body[0], v.body_len[0], "    reason: connect to") &&
           has(v.body[0], v.body_len[0], "marked \"delayed\""),
       "three: text part shows the delayed recipient and the local reason");
    ok(has(v.body[0], v.body_len[0], "host 192.0.2.25 said:") &&
           has(v.body[0], v.body_len[0], "host mx.example.com said:"),
       "three: text part names the remote hosts");
    buf_free(&val);
    buf_free(&m);
}

static void test_delayed(void)
{
    struct dsn_rcpt r[] = {
        {"bob@example.net", "delayed", NULL,
         "421 4.4.2 mx.example.net Error: timeout exceeded", "192.0.2.1"},
        {"carol@example.net", "delayed", "4.4.1", NULL, NULL}};
    struct dsn_info info;
    struct dsn_view v;
    struct buf m, val;
    const char *fv;
    char err[256];

    base_info(&info, r, 2);
    info.list = NULL;
    info.queue_id = NULL;
    info.arrival = 0;
    buf_init(&val);
    if (!is_int(build(&info, &m, err, sizeof(err)), 0, "delayed: built") ||
        !check_structure("delayed", &m, &v, 2)) {
        skip(5, "delayed: no DSN");
        buf_free(&m);
        return;
    }
    fv = field_value(v.head, v.head_len, "Subject", &val);
    ok(fv && !strcmp(fv, "Delayed Mail (still being retried)"),
       "delayed: Subject: %s", fv ? fv : "");
    ok(has(v.body[0], v.body_len[0], "THIS IS A WARNING ONLY") &&
           has(v.body[0], v.body_len[0], "will keep trying"),
       "delayed: text part says it is a warning");
    ok(!has(v.body[1], v.body_len[1], "X-MMQ-Queue-ID") &&
           !has(v.body[1], v.body_len[1], "Arrival-Date") &&
           !has(v.body[0], v.body_len[0], "mailing list"),
       "delayed: no queue ID, arrival date or list when not given");
    ok(has(v.body[1], v.body_len[1],
           "Final-Recipient: rfc822; carol@example.net\r\n"
           "Action: delayed\r\nStatus: 4.4.1\r\n") &&
           !has(v.body[1], v.body_len[1], "4.4.1\r\nDiagnostic"),
       "delayed: a recipient without reply has no Diagnostic-Code");
    ok(has(v.body[1], v.body_len[1], "Status: 4.4.2\r\n"),
       "delayed: status from a 421 reply");
    buf_free(&val);
    buf_free(&m);
}

static void test_injection(void)
{
    struct dsn_rcpt r[] = {
        {"bob@example.net\r\nX-Injected: 1\r\n\r\n--x", "failed", NULL,
         "550 5.1.1 bad\r\nBcc: evil@example.com\r\n\r\n--=_mmq_\r\n"
         "Content-Type: text/html\r\n\r\n<b>x</b>\x01\x1b[31m\x7f\xff\xc3\xa9",
         "127.0.0.1\r\nX-Host: evil"}};
    struct dsn_info info;
    struct dsn_view v;
    struct buf m, val;
    const char *fv;
    char err[256];

    base_info(&info, r, 1);
    info.to = "alice@example.org\r\nBcc: evil@example.com";
    info.list = "announce\r\nX-List: evil";
    info.reporting_mta = "mx.example.org\r\nX-Evil: 1";
    info.queue_id = "abc\r\nX-Q: 1";
    buf_init(&val);
    if (!is_int(build(&info, &m, err, sizeof(err)), 0, "injection: built") ||
        !check_structure("injection", &m, &v, 1)) {
        skip(6, "injection: no DSN");
        buf_free(&m);
        return;
    }
    ok(!has_line(m.data, m.len, "Bcc:") &&
           !has_line(m.data, m.len, "X-Injected") &&
           !has_line(m.data, m.len, "X-List") &&
           !has_line(m.data, m.len, "X-Evil") &&
           !has_line(m.data, m.len, "X-Host") &&
           !has_line(m.data, m.len, "X-Q") &&
           !has_line(m.data, m.len, "Content-Type: text/html") &&
           !has_line(m.data, m.len, "--x"),
       "injection: no injected line anywhere");
    ok(has(v.body[1], v.body_len[1],
           "Final-Recipient: rfc822; bob@example.net X-Injected: 1 --x\r\n"),
       "injection: the address is one line");
    fv = field_value(v.body[1], v.body_len[1], "Diagnostic-Code", &val);
    ok(fv && !strcmp(fv, "smtp; 550 5.1.1 bad Bcc: evil@example.com "
                         "--=_mmq_ Content-Type: text/html <b>x</b>[31m???"),
       "injection: the reply is one cleaned line: %s", fv ? fv : "");
    ok(has_line(v.body[1], v.body_len[1],
                "Remote-MTA: dns; 127.0.0.1X-Host:evil") &&
           has_line(v.body[1], v.body_len[1],
                    "Reporting-MTA: dns; mx.example.orgX-Evil:1") &&
           has_line(v.body[1], v.body_len[1], "X-MMQ-Queue-ID: abcX-Q:1"),
       "injection: host names and queue ID keep host characters only");
    ok(has_line(v.head, v.head_len,
                "To: <alice@example.org Bcc: evil@example.com>\r\n") &&
           has_line(v.head, v.head_len,
                    "Subject: Undelivered Mail Returned to Sender (list "
                    "announce X-List: evil)\r\n"),
       "injection: To and Subject are one line");
    ok(has_line(v.head, v.head_len, "Message-ID: <") &&
           has(v.head, v.head_len, "@mx.example.orgX-Evil1>"),
       "injection: Message-ID domain cleaned");
    buf_free(&val);
    buf_free(&m);
}

static void test_long(void)
{
    struct dsn_rcpt r[3];
    struct dsn_info info;
    struct dsn_view v;
    struct buf m, val, diag1, diag2, addr;
    const char *fv;
    char err[256];
    size_t i;

    buf_init(&diag1);
    buf_init(&diag2);
    buf_init(&addr);
    buf_init(&val);
    buf_puts(&diag1, "550 5.2.2");
    for (i = 0; diag1.len < 10000; i++)
        buf_printf(&diag1, " word%zu", i);
    buf_puts(&diag2, "552 5.3.4 ");
    while (diag2.len < 10240)
        buf_puts(&diag2, "x");
    while (addr.len < 5000)
        buf_puts(&addr, "a");
    buf_puts(&addr, "@example.net");
    r[0] = (struct dsn_rcpt){"bob@example.net", "failed", NULL, diag1.data,
                             "127.0.0.1"};
    r[1] = (struct dsn_rcpt){"carol@example.net", "failed", NULL, diag2.data,
                             NULL};
    r[2] = (struct dsn_rcpt){addr.data, "failed", NULL, NULL, addr.data};
    base_info(&info, r, 3);
    info.list = addr.data;
    if (!is_int(build(&info, &m, err, sizeof(err)), 0, "long: built") ||
        !check_structure("long", &m, &v, 3)) {
        skip(5, "long: no DSN");
        goto out;
    }
    fv = field_value(v.body[1], v.body_len[1], "Diagnostic-Code", &val);
    ok(fv && val.len <= DSN_DIAG_MAX + 6 &&
           !strncmp(fv,
                    "smtp; 550 5.2.2 "
                    "word0 word1 ",
                    28) &&
           !strcmp(val.data + val.len - 3, "..."),
       "long: a 10 KB reply is cut to %zu bytes ending in \"...\"", val.len);
    ok(fv && !strncmp(diag1.data, fv + 6, val.len - 6 - 3 - 10),
       "long: folding at spaces keeps the reply text");
    ok(count_mem(v.body[1], v.body_len[1], "\r\n ") > 20,
       "long: Diagnostic-Code is folded (%zu continuation lines)",
       count_mem(v.body[1], v.body_len[1], "\r\n "));
    ok(has(v.body[1], v.body_len[1], "Status: 5.3.4\r\n") &&
           has(v.body[1], v.body_len[1], "xxxxx...\r\n"),
       "long: a reply that is one long word is cut and kept");
    {
        const char *fr =
            find(v.body[1], v.body_len[1], "\r\nFinal-Recipient: rfc822; aaaa");
        const char *e =
            fr ? find(fr + 2, (size_t)(v.body[1] + v.body_len[1] - fr - 2),
                      "\r\n")
               : NULL;

        ok(e && (size_t)(e - fr - 2) == 25 + DSN_ADDR_MAX &&
               !memcmp(e - 6, "aaa...", 6),
           "long: a 5 KB address is cut to DSN_ADDR_MAX, on one line");
    }
out:
    buf_free(&m);
    buf_free(&val);
    buf_free(&diag1);
    buf_free(&diag2);
    buf_free(&addr);
}

/* A DSN whose part 3 should be exactly want. */
static void check_orig(const char *name, const char *orig, size_t len,
                       const char *want, size_t wantlen)
{
    struct dsn_rcpt r[] = {{"bob@example.net", "failed", NULL,
                            "550 5.1.1 user unknown", "127.0.0.1"}};
    struct dsn_info info;
    struct dsn_view v;
    struct buf m;
    char err[256];

    base_info(&info, r, 1);
    info.orig = orig;
    info.orig_len = len;
    if (!is_int(build(&info, &m, err, sizeof(err)), 0, "%s: built", name) ||
        !check_structure(name, &m, &v, 1)) {
        skip(1, "no DSN");
        buf_free(&m);
        return;
    }
    is_mem(v.body[2], v.body_len[2], want, wantlen, "%s: part 3", name);
    buf_free(&m);
}

#define S(x) x, sizeof(x) - 1

static void test_orig(void)
{
    check_orig("orig-lf", S("From: a@b\nTo: c@d\n  folded\n\nbody\nmore\n"),
               S("From: a@b\r\nTo: c@d\r\n  folded\r\n"));
    check_orig("orig-nosep", S("From: a@b\nSubject: no body"),
               S("From: a@b\r\nSubject: no body\r\n"));
    check_orig("orig-nosep-crlf", S("From: a@b\r\nSubject: x\r\n"),
               S("From: a@b\r\nSubject: x\r\n"));
    check_orig("orig-empty", "", 0, "", 0);
    check_orig("orig-null", NULL, 0, "", 0);
    check_orig("orig-nohead", S("\r\nbody only\r\n"), "", 0);
    check_orig("orig-cr-nul",
               S("From: a@b\r\r\nX-Nul: a\0b\rc\nSubject: s\r\n\r\nbody"),
               S("From: a@b\r\nX-Nul: abc\r\nSubject: s\r\n"));
    check_orig("orig-boundary",
               S("From: a@b\n--=_mmq_\n--=_mmq_0123456789abcdef0123456789abcd"
                 "ef\n--=_mmq_0123456789abcdef0123456789abcdef--\nSubject: "
                 "boundary=\"=_mmq_\"\n\n--=_mmq_\n"),
               S("From: a@b\r\n--=_mmq_\r\n--=_mmq_0123456789abcdef0123456789"
                 "abcdef\r\n--=_mmq_0123456789abcdef0123456789abcdef--\r\n"
                 "Subject: boundary=\"=_mmq_\"\r\n"));
}

static void test_8bit(void)
{
    static const char orig[] = "From: =?utf-8?q?J=C3=B6rg?= <j@b>\r\n"
                               "Subject: Gr\xc3\xbc\xc3\x9f"
                               "e\r\n\r\nbody\xff\r\n";
    struct dsn_rcpt r[] = {{"j\xc3\xb6rg@example.net", "failed", NULL,
                            "550 5.1.1 unknown user j\xc3\xb6rg", NULL}};
    struct dsn_info info;
    struct dsn_view v;
    struct buf m;
    char err[256];

    base_info(&info, r, 1);
    info.orig = orig;
    info.orig_len = sizeof(orig) - 1;
    if (!is_int(build(&info, &m, err, sizeof(err)), 0, "8bit: built") ||
        !check_structure("8bit", &m, &v, 1)) {
        skip(3, "8bit: no DSN");
        buf_free(&m);
        return;
    }
    ok(has_line(v.head, v.head_len, "Content-Transfer-Encoding: 8bit\r\n") &&
           has(v.part_head[2], v.part_head_len[2],
               "Content-Transfer-Encoding: 8bit\r\n"),
       "8bit: message and part 3 labelled 8bit");
    ok(has(v.body[2], v.body_len[2],
           "Subject: Gr\xc3\xbc\xc3\x9f"
           "e\r\n"),
       "8bit: 8-bit header kept in part 3");
    ok(has(v.body[1], v.body_len[1], "rfc822; j??rg@example.net") &&
           has(v.body[1], v.body_len[1], "unknown user j??rg"),
       "8bit: 8-bit bytes in address and reply become '?'");
    buf_free(&m);
}

static void test_big_headers(void)
{
    struct dsn_rcpt r[] = {{"bob@example.net", "failed", "5.1.1", NULL, NULL}};
    struct dsn_info info;
    struct dsn_view v;
    struct buf orig, m;
    char err[256];
    size_t i;

    /* 3000 fields with a continuation line each: about 200 KB */
    buf_init(&orig);
    for (i = 0; i < 3000; i++)
        buf_printf(&orig,
                   "X-Fill-%zu: 0123456789012345678901234567890123456789\n"
                   "\t0123456789012345678901234567890123456789\n",
                   i);
    buf_puts(&orig, "\nbody\n");
    base_info(&info, r, 1);
    info.orig = orig.data;
    info.orig_len = orig.len;
    if (is_int(build(&info, &m, err, sizeof(err)), 0, "big: built") &&
        check_structure("big-headers", &m, &v, 1)) {
        ok(v.body_len[2] <= DSN_HEADERS_MAX &&
               v.body_len[2] > DSN_HEADERS_MAX - 200,
           "big: part 3 is %zu bytes, at most 64 KiB", v.body_len[2]);
        ok(v.body_len[2] > 2 &&
               !memcmp(v.body[2] + v.body_len[2] - 43,
                       "\t0123456789012345678901234567890123456789\r\n", 43),
           "big: cut after a whole field (its continuation line)");
        ok(has(v.body[0], v.body_len[0], "cut to 64 KiB"),
           "big: the text says the header section was cut");
    } else {
        skip(3, "big: no DSN");
    }
    buf_free(&m);

    /* one 200 KB line: split into continuation lines, cut at 64 KiB */
    buf_reset(&orig);
    buf_puts(&orig, "Subject: ");
    while (orig.len < 200000)
        buf_puts(&orig, "0123456789");
    buf_puts(&orig, "\n\nbody\n");
    info.orig = orig.data;
    info.orig_len = orig.len;
    if (is_int(build(&info, &m, err, sizeof(err)), 0, "huge line: built") &&
        check_structure("huge-line", &m, &v, 1)) {
        ok(v.body_len[2] <= DSN_HEADERS_MAX &&
               v.body_len[2] > DSN_HEADERS_MAX - 1000 &&
               !strncmp(v.body[2], "Subject: 0123456789", 19) &&
               count_mem(v.body[2], v.body_len[2], "\r\n ") > 60,
           "huge line: %zu bytes of continuation lines", v.body_len[2]);
    } else {
        skip(1, "huge line: no DSN");
    }
    buf_free(&m);
    buf_free(&orig);
}

static void test_many(void)
{
    enum { N = 500 };
    struct dsn_rcpt *r = calloc(N, sizeof(*r));
    char(*addr)[64] = calloc(N, sizeof(*addr));
    struct dsn_info info;
    struct dsn_view v;
    struct buf m;
    char err[256];
    size_t i;

    if (!r || !addr)
        bail_out("out of memory");
    for (i = 0; i < N; i++) {
        snprintf(addr[i], sizeof(addr[i]), "user%zu@example.net", i);
        r[i] =
            (struct dsn_rcpt){addr[i], i % 3 ? "failed" : "delayed", NULL,
                              i % 2 ? "550 5.1.1 unknown" : NULL, "127.0.0.1"};
    }
    base_info(&info, r, N);
    if (is_int(build(&info, &m, err, sizeof(err)), 0, "many: built"))
        check_structure("many", &m, &v, N);
    else
        skip(STRUCT_TESTS, "many: no DSN");
    buf_free(&m);
    free(r);
    free(addr);
}

static void test_invalid(void)
{
    static const struct dsn_rcpt good[] = {
        {"bob@example.net", "failed", NULL, NULL, NULL}};
    static const struct dsn_rcpt noaddr[] = {
        {NULL, "failed", NULL, NULL, NULL}};
    static const struct dsn_rcpt spaddr[] = {
        {"< \t>", "failed", NULL, NULL, NULL}};
    static const struct dsn_rcpt ctladdr[] = {
        {"\r\n\t", "failed", NULL, NULL, NULL}};
    static const struct dsn_rcpt badact[] = {
        {"bob@example.net", "bounced", NULL, NULL, NULL}};
    static const struct dsn_rcpt noact[] = {
        {"bob@example.net", NULL, NULL, NULL, NULL}};
    static const struct {
        const char *name, *to, *mta;
        const struct dsn_rcpt *r;
        size_t n;
        const char *want; /* a word of err */
    } t[] = {
        {"to NULL", NULL, "mx", good, 1, "null sender"},
        {"to empty", "", "mx", good, 1, "null sender"},
        {"to <>", "<>", "mx", good, 1, "null sender"},
        {"to CRLF", "\r\n", "mx", good, 1, "null sender"},
        {"no reporting MTA", "a@b", NULL, good, 1, "reporting MTA"},
        {"reporting MTA junk", "a@b", "\r\n;;", good, 1, "reporting MTA"},
        {"no recipients", "a@b", "mx", good, 0, "no recipients"},
        {"NULL recipients", "a@b", "mx", NULL, 1, "no recipients"},
        {"no address", "a@b", "mx", noaddr, 1, "no address"},
        {"control address", "a@b", "mx", ctladdr, 1, "empty"},
        {"address < >", "a@b", "mx", spaddr, 1, "empty"},
        {"to < >", "< >", "mx", good, 1, "null sender"},
        {"bad action", "a@b", "mx", badact, 1, "action"},
        {"no action", "a@b", "mx", noact, 1, "action"},
    };
    struct dsn_info info;
    struct buf m;
    char err[256];
    size_t i;

    buf_init(&m);
    buf_puts(&m, "kept");
    for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        base_info(&info, t[i].r, t[i].n);
        info.to = t[i].to;
        info.reporting_mta = t[i].mta;
        strcpy(err, "stale");
        ok(dsn_build(&info, &m, err, sizeof(err)) == -1 &&
               strstr(err, t[i].want) && m.len == 4 && !strcmp(m.data, "kept"),
           "invalid (%s): -1, out unchanged, err: %s", t[i].name, err);
    }
    base_info(&info, good, 1);
    info.orig = NULL;
    info.orig_len = 10;
    ok(dsn_build(&info, &m, err, sizeof(err)) == -1 && m.len == 4,
       "invalid: orig NULL with a length: %s", err);
    ok(dsn_build(NULL, &m, err, sizeof(err)) == -1 &&
           dsn_build(&info, NULL, err, sizeof(err)) == -1,
       "invalid: NULL info or out");
    info.orig_len = 0;
    ok(dsn_build(&info, &m, NULL, 0) == 0 && m.len > 4 &&
           !strncmp(m.data, "keptDate: ", 10),
       "dsn_build appends to out (and err may be NULL)");
    buf_free(&m);
}

int main(void)
{
    setenv("TZ", "UTC0", 1);
    tzset();
    test_status();
    test_date();
    test_one();
    test_three();
    test_delayed();
    test_injection();
    test_long();
    test_orig();
    test_8bit();
    test_big_headers();
    test_many();
    test_invalid();
    return done_testing();
}
