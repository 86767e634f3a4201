/*
 * qrecover - crash recovery (contract): entries left claimed by dead
 * processes (of this node, or of a node whose lease we took) are
 * restored or set aside in bad/; orphaned temporary files are removed.
 * Implemented in qrecover.c.
 */
#ifndef MMQ_QRECOVER_H
#define MMQ_QRECOVER_H

#include "qname.h"

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
                          const struct slice_set *set, struct recover_stats *st,
                          char *err, size_t errlen);
/*
 * Remove temporary files left by dead processes of this node, and any
 * older than max_age seconds (whatever node wrote them).
 */
int spool_clean_tmp(struct spool *sp, int max_age, struct recover_stats *st,
                    char *err, size_t errlen);

#endif
