/*
 * bputil - the scanners and the classification rule the bounce detectors
 * share (see bpint.h).
 *
 * The rule (bp_classify) is where "never call a policy refusal failed"
 * lives: a 5.7.x or 4.7.x code, or words naming spam, content, DMARC, SPF,
 * DKIM or a block list, make the outcome policy whatever else the report
 * says; only a final failure without such words is failed.
 */
#include "autoconf.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "bpint.h"

static unsigned char ascii_lower(unsigned char c)
{
    return c >= 'A' && c <= 'Z' ? (unsigned char)(c | 0x20) : c;
}

/* memchr() finds the candidates (both cases of the needle's first byte),
 * so that a search costs about one pass at memchr's speed. */
const char *bp_find(const char *p, size_t n, const char *needle)
{
    size_t nl = strlen(needle), k;
    unsigned char lc, uc;
    const char *end, *q = p, *la = NULL, *ua = NULL;
    int lnone = 0, unone;

    if (nl == 0 || n < nl)
        return NULL;
    lc = ascii_lower((unsigned char)needle[0]);
    uc = (lc >= 'a' && lc <= 'z') ? (unsigned char)(lc & ~0x20) : lc;
    unone = uc == lc;
    end = p + (n - nl) + 1; /* a match starts before end */
    while (q < end) {
        const char *c;

        if (!lnone && (la == NULL || la < q)) {
            la = memchr(q, lc, (size_t)(end - q));
            lnone = la == NULL;
        }
        if (!unone && (ua == NULL || ua < q)) {
            ua = memchr(q, uc, (size_t)(end - q));
            unone = ua == NULL;
        }
        if (lnone && unone)
            return NULL;
        c = lnone ? ua : unone ? la : (la < ua ? la : ua);
        for (k = 1; k < nl; k++)
            if (ascii_lower((unsigned char)c[k]) !=
                ascii_lower((unsigned char)needle[k]))
                break;
        if (k == nl)
            return c;
        q = c + 1;
    }
    return NULL;
}

int bp_line(const char **p, const char *end, const char **line, size_t *len)
{
    const char *nl;

    if (*p >= end)
        return 0;
    *line = *p;
    nl = memchr(*p, '\n', (size_t)(end - *p));
    if (nl == NULL) {
        *len = (size_t)(end - *p);
        *p = end;
    } else {
        *len = (size_t)(nl - *p);
        *p = nl + 1;
    }
    if (*len > 0 && (*line)[*len - 1] == '\r')
        (*len)--;
    return 1;
}

/* ---------------------------------------------------------- addresses */

static int local_char(unsigned char c)
{
    return isalnum(c) || c >= 0x80 || strchr("!#$%&'*+-/=?^_`{|}~.", c);
}

int bp_address_ok(const char *addr)
{
    const char *at = strrchr(addr, '@'), *p;
    size_t len = strlen(addr);

    if (at == NULL || at == addr || at[1] == 0 || len >= BP_ADDR_MAX)
        return 0;
    if (addr[0] == '.' || at[-1] == '.')
        return 0;
    for (p = addr; p < at; p++)
        if (!local_char((unsigned char)*p))
            return 0;
    if (at[1] == '[')
        return addr[len - 1] == ']';
    if (strchr(at + 1, '.') == NULL || at[1] == '.' || addr[len - 1] == '.')
        return 0;
    for (p = at + 1; *p; p++) {
        unsigned char c = (unsigned char)*p;

        if (!(isalnum(c) || c == '-' || c == '.' || c >= 0x80))
            return 0;
        if (c == '.' && p[1] == '.')
            return 0;
    }
    return 1;
}

/* Copy [p, p+n) to out as a candidate, trimmed of quotes and punctuation. */
static int candidate(const char *p, size_t n, char *out, size_t outlen)
{
    while (n > 0 && strchr(" \t\"'(<[", *p) &&
           !(*p == '[' && n > 1 && memchr(p, '@', n) == NULL)) {
        p++;
        n--;
    }
    while (n > 0 && strchr(" \t\"'.,;:)>!?", p[n - 1]))
        n--;
    /* a "[1.2.3.4]" domain literal keeps its ']' */
    if (n == 0 || n >= outlen)
        return 0;
    memcpy(out, p, n);
    out[n] = 0;
    return bp_address_ok(out);
}

