/*
 * qclaim - claims: taking a ready entry by renaming it to a name unique to
 * this node and process (never to a shared name: two renames to one name
 * can both succeed on GlusterFS), reading it (with its journal applied),
 * and finishing, giving back, moving or rewriting it durably.  Contract in
 * queue.h (section "claims").
 *
 * Entries that mmq did not write (not regular, world-writable, owned by a
 * stranger) are refused at the claim and moved aside to bad/ as they are.
 */
#include "autoconf.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/inotify.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "digest.h"
#include "journal.h"
#include "log.h"
#include "proc.h"
#include "queue-int.h"
#include "queue.h"

/* --------------------------------------------------------------- claims */

static void claim_path(char *out, size_t outlen, const char *queue,
                       const struct qname *qn, const char *token)
{
    char fname[QFILE_MAX];

    qname_ready_fname(qn, fname, sizeof(fname));
    snprintf(out, outlen, "%s/%.2s/%s%s", queue, qn->hash, fname, token);
}

/*
 * An entry must be a regular file that only we (or root, or spool_user)
 * could have written: anything else in a bucket (a symlink, a FIFO, a
 * device, a directory, a file of another user or world-writable) was not
 * made by mmq and is never read, followed or retried.  1 (with why) if
 * fd is such a thing.
 */
static int entry_unsafe(const struct spool *sp, int fd, char *why, size_t len)
{
    struct stat st;

    if (fstat(fd, &st) != 0)
        snprintf(why, len, "fstat: %s", strerror(errno));
    else if (!S_ISREG(st.st_mode))
        snprintf(why, len, "not a regular file (mode %06o)",
                 (unsigned)st.st_mode);
    else if (st.st_mode & S_IWOTH)
        snprintf(why, len, "world-writable (mode %04o)",
                 (unsigned)(st.st_mode & 07777));
    else if (st.st_uid != 0 && !spool_owner_ok(sp, st.st_uid))
        snprintf(why, len, "owned by uid %ld, not by the spool's user",
                 (long)st.st_uid);
    else
        return 0;
    return 1;
}

static int rename_durably(struct spool *sp, const char *from,
                          const char *from_bucket, const char *to,
                          const char *to_bucket, char *err, size_t errlen);

/*
 * The claimed c->path is not an entry we may use (why): move it aside to
 * bad/ as it is (a rename moves the name and never follows a link), so
 * that no loop claims it again; a refused entry of bad/ itself goes back
 * where it was.  Always -1, with the outcome in err, which the caller
 * logs once.
 */
static int claim_refuse(struct claim *c, const char *rel, const char *why,
                        char *err, size_t errlen)
{
    char from_b[64], to_b[64], dst[QFILE_MAX + 64], e2[QUEUE_ERR_MAX];
    struct qname qn = c->qn;

    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    if (strcmp(c->queue, "bad") == 0) {
        renameat(c->sp->fd, c->path, c->sp->fd, rel);
        return err_set(err, errlen, EPERM, "%s: %s: left in bad/", rel, why);
    }
    if (!qn.origin[0])
        snprintf(qn.origin, sizeof(qn.origin), "%s", c->queue);
    qname_bucket(c->queue, qn.name, from_b, sizeof(from_b));
    qname_bucket("bad", qn.name, to_b, sizeof(to_b));
    claim_path(dst, sizeof(dst), "bad", &qn, "");
    if (rename_durably(c->sp, c->path, from_b, dst, to_b, e2, sizeof(e2)) != 0)
        return err_set(err, errlen, EPERM,
                       "%s: %s, and it cannot be moved to bad/ (it stays "
                       "claimed by us): %s",
                       rel, why, e2);
    return err_set(err, errlen, EPERM, "%s: %s: moved to %s", rel, why, dst);
}

