/*
 * spool - the spool directory (contract; see queue.h for the layout and
 * the crash rules every module keeps): opening and checking it, creating
 * it, our claim identity, the per-node slice locks, the probe for another
 * node on our slices, and inotify watches on a queue's buckets.
 * Implemented in spool.c.
 */
#ifndef MMQ_SPOOL_H
#define MMQ_SPOOL_H

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
    uid_t euid;               /* ours, read once by spool_open() */
    uid_t user_uid;           /* cfg->spool_user's, when user_known */
    int user_known;           /* spool_user named and found (once) */
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

#endif