int bp_address_take(const char *p, size_t n, char *out, size_t outlen)
{
    const char *lt, *gt, *semi, *at;
    size_t i;

    /* "rfc822; addr": drop the address type */
    semi = memchr(p, ';', n);
    if (semi != NULL && semi - p < 20 &&
        memchr(p, '@', (size_t)(semi - p)) == NULL) {
        n -= (size_t)(semi + 1 - p);
        p = semi + 1;
    }
    lt = memchr(p, '<', n);
    if (lt != NULL) {
        gt = memchr(lt, '>', n - (size_t)(lt - p));
        if (gt != NULL)
            return candidate(lt + 1, (size_t)(gt - lt - 1), out, outlen);
    }
    at = memchr(p, '@', n);
    if (at == NULL)
        return 0;
    /* the word around the first '@' */
    i = (size_t)(at - p);
    while (i > 0 && !isspace((unsigned char)p[i - 1]) && p[i - 1] != '(' &&
           p[i - 1] != ':' && p[i - 1] != ',')
        i--;
    {
        size_t j = (size_t)(at - p);

        while (j < n && !isspace((unsigned char)p[j]) && p[j] != ')' &&
               p[j] != ',' && p[j] != '>' && p[j] != '\'')
            j++;
        return candidate(p + i, j - i, out, outlen);
    }
}

static int is_self(const struct bp_self *self, const char *addr)
{
    static const char *const robots[] = {"mailer-daemon", "postmaster",
                                         "double-bounce", "mail-daemon", NULL};
    const char *at = strrchr(addr, '@');
    int i;

    for (i = 0; robots[i]; i++)
        if ((size_t)(at - addr) == strlen(robots[i]) &&
            strncasecmp(addr, robots[i], strlen(robots[i])) == 0)
            return 1;
    for (i = 0; self != NULL && i < self->n; i++)
        if (strcasecmp(self->addr[i], addr) == 0)
            return 1;
    return 0;
}

int bp_add(struct bounce_report *r, const struct bp_self *self,
           const char *addr, enum bounce_action action, const char *status,
           const char *diag, size_t diaglen)
{
    struct bounce_rcpt *rc;
    size_t i;

    if (!bp_address_ok(addr) || is_self(self, addr))
        return 0;
    for (i = 0; i < r->nrcpt; i++)
        if (strcasecmp(r->rcpt[i].address, addr) == 0)
            return 0;
    if (r->nrcpt >= BP_MAX_RCPT)
        return 0;
    if ((r->nrcpt & (r->nrcpt - 1)) == 0) { /* 0, 1, 2, 4, ...: grow */
        size_t cap = r->nrcpt ? r->nrcpt * 2 : 1;
        struct bounce_rcpt *n = realloc(r->rcpt, cap * sizeof(*n));

        if (n == NULL)
            return -1;
        r->rcpt = n;
    }
    rc = &r->rcpt[r->nrcpt];
    memset(rc, 0, sizeof(*rc));
    rc->address = strdup(addr);
    if (rc->address == NULL)
        return -1;
    rc->action = action;
    snprintf(rc->status, sizeof(rc->status), "%s", status ? status : "");
    if (diag != NULL && diaglen > 0) {
        size_t n = diaglen < BP_DIAG_MAX ? diaglen : BP_DIAG_MAX, o = 0;

        rc->diagnostic = malloc(n + 1);
        if (rc->diagnostic == NULL) {
            free(rc->address);
            return -1;
        }
        for (i = 0; i < n; i++) {
            unsigned char c = (unsigned char)diag[i];

            if (c < 32 || c == 127)
                c = ' ';
            if (c == ' ' && (o == 0 || rc->diagnostic[o - 1] == ' '))
                continue;
            rc->diagnostic[o++] = (char)c;
        }
        while (o > 0 && rc->diagnostic[o - 1] == ' ')
            o--;
        rc->diagnostic[o] = 0;
    }
    r->nrcpt++;
    return 1;
}

/* ------------------------------------------------------------ status */