/* Take over the file at rel (a ready or claimed entry) as our claim. */
static int claim_from(struct spool *sp, const char *queue, const char *rel,
                      const struct qname *qn, struct claim *c, char *err,
                      size_t errlen)
{
    memset(c, 0, sizeof(*c));
    c->sp = sp;
    c->fd = -1;
    snprintf(c->queue, sizeof(c->queue), "%s", queue);
    c->qn = *qn;
    c->qn.kind = QN_CLAIMED;
    snprintf(c->qn.node, sizeof(c->qn.node), "%s", sp->cfg->node);
    c->qn.pid = sp->pid;
    c->qn.start = sp->start;
    claim_path(c->path, sizeof(c->path), queue, qn, sp->token);
    /* Our target name is unique to this process: of several claimers
     * exactly one rename succeeds, the others get ENOENT. */
    if (renameat(sp->fd, rel, sp->fd, c->path) != 0) {
        if (errno == ENOENT)
            return 1;
        return err_set(err, errlen, errno, "claim %s: %s", rel,
                       strerror(errno));
    }
    /* O_NONBLOCK: a FIFO planted in a bucket must not block us here. */
    c->fd =
        openat(sp->fd, c->path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (c->fd < 0) {
        int e = errno;
        if (e == ELOOP || e == EACCES || e == EPERM || e == ENXIO ||
            e == ENODEV || e == EISDIR)
            return claim_refuse(c, rel,
                                e == ELOOP ? "a symbolic link" : strerror(e),
                                err, errlen);
        /* Out of descriptors or memory, an I/O error: may work later. */
        renameat(sp->fd, c->path, sp->fd, rel);
        return err_set(err, errlen, e, "open %s: %s", c->path, strerror(e));
    }
    {
        char why[64];
        if (entry_unsafe(sp, c->fd, why, sizeof(why)))
            return claim_refuse(c, rel, why, err, errlen);
    }
    return 0;
}

int queue_claim(struct spool *sp, const char *queue, const char *fname,
                struct claim *c, char *err, size_t errlen)
{
    struct qname qn;
    char rel[QFILE_MAX + 32];

    if (!queue_valid(queue))
        return err_set(err, errlen, EINVAL, "unknown queue \"%s\"", queue);
    if (qname_parse(fname, &qn) != 0 || qn.kind != QN_READY)
        return err_set(err, errlen, EINVAL, "not a ready entry name: %s",
                       fname);
    snprintf(rel, sizeof(rel), "%s/%.2s/%s", queue, qn.hash, fname);
    return claim_from(sp, queue, rel, &qn, c, err, errlen);
}

int queue_claim_takeover(struct spool *sp, const char *queue,
                         const struct qname *qn, struct claim *c, char *err,
                         size_t errlen)
{
    char rel[QFILE_MAX + 64], token[160];

    if (qn->kind != QN_CLAIMED)
        return err_set(err, errlen, EINVAL, "%s: not a claimed entry",
                       qn->name);
    snprintf(token, sizeof(token), "#%s#%ld#%llu", qn->node, (long)qn->pid,
             qn->start);
    claim_path(rel, sizeof(rel), queue, qn, token);
    return claim_from(sp, queue, rel, qn, c, err, errlen);
}

int queue_touch(struct claim *c, int64_t when, char *err, size_t errlen)
{
    struct timespec ts[2];

    ts[0].tv_sec = ts[1].tv_sec = (time_t)when;
    ts[0].tv_nsec = ts[1].tv_nsec = 0;
    if (utimensat(c->sp->fd, c->path, ts, AT_SYMLINK_NOFOLLOW) != 0)
        return err_set(err, errlen, errno, "utimensat %s: %s", c->path,
                       strerror(errno));
    return 0;
}

/* Queues whose entries may have a journal: mmq-deliver's, and where its
 * entries can be moved to. */
static int journaled_queue(const char *queue)
{
    return strcmp(queue, "in") != 0 && strcmp(queue, "bounces") != 0;
}

int queue_claim_read(struct claim *c, struct envelope *env, off_t *body_off,
                     char *err, size_t errlen)
{
    char why[QUEUE_ERR_MAX];

    c->journal = 0;
    c->settled = 0;
    if (envelope_read(c->fd, env, body_off, why, sizeof(why)) != 0)
        return err_set(err, errlen, errno, "%s: %s", c->qn.name, why);
    if (journaled_queue(c->queue) &&
        journal_apply(c->sp, c->qn.name, env, &c->journal, &c->settled, why,
                      sizeof(why)) != 0) {
        envelope_free(env);
        return err_set(err, errlen, errno, "%s: %s", c->qn.name, why);
    }
    return 0;
}

void queue_claim_close(struct claim *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
}

int queue_remove(struct claim *c, char *bucket, char *err, size_t errlen)
{
    queue_claim_close(c);
    qname_bucket(c->queue, c->qn.name, bucket, 64);
    if (unlinkat(c->sp->fd, c->path, 0) != 0)
        return err_set(err, errlen, errno, "unlink %s: %s", c->path,
                       strerror(errno));
    return 0;
}

int queue_done(struct claim *c, char *err, size_t errlen)
{
    char bucket[64];

    if (queue_remove(c, bucket, err, errlen) != 0)
        return -1;
    /* Without this a power loss could bring the finished entry back and
     * it would be delivered again. */
    if (queue_fsync_dir(c->sp->fd, bucket) != 0)
        return err_set(err, errlen, errno, "fsync %s: %s", bucket,
                       strerror(errno));
    /* After the entry: a crash in between leaves an orphaned journal
     * (journal_clean()), never an entry without its journal. */
    if (journaled_queue(c->queue) && journal_remove(c->sp, c->qn.name) != 0)
        return err_set(err, errlen, errno, "%s: remove its journal: %s",
                       c->qn.name, strerror(errno));
    return 0;
}

static int rename_durably(struct spool *sp, const char *from,
                          const char *from_bucket, const char *to,
                          const char *to_bucket, char *err, size_t errlen)
{
    if (renameat(sp->fd, from, sp->fd, to) != 0)
        return err_set(err, errlen, errno, "rename %s to %s: %s", from, to,
                       strerror(errno));
    if (queue_fsync_dir(sp->fd, to_bucket) != 0 ||
        (strcmp(from_bucket, to_bucket) != 0 &&
         queue_fsync_dir(sp->fd, from_bucket) != 0))
        return err_set(err, errlen, errno, "fsync after rename to %s: %s", to,
                       strerror(errno));
    return 0;
}

int queue_unclaim(struct claim *c, char *err, size_t errlen)
{
    char bucket[64], dst[QFILE_MAX + 64], fname[QFILE_MAX];

    queue_claim_close(c);
    qname_bucket(c->queue, c->qn.name, bucket, sizeof(bucket));
    qname_ready_fname(&c->qn, fname, sizeof(fname));
    snprintf(dst, sizeof(dst), "%s/%s", bucket, fname);
    return rename_durably(c->sp, c->path, bucket, dst, bucket, err, errlen);
}

int queue_move(struct claim *c, const char *to, char *err, size_t errlen)
{
    char from_b[64], to_b[64], dst[QFILE_MAX + 64];
    struct qname qn = c->qn;

    if (!queue_valid(to))
        return err_set(err, errlen, EINVAL, "unknown queue \"%s\"", to);
    if (strcmp(to, "bad") == 0 || strcmp(to, "hold") == 0) {
        if (!qn.origin[0]) /* remember where it came from */
            snprintf(qn.origin, sizeof(qn.origin), "%s", c->queue);
    } else {
        qn.origin[0] = 0;
    }
    queue_claim_close(c);
    qname_bucket(c->queue, qn.name, from_b, sizeof(from_b));
    qname_bucket(to, qn.name, to_b, sizeof(to_b));
    claim_path(dst, sizeof(dst), to, &qn, "");
    return rename_durably(c->sp, c->path, from_b, dst, to_b, err, errlen);
}

static int copy_range(int in, off_t off, int64_t len, struct queue_file *qf)
{
    char *b = qf->buf; /* reuse: flushed by the caller */

    while (len > 0) {
        size_t want =
            len > (int64_t)sizeof(qf->buf) ? sizeof(qf->buf) : (size_t)len;
        ssize_t n = pread(in, b, want, off);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return qf_fail(qf, errno, "read");
        }
        if (n == 0)
            return qf_fail(qf, EIO, "entry shrank while copying");
        qf->blen = (size_t)n;
        if (qf_flush(qf) != 0)
            return -1;
        off += n;
        len -= n;
        qf->body += n;
    }
    return 0;
}

