/*
 * header - index and edit a message's header section.  See header.h.
 */
#include "autoconf.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "header.h"

static int push(struct headers *h, size_t start, size_t end, size_t name_len)
{
    if (h->n == h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 32;
        struct hfield *p = realloc(h->f, cap * sizeof(*p));
        if (!p)
            return -1;
        h->f = p;
        h->cap = cap;
    }
    memset(&h->f[h->n], 0, sizeof(h->f[0]));
    h->f[h->n].start = start;
    h->f[h->n].end = end;
    h->f[h->n].name_len = name_len;
    h->n++;
    return 0;
}

/* Length of a field name at p (up to the colon), 0 if not a field. */
static size_t field_name(const char *p, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c == ':')
            return i;
        if (c <= 32 || c >= 127)
            return 0;
    }
    return 0;
}

int headers_parse(const char *msg, size_t len, struct headers *h)
{
    size_t pos = 0;
    const char *nl;

    memset(h, 0, sizeof(*h));
    h->msg = msg;
    h->len = len;
    h->body_off = h->sep_off = len;
    buf_init(&h->added);
    nl = memchr(msg, '\n', len);
    h->eol = nl && nl > msg && nl[-1] == '\r' ? "\r\n" : "\n";
    while (pos < len) {
        const char *line = msg + pos;
        size_t avail = len - pos, ll, nlen;

        nl = memchr(line, '\n', avail);
        ll = nl ? (size_t)(nl - line) + 1 : avail;
        if (line[0] == '\n' || (line[0] == '\r' && ll == 2 && nl)) {
            h->sep_off = pos;
            h->body_off = pos + ll;
            return 0;
        }
        if ((line[0] == ' ' || line[0] == '\t') && h->n > 0) {
            h->f[h->n - 1].end = pos + ll; /* continuation */
        } else {
            nlen = field_name(line, ll);
            if (push(h, pos, pos + ll, nlen) != 0)
                return -1;
        }
        pos += ll;
    }
    return 0;
}

void headers_free(struct headers *h)
{
    size_t i;

    for (i = 0; i < h->n; i++) {
        free(h->f[i].replacement);
        free(h->f[i].raw);
    }
    free(h->f);
    buf_free(&h->added);
    memset(h, 0, sizeof(*h));
}

long headers_find(const struct headers *h, const char *name, size_t from)
{
    size_t i, n = strlen(name);

    for (i = from; i < h->n; i++)
        if (!h->f[i].dropped && h->f[i].name_len == n &&
            strncasecmp(h->msg + h->f[i].start, name, n) == 0)
            return (long)i;
    return -1;
}

char *headers_value(const struct headers *h, size_t i)
{
    const struct hfield *f = &h->f[i];
    const char *base = f->raw ? f->raw : h->msg + f->start;
    const char *p = base + f->name_len + 1;
    const char *end = f->raw ? f->raw + f->raw_len : h->msg + f->end;
    char *out = malloc((size_t)(end - p) + 1), *w = out;

    if (!out)
        return NULL;
    if (f->replacement) {
        free(out);
        return strdup(f->replacement);
    }
    for (; p < end; p++) {
        if (*p == '\r' || *p == '\n')
            continue; /* unfold: the continuation's blank stays */
        *w++ = *p;
    }
    *w = 0;
    /* trim */
    for (w = out; *w == ' ' || *w == '\t'; w++)
        ;
    memmove(out, w, strlen(w) + 1);
    w = out + strlen(out);
    while (w > out && (w[-1] == ' ' || w[-1] == '\t'))
        *--w = 0;
    return out;
}

int headers_prefix(struct headers *h, size_t i, const char *text)
{
    struct hfield *f = &h->f[i];
    const char *v = h->msg + f->start + f->name_len + 1, *nl;
    size_t vlen = f->end - f->start - f->name_len - 1, first;
    int blank = vlen > 0 && (v[0] == ' ' || v[0] == '\t');
    struct buf b;

    if (f->replacement || f->raw || f->name_len == 0)
        return -1; /* only a field as received */
    nl = memchr(v, '\n', vlen);
    first = nl ? (size_t)(nl - v) : vlen;
    if (first > 0 && v[first - 1] == '\r')
        first--;
    buf_init(&b);
    if (buf_append(&b, h->msg + f->start, f->name_len) ||
        buf_printf(&b, ": %s", text))
        goto oom;
    /* the first line as it would be; past 78, fold before the old value
     * (the fold is a line end and a blank: unfolding gives "TEXT old") */
    if (f->name_len + 2 + strlen(text) + !blank + first > 78 &&
        buf_puts(&b, h->eol))
        goto oom;
    if ((!blank && buf_puts(&b, " ")) || buf_append(&b, v, vlen))
        goto oom;
    free(f->raw);
    f->raw = b.data;
    f->raw_len = b.len;
    return 0;
oom:
    buf_free(&b);
    return -1;
}

