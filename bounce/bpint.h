/*
 * bpint - what the bounce detectors (bparse.c, dsnparse.c, textbounce.c)
 * share: the recipient list they fill, the address and status scanners
 * and the one rule that turns a status and the server's words into an
 * action.  Internal to bounce/; the public interface is bparse.h.
 *
 * Every function takes explicit lengths and reads no byte outside them;
 * none allocates except bp_add() (which fails with -1, errno ENOMEM).
 */
#ifndef MMQ_BOUNCE_BPINT_H
#define MMQ_BOUNCE_BPINT_H

#include <stddef.h>

#include "bparse.h"

#define BP_MAX_RCPT 1000         /* recipients kept per report */
#define BP_ADDR_MAX 256          /* longest address accepted (RFC 5321: 254) */
#define BP_DIAG_MAX 400          /* diagnostic kept per recipient */
#define BP_TEXT_MAX (256 * 1024) /* text a detector reads per part */
#define BP_REASON_MAX 2048 /* text read for one recipient's outcome */
#define BP_MARKER_MAX (16 * 1024) /* where a format's sentence is sought */

/* What a report says about its recipients before the status is read. */
enum bp_hint { BP_HINT_NONE, BP_HINT_FAILED, BP_HINT_DELAYED };

/* The bounce's own header addresses: never named as failed recipients. */
struct bp_self {
    char addr[4][BP_ADDR_MAX];
    int n;
};

/*
 * Append a recipient (the address is checked with bp_address_ok() and
 * skipped when bad, excluded by self, or already in the report).
 * Returns 1 added, 0 skipped, -1 ENOMEM.
 */
int bp_add(struct bounce_report *r, const struct bp_self *self,
           const char *addr, enum bounce_action action, const char *status,
           const char *diag, size_t diaglen);

/* A plausible bare address: local@domain.tld, no blanks or controls. */
int bp_address_ok(const char *addr);

/*
 * Take one address out of text: the inside of <...> when there is one,
 * else the first word holding '@'; strips an "rfc822;" type, quotes and
 * trailing punctuation.  Returns 1 with out set to a bp_address_ok()
 * address, else 0.
 */
int bp_address_take(const char *p, size_t n, char *out, size_t outlen);

/* The first RFC 3463 code (class 2, 4 or 5) in text: 1 or 0. */
int bp_status_find(const char *p, size_t n, char out[BOUNCE_STATUS_MAX]);

/* The class (4 or 5) of the first SMTP reply code in text, or 0. */
int bp_smtp_class(const char *p, size_t n);

/* Does the text name a policy refusal (spam, DMARC, block list, ...)? */
int bp_policy_text(const char *p, size_t n);

/*
 * The action for a recipient: *action set and 1 returned, or 0 when the
 * status says delivered or nothing says failure or delay.
 */
int bp_classify(enum bp_hint hint, const char *status, const char *text,
                size_t n, enum bounce_action *action);

/* Case-insensitive search for needle in the n bytes at p. */
const char *bp_find(const char *p, size_t n, const char *needle);

/* The next line of [*p, end): sets line and its length without the line
 * break, advances *p; 0 at the end. */
int bp_line(const char **p, const char *end, const char **line, size_t *len);

/* Defined in dsnparse.c: parse one message/delivery-status body.  Sets
 * *seen to the number of per-recipient blocks, *unnamed to those that
 * reported a failure or delay but named no usable address.  -1 ENOMEM. */
int bp_dsn_parse(const char *text, size_t n, const struct bp_self *self,
                 struct bounce_report *r, int *seen, int *unnamed,
                 enum bounce_action *unnamed_action, char *unnamed_status);

/* Defined in textbounce.c: the non-DSN detectors over a bounce's text.
 * bouncy: the header looks like a bounce (mailer-daemon, subject, ...).
 * Returns 1 when a detector recognised the text (*format set; it may
 * still have named nobody), 0 when none did, -1 ENOMEM. */
int bp_text_scan(const char *text, size_t n, int bouncy,
                 const struct bp_self *self, struct bounce_report *r,
                 const char **format);

/* Where a bounce's text stops and the returned message starts. */
size_t bp_text_cut(const char *text, size_t n);

#endif
