/*
 * qinfo - the postmaster's view of the spool: every entry of every queue
 * by (short) ID, and the actions on one entry (hold, release, retry,
 * delete, requeue) made safe against the daemons running at the same time.
 *
 * IDs.  An entry's ID is its name (mmq-spool(5)); a short ID is the
 * shortest prefix of the name that no other entry of the spool shares, and
 * at least QID_MIN characters.  qentries_find() accepts any prefix, and a
 * file name with "@ORIGIN" or "#NODE#PID#START" suffixes.
 *
 * Safety contract of the actions (qact_*): each first claims the entry
 * exactly as a runner does (queue_claim(): rename to a name unique to this
 * process), and only then moves, rewrites (tmp/ + fsync + rename) or
 * removes the claimed file, fsyncing the directories involved.  An entry
 * that is claimed by anyone else, or that vanishes before our claim, is
 * left alone: the action returns QA_BUSY.  So an entry is never both acted
 * on and delivered, and a crash in the middle leaves our claim, which
 * queue_recover() puts back (our pid is then dead).
 *
 * Held time.  In hold/, a file's mtime is the time it was held (qact_hold
 * sets it; an entry held by the list stage keeps the mtime of its last
 * write, at or before the hold).  qact_release() adds the time spent in
 * hold/ to the envelope's "held" key, which moves the start of the
 * lifetime clock (envelope_life_start()): a released entry does not expire
 * for time it spent held.
 *
 * Errors: -1 with a reason in err; nothing here prints or exits.
 */
#ifndef MMQ_QINFO_H
#define MMQ_QINFO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include "envelope.h"
#include "queue.h"

#define QID_MIN 10 /* shortest short ID */

struct qentry {
    char queue[16];
    struct qname qn;
};

struct qentries {
    struct qentry *v; /* sorted by name, then queue */
    size_t n, cap;
};

/*
 * Every entry, ready or claimed, of the queues named in queues (a
 * NULL-terminated list; NULL: all) in the slices of set (NULL: all),
 * sorted by name.  out is replaced.
 */
int qentries_scan(struct spool *sp, const char *const *queues,
                  const struct slice_set *set, struct qentries *out, char *err,
                  size_t errlen);
void qentries_free(struct qentries *l);

/* Length of the short ID of entry i of l (sorted): at least QID_MIN. */
size_t qentries_short_len(const struct qentries *l, size_t i);

/*
 * The entries whose name starts with id (suffixes "@..." and "#..." of id
 * are ignored): *first and *count (0: none) in l.  Entries of one name in
 * several queues (a move caught half way by the scan) count once per file.
 * -1: id is not a possible ID (empty, or characters no name holds).
 */
int qentries_find(const struct qentries *l, const char *id, size_t *first,
                  size_t *count);

/* The file name of e in its bucket ("NAME[@ORIGIN][#NODE#PID#START]") and
 * its path relative to the spool. */
void qentry_fname(const struct qentry *e, char *out, size_t outlen);
void qentry_path(const struct qentry *e, char *out, size_t outlen);

/*
 * Open e as listed (read-only, O_NOFOLLOW) and read its envelope; st
 * receives its status.  0: ok; 1: the file is gone (renamed or removed
 * meanwhile); -1: unreadable, with the reason in err (env left empty).
 * *fd_out (if not NULL) keeps the descriptor open for the caller.
 */
int qentry_read(struct spool *sp, const struct qentry *e, struct envelope *env,
                off_t *body_off, struct stat *st, int *fd_out, char *err,
                size_t errlen);

/* ------------------------------------------------------------- actions */

enum qact_rc {
    QA_OK = 0,
    QA_BUSY = 1,    /* claimed by someone else, or gone: not touched */
    QA_WRONG = 2,   /* not in a queue this action applies to (err says) */
    QA_NOTHING = 3, /* nothing to do (e.g. retry of an entry already due) */
    QA_ERROR = -1   /* failed; the entry is given back when possible */
};

/* in/, bounces/, out/, deferred/ -> hold/BB/NAME@QUEUE; mtime = now. */
int qact_hold(struct spool *sp, const struct qentry *e, char *err,
              size_t errlen);
/*
 * hold/BB/NAME@ORIGIN -> ORIGIN, the time held added to "held", "approved
 * 1" when ORIGIN is in/ (the list stage then skips its poster and size
 * policy), mtime = now (a deferred/ entry is due at once).
 */
int qact_release(struct spool *sp, const struct qentry *e, char *err,
                 size_t errlen);
/* deferred/ -> out/ with next-attempt now (QA_NOTHING for out/). */
int qact_retry(struct spool *sp, const struct qentry *e, char *err,
               size_t errlen);
/* Remove the entry durably, from any queue (and, for a post of in/, what
 * the list stage had staged for it in stage/). */
int qact_delete(struct spool *sp, const struct qentry *e, char *err,
                size_t errlen);
/* bad/BB/NAME@ORIGIN -> ORIGIN with recoveries 0 (readable entries only). */
int qact_requeue(struct spool *sp, const struct qentry *e, char *err,
                 size_t errlen);

/* ------------------------------------------------------------ age shape */

#define QSHAPE_BUCKETS 10 /* 5m 10m 20m 40m 80m 160m 320m 640m 1280m 1280m+ */

/* Bucket of an age in seconds, like Postfix's qshape(1). */
unsigned qshape_bucket(int64_t age);
/* Label of bucket i: "5m" ... "1280m+". */
const char *qshape_label(unsigned i);

#endif
