/*
 * qwriter - writing entries: a file in tmp/ written through a buffer,
 * sealed (its size patched, fsync) and published by rename(2) into its
 * bucket followed by an fsync of the bucket; or staged for two-phase
 * publication (stage/).  Contract in queue.h (section "writer").
 *
 * The crash rule this module keeps: an entry appears under a final name
 * only complete and synced; a crash at any instant leaves at worst a file
 * in tmp/, which spool_clean_tmp() (qrecover.c) removes.
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

/* --------------------------------------------------------------- writer */

static unsigned long tmp_counter;

int qf_fail(struct queue_file *qf, int e, const char *what)
{
    snprintf(qf->err, sizeof(qf->err), "%s: %s", what, strerror(e));
    errno = e;
    return -1;
}

struct queue_file *queue_file_create(struct spool *sp, const char *queue,
                                     char *err, size_t errlen)
{
    struct queue_file *qf;
    struct timeval tv;
    unsigned char salt[16];
    int e;

    if (!queue_valid(queue)) {
        err_set(err, errlen, EINVAL, "unknown queue \"%s\"", queue);
        return NULL;
    }
    if (!(qf = calloc(1, sizeof(*qf)))) {
        err_set(err, errlen, ENOMEM, "out of memory");
        return NULL;
    }
    qf->sp = sp;
    qf->fd = -1;
    snprintf(qf->queue, sizeof(qf->queue), "%s", queue);
    gettimeofday(&tv, NULL);
    qf->sec = tv.tv_sec;
    qf->usec = (int32_t)tv.tv_usec;
    /* Unique across nodes (node), processes (pid, start), time and calls. */
    snprintf(qf->tmpname, sizeof(qf->tmpname), "tmp/%lld.%06d%s#%lu",
             (long long)qf->sec, (int)qf->usec, sp->token, ++tmp_counter);
    qf->fd =
        openat(sp->fd, qf->tmpname,
               O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, FILE_MODE);
    if (qf->fd < 0) {
        e = errno;
        err_set(err, errlen, e, "create %s/%s: %s", sp->path, qf->tmpname,
                strerror(e));
        free(qf);
        errno = e;
        return NULL;
    }
    /* The MTA may run us with umask 077 (Postfix's master does): the
     * spool group must still be able to read the entry. */
    if (fchmod(qf->fd, FILE_MODE) != 0) {
        e = errno;
        err_set(err, errlen, e, "chmod %s/%s: %s", sp->path, qf->tmpname,
                strerror(e));
        queue_file_abort(qf);
        errno = e;
        return NULL;
    }
    digest_init(&qf->md);
    /* The digest covers who and when, so equal messages never collide. */
    if (getrandom(salt, sizeof(salt), GRND_NONBLOCK) != (ssize_t)sizeof(salt))
        memset(salt, 0, sizeof(salt)); /* the token and time still differ */
    digest_update(&qf->md, qf->tmpname, strlen(qf->tmpname));
    digest_update(&qf->md, salt, sizeof(salt));
    return qf;
}

int qf_flush(struct queue_file *qf)
{
    size_t off = 0;

    while (off < qf->blen) {
        ssize_t n = write(qf->fd, qf->buf + off, qf->blen - off);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return qf_fail(qf, errno, "write");
        }
        off += (size_t)n;
    }
    qf->blen = 0;
    return 0;
}

static int qf_put(struct queue_file *qf, const void *data, size_t len)
{
    if (len >= sizeof(qf->buf)) {
        if (qf_flush(qf) != 0)
            return -1;
        qf->blen = len; /* write straight from the caller's buffer */
        {
            size_t off = 0;
            while (off < len) {
                ssize_t n = write(qf->fd, (const char *)data + off, len - off);
                if (n < 0) {
                    if (errno == EINTR)
                        continue;
                    qf->blen = 0;
                    return qf_fail(qf, errno, "write");
                }
                off += (size_t)n;
            }
        }
        qf->blen = 0;
        return 0;
    }
    if (qf->blen + len > sizeof(qf->buf) && qf_flush(qf) != 0)
        return -1;
    memcpy(qf->buf + qf->blen, data, len);
    qf->blen += len;
    return 0;
}

