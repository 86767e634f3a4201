/*
 * dmarc - the DMARC policy of a From: domain, looked up in DNS with a
 * deadline and cached for the records' TTL (RFC 7489 section 6.6.3).
 *
 * dmarc_lookup() asks for the TXT records of "_dmarc.DOMAIN"; when that
 * name has no DMARC record, the organisational domain's (the registrable
 * domain by the Public Suffix List) record is used, with its sp= when it
 * gives one.  Both names are asked at once, so one lookup takes at most
 * the timeout given to dmarc_open() in all, however many servers and
 * retries resolv.conf names.
 *
 * Resolver: c-ares.  The list stage handles one post at a time, so what
 * matters is a hard deadline for the whole lookup and that the two
 * questions run in parallel: c-ares gives both (we drive its sockets with
 * poll() against our own clock and cancel what is still open at the
 * deadline), reads /etc/resolv.conf like the C library, and falls back
 * to TCP for answers too big for UDP.  The C library's res_nquery() is
 * blocking, one question at a time, with a timeout counted in whole
 * seconds per try and server, so its worst case is a multiple of the
 * setting; libunbound is a full recursive resolver whose server-selection
 * memory would mark the site's forwarder down after one dead domain and
 * delay the posts of every other.  The answers are read by dmarcrec.c.
 * Organisational domains: libpsl with the newest of its built-in list and
 * the system's (Debian package publicsuffix), psl_latest().
 *
 * Cache: per name asked, for the answer's TTL (at most a day; a negative
 * answer for its SOA's negative TTL, or 60 s without one).  A failed
 * lookup (timeout, SERVFAIL, garbage) is remembered for 60 s, so a
 * domain whose servers never answer costs the timeout once a minute, not
 * once a post.  At most 10,000 names: expired ones are dropped first,
 * then the whole cache.  /etc/resolv.conf is read again when it changes.
 *
 * Memory: struct dmarc owns everything; dmarc_close() frees it.  Not
 * thread-safe (one per process).
 */
#ifndef MMQ_DMARC_H
#define MMQ_DMARC_H

#include <stddef.h>

#include "dmarcrec.h"

#define DMARC_NAME_MAX 264 /* "_dmarc." + a 253-byte domain + NUL */

struct dmarc;

enum dmarc_status {
    DMARC_NO_POLICY, /* no DMARC record for the domain nor its org domain */
    DMARC_POLICY,    /* policy below */
    DMARC_TEMPFAIL,  /* no answer in time, SERVFAIL, unreadable answer */
    DMARC_BAD_DOMAIN /* not a DNS name (domain literal, 8-bit, too long) */
};

struct dmarc_policy {
    enum dmarc_status status;
    enum dmarc_p policy;         /* DMARC_POLICY: the one that applies */
    char source[DMARC_NAME_MAX]; /* the _dmarc name it came from (or
                                    the one that failed) */
    char why[128];               /* DMARC_TEMPFAIL: what failed */
    int cached;                  /* answered without asking DNS */
    int subdomain;               /* the org domain's sp= (or p=) applied */
};

/*
 * A resolver with a deadline of timeout_ms per lookup.  NULL with a
 * reason in err (c-ares or libpsl could not start).
 */
struct dmarc *dmarc_open(int timeout_ms, char *err, size_t errlen);
void dmarc_close(struct dmarc *d);

/*
 * The policy for From: domain (any case, a final dot allowed) into out.
 * Returns 0; out->status says what was found.  Blocks at most the
 * timeout.
 */
int dmarc_lookup(struct dmarc *d, const char *domain, struct dmarc_policy *out);

#endif
