/*
 * munge - the two DMARC mitigations that still distribute a post:
 * munge_from and wrap_message (see mmq-process(8), DMARC).
 *
 * munge_from() edits a post's header fields in place (struct headers):
 * From: becomes the list's address with the author's name,
 *     From: "Alice Doe via announce" <announce@lists.example.org>
 * the author's From: goes into Reply-To: when the list leaves Reply-To
 * alone (reply_to = "none") and into Cc: when the list sets Reply-To
 * ("list", "address"), next to what those fields already held, and
 * X-Original-From: keeps it for filters.  The name is kept as the
 * author wrote it: a plain one in a quoted-string, RFC 2047 words as
 * they are, raw 8-bit UTF-8 as new RFC 2047 words; without a name (or
 * with one that cannot be carried over safely) it is the address with
 * "@" written " at ", so that no address-like name appears.
 *
 * munge_wrap() builds the wrap_message form: a message from the list
 * (the edited post's From:, To:, Cc:, Reply-To:, Subject:, Date:,
 * Message-ID:, In-Reply-To:, References: and list fields; nothing else)
 * whose body is multipart/mixed: an optional text/plain part
 * (dmarc_wrapped_message_text), then the original post, byte for byte,
 * as a message/rfc822 part.
 *
 * Memory: results go onto caller's bufs; -1 means out of memory (or no
 * From: to munge), with the headers or buf possibly half edited.
 */
#ifndef MMQ_MUNGE_H
#define MMQ_MUNGE_H

#include <stddef.h>

#include "buf.h"
#include "header.h"
#include "listdef.h"

/* The new From: value for a From: value v, for list ld. */
int munge_from_value(const char *v, const struct listdef *ld, struct buf *out);

/* Munge h's From: (call after the list's own Reply-To: is in place). */
int munge_from(struct headers *h, const struct listdef *ld);

/*
 * The wrapped message onto out: edited is the post as it would have been
 * distributed (list fields added, From: munged), orig[0..orig_len) the
 * post as received; seed makes the MIME boundary (a unique name).
 */
int munge_wrap(const struct buf *edited, const char *orig, size_t orig_len,
               const struct listdef *ld, const char *seed, struct buf *out);

#endif