int queue_file_begin(struct queue_file *qf, const struct envelope *env)
{
    struct buf b;
    int rc;

    buf_init(&b);
    if (envelope_format(env, &b, &qf->size_off) != 0) {
        buf_free(&b);
        snprintf(qf->err, sizeof(qf->err), "cannot format the envelope");
        errno = ENOMEM;
        return -1;
    }
    if (env->arrival_sec < 0 || env->arrival_sec > 9999999999LL ||
        env->arrival_usec < 0 || env->arrival_usec > 999999) {
        buf_free(&b);
        snprintf(qf->err, sizeof(qf->err),
                 "arrival time out of range for an entry name");
        errno = EINVAL;
        return -1;
    }
    qf->sec = env->arrival_sec;
    qf->usec = env->arrival_usec;
    digest_update(&qf->md, b.data, b.len);
    rc = qf_put(qf, b.data, b.len);
    buf_free(&b);
    return rc;
}

int queue_file_write(struct queue_file *qf, const void *data, size_t len)
{
    digest_update(&qf->md, data, len);
    qf->body += (int64_t)len;
    return qf_put(qf, data, len);
}

int64_t queue_file_size(const struct queue_file *qf)
{
    return qf->body;
}

const char *queue_file_error(const struct queue_file *qf)
{
    return qf->err;
}

/* Flush, patch the size, fsync and close: the file is complete on disk. */
int qf_seal(struct queue_file *qf)
{
    char digits[ENVELOPE_SIZE_DIGITS + 1];
    int rc;

    if (qf_flush(qf) != 0)
        return -1;
    snprintf(digits, sizeof(digits), "%0*" PRId64, ENVELOPE_SIZE_DIGITS,
             qf->body);
    if (pwrite(qf->fd, digits, ENVELOPE_SIZE_DIGITS, (off_t)qf->size_off) !=
        ENVELOPE_SIZE_DIGITS)
        return qf_fail(qf, errno ? errno : EIO, "write size");
    /* The data must be on disk before the name points at it: otherwise a
     * crash after the rename could leave a complete-looking empty file. */
    if (fsync(qf->fd) != 0)
        return qf_fail(qf, errno, "fsync");
    rc = close(qf->fd);
    qf->fd = -1;
    if (rc != 0)
        return qf_fail(qf, errno, "close");
    return 0;
}

