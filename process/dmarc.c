/*
 * dmarc - DMARC policy discovery with c-ares, libpsl and a TTL cache.
 * See dmarc.h (and there, why c-ares).
 */
#include "autoconf.h"

#include <ares.h>
#include <arpa/nameser.h>
#include <ctype.h>
#include <errno.h>
#include <libpsl.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "dmarc.h"

#define CACHE_MAX 10000
#define CACHE_BUCKETS 4096
#define TTL_MAX 86400
#define TTL_NEG_DEFAULT 60
#define TTL_FAIL 60
#define RESOLV_CONF "/etc/resolv.conf"

struct entry {
    struct entry *next;
    char name[DMARC_NAME_MAX];
    struct dmarc_answer ans;
    char why[128];
    int64_t expires; /* monotonic seconds */
};

struct dmarc {
    ares_channel ch;
    int have_ch;
    const psl_ctx_t *psl;
    psl_ctx_t *psl_own; /* psl_latest()'s, to be freed */
    int timeout_ms;
    struct stat conf; /* resolv.conf as of the channel's start */
    struct entry *bucket[CACHE_BUCKETS];
    size_t nentries;
};

/* One question in flight. */
struct question {
    const char *name;
    int done;
    struct dmarc_answer ans;
    char why[128];
};

static int64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* -------------------------------------------------------------- cache */

static unsigned hash(const char *s)
{
    unsigned h = 5381;

    for (; *s; s++)
        h = h * 33 + (unsigned char)*s;
    return h % CACHE_BUCKETS;
}

static void cache_sweep(struct dmarc *d, int64_t now, int all)
{
    size_t i;

    for (i = 0; i < CACHE_BUCKETS; i++) {
        struct entry **pp = &d->bucket[i];
        while (*pp) {
            struct entry *e = *pp;
            if (all || e->expires <= now) {
                *pp = e->next;
                free(e);
                d->nentries--;
            } else {
                pp = &e->next;
            }
        }
    }
}

static const struct entry *cache_get(struct dmarc *d, const char *name,
                                     int64_t now)
{
    struct entry **pp = &d->bucket[hash(name)];

    for (; *pp; pp = &(*pp)->next) {
        struct entry *e = *pp;
        if (strcmp(e->name, name) != 0)
            continue;
        if (e->expires > now)
            return e;
        *pp = e->next; /* expired */
        free(e);
        d->nentries--;
        return NULL;
    }
    return NULL;
}

static void cache_put(struct dmarc *d, const struct question *q, int64_t now)
{
    int64_t ttl;
    struct entry *e;
    unsigned h;

    if (q->ans.kind == DMARC_ANS_FAIL)
        ttl = TTL_FAIL;
    else if (q->ans.ttl < 0)
        ttl = TTL_NEG_DEFAULT;
    else
        ttl = q->ans.ttl > TTL_MAX ? TTL_MAX : q->ans.ttl;
    if (ttl <= 0)
        return; /* TTL 0: not to be cached */
    if (d->nentries >= CACHE_MAX)
        cache_sweep(d, now, 0);
    if (d->nentries >= CACHE_MAX)
        cache_sweep(d, now, 1);
    if (!(e = calloc(1, sizeof(*e))))
        return; /* not cached: asked again next time */
    snprintf(e->name, sizeof(e->name), "%s", q->name);
    e->ans = q->ans;
    snprintf(e->why, sizeof(e->why), "%s", q->why);
    e->expires = now + ttl;
    h = hash(e->name);
    e->next = d->bucket[h];
    d->bucket[h] = e;
    d->nentries++;
}

/* ----------------------------------------------------------- resolver */

static int channel_start(struct dmarc *d, char *err, size_t errlen)
{
    struct ares_options o;
    int rc, mask = ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES | ARES_OPT_FLAGS |
                   ARES_OPT_EDNSPSZ;

    memset(&o, 0, sizeof(o));
    /* two tries of a third each, so that one lost datagram is retried
     * well inside the deadline; the deadline itself is ours (query()) */
    o.timeout = d->timeout_ms / 3 > 0 ? d->timeout_ms / 3 : 1;
    o.tries = 2;
    o.flags = ARES_FLAG_NOSEARCH | ARES_FLAG_EDNS;
    o.ednspsz = 1232;
    if (stat(RESOLV_CONF, &d->conf) != 0)
        memset(&d->conf, 0, sizeof(d->conf));
    if ((rc = ares_init_options(&d->ch, &o, mask)) != ARES_SUCCESS) {
        snprintf(err, errlen, "c-ares: %s", ares_strerror(rc));
        return -1;
    }
    d->have_ch = 1;
    return 0;
}