void headers_drop(struct headers *h, size_t i)
{
    h->f[i].dropped = 1;
}

void headers_drop_all(struct headers *h, const char *name)
{
    long i = 0;

    while ((i = headers_find(h, name, (size_t)i)) >= 0)
        headers_drop(h, (size_t)i++);
}

int headers_replace(struct headers *h, size_t i, const char *value)
{
    char *copy = strdup(value);

    if (!copy)
        return -1;
    free(h->f[i].replacement);
    h->f[i].replacement = copy;
    free(h->f[i].raw);
    h->f[i].raw = NULL;
    return 0;
}

int headers_add(struct headers *h, const char *name, const char *value)
{
    return buf_printf(&h->added, "%s: %s%s", name, value, h->eol);
}

int headers_write(const struct headers *h, struct buf *out)
{
    size_t i;

    for (i = 0; i < h->n; i++) {
        const struct hfield *f = &h->f[i];
        if (f->dropped)
            continue;
        if (f->raw) {
            if (buf_append(out, f->raw, f->raw_len))
                return -1;
        } else if (f->replacement) {
            if (buf_append(out, h->msg + f->start, f->name_len) ||
                buf_printf(out, ": %s%s", f->replacement, h->eol))
                return -1;
        } else if (buf_append(out, h->msg + f->start, f->end - f->start)) {
            return -1;
        }
    }
    /* a last field without a line end (message that is all header) */
    if (out->len > 0 && out->data[out->len - 1] != '\n' &&
        buf_puts(out, h->eol))
        return -1;
    if (buf_append(out, h->added.data ? h->added.data : "", h->added.len))
        return -1;
    if (h->sep_off < h->len)
        return buf_append(out, h->msg + h->sep_off, h->len - h->sep_off);
    return buf_puts(out, h->eol); /* no body: end the section anyway */
}

/* ------------------------------------------------------------ RFC 2047 */

static int hexv(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = tolower(c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

static int b64v(int c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    return c == '+' ? 62 : c == '/' ? 63 : -1;
}

/* Decode one encoded-word's text (enc 'B' or 'Q') onto w; returns end. */
static char *decode_word(const char *p, const char *end, int enc, char *w)
{
    if (enc == 'Q') {
        for (; p < end; p++) {
            if (*p == '_')
                *w++ = ' ';
            else if (*p == '=' && end - p >= 3 && hexv(p[1]) >= 0 &&
                     hexv(p[2]) >= 0) {
                *w++ = (char)(hexv(p[1]) << 4 | hexv(p[2]));
                p += 2;
            } else
                *w++ = *p;
        }
    } else {
        unsigned acc = 0;
        int bits = 0;
        for (; p < end; p++) {
            int v = b64v((unsigned char)*p);
            if (v < 0)
                continue;
            acc = (acc << 6) | (unsigned)v;
            bits += 6;
            if (bits >= 8) {
                bits -= 8;
                *w++ = (char)((acc >> bits) & 0xff);
            }
        }
    }
    return w;
}

char *header_decode_2047(const char *v)
{
    char *out = malloc(strlen(v) + 1), *w = out;
    const char *p = v;

    if (!out)
        return NULL;
    while (*p) {
        const char *q1, *q2, *q3;
        if (p[0] == '=' && p[1] == '?' && (q1 = strchr(p + 2, '?')) &&
            (q1[1] && q1[2] == '?') && (q2 = q1 + 2) &&
            (q3 = strstr(q2 + 1, "?=")) != NULL) {
            int enc = toupper((unsigned char)q1[1]);
            if (enc == 'B' || enc == 'Q') {
                w = decode_word(q2 + 1, q3, enc, w);
                p = q3 + 2;
                continue;
            }
        }
        *w++ = *p++;
    }
    *w = 0;
    return out;
}

int header_address(const char *v, char *out, size_t outlen)
{
    const char *lt = strrchr(v, '<'), *s, *e;
    size_t n, i;
    char *at;

    if (lt && (e = strchr(lt, '>')) != NULL) {
        s = lt + 1;
    } else {
        /* bare address: the token that holds an '@' */
        const char *a = strchr(v, '@');
        if (!a)
            return -1;
        for (s = a; s > v && !strchr(" \t,;:\"(", s[-1]); s--)
            ;
        for (e = a; *e && !strchr(" \t,;\"()", *e); e++)
            ;
    }
    n = (size_t)(e - s);
    if (n == 0 || n >= outlen || !memchr(s, '@', n))
        return -1;
    memcpy(out, s, n);
    out[n] = 0;
    if ((at = strrchr(out, '@')) != NULL)
        for (i = 0; at[i]; i++)
            at[i] = (char)tolower((unsigned char)at[i]);
    return 0;
}
