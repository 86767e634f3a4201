/*
 * dsn - delivery status notifications (RFC 3464, RFC 6522).
 *
 * dsn_build() writes the bounce or delay warning that mmq sends back to the
 * envelope sender of a message it could not deliver: a complete RFC 5322
 * message, CRLF line ends, ready to hand to an SMTP server with the null
 * reverse-path (MAIL FROM:<>) and RCPT TO:<info->to>.  Its body is a
 * multipart/report; report-type=delivery-status with three parts:
 *
 *   1. text/plain        a human-readable explanation: one paragraph per
 *                        recipient with the action, status and the remote
 *                        server's reply;
 *   2. message/delivery-status   the machine-readable report: Reporting-MTA,
 *                        X-MMQ-Queue-ID, X-MMQ-Sender, Arrival-Date, then
 *                        one block per recipient (Final-Recipient, Action,
 *                        Status, Remote-MTA, Diagnostic-Code);
 *   3. text/rfc822-headers   the original message's header section.
 *
 * What it promises, whatever the input (addresses, server replies and the
 * original message are treated as hostile):
 *  - every line ends in CRLF, no bare CR or LF and no NUL anywhere, and no
 *    line is longer than 998 bytes;
 *  - the top-level header and parts 1 and 2 are 7-bit US-ASCII: in copied
 *    text, CR, LF, TAB and other white space become one space, other
 *    control characters are dropped and bytes above 0x7E become '?';
 *    long fields (Diagnostic-Code, Subject) are folded at spaces, and a
 *    word too long for a 998-byte line is split;
 *  - part 3 is the original header section up to its first empty line (or
 *    all of the message if it has none), with LF or CRLF line ends turned
 *    into CRLF, NULs and lone CRs dropped, lines longer than 998 bytes
 *    split into continuation lines, and cut at a line boundary (at a field
 *    boundary when possible) to at most DSN_HEADERS_MAX bytes.  8-bit bytes
 *    are kept; the part and the message are then labelled
 *    Content-Transfer-Encoding: 8bit;
 *  - the MIME boundary is random and checked not to occur anywhere in the
 *    three parts, so no input can end a part early or forge one;
 *  - Message-ID is unique: time, pid, a counter and random bytes.
 *
 * Not done here: SMTP dot-stuffing (a line of part 3 may start with '.';
 * the SMTP client escapes it) and choosing whether to send at all (never
 * for a message that is itself a DSN: its sender is null, which
 * dsn_build() refuses).
 *
 * Lengths: an address is cut to DSN_ADDR_MAX bytes, a server reply to
 * DSN_DIAG_MAX bytes, a host or queue ID to DSN_HOST_MAX bytes (cuts end in
 * "...").  A status that is not a valid enhanced status code of class 4 or
 * 5 ("5.1.1") is ignored and derived instead, see dsn_status().
 *
 * Memory: dsn_build() only reads info and what it points to, and appends
 * to out (a buf owned by the caller).  Nothing is kept between calls except
 * a counter for Message-IDs (so the module is not thread-safe).
 */
#ifndef MMQ_DSN_H
#define MMQ_DSN_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

#define DSN_HEADERS_MAX (64u << 10) /* part 3, bytes */
#define DSN_ADDR_MAX 320            /* RFC 5321: 64 + "@" + 255 */
#define DSN_DIAG_MAX 2048
#define DSN_HOST_MAX 255
#define DSN_STATUS_MAX 12 /* "5.123.456" and its NUL, with room */
#define DSN_DATE_MAX 40   /* "Sat, 22 Nov 2025 21:56:00 +0100" and NUL */

struct dsn_rcpt {
    const char *addr;       /* final recipient, required */
    const char *action;     /* "failed" or "delayed", required */
    const char *status;     /* enhanced status code "5.1.1", or NULL: derived */
    const char *diag;       /* the server's reply, e.g. "550 5.1.1 <x@y>: user
                               unknown", or a local reason; NULL: none */
    const char *remote_mta; /* host that gave diag, e.g. "127.0.0.1"; NULL:
                               none (the failure was local) */
};

struct dsn_info {
    const char *reporting_mta; /* our host name, required: Reporting-MTA,
                                  the Message-ID domain and the default
                                  postmaster's domain */
    const char *postmaster;    /* From: address; NULL: MAILER-DAEMON@host */
    const char *to;       /* the original envelope sender, who gets the DSN;
                             NULL, "" or "<>" (null sender) is refused */
    const char *list;     /* list name, for the Subject and text; NULL: none */
    const char *queue_id; /* the entry's queue ID (X-MMQ-Queue-ID); or NULL */
    int64_t arrival;      /* Arrival-Date, unix time; 0: not reported */
    const struct dsn_rcpt *rcpt; /* at least one */
    size_t nrcpt;
    const char *orig; /* the original message (LF or CRLF line ends, no
                         envelope); only its header section is used */
    size_t orig_len;
};

/*
 * Append a DSN for info to out.  The Subject says "Undelivered Mail
 * Returned to Sender" if any recipient failed, "Delayed Mail (still being
 * retried)" if all are delayed.
 *
 * Returns 0, or -1 with out unchanged (its length restored) and a reason
 * in err (always NUL-terminated when errlen > 0) when info is invalid (no
 * recipient, no reporting_mta, a recipient without an address or with an
 * action other than "failed"/"delayed", a null sender as info->to: a DSN
 * is never sent to the null sender) or memory runs out.
 */
int dsn_build(const struct dsn_info *info, struct buf *out, char *err,
              size_t errlen);

/*
 * The Status to report for a recipient, into out (at least DSN_STATUS_MAX
 * bytes): status itself if it is a valid enhanced code of class 4 or 5;
 * otherwise the enhanced code in diag if diag is an SMTP reply that gives
 * one ("550 5.1.1 ..." -> "5.1.1", only if the classes agree); otherwise
 * "C.0.0" with C the class of diag's reply code (4 or 5), or if diag is no
 * SMTP reply, 4 for action "delayed" and 5 for anything else.  For
 * "delayed" the class is then always 4: a recipient still being retried
 * has a transient failure, whatever the server said.  ("failed" keeps a
 * 4.x.x status: mail that expired after transient failures.)
 */
void dsn_status(const char *action, const char *status, const char *diag,
                char *out);

/*
 * Format unix time t as an RFC 5322 date-time in local time, e.g.
 * "Sat, 22 Nov 2025 21:56:00 +0100", independent of the locale, into out
 * (at least DSN_DATE_MAX bytes).  -1 if t cannot be represented.
 */
int dsn_date(int64_t t, char *out, size_t outlen);

#endif