/* rename tmp -> QUEUE/BB/fname and fsync the bucket; frees qf. */
static int qf_publish(struct queue_file *qf, const char *fname)
{
    char bucket[64], dst[QFILE_MAX + 64];
    struct spool *sp = qf->sp;

    char why[QUEUE_ERR_MAX];
    int bfd, rc;

    qname_bucket(qf->queue, fname, bucket, sizeof(bucket));
    snprintf(dst, sizeof(dst), "%s/%s", bucket, fname);
    bfd =
        openat(sp->fd, bucket, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (bfd < 0)
        return qf_fail(qf, errno, bucket);
    /* Never publish into a bucket anyone could have written to. */
    if (spool_check_dir(sp, bfd, bucket, why, sizeof(why)) != 0) {
        snprintf(qf->err, sizeof(qf->err), "%s", why);
        close(bfd);
        errno = EPERM;
        return -1;
    }
    if (renameat(sp->fd, qf->tmpname, bfd, fname) != 0) {
        close(bfd);
        qf_fail(qf, errno, dst);
        return -1;
    }
    qf->tmpname[0] = 0; /* nothing left to clean up */
    /* The rename is durable only once its directory is. */
    rc = fsync(bfd);
    if (rc != 0)
        qf_fail(qf, errno, "fsync of the queue directory");
    close(bfd);
    return rc;
}

void qf_free(struct queue_file *qf)
{
    if (qf->fd >= 0)
        close(qf->fd);
    if (qf->tmpname[0])
        unlinkat(qf->sp->fd, qf->tmpname, 0);
    free(qf);
}

/* Free the writer, handing its error text (if rc != 0) to the caller. */
static int qf_end(struct queue_file *qf, int rc, char *err, size_t errlen)
{
    int e = errno;

    if (rc != 0 && err && errlen)
        snprintf(err, errlen, "%s", qf->err);
    qf_free(qf);
    errno = e;
    return rc;
}

int queue_file_commit(struct queue_file *qf, char *name_out, char *err,
                      size_t errlen)
{
    char name[QNAME_LEN + 1];
    int rc;

    if (qf_seal(qf) != 0)
        return qf_end(qf, -1, err, errlen);
    /* "%010lld.%06d+" is 18 bytes: the arrival time was range-checked in
     * queue_file_begin(), so it cannot be longer */
    snprintf(name, sizeof(name), "%010lld.%06d+", (long long)qf->sec,
             (int)qf->usec);
    digest_hex(&qf->md, name + 18);
    rc = qf_publish(qf, name);
    if (rc == 0 || qf->tmpname[0] == 0)
        memcpy(name_out, name, QNAME_LEN + 1);
    return qf_end(qf, rc, err, errlen);
}

int queue_file_commit_as(struct queue_file *qf, const char *name, char *err,
                         size_t errlen)
{
    struct qname qn;

    if (qname_parse(name, &qn) != 0 || qn.kind != QN_READY) {
        snprintf(qf->err, sizeof(qf->err), "invalid entry name \"%s\"", name);
        errno = EINVAL;
        return qf_end(qf, -1, err, errlen);
    }
    if (qf_seal(qf) != 0)
        return qf_end(qf, -1, err, errlen);
    return qf_end(qf, qf_publish(qf, name), err, errlen);
}

static int valid_staged(const char *staged)
{
    const char *dot = strrchr(staged, '.');
    struct qname qn;
    char owner[QNAME_LEN + 1];

    if (!dot || dot - staged != QNAME_LEN || !dot[1] ||
        strspn(dot + 1, "0123456789") != strlen(dot + 1))
        return 0;
    memcpy(owner, staged, QNAME_LEN);
    owner[QNAME_LEN] = 0;
    return qname_parse(owner, &qn) == 0;
}

int queue_file_stage(struct queue_file *qf, const char *staged, char *err,
                     size_t errlen)
{
    char dst[QFILE_MAX + 16];

    if (!valid_staged(staged)) {
        snprintf(qf->err, sizeof(qf->err), "invalid staged name \"%s\"",
                 staged);
        errno = EINVAL;
        return qf_end(qf, -1, err, errlen);
    }
    if (qf_seal(qf) != 0)
        return qf_end(qf, -1, err, errlen);
    snprintf(dst, sizeof(dst), "stage/%s", staged);
    if (renameat(qf->sp->fd, qf->tmpname, qf->sp->fd, dst) != 0) {
        qf_fail(qf, errno, dst);
        return qf_end(qf, -1, err, errlen);
    }
    qf->tmpname[0] = 0;
    return qf_end(qf, 0, err, errlen);
}

int queue_publish_staged(struct spool *sp, const char *staged,
                         const char *queue, const char *name, char *err,
                         size_t errlen)
{
    char src[QFILE_MAX + 16], dst[QFILE_MAX + 64], bucket[64];
    struct qname qn;

    if (!valid_staged(staged) || qname_parse(name, &qn) != 0 ||
        qn.kind != QN_READY || !queue_valid(queue))
        return err_set(err, errlen, EINVAL, "invalid staged or entry name");
    snprintf(src, sizeof(src), "stage/%s", staged);
    qname_bucket(queue, name, bucket, sizeof(bucket));
    snprintf(dst, sizeof(dst), "%s/%s", bucket, name);
    if (renameat(sp->fd, src, sp->fd, dst) != 0) {
        if (errno == ENOENT)
            return 1;
        return err_set(err, errlen, errno, "publish %s: %s", dst,
                       strerror(errno));
    }
    return 0;
}

int spool_unstage(struct spool *sp, const char *owner, char *err, size_t errlen)
{
    struct dirent *de;
    size_t n = strlen(owner);
    DIR *d;
    int fd = openat(sp->fd, "stage",
                    O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

    if (fd < 0 || !(d = fdopendir(fd))) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        return err_set(err, errlen, e, "%s/stage: %s", sp->path, strerror(e));
    }
    while ((de = readdir(d)) != NULL)
        if (strncmp(de->d_name, owner, n) == 0 && de->d_name[n] == '.' &&
            valid_staged(de->d_name))
            unlinkat(fd, de->d_name, 0);
    closedir(d);
    return 0;
}

int spool_sync_dir(struct spool *sp, const char *rel, char *err, size_t errlen)
{
    if (queue_fsync_dir(sp->fd, rel) != 0)
        return err_set(err, errlen, errno, "fsync %s/%s: %s", sp->path, rel,
                       strerror(errno));
    return 0;
}

void queue_file_abort(struct queue_file *qf)
{
    if (qf)
        qf_free(qf);
}

void queue_file_unlink_signal_safe(const struct queue_file *qf)
{
    if (qf && qf->tmpname[0])
        unlinkat(qf->sp->fd, qf->tmpname, 0);
}
