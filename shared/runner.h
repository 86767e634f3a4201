/*
 * runner - the skeleton of a queue runner daemon (Mailman's "runner"):
 * what mmq-process (in/) and mmq-bounce (bounces/) share, so that both
 * keep the same crash, cluster and signal rules.
 *
 *  - runner_start(): in a cluster (nodes in mmq.conf) -s selects among the
 *    node's own and standby slices; our own slices are locked
 *    (lock/STAGE.NODE.I) and what a dead runner of this node left claimed
 *    is restored, temporary files of dead processes removed; then the
 *    leases are joined.  An inotify watch on the queue's buckets is set.
 *  - runner_scan(): the ready entries of the slices we may work on now,
 *    oldest first, each handed to the caller's function; leases are
 *    renewed during a long scan (a slice lost or handed back meanwhile is
 *    skipped); an entry the function gives back is left alone for
 *    RUNNER_RETRY_AFTER seconds.  Without a nodes list, other nodes' runners
 *    on our slices are looked for every minute (spool_watch_overlap()).
 *  - runner_wait(): until inotify, the next scan (scan_interval), a signal,
 *    or a slice taken over; at most a second per poll(), so that a SIGTERM
 *    that arrives just before poll() is seen promptly.
 *  - A lease round that finds another host running agents under our node
 *    name ends the program (EX_CONFIG), as lease.h requires.
 *
 * Errors: what cannot go on (locks held by another runner, recovery
 * failing, out of memory) is log_fatal() with EX_TEMPFAIL, EX_CONFIG or
 * EX_OSERR, as a daemon's start must; the rest is logged and retried at the
 * next scan.  Memory: runner_stop() frees what runner_start() took.
 */
#ifndef MMQ_RUNNER_H
#define MMQ_RUNNER_H

#include <signal.h>
#include <stddef.h>
#include <time.h>

#include "config.h"
#include "lease.h"
#include "queue.h"
#include "slice.h"

#define RUNNER_RETRY_AFTER 30 /* seconds an entry given back is left alone */
#define RUNNER_RETRY_MAX 4096 /* entries remembered so (then: next scan) */

struct runner_later {
    char name[QNAME_LEN + 1];
    time_t until;
};

struct runner {
    struct spool *sp;
    const struct mmq_config *cfg;
    const char *stage; /* "process", "bounce": lock and lease names */
    const char *queue; /* "in", "bounces" */
    const char *also;  /* a queue this stage claims in too ("hold"), or NULL */
    struct slice_set set; /* every slice we may ever serve */
    struct lease_set lease;
    int cluster;
    int ifd; /* inotify, or -1 (then scans only) */
    time_t next_overlap;
    int overlapping;
    struct runner_later *later; /* RUNNER_RETRY_MAX */
    size_t nlater;
};

/* set (the -s slices, parsed; taken over by r) and the rest as above.
 * also: another queue whose entries this stage claims (mmq-process: the
 * held posts an owner's reply decides), recovered with queue; or NULL.
 * sp and cfg are borrowed and must outlive the runner. */
void runner_start(struct runner *r, struct spool *sp,
                  const struct mmq_config *cfg, const char *stage,
                  const char *queue, const char *also, struct slice_set *set);

/*
 * One scan: fn(arg, NAME) for each ready entry (at most 1000 and those
 * waiting) while *stop is 0; fn returns non-zero when it gave the entry
 * back for a later try.  Returns the number of entries handed to fn
 * (entries left alone are not counted).
 */
size_t runner_scan(struct runner *r, int (*fn)(void *arg, const char *name),
                   void *arg, volatile sig_atomic_t *stop);

/* Wait as above; *stop or *hup (when not NULL) end the wait. */
void runner_wait(struct runner *r, volatile sig_atomic_t *stop,
                 volatile sig_atomic_t *hup);

void runner_stop(struct runner *r);

#endif
