/*
 * dmarcrec - read DMARC policy records (RFC 7489 section 6.3) and the DNS
 * answers that carry them.
 *
 * Everything here is pure parsing of hostile bytes: no I/O, no global
 * state, no allocation that outlives a call.  dmarc_answer_parse() takes
 * the raw DNS message of a TXT query for "_dmarc.DOMAIN" exactly as the
 * resolver received it (truncated, compressed, garbage alike) and says
 * what it means for policy discovery; dmarc_record_parse() reads one
 * record's text.
 *
 * Leniency is chosen to err towards mitigation: tag names and values are
 * read case-insensitively and in any order after "v=DMARC1"; an unknown
 * tag is ignored; a record whose p= is missing or invalid counts as
 * p=none (RFC 7489 6.6.3 step 6).  Several v=DMARC1 records at one name
 * (which RFC 7489 says disables DMARC) give the strictest of their
 * policies, as Mailman 3 does: a munged From is better than a post the
 * receivers may reject.
 */
#ifndef MMQ_DMARCREC_H
#define MMQ_DMARCREC_H

#include <stddef.h>
#include <stdint.h>

/* Policies, in order of strictness (0: none given or invalid). */
enum dmarc_p {
    DMARC_P_UNSET = 0,
    DMARC_P_NONE,
    DMARC_P_QUARANTINE,
    DMARC_P_REJECT
};

struct dmarc_record {
    enum dmarc_p p;  /* DMARC_P_UNSET: missing or invalid (acts as none) */
    enum dmarc_p sp; /* DMARC_P_UNSET: not given (p applies) */
    int pct;         /* 0..100; 100 when not given or invalid */
};

/*
 * Parse the text of one TXT record (its strings already concatenated),
 * len bytes, NUL bytes allowed.  Returns 1 and fills r if it is a DMARC
 * record (the first tag is v=DMARC1), 0 if it is not (r is zeroed).
 */
int dmarc_record_parse(const char *txt, size_t len, struct dmarc_record *r);

/* "none", "quarantine", "reject" or "unset". */
const char *dmarc_p_name(enum dmarc_p p);

/* What one "_dmarc.DOMAIN" TXT answer says. */
enum dmarc_answer_kind {
    DMARC_ANS_RECORD, /* at least one DMARC record: rec is the strictest */
    DMARC_ANS_NONE,   /* NXDOMAIN, no data, or no TXT that is DMARC */
    DMARC_ANS_FAIL    /* SERVFAIL, REFUSED, malformed, not our answer */
};

struct dmarc_answer {
    enum dmarc_answer_kind kind;
    struct dmarc_record rec; /* DMARC_ANS_RECORD only */
    unsigned nrecords;       /* v=DMARC1 records seen (more than 1: odd) */
    int64_t ttl;             /* seconds; -1: the answer gave none */
    int rcode;               /* the DNS response code (-1: unparsable) */
};

/*
 * Parse the DNS response msg[0..len) to a TXT query for qname (without a
 * trailing dot, any case).  TXT records are taken at qname or at the end
 * of a CNAME chain that starts there (at most 8 links); records of other
 * names and types are ignored.  ttl is the least TTL of the records used;
 * for a negative answer the SOA's TTL or minimum, whichever is less
 * (RFC 2308), or -1 when the answer has no SOA.  Always returns 0 and
 * fills a (DMARC_ANS_FAIL for anything it cannot read).
 */
int dmarc_answer_parse(const unsigned char *msg, size_t len, const char *qname,
                       struct dmarc_answer *a);

#endif
