/*
 * queue - the mmq spool: durable enqueue, listing by slice, claim,
 * finish, move, rewrite and crash recovery.  mmq-spool(5) describes the
 * layout on disk; this header is the contract for programs.  Its sections
 * are implemented one module each: spool.c (spool), qname.c (names,
 * listing), qwriter.c (writer), qclaim.c (claims), qrecover.c (recovery);
 * queue-int.h is what those share and programs never include.
 *
 * Layout (all paths relative to the spool directory):
 *
 *     tmp/                       files being written, never read as entries
 *     in/ bounces/ out/ deferred/ hold/ bad/   the queues
 *     QUEUE/BB/NAME              a ready entry; BB = first 2 digest digits
 *     QUEUE/BB/NAME#NODE#PID#ST  the same entry claimed by a process
 *     bad/BB/NAME@QUEUE          an entry moved aside, and where from
 *     hold/BB/NAME@QUEUE         an entry held, and where from
 *
 * NAME is "SSSSSSSSSS.UUUUUU+" and 40 hex digits: arrival time (seconds,
 * microseconds) and a SHA-1 digest of the message, the envelope, the node,
 * the process, a counter and random bytes.  Names sort in arrival order.
 *
 * The crash rules every program relies on:
 *  - An entry appears under a final name only by rename(2) of a complete,
 *    fsync()ed file from tmp/, followed by fsync() of the bucket directory.
 *    A reader never sees a partial entry.
 *  - A process works on an entry only after claiming it: renaming it to a
 *    name that carries its node, pid and start time.  Of two processes
 *    claiming the same entry exactly one rename succeeds, because the
 *    targets differ (see ../shared/gluster notes: renames to a shared
 *    target name can both "succeed" on a distributed filesystem).
 *  - A claimed entry whose process is dead (same node, pid gone or reused)
 *    is restored by queue_recover() with its recovery count raised; past
 *    max_recoveries it goes to bad/ instead of crashing the runner again.
 *  - Temporary files of dead processes, or older than tmp_max_age, are
 *    removed by spool_clean_tmp().
 *  - Entries are opened with O_NOFOLLOW; the spool and its directories
 *    must not be world-writable and must belong to us (spool_open()).
 *
 * Errors: functions return -1 with errno set and a reason in err (when
 * given); err is always NUL-terminated.  Nothing here calls exit().
 */
#ifndef MMQ_QUEUE_H
#define MMQ_QUEUE_H

#include <limits.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "config.h"
#include "envelope.h"
#include "slice.h"

#define QNAME_LEN 58  /* "SSSSSSSSSS.UUUUUU+" + 40 hex */
#define QFILE_MAX 200 /* longest file name we create or accept */
#define QUEUE_ERR_MAX 512

/* The queues, in the order spool_init() creates them. */
extern const char *const queue_names[];
int queue_valid(const char *queue);

struct spool {
    int fd; /* the spool directory */
    char *path;
    const struct mmq_config *cfg; /* borrowed; must outlive the spool */
    char token[128];              /* "#NODE#PID#START": our claim suffix */
    pid_t pid;
    unsigned long long start; /* our process start time */
};

/*
 * Open the spool named in cfg and check it: every queue directory exists,
 * none is a symlink or world-writable, and all belong to the effective
 * user or to cfg->spool_user.  Returns 0, or -1 (errno ENOENT when the
 * spool or a queue is missing, EPERM when its ownership or mode is unsafe).
 */
int spool_open(struct spool *sp, const struct mmq_config *cfg, char *err,
               size_t errlen);
void spool_close(struct spool *sp);
/* After fork(): take the child's pid and start time as our identity, so
 * that its claims name the child, not the parent. */
int spool_set_identity(struct spool *sp);

/*
 * Lock slice i of stage (e.g. "deliver") for this node: lock/STAGE.NODE.I
 * with flock(2), held until *fd is closed or the process ends.  0: ours;
 * 1: another process of this node holds it; -1: error.  The lock file name
 * carries the node, so nodes sharing the spool never contend for it.
 */
int spool_lock_slice(struct spool *sp, const char *stage, unsigned i, int *fd,
                     char *err, size_t errlen);
/* Lock every slice of set: 0, or -1 with err (naming the slice that
 * another process of this node holds).  The locks are kept open and held
 * for the life of the process (and of its children). */
int spool_lock_slices(struct spool *sp, const char *stage,
                      const struct slice_set *set, char *err, size_t errlen);
/*
 * Without a nodes list nothing keeps two nodes off the same slices: the
 * slices of set whose lock/STAGE.NODE.I of another node is held right now
 * (probed with flock(LOCK_SH | LOCK_NB), released at once; flock works
 * across the clients of a shared file system) go into *overlap (n
 * slices, allocated here), and the other nodes' names into others
 * (comma-separated).  Returns how many slices, or -1.  The probe can make
 * an agent of that node starting at that very instant find its slice
 * busy and exit 75 (its supervisor starts it again).
 */
int spool_slice_overlap(struct spool *sp, const char *stage,
                        const struct slice_set *set, struct slice_set *overlap,
                        char *others, size_t olen);
/* For a runner without a nodes list, every minute: log an error when
 * another node's runner holds any of our slices (spool_slice_overlap()),
 * when that changes, and every hour while it lasts.  *next and *last
 * (start at 0) are the caller's state. */
void spool_watch_overlap(struct spool *sp, const char *stage,
                         const struct slice_set *set, time_t *next, int *last);
/* An inotify descriptor (non-blocking) watching for entries moved into
 * the buckets of queue that overlap set; -1 if inotify is unavailable. */
int queue_watch(struct spool *sp, const char *queue,
                const struct slice_set *set);
