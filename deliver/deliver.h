/*
 * deliver.h - the parts of mmq-deliver: the master (mmq-deliver.c) scans
 * its slices and forks one worker per SMTP session; the worker
 * (worker.c) claims a batch of entries, sends them over one session and
 * records the outcome of every transaction durably as soon as the server
 * has answered it; the master salvages what a dead worker left claimed
 * (salvage.c lives in worker.c too: same records).
 */
#ifndef MMQ_DELIVER_H
#define MMQ_DELIVER_H

#include <signal.h>
#include <stddef.h>
#include <sys/types.h>

#include "config.h"
#include "queue.h"

/* Set by the worker's SIGTERM handler: stop after the transaction. */
extern volatile sig_atomic_t worker_stop;

/* In a cluster, the master's leases (NULL otherwise): the worker starts
 * no entry, and no transaction after the first, of a slice whose lease
 * is no longer valid; it gives such entries back and ends the session. */
struct lease_set;
extern const struct lease_set *worker_lease;

/*
 * Deliver the entries named in names[0..n) (ready entries of out/) over
 * one SMTP session.  Runs in a forked child; returns the exit status.
 */
int worker_run(struct spool *sp, const struct mmq_config *cfg,
               char (*names)[QFILE_MAX], size_t n);

/*
 * An entry claimed by a worker that died (pid/start in qn): defer it with
 * backoff, counting an attempt, so that a crash never loses it and never
 * turns into a tight crash loop on one entry.
 */
void worker_salvage(struct spool *sp, const struct mmq_config *cfg,
                    const struct qname *qn, const char *why);

#endif
