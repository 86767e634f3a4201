/*
 * dsn - build delivery status notifications.  See dsn.h for the format and
 * the guarantees.
 *
 * Every byte that comes from outside (addresses, server replies, host
 * names, the original header section) goes through clean() or
 * put_orig_headers() before it reaches the output, and every header field
 * we write goes through the folder (struct fold), which alone decides
 * where lines end.  The three parts are built in separate buffers first,
 * so that the boundary can be checked against all of their bytes before
 * the message is assembled.
 */
#include "autoconf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <openssl/rand.h>

#include "dsn.h"

#define LINE_HARD 998 /* RFC 5322 2.1.1: MUST */
#define LINE_SOFT 78  /* RFC 5322 2.1.1: SHOULD */
#define TEXT_WIDTH 72 /* the human-readable part */
#define BOUNDARY_PREFIX "=_mmq_"
#define BOUNDARY_TRIES 16

enum clean_mode {
    CLEAN_TEXT,  /* printable ASCII and single spaces */
    CLEAN_TOKEN, /* printable ASCII, no spaces (queue IDs) */
    CLEAN_HOST   /* only host name and IP literal characters */
};

static int fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (err && errlen) {
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* ------------------------------------------------------------ cleaning */

static int host_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '_' ||
           c == ':' || c == '[' || c == ']';
}

/*
 * Put a cleaned copy of s (NULL: "") into dst, replacing its contents, and
 * return dst->data (never NULL on success), or NULL when memory runs out.
 * CLEAN_TEXT: white space and line ends (any byte below 0x20 that is
 * white space) become a single space, other control characters and DEL
 * are dropped, bytes above 0x7E become '?', no leading or trailing space.
 * CLEAN_TOKEN: only bytes 0x21..0x7E are kept.  CLEAN_HOST: only
 * host_char() bytes are kept.  A result longer than max
 * bytes is cut to max bytes ending in "...".  Reading stops as soon as the
 * result passes max bytes, so a long hostile string costs little.
 */
static const char *clean(struct buf *dst, const char *s, size_t max,
                         enum clean_mode mode)
{
    int space = 0;
    char c;

    buf_reset(dst);
    if (buf_reserve(dst, max + 4) != 0)
        return NULL;
    for (; s && *s && dst->len <= max; s++) {
        unsigned char u = (unsigned char)*s;

        if (mode != CLEAN_TEXT) {
            if (mode == CLEAN_HOST ? host_char(u) : u > 0x20 && u < 0x7f)
                dst->data[dst->len++] = (char)u;
            continue;
        }
        if (u == ' ' || u == '\t' || u == '\r' || u == '\n' || u == '\v' ||
            u == '\f') {
            space = dst->len > 0;
            continue;
        }
        if (u < 0x20 || u == 0x7f)
            continue;
        c = u > 0x7e ? '?' : (char)u;
        if (space && dst->len < max) /* room: 4 bytes reserved beyond max */
            dst->data[dst->len++] = ' ';
        space = 0;
        dst->data[dst->len++] = c;
    }
    if (dst->len > max) {
        dst->len = max > 3 ? max - 3 : 0;
        memcpy(dst->data + dst->len, "...", 3);
        dst->len += 3;
    }
    dst->data[dst->len] = 0;
    return dst->data;
}

/* An address cleaned as text, without one pair of enclosing angles and
   the spaces inside them. */
static const char *clean_addr(struct buf *dst, const char *s)
{
    const char *a = clean(dst, s, DSN_ADDR_MAX, CLEAN_TEXT);
    size_t from = 1, to;

    if (a && dst->len >= 2 && a[0] == '<' && a[dst->len - 1] == '>') {
        to = dst->len - 1;
        while (from < to && a[from] == ' ')
            from++;
        while (to > from && a[to - 1] == ' ')
            to--;
        memmove(dst->data, dst->data + from, to - from);
        dst->len = to - from;
        dst->data[dst->len] = 0;
    }
    return a;
}

/* -------------------------------------------------------------- folding */

/*
 * A folder appends words to out, separated by single spaces, and starts a
 * new line (CRLF and indent) before a word that would pass column soft,
 * unless the word is the first on its line.  No line passes LINE_HARD: a
 * word too long even for a line of its own is split.  indent is "" for
 * running text or white space ending in a space (" " for header fields,
 * where the indent is the folding white space).
 */
