/*
 * dedup - the whole-list duplicate: one post queued twice.
 *
 * mmq-filter exits 0 only after its entry is durable; if it is killed
 * after the rename but before its exit (or the MTA loses its answer), the
 * MTA sees a failure and delivers the same message again: two in/ entries
 * of one post, which would reach every member twice.  The list stage
 * therefore marks each post it accepts, before expanding it, by a file
 *
 *     dup/HH/DIGEST      DIGEST = SHA-1 of list, Message-ID and body digest
 *
 * holding the name of the in/ entry that made it.  A later post of the
 * same list with the same Message-ID and body, within duplicate_window
 * seconds of the mark (its mtime), is a duplicate; the entry named in the
 * mark itself is not (a rerun after a crash finds its own mark).
 *
 * Cluster-safe with the spool's own primitives: a mark is written
 * complete and fsync()ed in tmp/, then link(2)ed to its name, which fails
 * with EEXIST if any node made it first (link is atomic on GlusterFS, as
 * renames to one shared target are not); the bucket is fsync()ed before
 * the post is expanded, so a crash never loses a mark of a post that was
 * delivered.  An expired mark is first renamed to a name of ours (only
 * one remover can succeed), so two nodes never both replace it.
 *
 * Errors: -1 with a reason in err; nothing here exits.
 */
#ifndef MMQ_DEDUP_H
#define MMQ_DEDUP_H

#include <stddef.h>

#include "queue.h"

/*
 * Check and mark the post entry (an in/ entry name) of list with this
 * Message-ID and body.  0: new (or the entry's own mark), marked durably;
 * 1: a duplicate of the entry named in first (QNAME_LEN + 1 bytes);
 * -1: error (err).  window <= 0 or an empty msgid: always 0, no mark.
 */
int dedup_check(struct spool *sp, int window, const char *list,
                const char *msgid, const void *body, size_t blen,
                const char *entry, char *first, char *err, size_t errlen);

/* Remove the marks older than window seconds; returns how many. */
unsigned dedup_expire(struct spool *sp, int window);

#endif
