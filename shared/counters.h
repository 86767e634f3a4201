/*
 * counters - delivery and bounce counters kept in the spool, for
 * monitoring ("mmqctl stats", "mmqctl stats --prometheus").
 *
 * Each node has one file, SPOOL/stats/NODE, of lines "NAME VALUE" with
 * VALUE written as 20 digits, so that an update rewrites the file in
 * place with the same length.  Writers (mmq-deliver's workers, mmq-filter,
 * mmq-bounce)
 * add under an exclusive flock(2) of that file; no fsync: these are
 * monitoring counters, not mail.  A crash may lose the increments of the
 * moment, and a torn file reads as zeros (a counter reset, which
 * Prometheus's rate() handles): never a failure of the caller's real
 * work.  SPOOL/stats is created on first use, mode 2770 like the queues.
 *
 * Errors: -1 with a reason in err; nothing here logs or exits.
 */
#ifndef MMQ_COUNTERS_H
#define MMQ_COUNTERS_H

#include <stddef.h>
#include <stdint.h>

#include "queue.h"

enum counter {
    CNT_SENT,       /* recipients delivered (relay accepted) */
    CNT_DEFERRED,   /* recipient deferrals (a recipient may count often) */
    CNT_BOUNCED,    /* recipients refused permanently by the relay */
    CNT_EXPIRED,    /* recipients returned after max_lifetime */
    CNT_DSN,        /* DSNs (non-delivery notifications) queued */
    CNT_BOUNCES_IN, /* messages taken into bounces/ by mmq-filter */
    /* mmq-bounce (bounce/bounce.h, struct bounce_counts) */
    CNT_B_ENTRIES,      /* bounces/ entries finished */
    CNT_B_FAILED,       /* recipients found failed */
    CNT_B_DELAYED,      /* delayed */
    CNT_B_POLICY,       /* refused by policy */
    CNT_B_NOT_BOUNCE,   /* entries that were auto-replies, receipts */
    CNT_B_UNRECOGNISED, /* entries nobody could be found in */
    CNT_B_NOT_MEMBER,   /* recipients that are not members */
    CNT_B_DISABLED,     /* steps taken: members disabled */
    CNT_B_WARNINGS,     /* warnings sent */
    CNT_B_PROBES,       /* probes sent */
    CNT_B_REMOVED,      /* members removed */
    CNT_N
};

/* "sent", "deferred", ...: the names in the file and in metric labels. */
extern const char *const counter_names[CNT_N];

/* Add delta[] to this node's counters. */
int counters_add(struct spool *sp, const uint64_t delta[CNT_N], char *err,
                 size_t errlen);

/* Call fn for each node's file in SPOOL/stats (none yet: no call). */
int counters_read(struct spool *sp,
                  void (*fn)(void *arg, const char *node,
                             const uint64_t v[CNT_N]),
                  void *arg, char *err, size_t errlen);

#endif