struct fold {
    struct buf *out;
    size_t col;   /* bytes on the current line */
    size_t soft;  /* preferred maximum line length */
    size_t words; /* words on the current line */
    const char *indent;
};

static void fold_start(struct fold *f, struct buf *out, size_t soft,
                       const char *indent)
{
    f->out = out;
    f->col = 0;
    f->soft = soft;
    f->words = 0;
    f->indent = indent;
}

static int fold_newline(struct fold *f)
{
    if (buf_puts(f->out, "\r\n") != 0 || buf_puts(f->out, f->indent) != 0)
        return -1;
    f->col = strlen(f->indent);
    f->words = 0;
    return 0;
}

static int fold_word(struct fold *f, const char *w, size_t wl)
{
    size_t sep, room;

    sep = f->col > 0 && f->out->data[f->out->len - 1] != ' ';
    if (f->words && f->col + sep + wl > f->soft) {
        if (fold_newline(f) != 0)
            return -1;
        sep = f->col > 0 && f->indent[f->col - 1] != ' ';
    }
    while (f->col + sep + wl > LINE_HARD) {
        room = f->col + sep < LINE_HARD ? LINE_HARD - f->col - sep : 0;
        if (room > 0 && (buf_append(f->out, " ", sep) != 0 ||
                         buf_append(f->out, w, room) != 0))
            return -1;
        w += room;
        wl -= room;
        if (fold_newline(f) != 0)
            return -1;
        sep = f->col > 0 && f->indent[f->col - 1] != ' ';
    }
    if (buf_append(f->out, " ", sep) != 0 || buf_append(f->out, w, wl) != 0)
        return -1;
    f->col += sep + wl;
    f->words++;
    return 0;
}

/* Fold every space-separated word of s (clean text). */
static int fold_text(struct fold *f, const char *s)
{
    const char *sp;

    while (*s) {
        while (*s == ' ')
            s++;
        if (!*s)
            break;
        sp = strchr(s, ' ');
        if (!sp)
            sp = s + strlen(s);
        if (fold_word(f, s, (size_t)(sp - s)) != 0)
            return -1;
        s = sp;
    }
    return 0;
}

/* Text that is already a whole line (label, fixed text), no folding. */
static int fold_raw(struct fold *f, const char *s)
{
    if (buf_puts(f->out, s) != 0)
        return -1;
    f->col += strlen(s);
    return 0;
}

/*
 * "Name: prefix value" CRLF, folded before column soft.  value is clean
 * text; prefix (e.g. "rfc822;") is NULL or one word.  Fields that naive
 * parsers read (addresses, hosts) are given soft = LINE_HARD: since their
 * values are short, they are then never folded.
 */
static int put_field(struct buf *out, const char *name, const char *prefix,
                     const char *value, size_t soft)
{
    struct fold f;

    fold_start(&f, out, soft, " ");
    if (fold_raw(&f, name) != 0 || fold_raw(&f, ":") != 0 ||
        (prefix && fold_word(&f, prefix, strlen(prefix)) != 0) ||
        fold_text(&f, value) != 0 || buf_puts(out, "\r\n") != 0)
        return -1;
    return 0;
}

/* A paragraph of running text, each line starting with indent. */
static int put_para(struct buf *out, const char *indent, const char *text)
{
    struct fold f;

    fold_start(&f, out, TEXT_WIDTH, indent);
    if (fold_raw(&f, indent) != 0 || fold_text(&f, text) != 0 ||
        buf_puts(out, "\r\n") != 0)
        return -1;
    return 0;
}

/* ---------------------------------------------------- status and dates */

/* Length of an enhanced status code of class 4 or 5 at s, 0 if none. */
static size_t enhanced_len(const char *s)
{
    size_t i = 2, n, part;

    if ((s[0] != '4' && s[0] != '5') || s[1] != '.')
        return 0;
    for (part = 0; part < 2; part++) {
        for (n = 0; n < 3 && s[i] >= '0' && s[i] <= '9'; n++)
            i++;
        if (n == 0 || (s[i] >= '0' && s[i] <= '9'))
            return 0;
        if (part == 0 && s[i++] != '.')
            return 0;
    }
    return i;
}