/* resolv.conf changed since the channel started: start a new one. */
static void channel_refresh(struct dmarc *d)
{
    struct stat st;
    char err[128];

    if (stat(RESOLV_CONF, &st) != 0)
        memset(&st, 0, sizeof(st));
    if (d->have_ch && st.st_ino == d->conf.st_ino &&
        st.st_dev == d->conf.st_dev && st.st_size == d->conf.st_size &&
        st.st_mtim.tv_sec == d->conf.st_mtim.tv_sec &&
        st.st_mtim.tv_nsec == d->conf.st_mtim.tv_nsec)
        return;
    if (d->have_ch)
        ares_destroy(d->ch);
    d->have_ch = 0;
    (void)channel_start(d, err, sizeof(err)); /* failing: every lookup fails */
}

static void answered(void *arg, int status, int timeouts, unsigned char *abuf,
                     int alen)
{
    struct question *q = arg;

    (void)timeouts;
    q->done = 1;
    if (abuf && alen > 0 &&
        (status == ARES_SUCCESS || status == ARES_ENODATA ||
         status == ARES_ENOTFOUND)) {
        dmarc_answer_parse(abuf, (size_t)alen, q->name, &q->ans);
        if (q->ans.kind == DMARC_ANS_FAIL)
            snprintf(q->why, sizeof(q->why), "unreadable DNS answer");
        return;
    }
    memset(&q->ans, 0, sizeof(q->ans));
    q->ans.ttl = -1;
    if (status == ARES_ENODATA || status == ARES_ENOTFOUND) {
        q->ans.kind = DMARC_ANS_NONE;
        return;
    }
    q->ans.kind = DMARC_ANS_FAIL;
    snprintf(q->why, sizeof(q->why), "%s",
             status == ARES_ECANCELLED || status == ARES_ETIMEOUT
                 ? "no answer in time"
                 : ares_strerror(status));
}

/* Ask the n questions at once; give up on what is open at the deadline. */
static void ask(struct dmarc *d, struct question *q, size_t n)
{
    int64_t deadline = now_ms() + d->timeout_ms;
    size_t i, open = n;

    for (i = 0; i < n; i++) {
        q[i].done = 0;
        snprintf(q[i].why, sizeof(q[i].why), "no answer in time");
        memset(&q[i].ans, 0, sizeof(q[i].ans));
        q[i].ans.kind = DMARC_ANS_FAIL;
        q[i].ans.ttl = -1;
    }
    channel_refresh(d);
    if (!d->have_ch) {
        for (i = 0; i < n; i++)
            snprintf(q[i].why, sizeof(q[i].why), "resolver not started");
        return;
    }
    for (i = 0; i < n; i++)
        ares_query(d->ch, q[i].name, ns_c_in, ns_t_txt, answered, &q[i]);
    for (;;) {
        ares_socket_t socks[ARES_GETSOCK_MAXNUM];
        struct pollfd pfd[ARES_GETSOCK_MAXNUM];
        struct timeval max, tv, *tvp;
        int64_t left = deadline - now_ms();
        unsigned bits;
        int k, np = 0, ms, rc;

        for (open = 0, i = 0; i < n; i++)
            open += !q[i].done;
        if (open == 0 || left <= 0)
            break;
        /* unsigned: ARES_GETSOCK_WRITABLE() shifts a signed 1 by 31 */
        bits = (unsigned)ares_getsock(d->ch, socks, ARES_GETSOCK_MAXNUM);
        for (k = 0; k < ARES_GETSOCK_MAXNUM; k++) {
            short ev =
                (short)((bits & (1u << k) ? POLLIN : 0) |
                        (bits & (1u << (k + ARES_GETSOCK_MAXNUM)) ? POLLOUT
                                                                  : 0));
            if (!ev)
                continue;
            pfd[np].fd = socks[k];
            pfd[np].events = ev;
            pfd[np++].revents = 0;
        }
        max.tv_sec = (time_t)(left / 1000);
        max.tv_usec = (suseconds_t)(left % 1000) * 1000;
        tvp = ares_timeout(d->ch, &max, &tv);
        ms = (int)(tvp->tv_sec * 1000 + tvp->tv_usec / 1000) + 1;
        rc = poll(pfd, (nfds_t)np, ms);
        if (rc < 0 && errno != EINTR)
            break;
        if (rc <= 0) {
            ares_process_fd(d->ch, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
            continue;
        }
        for (k = 0; k < np; k++) {
            if (!pfd[k].revents)
                continue;
            ares_process_fd(
                d->ch,
                pfd[k].revents & (POLLIN | POLLERR | POLLHUP) ? pfd[k].fd
                                                              : ARES_SOCKET_BAD,
                pfd[k].revents & POLLOUT ? pfd[k].fd : ARES_SOCKET_BAD);
        }
    }
    if (open > 0)
        ares_cancel(d->ch); /* the callbacks run now, with ECANCELLED */
}

/* ------------------------------------------------------------ lookups */

struct dmarc *dmarc_open(int timeout_ms, char *err, size_t errlen)
{
    struct dmarc *d = calloc(1, sizeof(*d));
    int rc;

    if (!d) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    d->timeout_ms = timeout_ms > 0 ? timeout_ms : 3000;
    if ((rc = ares_library_init(ARES_LIB_INIT_ALL)) != ARES_SUCCESS) {
        snprintf(err, errlen, "c-ares: %s", ares_strerror(rc));
        free(d);
        return NULL;
    }
    /* the newest of libpsl's built-in list and the system's */
    d->psl = d->psl_own = psl_latest(NULL);
    if (!d->psl && !(d->psl = psl_builtin())) {
        snprintf(err, errlen,
                 "libpsl: no Public Suffix List (install the "
                 "Debian package publicsuffix)");
        ares_library_cleanup();
        free(d);
        return NULL;
    }
    if (channel_start(d, err, errlen) != 0) {
        dmarc_close(d);
        return NULL;
    }
    return d;
}

void dmarc_close(struct dmarc *d)
{
    if (!d)
        return;
    cache_sweep(d, 0, 1);
    if (d->have_ch)
        ares_destroy(d->ch);
    psl_free(d->psl_own);
    ares_library_cleanup();
    free(d);
}

/* A DNS name we may ask about, lower-cased, without a final dot. */
static int normalise(const char *in, char *out, size_t outlen)
{
    size_t n = strlen(in), i, label = 0;

    if (n && in[n - 1] == '.')
        n--;
    if (n == 0 || n > 253 || n >= outlen)
        return -1;
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)in[i];
        if (c == '.') {
            if (label == 0)
                return -1;
            label = 0;
        } else if (isalnum(c) || c == '-' || c == '_') {
            if (++label > 63)
                return -1;
        } else {
            return -1;
        }
        out[i] = (char)tolower(c);
    }
    out[n] = 0;
    return label == 0 ? -1 : 0;
}