int bp_status_find(const char *p, size_t n, char out[BOUNCE_STATUS_MAX])
{
    size_t i;

    out[0] = 0;
    for (i = 0; i + 5 <= n; i++) {
        size_t j = i + 2, d1 = 0, d2 = 0;

        if ((p[i] != '2' && p[i] != '4' && p[i] != '5') || p[i + 1] != '.')
            continue;
        if (i > 0 && (isalnum((unsigned char)p[i - 1]) || p[i - 1] == '.'))
            continue;
        while (j < n && isdigit((unsigned char)p[j]) && d1 < 4)
            j++, d1++;
        if (d1 == 0 || d1 > 3 || j >= n || p[j] != '.')
            continue;
        j++;
        while (j < n && isdigit((unsigned char)p[j]) && d2 < 4)
            j++, d2++;
        if (d2 == 0 || d2 > 3)
            continue;
        if (j < n &&
            (isalnum((unsigned char)p[j]) ||
             (p[j] == '.' && j + 1 < n && isdigit((unsigned char)p[j + 1]))))
            continue;
        memcpy(out, p + i, j - i);
        out[j - i] = 0;
        return 1;
    }
    return 0;
}

int bp_smtp_class(const char *p, size_t n)
{
    size_t i;

    for (i = 0; i + 3 <= n; i++) {
        if ((p[i] != '4' && p[i] != '5') || !isdigit((unsigned char)p[i + 1]) ||
            !isdigit((unsigned char)p[i + 2]))
            continue;
        if (i > 0 && (isalnum((unsigned char)p[i - 1]) || p[i - 1] == '.' ||
                      p[i - 1] == '#' || p[i - 1] == '-' || p[i - 1] == ':'))
            continue;
        if (i + 3 < n && p[i + 3] != ' ' && p[i + 3] != '-')
            continue;
        if (p[i + 1] > '5')
            continue;
        return p[i] - '0';
    }
    return 0;
}

/* Words that name a refusal of the sender or the content, not of the
 * mailbox.  A leading '=' asks for a whole word. */
static const char *const policy_words[] = {"spam",
                                           "=spf",
                                           "=dkim",
                                           "=dmarc",
                                           "=rbl",
                                           "=dnsbl",
                                           "=uribl",
                                           "blacklist",
                                           "black list",
                                           "blocklist",
                                           "block list",
                                           "blocked",
                                           "denylist",
                                           "spamhaus",
                                           "spamcop",
                                           "barracuda",
                                           "sorbs",
                                           "reputation",
                                           "junk mail",
                                           "bulk mail",
                                           "content rejected",
                                           "message content",
                                           "content policy",
                                           "virus",
                                           "malware",
                                           "phish",
                                           "policy",
                                           "relay access denied",
                                           "relaying denied",
                                           "relay denied",
                                           "not permitted to relay",
                                           "sender address rejected",
                                           "client host rejected",
                                           "helo command rejected",
                                           "rate limit",
                                           "too many messages",
                                           "authentication required",
                                           "unauthenticated",
                                           "not authorized to send",
                                           "abuse",
                                           "prohibited",
                                           NULL};

static int word_at(const char *p, size_t n, const char *hit, size_t wl)
{
    size_t off = (size_t)(hit - p);

    if (off > 0 && isalnum((unsigned char)p[off - 1]))
        return 0;
    return off + wl >= n || !isalnum((unsigned char)p[off + wl]);
}

int bp_policy_text(const char *p, size_t n)
{
    int i;

    for (i = 0; policy_words[i]; i++) {
        const char *w = policy_words[i], *hit, *q = p;
        int whole = w[0] == '=';

        if (whole)
            w++;
        while ((hit = bp_find(q, n - (size_t)(q - p), w)) != NULL) {
            if (!whole || word_at(p, n, hit, strlen(w)))
                return 1;
            q = hit + 1;
        }
    }
    return 0;
}

int bp_classify(enum bp_hint hint, const char *status, const char *text,
                size_t n, enum bounce_action *action)
{
    int cls = status[0] ? status[0] - '0' : bp_smtp_class(text, n);
    int policy = strncmp(status, "5.7.", 4) == 0 ||
                 strncmp(status, "4.7.", 4) == 0 || bp_policy_text(text, n);

    if (cls == 2) /* delivered, whatever else it says: not sure */
        return 0;
    if (hint == BP_HINT_DELAYED || (hint == BP_HINT_NONE && cls == 4)) {
        *action = BOUNCE_DELAYED;
        return 1;
    }
    if (hint == BP_HINT_NONE && cls != 5)
        return 0;
    *action = policy ? BOUNCE_POLICY : BOUNCE_FAILED;
    return 1;
}
