/*
 * queue-int - what the spool's modules (spool.c, qname.c, qwriter.c,
 * qclaim.c, qrecover.c) share among themselves and nobody else: the
 * writer's state, which queue_rewrite() (qclaim.c) writes through, and
 * a few checks.  Programs include queue.h only.
 */
#ifndef MMQ_QUEUE_INT_H
#define MMQ_QUEUE_INT_H

#include <stddef.h>
#include <stdio.h>
#include <sys/types.h>

#include "digest.h"
#include "queue.h"

#define DIR_MODE (S_ISGID | 0770)
#define FILE_MODE 0640

/* fsync a directory of the spool (relative path); -1 with errno. */
int queue_fsync_dir(int spoolfd, const char *rel);

/* uid may own spool files: us, or spool_user (both as spool_open() found
 * them: looked up once per process). */
int spool_owner_ok(const struct spool *sp, uid_t uid);

/* fd (a directory of the spool, named what) is a directory, not
 * world-writable, and ours; 0, or -1 with err. */
int spool_check_dir(const struct spool *sp, int fd, const char *what, char *err,
                    size_t errlen);

/* File name (in its bucket) of a ready entry, with its origin if any
 * (inline: the callers' buffer sizes are then checked at compile time). */
static inline void qname_ready_fname(const struct qname *qn, char *out,
                                     size_t outlen)
{
    if (qn->origin[0])
        snprintf(out, outlen, "%s@%s", qn->name, qn->origin);
    else
        snprintf(out, outlen, "%s", qn->name);
}

/* An entry being written (qwriter.c). */
struct queue_file {
    struct spool *sp;
    char queue[16];
    char tmpname[QFILE_MAX]; /* relative to the spool: "tmp/..." */
    int fd;
    struct digest md;
    size_t size_off; /* file offset of the envelope's size digits */
    int64_t body;    /* message bytes written */
    int64_t sec;
    int32_t usec;
    size_t blen;
    char err[QUEUE_ERR_MAX];
    char buf[65536];
};

/* Record the error e of step what in qf->err; always -1. */
int qf_fail(struct queue_file *qf, int e, const char *what);
/* Write the buffered bytes out. */
int qf_flush(struct queue_file *qf);
/* Patch the envelope's size and fsync the file. */
int qf_seal(struct queue_file *qf);
/* Close and free (the temporary file is not removed). */
void qf_free(struct queue_file *qf);

#endif
