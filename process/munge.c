/*
 * munge - From: munging and message wrapping for DMARC.  See munge.h.
 */
#include "autoconf.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "munge.h"

#define NAME_MAX_BYTES 200 /* of the author's name carried over */

/* RFC 5322 atext */
static int is_atext(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9') || (c && strchr("!#$%&'*+-/=?^_`{|}~", c));
}

/* Length of the UTF-8 sequence at s (at most n bytes), 0 if invalid. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    size_t len, i;

    if (s[0] < 0x80)
        return 1;
    len = s[0] >= 0xf0 && s[0] <= 0xf4  ? 4
          : s[0] >= 0xe0                ? 3
          : s[0] >= 0xc2 && s[0] < 0xe0 ? 2
                                        : 0;
    if (len == 0 || len > n || (s[0] >= 0xe0 && s[0] < 0xf0 && len != 3))
        return 0;
    for (i = 1; i < len; i++)
        if ((s[i] & 0xc0) != 0x80)
            return 0;
    return len;
}

static int valid_utf8(const char *s, size_t n)
{
    size_t i = 0, l;

    while (i < n) {
        if (!(l = utf8_len((const unsigned char *)s + i, n - i)))
            return 0;
        i += l;
    }
    return 1;
}

/* The display name of a From: value, unquoted, into out ("" if none). */
static void display_name(const char *v, char *out, size_t outlen)
{
    const char *lt = strrchr(v, '<'), *s = v, *e = lt ? lt : v;
    size_t o = 0, i;

    out[0] = 0;
    while (s < e && (*s == ' ' || *s == '\t'))
        s++;
    while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
        e--;
    if (e - s >= 2 && *s == '"' && e[-1] == '"') { /* a quoted-string */
        for (s++, e--; s < e && o + 1 < outlen; s++) {
            if (*s == '\\' && s + 1 < e)
                s++;
            out[o++] = *s;
        }
    } else {
        for (; s < e && o + 1 < outlen; s++)
            out[o++] = *s;
    }
    for (i = 0; i < o; i++) /* folding blanks: one line, plain spaces */
        if (out[i] == '\t')
            out[i] = ' ';
    if (s < e) /* cut short: not inside a character */
        while (o > 0 && !valid_utf8(out, o))
            o--;
    out[valid_utf8(out, o) ? o : 0] = 0; /* not UTF-8: no name */
}

/* Are all blank-separated words of s RFC 2047 encoded-words or atoms? */
static int words_ok(const char *s)
{
    while (*s) {
        const char *e;
        size_t n, i;
        while (*s == ' ' || *s == '\t')
            s++;
        for (e = s; *e && *e != ' ' && *e != '\t'; e++)
            ;
        n = (size_t)(e - s);
        if (n >= 4 && s[0] == '=' && s[1] == '?' && e[-2] == '?' &&
            e[-1] == '=') {
            for (i = 0; i < n; i++)
                if ((unsigned char)s[i] <= 32 || (unsigned char)s[i] >= 127)
                    return 0;
        } else {
            for (i = 0; i < n; i++)
                if (!is_atext((unsigned char)s[i]))
                    return 0;
        }
        s = e;
    }
    return 1;
}

static int quoted(struct buf *out, const char *s)
{
    if (buf_puts(out, "\""))
        return -1;
    for (; *s; s++) {
        if ((*s == '"' || *s == '\\') && buf_puts(out, "\\"))
            return -1;
        if (buf_append(out, s, 1))
            return -1;
    }
    return buf_puts(out, "\"");
}

/* s (valid UTF-8) as RFC 2047 B words of at most 75 characters. */
static int encoded_words(struct buf *out, const char *s)
{
    size_t n = strlen(s), i = 0;
    unsigned char b64[64 + 4];

    while (i < n) {
        size_t take = 0, l;
        while (i + take < n &&
               (l = utf8_len((const unsigned char *)s + i + take,
                             n - i - take)) != 0 &&
               take + l <= 45)
            take += l;
        if (take == 0)
            return -1;
        EVP_EncodeBlock(b64, (const unsigned char *)s + i, (int)take);
        if (buf_printf(out, "%s=?utf-8?b?%s?=", i ? " " : "", b64))
            return -1;
        i += take;
    }
    return 0;
}

/* The address, its "@" written " at ", with only printable ASCII. */
static void address_as_name(const char *v, char *out, size_t outlen)
{
    char addr[512], *at;
    size_t i;

    if (header_address(v, addr, sizeof(addr)) != 0)
        snprintf(addr, sizeof(addr), "unknown");
    for (i = 0; addr[i]; i++)
        if ((unsigned char)addr[i] < 32 || (unsigned char)addr[i] >= 127)
            addr[i] = '?';
    if ((at = strrchr(addr, '@')) != NULL) {
        *at = 0;
        snprintf(out, outlen, "%s at %s", addr, at + 1);
    } else {
        snprintf(out, outlen, "%s", addr);
    }
}

int munge_from_value(const char *v, const struct listdef *ld, struct buf *out)
{
    char name[NAME_MAX_BYTES + 1], all[NAME_MAX_BYTES + LIST_NAME_MAX + 600];
    size_t i, n;
    int ascii = 1, rc;

    display_name(v, name, sizeof(name));
    n = strlen(name);
    for (i = 0; i < n; i++)
        if ((unsigned char)name[i] < 32 || (unsigned char)name[i] >= 127)
            ascii = 0;
    if (n > 0 && strstr(name, "=?") && words_ok(name)) {
        /* encoded-words stay as they are; "via NAME" as a quoted-string
         * when the list name is not an atom (a '.') */
        snprintf(all, sizeof(all), "via %s", ld->name);
        rc = buf_printf(out, "%s ", name) ||
             (strchr(ld->name, '.') ? quoted(out, all) : buf_puts(out, all));
    } else if (n > 0 && !strstr(name, "=?") && (ascii || valid_utf8(name, n))) {
        snprintf(all, sizeof(all), "%s via %s", name, ld->name);
        rc = ascii ? quoted(out, all) : encoded_words(out, all);
    } else { /* no usable name: the address instead */
        address_as_name(v, all, sizeof(all) - LIST_NAME_MAX - 8);
        snprintf(all + strlen(all), sizeof(all) - strlen(all), " via %s",
                 ld->name);
        rc = quoted(out, all);
    }
    if (rc)
        return -1;
    return buf_printf(out, " <%s@%s>", ld->name, ld->domain);
}

/* Does the field value v already name address a (any case)? */
static int names_address(const char *v, const char *a)
{
    size_t n = strlen(a);

    for (; *v; v++)
        if (strncasecmp(v, a, n) == 0)
            return 1;
    return 0;
}

static int append_item(struct buf *v, const char *eol, const char *item)
{
    if (v->len && buf_printf(v, ",%s ", eol))
        return -1;
    return buf_puts(v, item);
}

/* field: its old values, then from (unless among them already), one
 * value a line. */
static int add_author(struct headers *h, const char *field, const char *from)
{
    struct buf v;
    char addr[512];
    long i = 0;
    char *old;
    int rc = 0, have = 0;

    buf_init(&v);
    if (header_address(from, addr, sizeof(addr)) != 0)
        addr[0] = 0;
    while ((i = headers_find(h, field, (size_t)i)) >= 0) {
        if (!(old = headers_value(h, (size_t)i))) {
            buf_free(&v);
            return -1;
        }
        headers_drop(h, (size_t)i++);
        if (old[0]) {
            have |= addr[0] && names_address(old, addr);
            rc |= append_item(&v, h->eol, old);
        }
        free(old);
    }
    if (!have)
        rc |= append_item(&v, h->eol, from);
    if (!rc)
        rc = headers_add(h, field, v.data);
    buf_free(&v);
    return rc ? -1 : 0;
}

int munge_from(struct headers *h, const struct listdef *ld)
{
    long i = headers_find(h, "From", 0), j;
    struct buf nv;
    char *v;
    int rc;

    if (i < 0)
        return 0; /* none: list_headers() adds the envelope sender's */
    if (!(v = headers_value(h, (size_t)i)))
        return -1;
    buf_init(&nv);
    rc = munge_from_value(v, ld, &nv);
    if (!rc)
        rc = headers_replace(h, (size_t)i, nv.data);
    for (j = i + 1; !rc && (j = headers_find(h, "From", (size_t)j)) >= 0; j++)
        headers_drop(h, (size_t)j); /* one From: only */
    headers_drop_all(h, "X-Original-From");
    if (!rc)
        rc = headers_add(h, "X-Original-From", v);
    /* replies still reach the author: Reply-To when the list leaves it
     * alone, else Cc (Mailman 3 does the same) */
    if (!rc)
        rc = add_author(h, ld->reply_to == REPLYTO_NONE ? "Reply-To" : "Cc", v);
    buf_free(&nv);
    free(v);
    return rc;
}

/* ------------------------------------------------------------ wrapping */

static int kept(const char *name, size_t n)
{
    static const char *const keep[] = {
        "From",       "To",         "Cc",          "Reply-To",
        "Subject",    "Date",       "Message-ID",  "In-Reply-To",
        "References", "Precedence", "X-BeenThere", "X-Original-From",
        "Archived-At"};
    size_t i;

    if (n > 5 && strncasecmp(name, "List-", 5) == 0)
        return 1;
    for (i = 0; i < sizeof(keep) / sizeof(keep[0]); i++)
        if (strlen(keep[i]) == n && strncasecmp(name, keep[i], n) == 0)
            return 1;
    return 0;
}

/* A boundary that occurs nowhere in the post. */
static void boundary(const char *seed, const char *orig, size_t len, char *out,
                     size_t outlen)
{
    unsigned k;

    for (k = 0;; k++) {
        snprintf(out, outlen, "=_mmq_%.40s_%u", seed, k);
        if (!memmem(orig, len, out, strlen(out)))
            return;
    }
}

static int has_8bit(const char *s, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++)
        if ((unsigned char)s[i] >= 128)
            return 1;
    return 0;
}

int munge_wrap(const struct buf *edited, const char *orig, size_t orig_len,
               const struct listdef *ld, const char *seed, struct buf *out)
{
    struct headers h;
    char b[128];
    const char *eol;
    const char *text = ld->dmarc_wrapped_text;
    size_t i;
    int rc = 0;

    if (headers_parse(edited->data, edited->len, &h) != 0)
        return -1;
    eol = h.eol;
    for (i = 0; i < h.n && !rc; i++) {
        const struct hfield *f = &h.f[i];
        if (f->dropped || !f->name_len || !kept(h.msg + f->start, f->name_len))
            continue;
        rc = buf_append(out, h.msg + f->start, f->end - f->start);
        if (!rc && out->data[out->len - 1] != '\n')
            rc = buf_puts(out, eol);
    }
    boundary(seed, orig, orig_len, b, sizeof(b));
    rc |= buf_printf(out,
                     "MIME-Version: 1.0%sContent-Type: multipart/mixed; "
                     "boundary=\"%s\"%sContent-Transfer-Encoding: %s%s%s"
                     "This message from the list %s@%s carries a post as an "
                     "attachment.%s",
                     eol, b, eol,
                     has_8bit(orig, orig_len) ||
                             (text && has_8bit(text, strlen(text)))
                         ? "8bit"
                         : "7bit",
                     eol, eol, ld->name, ld->domain, eol);
    if (text && text[0]) {
        const char *p;
        rc |= buf_printf(out,
                         "%s--%s%sContent-Type: text/plain; charset=utf-8%s"
                         "Content-Transfer-Encoding: %s%s%s",
                         eol, b, eol, eol,
                         has_8bit(text, strlen(text)) ? "8bit" : "7bit", eol,
                         eol);
        for (p = text; *p && !rc; p++) /* the list file's LF: our line end */
            rc = *p == '\n' ? buf_puts(out, eol) : buf_append(out, p, 1);
        if (text[strlen(text) - 1] != '\n')
            rc |= buf_puts(out, eol);
    }
    rc |= buf_printf(out,
                     "%s--%s%sContent-Type: message/rfc822%s"
                     "Content-Disposition: inline%s%s",
                     eol, b, eol, eol, eol, eol);
    rc |= buf_append(out, orig, orig_len);
    if (orig_len && orig[orig_len - 1] != '\n')
        rc |= buf_puts(out, eol);
    rc |= buf_printf(out, "%s--%s--%s", eol, b, eol);
    headers_free(&h);
    return rc ? -1 : 0;
}
