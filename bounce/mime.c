/*
 * mime - a bounded walker over a message's MIME tree (see mime.h).
 *
 * Written for bounces, which are hostile input: every loop advances through
 * the input, every copy is cut to its buffer, the recursion stops at
 * MIME_MAX_DEPTH and the leaves at MIME_MAX_PARTS.
 */
#include "autoconf.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mime.h"

struct walk {
    mime_leaf_fn fn;
    void *ctx;
    int nparts;
    int stop;
};

/* ------------------------------------------------------------ header */

void mime_split(const char *msg, size_t len, const char **hdr, size_t *hdrlen,
                const char **body, size_t *bodylen)
{
    size_t pos = 0;

    while (pos < len) {
        const char *nl;
        size_t rest = len - pos;

        if (msg[pos] == '\n' ||
            (rest >= 2 && msg[pos] == '\r' && msg[pos + 1] == '\n')) {
            size_t skip = msg[pos] == '\n' ? 1 : 2;

            *hdr = msg;
            *hdrlen = pos;
            *body = msg + pos + skip;
            *bodylen = len - pos - skip;
            return;
        }
        nl = memchr(msg + pos, '\n', rest);
        if (nl == NULL)
            break;
        pos = (size_t)(nl - msg) + 1;
    }
    *hdr = msg;
    *hdrlen = len;
    *body = msg + len;
    *bodylen = 0;
}

/* Does the line at p (n bytes left) start field NAME?  Then where its
 * value starts. */
static const char *field_value(const char *p, size_t n, const char *name)
{
    size_t nl = strlen(name), i;

    if (n <= nl || strncasecmp(p, name, nl) != 0)
        return NULL;
    for (i = nl; i < n && (p[i] == ' ' || p[i] == '\t'); i++)
        ;
    if (i >= n || p[i] != ':')
        return NULL;
    return p + i + 1;
}

static void copy_clean(char *out, size_t outlen, size_t *o, const char *p,
                       size_t n)
{
    size_t i;

    for (i = 0; i < n && *o + 1 < outlen; i++) {
        unsigned char c = (unsigned char)p[i];

        if (c == '\r' || c == '\n')
            continue;
        out[(*o)++] = (c < 32 || c == 127) ? ' ' : (char)c;
    }
}

static void trim(char *s)
{
    size_t n = strlen(s), i = 0;

    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        s[--n] = 0;
    while (s[i] == ' ' || s[i] == '\t')
        i++;
    if (i > 0)
        memmove(s, s + i, n - i + 1);
}

int mime_header(const char *hdr, size_t hdrlen, const char *name, char *out,
                size_t outlen)
{
    const char *p = hdr, *end = hdr + hdrlen;

    if (outlen == 0)
        return 0;
    out[0] = 0;
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        const char *v = field_value(p, (size_t)(end - p), name);
        size_t o = 0;

        if (eol == NULL)
            eol = end;
        if (v == NULL || v > eol) {
            p = eol + 1;
            continue;
        }
        copy_clean(out, outlen, &o, v, (size_t)(eol - v));
        /* continuation lines: unfold */
        p = eol + 1;
        while (p < end && (*p == ' ' || *p == '\t')) {
            eol = memchr(p, '\n', (size_t)(end - p));
            if (eol == NULL)
                eol = end;
            copy_clean(out, outlen, &o, p, (size_t)(eol - p));
            p = eol + 1;
        }
        out[o] = 0;
        trim(out);
        return 1;
    }
    return 0;
}

int mime_param(const char *value, const char *param, char *out, size_t outlen)
{
    const char *p = strchr(value, ';');
    size_t pl = strlen(param);

    if (outlen == 0)
        return 0;
    out[0] = 0;
    while (p != NULL && *p == ';') {
        const char *name;
        size_t o = 0;
        int match;

        p++;
        while (*p == ' ' || *p == '\t')
            p++;
        name = p;
        while (*p && *p != '=' && *p != ';')
            p++;
        match = (size_t)(p - name) >= pl && strncasecmp(name, param, pl) == 0;
        if (match) {
            const char *q = name + pl;

            while (q < p && (*q == ' ' || *q == '\t'))
                q++;
            match = q == p;
        }
        if (*p != '=')
            continue;
        p++;
        while (*p == ' ' || *p == '\t')
            p++;
        if (*p == '"') {
            for (p++; *p && *p != '"'; p++) {
                if (*p == '\\' && p[1])
                    p++;
                if (match && o + 1 < outlen)
                    out[o++] = *p;
            }
            if (*p == '"')
                p++;
            while (*p && *p != ';')
                p++;
        } else {
            for (; *p && *p != ';' && *p != ' ' && *p != '\t'; p++)
                if (match && o + 1 < outlen)
                    out[o++] = *p;
            while (*p && *p != ';')
                p++;
        }
        if (match) {
            out[o] = 0;
            return 1;
        }
    }
    return 0;
}

static void content_type(const char *hdr, size_t hdrlen, char *ctype,
                         size_t clen, char *value, size_t vlen)
{
    size_t i;

    if (!mime_header(hdr, hdrlen, "Content-Type", value, vlen)) {
        snprintf(ctype, clen, "text/plain");
        return;
    }
    for (i = 0; i + 1 < clen && value[i] && value[i] != ';' &&
                value[i] != ' ' && value[i] != '\t';
         i++)
        ctype[i] = (char)tolower((unsigned char)value[i]);
    ctype[i] = 0;
    if (strchr(ctype, '/') == NULL)
        snprintf(ctype, clen, "text/plain");
}

/* ------------------------------------------------------------- walk */

static void walk(struct walk *w, const char *msg, size_t len, int depth,
                 int in_message);

