/*
 * bparse - recognise a bounce and name the recipients that failed.
 *
 * bounce_parse() reads one whole message (header and body, exactly as
 * received, CRLF or LF line ends) and says what it is:
 *
 *   BOUNCE_NAMED      a delivery report naming at least one recipient:
 *                     report->rcpt[] holds them, in the order found
 *   BOUNCE_ANONYMOUS  a delivery failure or delay that names nobody we can
 *                     trust (a VERP bounce needs no more: the envelope
 *                     names the member); report->action and ->status say
 *                     what it reports
 *   BOUNCE_NOT        not a bounce: a vacation or other auto-reply, a
 *                     challenge-response request, a delivery receipt, a
 *                     DSN whose recipients were all delivered, relayed or
 *                     expanded; report->format says which (e.g. "vacation")
 *   BOUNCE_UNKNOWN    none of the above: kept for the owners
 *
 * The formats are tried in this order and the first that names
 * recipients wins: RFC 3464 message/delivery-status parts (anywhere in the
 * MIME tree, with or without multipart/report), then the non-DSN formats
 * (qmail QSBMF, Exim and Postfix plain text, Exchange/Outlook NDRs, Yahoo,
 * Gmail, the "user unknown" phrases of older MTAs).  report->format names
 * the detector that decided ("dsn", "qmail", "exim", ...).
 *
 * Every recipient gets one action:
 *   BOUNCE_FAILED   permanent failure of the mailbox (5.x.x, Action: failed)
 *   BOUNCE_DELAYED  temporary (4.x.x, Action: delayed, "still trying")
 *   BOUNCE_POLICY   a refusal that says nothing about the mailbox (5.7.x,
 *                   spam or content rejection, DMARC/SPF/DKIM, blocked IP):
 *                   it must never disable a member
 * A detector that is not sure an address is the failed recipient does not
 * name it: a wrong "failed" unsubscribes an innocent member.
 *
 * Input is hostile: bounded MIME depth and part count, bounded work per
 * byte, no recursion without a depth limit, NULs and missing boundaries
 * tolerated.  The message is not modified and need not be NUL-terminated.
 *
 * Memory: the report owns every string in it; bounce_report_free()
 * releases them (and is safe on a zeroed or already freed report).
 * Errors: bounce_parse() returns 0, or -1 with errno ENOMEM (the report is
 * then empty).
 */
#ifndef MMQ_BPARSE_H
#define MMQ_BPARSE_H

#include <stddef.h>

enum bounce_verdict {
    BOUNCE_NAMED,
    BOUNCE_ANONYMOUS,
    BOUNCE_NOT,
    BOUNCE_UNKNOWN
};

enum bounce_action { BOUNCE_FAILED, BOUNCE_DELAYED, BOUNCE_POLICY };

#define BOUNCE_STATUS_MAX 16 /* "5.1.1", or "" when not known */

struct bounce_rcpt {
    char *address;    /* bare address, as it was in the report */
    enum bounce_action action;
    char status[BOUNCE_STATUS_MAX]; /* RFC 3463 code, or "" */
    char *diagnostic; /* the server's words, one line, or NULL */
};

struct bounce_report {
    enum bounce_verdict verdict;
    const char *format; /* static string: the detector that decided */
    /* BOUNCE_ANONYMOUS (and a summary for BOUNCE_NAMED): */
    enum bounce_action action;
    char status[BOUNCE_STATUS_MAX];
    struct bounce_rcpt *rcpt;
    size_t nrcpt;
};

int bounce_parse(const char *msg, size_t len, struct bounce_report *report);
void bounce_report_free(struct bounce_report *report);

/* "failed", "delayed" or "policy". */
const char *bounce_action_name(enum bounce_action action);

/*
 * mmq-bounce -p FILE...: parse each file as one message and print
 * "FILE<TAB>ACTION<TAB>ADDRESS<TAB>STATUS" per recipient found (STATUS "-"
 * when not known); nothing for a message that names nobody.  Returns the
 * exit status: 0, or 66 (EX_NOINPUT) if a FILE could not be read (the
 * others are still parsed).
 */
int bounce_parse_mode(int nfiles, char **files);

#endif
