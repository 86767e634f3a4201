/*
 * member - header fields whose value is the member's own, computed when
 * a transaction is built (the delivery path's mechanism for personalised
 * headers: a member's own unsubscribe link, RFC 8058, is the first use
 * foreseen).
 *
 * An entry whose envelope names a field (key member-header, see
 * mmq-spool(5)) is sent one transaction per recipient, and each
 * transaction's message is that field, with a value computed for the
 * member, followed by the message exactly as queued: the field is bytes
 * of the transaction put before the message (smtp_txn.prefix), never a
 * copy of the message per member.
 *
 * The value today is the member's address ("X-Member: bob@example.org"),
 * which is what tests check; another value (a signed URL) is a change of
 * member_headers() alone.
 *
 * Memory: out is the caller's; nothing else is allocated.
 */
#ifndef MMQ_MEMBER_H
#define MMQ_MEMBER_H

#include "buf.h"
#include "envelope.h"

#define MEMBER_FIELD_MAX 76 /* a field name, so that the line stays short */

/* Is name a field name we put on the wire (RFC 5322 ftext, <= 76)? */
int member_field_ok(const char *name);

/*
 * The header lines (CRLF line ends) for member of env's entry, appended
 * to out; nothing when env names no field, or when the name or the value
 * could not be put on the wire safely (a control character: such an
 * address is refused before the session anyway).  -1: out of memory.
 */
int member_headers(const struct envelope *env, const char *member,
                   struct buf *out);

#endif