int queue_rewrite(struct claim *c, const struct envelope *env, char *err,
                  size_t errlen)
{
    struct envelope old;
    struct queue_file *qf;
    struct stat st;
    off_t body_off;
    char bucket[64];
    int64_t len;
    int fd;

    if (queue_claim_read(c, &old, &body_off, err, errlen) != 0)
        return -1;
    envelope_free(&old);
    if (fstat(c->fd, &st) != 0)
        return err_set(err, errlen, errno, "fstat %s: %s", c->path,
                       strerror(errno));
    len = (int64_t)st.st_size - (int64_t)body_off;
    if (!(qf = queue_file_create(c->sp, c->queue, err, errlen)))
        return -1;
    if (queue_file_begin(qf, env) != 0 || qf_flush(qf) != 0 ||
        copy_range(c->fd, body_off, len, qf) != 0 || qf_seal(qf) != 0)
        goto bad;
    /* Atomic replacement: a crash leaves the old or the new entry. */
    if (renameat(c->sp->fd, qf->tmpname, c->sp->fd, c->path) != 0) {
        qf_fail(qf, errno, "rename over the claimed entry");
        goto bad;
    }
    qf->tmpname[0] = 0;
    qname_bucket(c->queue, c->qn.name, bucket, sizeof(bucket));
    if (queue_fsync_dir(c->sp->fd, bucket) != 0) {
        qf_fail(qf, errno, "fsync of the queue directory");
        goto bad;
    }
    qf_free(qf);
    /* The new entry holds what its journal said: fold it (see journal.h
     * for why a journal that survives this is harmless). */
    if (journaled_queue(c->queue) && journal_remove(c->sp, c->qn.name) != 0)
        return err_set(err, errlen, errno, "%s: remove its journal: %s",
                       c->qn.name, strerror(errno));
    fd = openat(c->sp->fd, c->path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return err_set(err, errlen, errno, "reopen %s: %s", c->path,
                       strerror(errno));
    queue_claim_close(c);
    c->fd = fd;
    return 0;
bad:
    err_set(err, errlen, errno, "%s: rewrite: %s", c->qn.name, qf->err);
    {
        int e = errno;
        qf_free(qf);
        errno = e;
    }
    return -1;
}
