/*
 * qclaim - claims (contract): an entry is worked on only after claiming
 * it by rename to a name unique to this node and process; then it is
 * read (its journal applied), finished, given back, moved or rewritten,
 * each durably.  Implemented in qclaim.c.
 */
#ifndef MMQ_QCLAIM_H
#define MMQ_QCLAIM_H

#include "qname.h"
#include "qwriter.h"

struct claim {
    struct spool *sp;
    char queue[16];
    struct qname qn;
    char path[QFILE_MAX + 24]; /* the claimed file, relative to the spool */
    int fd;                    /* open O_RDONLY|O_NOFOLLOW, or -1 */
    int journal;               /* queue_claim_read(): a journal exists */
    size_t settled;            /* ... and dropped this many recipients */
};

/*
 * Claim the ready entry NAME (or NAME@ORIGIN) of queue.  0: claimed and
 * opened; 1: it is gone (another process claimed or removed it); -1 error.
 */
int queue_claim(struct spool *sp, const char *queue, const char *fname,
                struct claim *c, char *err, size_t errlen);
/* Read the claimed entry's envelope; *body_off is where the message starts.
 * The recipients its journal (journal.h) records as settled are dropped
 * from env (entries of out/, deferred/, hold/, bad/). */
int queue_claim_read(struct claim *c, struct envelope *env, off_t *body_off,
                     char *err, size_t errlen);
/* The entry is finished: remove it durably (unlink + fsync of the bucket),
 * and its journal. */
int queue_done(struct claim *c, char *err, size_t errlen);
/*
 * The same without the fsync: the caller syncs the bucket later (with
 * spool_sync_dir()), once for many entries.  Until then a power loss (not
 * a crash: the unlink is visible at once) may bring the entry back, and it
 * would be delivered again.  *bucket (64 bytes) receives "QUEUE/BB".
 */
int queue_remove(struct claim *c, char *bucket, char *err, size_t errlen);
/* Give the entry back unchanged, under its ready name. */
int queue_unclaim(struct claim *c, char *err, size_t errlen);
/*
 * Move the entry to another queue under its ready name; into bad/ and
 * hold/ it takes the suffix "@QUEUE" naming where it came from, and out of
 * them it loses it.  fsyncs both buckets.
 */
int queue_move(struct claim *c, const char *to_queue, char *err, size_t errlen);
/*
 * Replace the claimed entry by one with envelope env and the same message:
 * written to tmp/, fsync()ed and renamed over the claimed name, so a crash
 * leaves either the old or the new entry, never a mix.  env must come
 * from queue_claim_read() (its journal applied): the journal is removed
 * after the rename, being folded into the new entry.
 */
int queue_rewrite(struct claim *c, const struct envelope *env, char *err,
                  size_t errlen);
/* Set the claimed file's mtime: in deferred/ it is the next attempt time,
 * so that a scan needs no more than a stat per entry (as Postfix does). */
int queue_touch(struct claim *c, int64_t when, char *err, size_t errlen);
/*
 * Take over an entry claimed by another process (qn as listed, kind
 * QN_CLAIMED): used for recovery and by an agent salvaging a worker that
 * died.  Same return values as queue_claim().
 */
int queue_claim_takeover(struct spool *sp, const char *queue,
                         const struct qname *qn, struct claim *c, char *err,
                         size_t errlen);
/* Close the claim's descriptor; the entry stays as it is on disk. */
void queue_claim_close(struct claim *c);

#endif
