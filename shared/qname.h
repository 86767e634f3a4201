/*
 * qname - entry names and listing (contract): parsing a bucket's file
 * names (ready, claimed by NODE#PID#START, with an origin queue) and
 * listing a queue's entries by slice, oldest first.  Reads only.
 * Implemented in qname.c.
 */
#ifndef MMQ_QNAME_H
#define MMQ_QNAME_H

#include "spool.h"

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

#endif