/* Class (2..5) of the SMTP reply code that starts s, 0 if none. */
static int reply_class(const char *s)
{
    if (s[0] < '2' || s[0] > '5' || s[1] < '0' || s[1] > '9' || s[2] < '0' ||
        s[2] > '9')
        return 0;
    if (s[3] != 0 && s[3] != ' ' && s[3] != '-')
        return 0;
    return s[0] - '0';
}

void dsn_status(const char *action, const char *status, const char *diag,
                char *out)
{
    int delayed = action && strcmp(action, "delayed") == 0;
    size_t n;
    int rc = 0;

    if (diag) {
        diag += strspn(diag, " \t");
        rc = reply_class(diag);
    }
    if (status && (n = enhanced_len(status)) > 0 && status[n] == 0) {
        memcpy(out, status, n + 1);
    } else if (rc == 4 || rc == 5) {
        if (diag[3] != 0 && (n = enhanced_len(diag + 4)) > 0 &&
            diag[4] == diag[0] && (diag[4 + n] == 0 || diag[4 + n] == ' ')) {
            memcpy(out, diag + 4, n);
            out[n] = 0;
        } else {
            snprintf(out, DSN_STATUS_MAX, "%c.0.0", diag[0]);
        }
    } else {
        strcpy(out, delayed ? "4.0.0" : "5.0.0");
    }
    /* Still being retried: a transient failure whatever the server said
       (as Postfix does with soft_bounce). */
    if (delayed)
        out[0] = '4';
}

