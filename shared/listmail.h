/*
 * listmail - the list's own mail (replies to commands, confirmation
 * requests, held-post notices, welcome and goodbye messages, and through
 * listmail_enqueue() mmq-bounce's notices and probes), queued into out/
 * for mmq-deliver.  Used by mmq-process (command.c, hold notices), mmqctl
 * (members add/remove --notify) and mmq-bounce (notice.c).
 *
 * What every such message is (RFC 3834): envelope sender LIST-bounces@
 * (so that its bounces go to the bounce stage, never to a person), From:
 * LIST-request@, "Auto-Submitted: auto-replied", "X-Loop:
 * LIST-request@DOMAIN" (the command path refuses mail carrying it), plain
 * US-ASCII text.  The out/ entry is written complete and fsynced, then
 * renamed into place under a name the caller derives from what caused it
 * (listmail_name()), so that a rerun after a crash replaces a message
 * still queued instead of adding a second one.
 *
 * Memory: nothing kept.  Errors: -1 and a reason in err.
 */
#ifndef MMQ_LISTMAIL_H
#define MMQ_LISTMAIL_H

#include <stddef.h>

#include "buf.h"
#include "config.h"
#include "listdef.h"
#include "queue.h"

struct listmail {
    const char *to;          /* the To: field */
    const char *subject;     /* one line, US-ASCII */
    const char *reply_to;    /* Reply-To: address, or NULL */
    const char *in_reply_to; /* a "<message-id>", or NULL */
    const char *text;        /* the body, LF line ends */
};

/*
 * The out/ entry name of message idx caused by cause (an entry name, or
 * any string unique to the cause: mmqctl uses its run): the stamp of
 * stamp_of (an entry name, or NULL for now) and a digest of
 * "cause/what/idx".  out gets QNAME_LEN + 1 bytes.
 */
void listmail_name(const char *stamp_of, const char *cause, const char *what,
                   unsigned idx, char *out);

/*
 * The one path of the list's own mail into out/, also for mmq-bounce's
 * notices and probes (bounce/notice.c): the message msg (complete, CRLF)
 * to rcpt[0..n) with the envelope sender sender (NULL: LIST-bounces@; a
 * probe's VERP address under it), written and fsynced, then published
 * under name, replacing an entry of that name still queued.  0, or -1
 * with err.
 */
int listmail_enqueue(struct spool *sp, const struct listdef *ld,
                     const char *sender, int64_t arrival, char **rcpt, size_t n,
                     const struct buf *msg, const char *name, char *err,
                     size_t errlen);

/* Queue m to rcpt[0..n) as out/ entry name, with the headers above.
 * 0, or -1 with err. */
int listmail_queue(struct spool *sp, const struct listdef *ld, char **rcpt,
                   size_t n, const struct listmail *m, const char *name,
                   char *err, size_t errlen);

/*
 * The text of a list file setting: file (NULL: LISTS_DIR/LIST.SUFFIX;
 * relative: below LISTS_DIR), at most 16 KB of it, appended to out; when
 * it cannot be read, the text builtin instead.  0 the file, 1 the built-in
 * text.
 */
int listmail_text(const struct mmq_config *cfg, const struct listdef *ld,
                  const char *file, const char *suffix, const char *builtin,
                  struct buf *out);

/*
 * Welcome (welcome != 0) or goodbye message to address, if the list's
 * send_welcome_message / send_goodbye_message says so: queued as out/
 * entry listmail_name(stamp_of, cause, "welcome"|"goodbye", idx).
 * 0 queued, 1 not wanted by the list, -1 error.
 */
int listmail_greet(struct spool *sp, const struct mmq_config *cfg,
                   const struct listdef *ld, const char *address, int welcome,
                   const char *stamp_of, const char *cause, unsigned idx,
                   char *err, size_t errlen);

#endif
