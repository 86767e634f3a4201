/*
 * dmarcrec - DMARC records and their DNS answers.  See dmarcrec.h.
 *
 * The DNS message itself is taken apart by the C library's libresolv
 * (ns_initparse(), ns_parserr(), ns_name_uncompress(), dn_skipname()):
 * it bounds-checks every record and name against the end of the message,
 * so our code only walks rdata whose length libresolv has already
 * checked.  What is ours is the TXT character-string walk, the CNAME
 * chain and the tag-value parser, all of them bounded by lengths, never
 * by NUL bytes.
 */
#include "autoconf.h"

#include <arpa/nameser.h>
#include <ctype.h>
#include <resolv.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "dmarcrec.h"

#define MAX_CHAIN 8

const char *dmarc_p_name(enum dmarc_p p)
{
    switch (p) {
    case DMARC_P_NONE:
        return "none";
    case DMARC_P_QUARANTINE:
        return "quarantine";
    case DMARC_P_REJECT:
        return "reject";
    default:
        return "unset";
    }
}

/* ------------------------------------------------------------ records */

static int is_wsp(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Trim [*s, *e) of blanks. */
static void trim(const char **s, const char **e)
{
    while (*s < *e && is_wsp(**s))
        (*s)++;
    while (*e > *s && is_wsp((*e)[-1]))
        (*e)--;
}

static int token_is(const char *s, const char *e, const char *word)
{
    size_t n = strlen(word);

    return (size_t)(e - s) == n && strncasecmp(s, word, n) == 0;
}

static enum dmarc_p policy_of(const char *s, const char *e)
{
    if (token_is(s, e, "none"))
        return DMARC_P_NONE;
    if (token_is(s, e, "quarantine"))
        return DMARC_P_QUARANTINE;
    if (token_is(s, e, "reject"))
        return DMARC_P_REJECT;
    return DMARC_P_UNSET;
}

static int pct_of(const char *s, const char *e)
{
    int v = 0;

    if (s == e || e - s > 3)
        return 100;
    for (; s < e; s++) {
        if (*s < '0' || *s > '9')
            return 100;
        v = v * 10 + (*s - '0');
    }
    return v > 100 ? 100 : v;
}

int dmarc_record_parse(const char *txt, size_t len, struct dmarc_record *r)
{
    const char *p = txt, *end = txt + len;
    int first = 1;

    memset(r, 0, sizeof(*r));
    r->pct = 100;
    while (p < end) {
        const char *semi = memchr(p, ';', (size_t)(end - p));
        const char *te = semi ? semi : end, *ns = p, *ne, *vs, *ve;
        const char *eq = memchr(p, '=', (size_t)(te - p));

        p = semi ? semi + 1 : end;
        if (!eq) {
            const char *s = ns, *e = te;
            trim(&s, &e);
            if (s == e)
                continue; /* empty, e.g. after a final ';' */
            if (first)
                goto not_dmarc;
            continue; /* a malformed tag: ignored */
        }
        ne = eq;
        vs = eq + 1;
        ve = te;
        trim(&ns, &ne);
        trim(&vs, &ve);
        if (first) {
            if (!token_is(ns, ne, "v") || !token_is(vs, ve, "DMARC1"))
                goto not_dmarc;
            first = 0;
        } else if (token_is(ns, ne, "p")) {
            r->p = policy_of(vs, ve);
        } else if (token_is(ns, ne, "sp")) {
            r->sp = policy_of(vs, ve);
        } else if (token_is(ns, ne, "pct")) {
            r->pct = pct_of(vs, ve);
        }
    }
    if (!first)
        return 1;
not_dmarc:
    memset(r, 0, sizeof(*r));
    return 0;
}

/* ------------------------------------------------------------ answers */

/* Names as libresolv prints them, compared without a final dot. */
static int same_name(const char *a, const char *b)
{
    size_t na = strlen(a), nb = strlen(b);

    if (na && a[na - 1] == '.')
        na--;
    if (nb && b[nb - 1] == '.')
        nb--;
    return na == nb && strncasecmp(a, b, na) == 0;
}

static void min_ttl(int64_t *ttl, int64_t v)
{
    if (*ttl < 0 || v < *ttl)
        *ttl = v;
}

/* The TXT rdata's character-strings, concatenated, into one record. */
static int txt_record(const unsigned char *rd, size_t rdlen,
                      struct dmarc_record *rec)
{
    char *text = malloc(rdlen + 1);
    size_t off = 0, n = 0;
    int rc = 0;

    if (!text)
        return -1;
    while (off < rdlen) {
        size_t l = rd[off++];
        if (l > rdlen - off) {
            free(text);
            return 0; /* malformed: not a record */
        }
        memcpy(text + n, rd + off, l);
        n += l;
        off += l;
    }
    rc = dmarc_record_parse(text, n, rec);
    free(text);
    return rc;
}

/* The name at the end of qname's CNAME chain in the answer section. */
static int follow_cnames(ns_msg *m, const char *qname, char *out, size_t outlen,
                         int64_t *ttl)
{
    int count = ns_msg_count(*m, ns_s_an), i, hops;
    char target[NS_MAXDNAME];
    ns_rr rr;

    if (strlen(qname) >= outlen)
        return -1;
    strcpy(out, qname);
    for (hops = 0; hops < MAX_CHAIN; hops++) {
        int moved = 0;
        for (i = 0; i < count && !moved; i++) {
            if (ns_parserr(m, ns_s_an, i, &rr) != 0)
                return -1;
            if (ns_rr_type(rr) != ns_t_cname || ns_rr_class(rr) != ns_c_in ||
                !same_name(ns_rr_name(rr), out))
                continue;
            if (ns_name_uncompress(ns_msg_base(*m), ns_msg_end(*m),
                                   ns_rr_rdata(rr), target,
                                   sizeof(target)) < 0 ||
                strlen(target) >= outlen)
                return -1;
            strcpy(out, target);
            min_ttl(ttl, ns_rr_ttl(rr));
            moved = 1;
        }
        if (!moved)
            return 0;
    }
    return -1; /* a loop, or too long a chain */
}

/* RFC 2308: a negative answer lives min(SOA TTL, SOA minimum). */
static int64_t negative_ttl(ns_msg *m)
{
    int count = ns_msg_count(*m, ns_s_ns), i;
    ns_rr rr;

    for (i = 0; i < count; i++) {
        const unsigned char *rd, *end, *q;
        int skip;
        if (ns_parserr(m, ns_s_ns, i, &rr) != 0)
            return -1;
        if (ns_rr_type(rr) != ns_t_soa)
            continue;
        rd = ns_rr_rdata(rr);
        end = rd + ns_rr_rdlen(rr);
        q = rd;
        if ((skip = dn_skipname(q, end)) < 0)
            return -1;
        q += skip;
        if ((skip = dn_skipname(q, end)) < 0)
            return -1;
        q += skip;
        if (end - q < 20)
            return -1;
        return ns_rr_ttl(rr) < ns_get32(q + 16) ? (int64_t)ns_rr_ttl(rr)
                                                : (int64_t)ns_get32(q + 16);
    }
    return -1;
}

static int fail(struct dmarc_answer *a)
{
    int rcode = a->rcode;

    memset(a, 0, sizeof(*a));
    a->kind = DMARC_ANS_FAIL;
    a->ttl = -1;
    a->rcode = rcode;
    return 0;
}

static int question_ok(ns_msg *m, const char *qname)
{
    const unsigned char *p = ns_msg_base(*m) + NS_HFIXEDSZ;
    char name[NS_MAXDNAME];
    int n;

    if (ns_msg_count(*m, ns_s_qd) != 1)
        return 0;
    n = ns_name_uncompress(ns_msg_base(*m), ns_msg_end(*m), p, name,
                           sizeof(name));
    if (n < 0 || ns_msg_end(*m) - (p + n) < 4)
        return 0;
    return same_name(name, qname) && ns_get16(p + n) == ns_t_txt &&
           ns_get16(p + n + 2) == ns_c_in;
}

int dmarc_answer_parse(const unsigned char *msg, size_t len, const char *qname,
                       struct dmarc_answer *a)
{
    char owner[NS_MAXDNAME];
    int64_t txt_ttl = -1;
    ns_msg m;
    ns_rr rr;
    int i, count;

    memset(a, 0, sizeof(*a));
    a->ttl = -1;
    a->rcode = -1;
    if (len > 65535 || ns_initparse(msg, (int)len, &m) != 0)
        return fail(a);
    a->rcode = ns_msg_getflag(m, ns_f_rcode);
    if (!ns_msg_getflag(m, ns_f_qr) || ns_msg_getflag(m, ns_f_tc) ||
        !question_ok(&m, qname))
        return fail(a);
    if (a->rcode == ns_r_nxdomain) {
        a->kind = DMARC_ANS_NONE;
        a->ttl = negative_ttl(&m);
        return 0;
    }
    if (a->rcode != ns_r_noerror)
        return fail(a);
    if (follow_cnames(&m, qname, owner, sizeof(owner), &txt_ttl) != 0)
        return fail(a);
    count = ns_msg_count(m, ns_s_an);
    a->kind = DMARC_ANS_NONE;
    for (i = 0; i < count; i++) {
        struct dmarc_record rec;
        int rc;
        if (ns_parserr(&m, ns_s_an, i, &rr) != 0)
            return fail(a);
        if (ns_rr_type(rr) != ns_t_txt || ns_rr_class(rr) != ns_c_in ||
            !same_name(ns_rr_name(rr), owner))
            continue;
        min_ttl(&txt_ttl, ns_rr_ttl(rr));
        if ((rc = txt_record(ns_rr_rdata(rr), ns_rr_rdlen(rr), &rec)) < 0)
            return fail(a);
        if (rc == 0)
            continue;
        if (a->nrecords++ == 0) {
            a->rec = rec;
        } else { /* several: the strictest of each (see dmarcrec.h) */
            enum dmarc_p sp0 = a->rec.sp ? a->rec.sp : a->rec.p;
            enum dmarc_p sp1 = rec.sp ? rec.sp : rec.p;
            a->rec.p = rec.p > a->rec.p ? rec.p : a->rec.p;
            a->rec.sp = sp1 > sp0 ? sp1 : sp0;
            a->rec.pct = rec.pct > a->rec.pct ? rec.pct : a->rec.pct;
        }
        a->kind = DMARC_ANS_RECORD;
    }
    a->ttl = txt_ttl >= 0 || a->kind == DMARC_ANS_RECORD ? txt_ttl
                                                         : negative_ttl(&m);
    return 0;
}