int dsn_date(int64_t t, char *out, size_t outlen)
{
    static const char *const wday[] = {"Sun", "Mon", "Tue", "Wed",
                                       "Thu", "Fri", "Sat"};
    static const char *const mon[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                      "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    time_t tt = (time_t)t;
    struct tm tm;
    long off;
    int n;

    if ((int64_t)tt != t || !localtime_r(&tt, &tm))
        return -1;
    if (tm.tm_year < 0 || tm.tm_year > 9999 - 1900 || tm.tm_wday < 0 ||
        tm.tm_wday > 6 || tm.tm_mon < 0 || tm.tm_mon > 11)
        return -1;
    off = tm.tm_gmtoff / 60;
    n = snprintf(out, outlen, "%s, %d %s %04d %02d:%02d:%02d %c%02ld%02ld",
                 wday[tm.tm_wday], tm.tm_mday, mon[tm.tm_mon],
                 tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec,
                 off < 0 ? '-' : '+', (off < 0 ? -off : off) / 60,
                 (off < 0 ? -off : off) % 60);
    if (n < 0 || (size_t)n >= outlen)
        return -1;
    return 0;
}

/* ------------------------------------------------------------- random */

/*
 * Random bytes from OpenSSL, else getrandom(2), else (never expected) a
 * generator seeded from the clock: uniqueness of the Message-ID comes from
 * time, pid and counter anyway, and the boundary is checked.
 */
static void random_bytes(unsigned char *p, size_t n)
{
    static uint64_t x;
    struct timespec ts;
    size_t i;

    if (RAND_bytes(p, (int)n) == 1)
        return;
    if (getrandom(p, n, GRND_NONBLOCK) == (ssize_t)n)
        return;
    clock_gettime(CLOCK_REALTIME, &ts);
    x += 0x9e3779b97f4a7c15u ^ (uint64_t)ts.tv_nsec ^
         ((uint64_t)ts.tv_sec << 20) ^ ((uint64_t)getpid() << 40);
    for (i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        p[i] = (unsigned char)(x >> 24);
    }
}

/* n random bytes as 2n hex digits into out (2n + 1 bytes). */
static void random_hex(char *out, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char r[32];
    size_t i;

    if (n > sizeof(r))
        n = sizeof(r);
    random_bytes(r, n);
    for (i = 0; i < n; i++) {
        out[2 * i] = hex[r[i] >> 4];
        out[2 * i + 1] = hex[r[i] & 15];
    }
    out[2 * n] = 0;
}

/* ------------------------------------------------------------- parts */

struct dsn_ctx {
    const struct dsn_info *info;
    struct buf tmp;  /* one cleaned value */
    struct buf tmp2; /* another */
    struct buf line; /* one line of the original header section */
    char host[DSN_HOST_MAX + 4];
    char list[DSN_HOST_MAX + 4];
    int any_failed;
    int any_delayed;
    int headers_cut;   /* part 3 was cut to DSN_HEADERS_MAX */
    int headers_empty; /* part 3 is empty: no original header section */
};

static int has_8bit(const struct buf *b)
{
    size_t i;

    for (i = 0; i < b->len; i++)
        if ((unsigned char)b->data[i] > 0x7f)
            return 1;
    return 0;
}

/* Diagnostic-type: "smtp" for an SMTP reply, ours for a local reason. */
static const char *diag_type(const char *clean_diag)
{
    return reply_class(clean_diag) ? "smtp;" : "X-MMQ;";
}

/* Part 1: the human-readable explanation. */
static int put_text(struct dsn_ctx *c, struct buf *b)
{
    const struct dsn_info *info = c->info;
    char status[DSN_STATUS_MAX], date[DSN_DATE_MAX];
    struct buf *t = &c->tmp;
    size_t i;

    if (buf_printf(b, "This is the mail system at host %s.\r\n\r\n", c->host) !=
        0)
        return -1;
    if (!c->any_failed &&
        buf_puts(b, "########################################"
                    "############################\r\n"
                    "# THIS IS A WARNING ONLY.  YOU DO NOT NEED "
                    "TO RESEND YOUR MESSAGE. #\r\n"
                    "########################################"
                    "############################\r\n\r\n") != 0)
        return -1;
    buf_reset(t);
    if (buf_puts(t, "Your message") != 0 ||
        (c->list[0] &&
         buf_printf(t, " to the mailing list %s", c->list) != 0) ||
        buf_puts(t, c->any_failed
                        ? " could not be delivered to one or more "
                          "recipients; the mail system has given up on "
                          "them."
                        : " has not yet been delivered to one or more "
                          "recipients. The mail system will keep trying; "
                          "you do not need to resend it.") != 0 ||
        (c->any_failed && c->any_delayed &&
         buf_puts(t, " Delivery to the recipients marked \"delayed\" "
                     "is still being retried.") != 0) ||
        buf_puts(t, " The recipients and the replies of the remote "
                    "servers are listed below.") != 0 ||
        buf_puts(t, c->headers_empty
                        ? " A machine-readable report is attached."
                        : " A machine-readable report and the header "
                          "section of your message are attached.") != 0 ||
        (c->headers_cut &&
         buf_printf(t, " (The header section was cut to %u KiB.)",
                    DSN_HEADERS_MAX >> 10) != 0) ||
        put_para(b, "", t->data) != 0)
        return -1;
    if (!clean(t, info->queue_id, DSN_HOST_MAX, CLEAN_TOKEN))
        return -1;
    if (info->arrival <= 0 || dsn_date(info->arrival, date, sizeof(date)))
        date[0] = 0;
    if ((t->len || date[0]) && buf_puts(b, "\r\n") != 0)
        return -1;
    if (t->len && buf_printf(b, "Queue ID: %s\r\n", t->data) != 0)
        return -1;
    if (date[0] && buf_printf(b, "Arrived:  %s\r\n", date) != 0)
        return -1;
    for (i = 0; i < info->nrcpt; i++) {
        const struct dsn_rcpt *r = &info->rcpt[i];
        struct fold f;

        dsn_status(r->action, r->status, r->diag, status);
        if (!clean_addr(t, r->addr) || buf_puts(b, "\r\n") != 0)
            return -1;
        fold_start(&f, b, TEXT_WIDTH, "    ");
        if (fold_raw(&f, "<") != 0 || fold_raw(&f, t->data) != 0 ||
            fold_raw(&f, ">:") != 0 ||
            fold_word(&f, r->action, strlen(r->action)) != 0 ||
            fold_raw(&f, ",") != 0 || fold_text(&f, "status") != 0 ||
            fold_text(&f, status) != 0 || buf_puts(b, "\r\n") != 0)
            return -1;
        if (!clean(t, r->diag, DSN_DIAG_MAX, CLEAN_TEXT) ||
            !clean(&c->tmp2, r->remote_mta, DSN_HOST_MAX, CLEAN_HOST))
            return -1;
        if (!t->len)
            continue;
        fold_start(&f, b, TEXT_WIDTH, "    ");
        if (fold_raw(&f, "    ") != 0 ||
            (c->tmp2.len ? fold_text(&f, "host") != 0 ||
                               fold_word(&f, c->tmp2.data, c->tmp2.len) != 0 ||
                               fold_text(&f, "said:") != 0
                         : fold_text(&f, "reason:") != 0) ||
            fold_text(&f, t->data) != 0 || buf_puts(b, "\r\n") != 0)
            return -1;
    }
    return 0;
}

/* Part 2: message/delivery-status (RFC 3464). */
static int put_report(struct dsn_ctx *c, struct buf *b)
{
    const struct dsn_info *info = c->info;
    char status[DSN_STATUS_MAX], date[DSN_DATE_MAX];
    struct buf *t = &c->tmp;
    size_t i;

    if (put_field(b, "Reporting-MTA", "dns;", c->host, LINE_HARD) != 0)
        return -1;
    if (!clean(t, info->queue_id, DSN_HOST_MAX, CLEAN_TOKEN) ||
        (t->len &&
         put_field(b, "X-MMQ-Queue-ID", NULL, t->data, LINE_HARD) != 0))
        return -1;
    if (!clean_addr(t, info->to) ||
        put_field(b, "X-MMQ-Sender", "rfc822;", t->data, LINE_HARD) != 0)
        return -1;
    if (info->arrival > 0 && dsn_date(info->arrival, date, sizeof(date)) == 0 &&
        put_field(b, "Arrival-Date", NULL, date, LINE_HARD) != 0)
        return -1;
    for (i = 0; i < info->nrcpt; i++) {
        const struct dsn_rcpt *r = &info->rcpt[i];

        dsn_status(r->action, r->status, r->diag, status);
        if (buf_puts(b, "\r\n") != 0 || !clean_addr(t, r->addr) ||
            put_field(b, "Final-Recipient", "rfc822;", t->data, LINE_HARD) !=
                0 ||
            put_field(b, "Action", NULL, r->action, LINE_HARD) != 0 ||
            put_field(b, "Status", NULL, status, LINE_HARD) != 0)
            return -1;
        if (!clean(t, r->remote_mta, DSN_HOST_MAX, CLEAN_HOST) ||
            (t->len &&
             put_field(b, "Remote-MTA", "dns;", t->data, LINE_HARD) != 0))
            return -1;
        if (!clean(t, r->diag, DSN_DIAG_MAX, CLEAN_TEXT) ||
            (t->len && put_field(b, "Diagnostic-Code", diag_type(t->data),
                                 t->data, LINE_SOFT) != 0))
            return -1;
    }
    return 0;
}

/*
 * Part 3: the original header section, see dsn.h.  Lines are copied one by
 * one into c->line (NULs and CRs dropped, at most DSN_HEADERS_MAX + 1
 * bytes kept), then written in pieces of at most LINE_HARD bytes, pieces
 * after the first starting with a space so they read as continuation
 * lines.  When the next piece would pass DSN_HEADERS_MAX the part ends
 * there; if that cuts a field, the field is dropped unless it is the only
 * one.
 */
static int put_orig_headers(struct dsn_ctx *c, struct buf *b)
{
    const char *p = c->info->orig;
    size_t len = p ? c->info->orig_len : 0;
    size_t i = 0, field = b->len, start = b->len;
    struct buf *l = &c->line;

    while (i < len) {
        const char *nl = memchr(p + i, '\n', len - i);
        size_t end = nl ? (size_t)(nl - p) : len, k, off, n;

        buf_reset(l);
        for (k = i; k < end && l->len <= DSN_HEADERS_MAX; k++)
            if (p[k] != 0 && p[k] != '\r' && buf_append(l, p + k, 1) != 0)
                return -1;
        i = nl ? end + 1 : len;
        if (l->len == 0)
            break; /* the empty line: end of the header section */
        if (l->data[0] != ' ' && l->data[0] != '\t')
            field = b->len;
        for (off = 0; off < l->len; off += n) {
            size_t pre = off > 0;

            n = l->len - off;
            if (n > LINE_HARD - pre)
                n = LINE_HARD - pre;
            if (b->len - start + pre + n + 2 > DSN_HEADERS_MAX) {
                c->headers_cut = 1;
                if ((off > 0 || field != b->len) && field > start)
                    b->len = field; /* drop the partial field */
                if (b->data)
                    b->data[b->len] = 0;
                return 0;
            }
            if (buf_append(b, " ", pre) != 0 ||
                buf_append(b, l->data + off, n) != 0 ||
                buf_append(b, "\r\n", 2) != 0)
                return -1;
        }
    }
    return 0;
}

/* ------------------------------------------------------------- the DSN */

static int validate(const struct dsn_info *info, char *err, size_t errlen)
{
    size_t i;

    if (!info->to || !*info->to || strcmp(info->to, "<>") == 0)
        return fail(err, errlen, "no DSN for a message from the null sender");
    if (!info->reporting_mta || !*info->reporting_mta)
        return fail(err, errlen, "no reporting MTA (host name) given");
    if (!info->rcpt || info->nrcpt == 0)
        return fail(err, errlen, "no recipients to report");
    for (i = 0; i < info->nrcpt; i++) {
        const struct dsn_rcpt *r = &info->rcpt[i];

        if (!r->addr || !*r->addr)
            return fail(err, errlen, "recipient %zu: no address", i + 1);
        if (!r->action || (strcmp(r->action, "failed") != 0 &&
                           strcmp(r->action, "delayed") != 0))
            return fail(err, errlen,
                        "recipient %zu: action must be \"failed\" or "
                        "\"delayed\"",
                        i + 1);
    }
    if (info->orig_len && !info->orig)
        return fail(err, errlen, "orig is NULL but orig_len is not 0");
    return 0;
}

/* Pick a boundary that occurs in none of the parts. */
static int pick_boundary(char *bnd, const struct buf *parts, size_t nparts)
{
    int tries;
    size_t i;

    for (tries = 0; tries < BOUNDARY_TRIES; tries++) {
        strcpy(bnd, BOUNDARY_PREFIX);
        random_hex(bnd + strlen(BOUNDARY_PREFIX), 16);
        for (i = 0; i < nparts; i++)
            if (parts[i].len &&
                memmem(parts[i].data, parts[i].len, bnd, strlen(bnd)))
                break;
        if (i == nparts)
            return 0;
    }
    return -1;
}

static int assemble(struct dsn_ctx *c, struct buf *out, struct buf *parts,
                    char *err, size_t errlen)
{
    static unsigned long counter;
    static const char *const part_head[] = {
        "Content-Description: Notification\r\n"
        "Content-Type: text/plain; charset=us-ascii\r\n",
        "Content-Description: Delivery report\r\n"
        "Content-Type: message/delivery-status\r\n",
        "Content-Description: Undelivered Message Headers\r\n"
        "Content-Type: text/rfc822-headers\r\n"};
    const struct dsn_info *info = c->info;
    char bnd[sizeof(BOUNDARY_PREFIX) + 33], rnd[17], date[DSN_DATE_MAX];
    int eight = has_8bit(&parts[2]);
    struct buf *t = &c->tmp;
    size_t i;

    if (pick_boundary(bnd, parts, 3) != 0)
        return fail(err, errlen, "cannot find a MIME boundary");
    if (dsn_date((int64_t)time(NULL), date, sizeof(date)) != 0)
        return fail(err, errlen, "cannot format the current date");
    random_hex(rnd, 8);

    if (buf_printf(out, "Date: %s\r\n", date) != 0)
        return -1;
    if (info->postmaster && *info->postmaster) {
        if (!clean_addr(t, info->postmaster))
            return -1;
    } else {
        buf_reset(t);
        if (buf_printf(t, "MAILER-DAEMON@%s", c->host) != 0)
            return -1;
    }
    if (buf_printf(out, "From: Mail Delivery System <%s>\r\n", t->data) != 0)
        return -1;
    if (!clean_addr(t, info->to) ||
        buf_printf(out, "To: <%s>\r\n", t->data) != 0)
        return -1;
    buf_reset(t);
    if (buf_puts(t, c->any_failed
                        ? "Undelivered Mail Returned to Sender"
                        : "Delayed Mail (still being retried)") != 0 ||
        (c->list[0] && buf_printf(t, " (list %s)", c->list) != 0) ||
        put_field(out, "Subject", NULL, t->data, LINE_SOFT) != 0)
        return -1;
    /* id-right must be a dot-atom: keep letters, digits, '.', '-', '_'. */
    buf_reset(t);
    for (i = 0; c->host[i]; i++)
        if (c->host[i] != ':' && c->host[i] != '[' && c->host[i] != ']' &&
            buf_append(t, &c->host[i], 1) != 0)
            return -1;
    if (buf_printf(out, "Message-ID: <%lld.%ld.%lu.%s@%s>\r\n",
                   (long long)time(NULL), (long)getpid(), ++counter, rnd,
                   t->len ? t->data : "localhost") != 0)
        return -1;
    if (buf_printf(out,
                   "Auto-Submitted: auto-replied\r\n"
                   "MIME-Version: 1.0\r\n"
                   "Content-Type: multipart/report; "
                   "report-type=delivery-status;\r\n"
                   "\tboundary=\"%s\"\r\n"
                   "%s"
                   "\r\n"
                   "This is a MIME-encapsulated message.\r\n",
                   bnd,
                   eight ? "Content-Transfer-Encoding: 8bit\r\n" : "") != 0)
        return -1;
    for (i = 0; i < 3; i++) {
        /* Each body ends in CRLF (or is empty); the CRLF before the
           delimiter belongs to the delimiter (RFC 2046 5.1.1). */
        if (buf_printf(out, "\r\n--%s\r\n%s%s\r\n", bnd, part_head[i],
                       i == 2 && eight ? "Content-Transfer-Encoding: 8bit\r\n"
                                       : "") != 0 ||
            buf_append(out, parts[i].data, parts[i].len) != 0)
            return -1;
    }
    if (buf_printf(out, "\r\n--%s--\r\n", bnd) != 0)
        return -1;
    return 0;
}

int dsn_build(const struct dsn_info *info, struct buf *out, char *err,
              size_t errlen)
{
    struct dsn_ctx c;
    struct buf parts[3];
    size_t start = out ? out->len : 0, i;
    int rc = -1;

    if (err && errlen)
        err[0] = 0;
    if (!info || !out)
        return fail(err, errlen, "dsn_build: no info or no output buffer");
    if (validate(info, err, errlen) != 0)
        return -1;

    memset(&c, 0, sizeof(c));
    c.info = info;
    buf_init(&c.tmp);
    buf_init(&c.tmp2);
    buf_init(&c.line);
    for (i = 0; i < 3; i++)
        buf_init(&parts[i]);

    for (i = 0; i < info->nrcpt; i++) {
        if (strcmp(info->rcpt[i].action, "failed") == 0)
            c.any_failed = 1;
        else
            c.any_delayed = 1;
        if (!clean_addr(&c.tmp, info->rcpt[i].addr))
            goto oom;
        if (c.tmp.len == 0) {
            fail(err, errlen, "recipient %zu: address is empty once cleaned",
                 i + 1);
            goto done;
        }
    }
    if (!clean_addr(&c.tmp, info->to))
        goto oom;
    if (c.tmp.len == 0) {
        fail(err, errlen, "no DSN for a message from the null sender");
        goto done;
    }
    if (!clean(&c.tmp, info->reporting_mta, DSN_HOST_MAX, CLEAN_HOST))
        goto oom;
    if (c.tmp.len == 0) {
        fail(err, errlen, "reporting MTA has no host name characters");
        goto done;
    }
    memcpy(c.host, c.tmp.data, c.tmp.len + 1);
    if (!clean(&c.tmp, info->list, DSN_HOST_MAX, CLEAN_TEXT))
        goto oom;
    memcpy(c.list, c.tmp.data, c.tmp.len + 1);

    /* Part 3 first: part 1 mentions whether it was cut. */
    if (put_orig_headers(&c, &parts[2]) != 0)
        goto oom;
    c.headers_empty = parts[2].len == 0;
    if (put_text(&c, &parts[0]) != 0 || put_report(&c, &parts[1]) != 0)
        goto oom;
    if (assemble(&c, out, parts, err, errlen) != 0) {
        if (err && errlen && !err[0])
            goto oom;
        goto done;
    }
    rc = 0;
    goto done;
oom:
    fail(err, errlen, "out of memory");
done:
    if (rc != 0) {
        out->len = start;
        if (out->data)
            out->data[start] = 0;
    }
    buf_free(&c.tmp);
    buf_free(&c.tmp2);
    buf_free(&c.line);
    for (i = 0; i < 3; i++)
        buf_free(&parts[i]);
    return rc;
}