/* Is the line at p a delimiter of boundary b?  Set *close for "--b--". */
static int is_delimiter(const char *p, const char *end, const char *b,
                        size_t bl, int *close)
{
    const char *q = p + 2 + bl;

    if ((size_t)(end - p) < 2 + bl || p[0] != '-' || p[1] != '-' ||
        memcmp(p + 2, b, bl) != 0)
        return 0;
    *close = end - q >= 2 && q[0] == '-' && q[1] == '-';
    if (*close)
        q += 2;
    while (q < end && (*q == ' ' || *q == '\t' || *q == '\r'))
        q++;
    return q == end || *q == '\n';
}

/* The next delimiter line at or after from (at a line start). */
static const char *next_delimiter(const char *from, const char *end,
                                  const char *b, size_t bl, int *close)
{
    const char *p = from;

    while (p < end) {
        const char *hit;

        if ((p == from || p[-1] == '\n') && is_delimiter(p, end, b, bl, close))
            return p;
        hit = memchr(p, '\n', (size_t)(end - p));
        if (hit == NULL)
            return NULL;
        p = hit + 1;
    }
    return NULL;
}

static int walk_multipart(struct walk *w, const char *body, size_t len,
                          const char *b, int depth, int in_message)
{
    const char *end = body + len, *d, *start, *eol;
    size_t bl = strlen(b);
    int close = 0;

    if (bl == 0)
        return 0;
    d = next_delimiter(body, end, b, bl, &close);
    if (d == NULL || close)
        return 0;
    while (d != NULL && !close && !w->stop) {
        const char *next, *stop;

        eol = memchr(d, '\n', (size_t)(end - d));
        start = eol ? eol + 1 : end;
        next = next_delimiter(start, end, b, bl, &close);
        stop = next ? next : end;
        /* the line break before a delimiter belongs to it */
        if (next != NULL && stop > start && stop[-1] == '\n')
            stop--;
        if (next != NULL && stop > start && stop[-1] == '\r')
            stop--;
        walk(w, start, (size_t)(stop - start), depth + 1, in_message);
        d = next;
    }
    return 1;
}

static void walk(struct walk *w, const char *msg, size_t len, int depth,
                 int in_message)
{
    struct mime_part part;
    char value[1024], boundary[256];

    if (w->stop)
        return;
    memset(&part, 0, sizeof(part));
    mime_split(msg, len, &part.hdr, &part.hdrlen, &part.body, &part.bodylen);
    content_type(part.hdr, part.hdrlen, part.ctype, sizeof(part.ctype), value,
                 sizeof(value));
    part.depth = depth;
    part.in_message = in_message;
    if (depth < MIME_MAX_DEPTH) {
        if (strncmp(part.ctype, "multipart/", 10) == 0 &&
            mime_param(value, "boundary", boundary, sizeof(boundary)) &&
            walk_multipart(w, part.body, part.bodylen, boundary, depth,
                           in_message))
            return;
        if (strcmp(part.ctype, "message/rfc822") == 0 ||
            strcmp(part.ctype, "message/global") == 0) {
            walk(w, part.body, part.bodylen, depth + 1, 1);
            return;
        }
    }
    if (w->nparts >= MIME_MAX_PARTS) {
        w->stop = 1;
        return;
    }
    w->nparts++;
    if (w->fn(&part, w->ctx))
        w->stop = 1;
}

void mime_walk(const char *msg, size_t len, mime_leaf_fn fn, void *ctx)
{
    struct walk w = {fn, ctx, 0, 0};

    walk(&w, msg, len, 0, 0);
}

/* ----------------------------------------------------------- decode */

static int b64val(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

static size_t decode_base64(const char *in, size_t n, char *out, size_t max)
{
    unsigned long acc = 0;
    int bits = 0;
    size_t i, o = 0;

    for (i = 0; i < n && o < max; i++) {
        int v = b64val((unsigned char)in[i]);

        if (in[i] == '=')
            break;
        if (v < 0)
            continue;
        acc = ((acc << 6) | (unsigned long)v) & 0xffffff;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (char)((acc >> bits) & 0xff);
        }
    }
    return o;
}

static int hexval(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = (unsigned char)toupper(c);
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static size_t decode_qp(const char *in, size_t n, char *out, size_t max)
{
    size_t i = 0, o = 0;

    while (i < n && o < max) {
        if (in[i] != '=') {
            out[o++] = in[i++];
            continue;
        }
        if (i + 2 < n && hexval((unsigned char)in[i + 1]) >= 0 &&
            hexval((unsigned char)in[i + 2]) >= 0) {
            out[o++] = (char)(hexval((unsigned char)in[i + 1]) * 16 +
                              hexval((unsigned char)in[i + 2]));
            i += 3;
        } else if (i + 1 < n && in[i + 1] == '\n') {
            i += 2;
        } else if (i + 2 < n && in[i + 1] == '\r' && in[i + 2] == '\n') {
            i += 3;
        } else {
            out[o++] = in[i++];
        }
    }
    return o;
}

char *mime_decode(const struct mime_part *part, size_t max, size_t *outlen)
{
    char cte[64];
    size_t n = part->bodylen < max ? part->bodylen : max, o;
    char *out = malloc(n + 1);

    if (out == NULL)
        return NULL;
    mime_header(part->hdr, part->hdrlen, "Content-Transfer-Encoding", cte,
                sizeof(cte));
    if (strcasecmp(cte, "base64") == 0)
        o = decode_base64(part->body, part->bodylen, out, n);
    else if (strcasecmp(cte, "quoted-printable") == 0)
        o = decode_qp(part->body, part->bodylen, out, n);
    else {
        memcpy(out, part->body, n);
        o = n;
    }
    out[o] = 0;
    *outlen = o;
    return out;
}