/*
 * Create (or complete) a spool at path: directories with mode 2770 (setgid,
 * so files inherit the spool group), owned by uid:gid when those are not
 * -1.  Existing directories are chmod/chown'ed to the same.  Idempotent.
 */
int spool_init(const char *path, uid_t uid, gid_t gid, char *err,
               size_t errlen);

/* ---------------------------------------------------------------- names */

enum qname_kind { QN_READY, QN_CLAIMED };

struct qname {
    char name[QNAME_LEN + 1]; /* the entry name without any suffix */
    char hash[41];
    uint64_t key; /* slice key (first 64 bits of hash) */
    int64_t sec;
    int32_t usec;
    char origin[16]; /* "@QUEUE" suffix (bad/, hold/), or "" */
    enum qname_kind kind;
    char node[64];            /* claimed: the claiming node */
    pid_t pid;                /* claimed: its pid */
    unsigned long long start; /* claimed: its start time */
};

/* Parse a file name of a queue bucket.  0 ok, -1 not an entry name. */
int qname_parse(const char *fname, struct qname *qn);
/* Bucket directory of an entry: "QUEUE/BB". */
void qname_bucket(const char *queue, const char *name, char *out,
                  size_t outlen);

/* --------------------------------------------------------------- writer */

struct queue_file;

/* Start a new entry for queue: a fresh file in tmp/.  NULL on error. */
struct queue_file *queue_file_create(struct spool *sp, const char *queue,
                                     char *err, size_t errlen);
/* Write the envelope (its size field is filled in at commit). */
int queue_file_begin(struct queue_file *qf, const struct envelope *env);
/* Append message bytes. */
int queue_file_write(struct queue_file *qf, const void *data, size_t len);
/* Bytes of message written so far. */
int64_t queue_file_size(const struct queue_file *qf);
/*
 * Make the entry durable and visible: patch the size, fsync the file,
 * rename it into QUEUE/BB/NAME, fsync the bucket.  name_out receives NAME
 * (QNAME_LEN + 1 bytes).  The writer is freed either way; on failure the
 * temporary file is removed and the reason is in err.
 */
int queue_file_commit(struct queue_file *qf, char *name_out, char *err,
                      size_t errlen);
/* As queue_file_commit() but with a name chosen by the caller (a valid
 * entry name): used where a rerun must find what an earlier run made. */
int queue_file_commit_as(struct queue_file *qf, const char *name, char *err,
                         size_t errlen);
/*
 * Two-phase publication, for a writer of many entries that must appear
 * all or none (the list stage).  queue_file_stage() makes the entry
 * complete and durable as stage/STAGED, invisible to every runner (call
 * spool_sync_dir(sp, "stage") once after the last one); STAGED is
 * "OWNER.N": the name of the entry that produces them and an index.
 * queue_publish_staged() then renames stage/STAGED into QUEUE/BB/NAME
 * (returns 1 if it is no longer staged: published before a crash).  The
 * caller fsyncs the buckets it published into with spool_sync_dir().
 * spool_unstage() removes every stage/OWNER.* left over (a rerun that
 * staged fewer entries, or a post held after a crash).
 */
int queue_file_stage(struct queue_file *qf, const char *staged, char *err,
                     size_t errlen);
int queue_publish_staged(struct spool *sp, const char *staged,
                         const char *queue, const char *name, char *err,
                         size_t errlen);
int spool_unstage(struct spool *sp, const char *owner, char *err,
                  size_t errlen);
int spool_sync_dir(struct spool *sp, const char *rel, char *err, size_t errlen);
/* Remove the temporary file and free the writer. */
void queue_file_abort(struct queue_file *qf);
/* Async-signal-safe: only unlink the temporary file. */
void queue_file_unlink_signal_safe(const struct queue_file *qf);
const char *queue_file_error(const struct queue_file *qf);

/* ------------------------------------------------------------- listing */

struct qlist {
    struct qname *v;
    size_t n, cap;
};

#define QL_READY 1   /* entries not claimed */
#define QL_CLAIMED 2 /* entries claimed by anyone */

/*
 * List the entries of queue in the slices of set (NULL: all), sorted by
 * name (arrival order).  Reads only the buckets that overlap the set.
 * With max > 0 only the max oldest entries are kept, and memory stays
 * bounded by 2 * max names however long the queue is.  out is replaced.
 */
int queue_list(struct spool *sp, const char *queue, const struct slice_set *set,
               int flags, size_t max, struct qlist *out, char *err,
               size_t errlen);
void qlist_free(struct qlist *l);

/* --------------------------------------------------------------- claims */

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

/* ------------------------------------------------------------- recovery */

struct recover_stats {
    unsigned restored;    /* claimed by a dead process, put back */
    unsigned to_bad;      /* recovered too often or unreadable: to bad/ */
    unsigned tmp_removed; /* orphaned temporary files removed */
};

/*
 * Restore the entries of queue (slices of set, NULL: all) that a dead
 * process of this node left claimed.  Each is logged with its ID.
 */
int queue_recover(struct spool *sp, const char *queue,
                  const struct slice_set *set, struct recover_stats *st,
                  char *err, size_t errlen);
/*
 * Restore the entries of queue in set that other nodes left claimed.
 * Only for slices whose lease we have just taken (lease.h): the lease
 * says their holder has stopped, which nothing else could tell us.
 */
int queue_recover_foreign(struct spool *sp, const char *queue,
                          const struct slice_set *set,
                          struct recover_stats *st, char *err, size_t errlen);
/*
 * Remove temporary files left by dead processes of this node, and any
 * older than max_age seconds (whatever node wrote them).
 */
int spool_clean_tmp(struct spool *sp, int max_age, struct recover_stats *st,
                    char *err, size_t errlen);

#endif