int dmarc_lookup(struct dmarc *d, const char *domain, struct dmarc_policy *out)
{
    char dom[256], names[2][DMARC_NAME_MAX], why[2][128];
    struct question q[2], *asked[2] = {NULL, NULL};
    struct dmarc_answer ans[2];
    const char *org;
    const struct entry *e;
    size_t n = 1, i, nask = 0;
    int64_t now = now_ms() / 1000;

    memset(out, 0, sizeof(*out));
    if (normalise(domain, dom, sizeof(dom)) != 0) {
        out->status = DMARC_BAD_DOMAIN;
        snprintf(out->why, sizeof(out->why), "not a DNS domain name");
        return 0;
    }
    snprintf(names[0], sizeof(names[0]), "_dmarc.%s", dom);
    org = psl_registrable_domain(d->psl, dom);
    if (org && strcmp(org, dom) != 0) {
        snprintf(names[1], sizeof(names[1]), "_dmarc.%s", org);
        n = 2;
    }
    out->cached = 1;
    for (i = 0; i < n; i++) {
        if ((e = cache_get(d, names[i], now)) != NULL) {
            ans[i] = e->ans; /* copied: cache_put() below may free e */
            memcpy(why[i], e->why, sizeof(why[i]));
            if (i == 0 && ans[0].kind == DMARC_ANS_RECORD)
                n = 1; /* the org domain's record is not needed */
            continue;
        }
        q[nask].name = names[i];
        asked[i] = &q[nask++];
    }
    if (nask > 0) {
        out->cached = 0;
        ask(d, q, nask);
        now = now_ms() / 1000;
        for (i = 0; i < n; i++) {
            if (!asked[i])
                continue;
            cache_put(d, asked[i], now);
            ans[i] = asked[i]->ans;
            memcpy(why[i], asked[i]->why, sizeof(why[i]));
        }
    }
    /* RFC 7489 6.6.3: the domain's own record; else the org domain's */
    for (i = 0; i < n; i++) {
        memcpy(out->source, names[i], sizeof(out->source));
        if (ans[i].kind == DMARC_ANS_RECORD) {
            enum dmarc_p p = ans[i].rec.p;
            if (i == 1 && ans[i].rec.sp != DMARC_P_UNSET)
                p = ans[i].rec.sp;
            out->status = DMARC_POLICY;
            out->policy = p == DMARC_P_UNSET ? DMARC_P_NONE : p;
            out->subdomain = i == 1;
            return 0;
        }
        if (ans[i].kind == DMARC_ANS_FAIL) {
            out->status = DMARC_TEMPFAIL;
            snprintf(out->why, sizeof(out->why), "%s", why[i]);
            return 0;
        }
    }
    out->status = DMARC_NO_POLICY;
    return 0;
}
