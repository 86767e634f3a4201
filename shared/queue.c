/*
 * queue - the mmq spool.  See queue.h for the layout and the crash rules,
 * and mmq-spool(5) for the on-disk format.
 *
 * Every path is resolved relative to the spool directory descriptor
 * (openat/renameat/unlinkat), so a spool path that changes under us, or a
 * symlink planted in a queue, cannot redirect a write.
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
#include "queue.h"

const char *const queue_names[] = {"in",   "bounces", "out", "deferred",
                                   "hold", "bad",     NULL};

#define DIR_MODE (S_ISGID | 0770)
#define FILE_MODE 0640

int queue_valid(const char *queue)
{
    int i;

    for (i = 0; queue_names[i]; i++)
        if (strcmp(queue, queue_names[i]) == 0)
            return 1;
    return 0;
}

/* fsync a directory of the spool (relative path). */
static int fsync_dir(int spoolfd, const char *rel)
{
    int fd = openat(spoolfd, rel, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int rc, e;

    if (fd < 0)
        return -1;
    rc = fsync(fd);
    e = errno;
    close(fd);
    errno = e;
    return rc;
}

/* ---------------------------------------------------------------- spool */

static int owner_ok(const struct spool *sp, uid_t uid)
{
    struct passwd *pw;

    if (uid == geteuid())
        return 1;
    if (sp->cfg->spool_user && (pw = getpwnam(sp->cfg->spool_user)) != NULL)
        return uid == pw->pw_uid;
    return 0;
}

static int check_dir(const struct spool *sp, int fd, const char *what,
                     char *err, size_t errlen)
{
    struct stat st;

    if (fstat(fd, &st) != 0)
        return err_set(err, errlen, errno, "%s/%s: %s", sp->path, what,
                       strerror(errno));
    if (!S_ISDIR(st.st_mode))
        return err_set(err, errlen, ENOTDIR, "%s/%s: not a directory", sp->path,
                       what);
    if (st.st_mode & S_IWOTH)
        return err_set(err, errlen, EPERM,
                       "%s/%s: world-writable: refusing an unsafe spool",
                       sp->path, what);
    if (!owner_ok(sp, st.st_uid)) {
        /* say what to do: run as the owner (or name it in spool_user) */
        struct passwd *pw = getpwuid(st.st_uid);
        char owner[64];

        snprintf(owner, sizeof(owner), "%s", pw ? pw->pw_name : "OWNER");
        return err_set(err, errlen, EPERM,
                       "%s/%s: owned by uid %ld (%s), not by us (uid %ld) nor "
                       "by spool_user: refusing an unsafe spool; run as the "
                       "spool's owner: runuser -u %s -- %s ...",
                       sp->path, what, (long)st.st_uid, owner, (long)geteuid(),
                       owner, log_progname());
    }
    return 0;
}

int spool_open(struct spool *sp, const struct mmq_config *cfg, char *err,
               size_t errlen)
{
    int i;

    memset(sp, 0, sizeof(*sp));
    sp->fd = -1;
    sp->cfg = cfg;
    sp->pid = getpid();
    if (proc_start_time(0, &sp->start) != 0)
        return err_set(err, errlen, EIO, "cannot read /proc/self/stat");
    snprintf(sp->token, sizeof(sp->token), "#%s#%ld#%llu", cfg->node,
             (long)sp->pid, sp->start);
    if (!(sp->path = strdup(cfg->spool)))
        return err_set(err, errlen, ENOMEM, "out of memory");
    sp->fd = open(cfg->spool, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (sp->fd < 0) {
        int e = errno;
        err_set(err, errlen, e, "spool %s: %s%s", cfg->spool, strerror(e),
                e == ENOENT ? " (create it with: mmqctl init)" : "");
        spool_close(sp);
        errno = e;
        return -1;
    }
    if (check_dir(sp, sp->fd, ".", err, errlen) != 0)
        goto bad;
    for (i = -3; queue_names[i < 0 ? 0 : i]; i++) {
        const char *d = i == -3   ? "tmp"
                        : i == -2 ? "lock"
                        : i == -1 ? "stage"
                                  : queue_names[i];
        int fd =
            openat(sp->fd, d, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0) {
            err_set(err, errlen,
                    errno == ELOOP || errno == ENOTDIR ? EPERM : errno,
                    "spool %s: %s/: %s%s", sp->path, d, strerror(errno),
                    errno == ENOENT ? " (complete it with: mmqctl init)" : "");
            goto bad;
        }
        if (check_dir(sp, fd, d, err, errlen) != 0) {
            close(fd);
            goto bad;
        }
        close(fd);
    }
    return 0;
bad : {
    int e = errno;
    spool_close(sp);
    errno = e;
    return -1;
}
}

int spool_set_identity(struct spool *sp)
{
    sp->pid = getpid();
    if (proc_start_time(0, &sp->start) != 0)
        return -1;
    snprintf(sp->token, sizeof(sp->token), "#%s#%ld#%llu", sp->cfg->node,
             (long)sp->pid, sp->start);
    return 0;
}

int spool_lock_slice(struct spool *sp, const char *stage, unsigned i, int *fd,
                     char *err, size_t errlen)
{
    char rel[160];

    snprintf(rel, sizeof(rel), "lock/%s.%s.%u", stage, sp->cfg->node, i);
    *fd = openat(sp->fd, rel, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC,
                 FILE_MODE);
    if (*fd < 0)
        return err_set(err, errlen, errno, "%s/%s: %s", sp->path, rel,
                       strerror(errno));
    if (flock(*fd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        close(*fd);
        *fd = -1;
        if (e == EWOULDBLOCK)
            return 1;
        return err_set(err, errlen, e, "flock %s/%s: %s", sp->path, rel,
                       strerror(e));
    }
    return 0;
}

int spool_lock_slices(struct spool *sp, const char *stage,
                      const struct slice_set *set, char *err, size_t errlen)
{
    unsigned i;

    for (i = 0; i < set->n; i++) {
        int fd, rc;

        if (!set->on[i])
            continue;
        rc = spool_lock_slice(sp, stage, i, &fd, err, errlen);
        if (rc < 0)
            return -1;
        if (rc > 0)
            return err_set(err, errlen, EBUSY,
                           "slice %u of %u is already %s by another mmq-%s on "
                           "node %s",
                           i, set->n,
                           strcmp(stage, "deliver") == 0 ? "delivered"
                                                         : "processed",
                           stage, sp->cfg->node);
        /* fd is deliberately kept: closing it would release the lock */
    }
    return 0;
}

int spool_slice_overlap(struct spool *sp, const char *stage,
                        const struct slice_set *set, struct slice_set *overlap,
                        char *others, size_t olen)
{
    size_t sl = strlen(stage), ml = strlen(sp->cfg->node);
    struct dirent *de;
    int count = 0;
    DIR *d;
    int fd = openat(sp->fd, "lock", O_RDONLY | O_DIRECTORY | O_CLOEXEC);

    others[0] = 0;
    overlap->n = set->n;
    if (!(overlap->on = calloc(set->n ? set->n : 1, 1))) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    if (fd < 0 || !(d = fdopendir(fd))) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    while ((de = readdir(d)) != NULL) {
        const char *node = de->d_name + sl + 1, *dot = strrchr(de->d_name, '.');
        unsigned long i;
        char *end;
        int lfd, held;

        /* STAGE.NODE.I of another node, I one of our slices */
        if (strncmp(de->d_name, stage, sl) != 0 || de->d_name[sl] != '.' ||
            !dot || dot <= node ||
            ((size_t)(dot - node) == ml &&
             strncmp(node, sp->cfg->node, ml) == 0))
            continue;
        i = strtoul(dot + 1, &end, 10);
        if (*end || end == dot + 1 || i >= set->n || !set->on[i])
            continue;
        lfd = openat(fd, de->d_name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        if (lfd < 0)
            continue;
        held = flock(lfd, LOCK_SH | LOCK_NB) != 0 && errno == EWOULDBLOCK;
        close(lfd); /* releases the probe's lock, if it got one */
        if (!held)
            continue;
        if (!overlap->on[i]++)
            count++;
        if (strlen(others) + (size_t)(dot - node) + 2 < olen) {
            char nm[72];
            snprintf(nm, sizeof(nm), "%.*s", (int)(dot - node), node);
            if (!strstr(others, nm)) /* names are few: a substring test */
                snprintf(others + strlen(others), olen - strlen(others), "%s%s",
                         others[0] ? "," : "", nm);
        }
    }
    closedir(d);
    return count;
}

void spool_watch_overlap(struct spool *sp, const char *stage,
                         const struct slice_set *set, time_t *next, int *last)
{
    static time_t logged;
    struct slice_set ov = {0, NULL};
    char others[256];
    time_t now = time(NULL);
    int n;

    if (now < *next)
        return;
    *next = now + 60; /* scheduled first */
    n = spool_slice_overlap(sp, stage, set, &ov, others, sizeof(others));
    if (n > 0 && (n != *last || now - logged >= 3600)) {
        unsigned i, first = ov.n;
        for (i = 0; i < ov.n && first == ov.n; i++)
            if (ov.on[i])
                first = i;
        log_error("%d of our slices of %s (slice %u and more) are also run "
                  "by mmq-%s on node %s: with no nodes list nothing keeps "
                  "nodes sharing a spool apart; give each node its own "
                  "slices (%s_slices) or configure a nodes list",
                  n, stage, first, stage, others,
                  strcmp(stage, "deliver") == 0 ? "delivery" : "process");
        logged = now;
    } else if (n == 0 && *last > 0) {
        log_info("no other node runs our slices of %s any more", stage);
    }
    if (n >= 0)
        *last = n;
    slice_set_free(&ov);
}

int queue_watch(struct spool *sp, const char *queue,
                const struct slice_set *set)
{
    unsigned char seen[SLICE_BUCKETS] = {0};
    unsigned i, b, first, last;
    char path[PATH_MAX];
    int fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);

    if (fd < 0)
        return -1;
    for (i = 0; i < set->n; i++) {
        if (!set->on[i])
            continue;
        slice_buckets(i, set->n, &first, &last);
        for (b = first; b <= last; b++) {
            if (seen[b]++)
                continue;
            snprintf(path, sizeof(path), "%s/%s/%02x", sp->path, queue, b);
            if (inotify_add_watch(fd, path, IN_MOVED_TO | IN_CLOSE_WRITE) < 0)
                log_warn("inotify %s: %s", path, strerror(errno));
        }
    }
    return fd;
}

void spool_close(struct spool *sp)
{
    if (sp->fd >= 0)
        close(sp->fd);
    sp->fd = -1;
    free(sp->path);
    sp->path = NULL;
}

static int make_dir(int parent, const char *rel, const char *show, uid_t uid,
                    gid_t gid, char *err, size_t errlen)
{
    struct stat st;
    int fd, rc = -1;

    if (mkdirat(parent, rel, DIR_MODE) != 0 && errno != EEXIST)
        return err_set(err, errlen, errno, "mkdir %s: %s", show,
                       strerror(errno));
    /* Work on a descriptor opened without following links, so that a
     * symlink swapped in by a group member cannot redirect chown/chmod. */
    fd = openat(parent, rel, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return err_set(
            err, errlen, errno == ELOOP ? ENOTDIR : errno, "%s: %s", show,
            errno == ELOOP || errno == ENOTDIR ? "exists and is not a directory"
                                               : strerror(errno));
    if (fstat(fd, &st) != 0) {
        err_set(err, errlen, errno, "%s: %s", show, strerror(errno));
        goto out;
    }
    if ((uid != (uid_t)-1 || gid != (gid_t)-1) && fchown(fd, uid, gid) != 0) {
        err_set(err, errlen, errno, "chown %s: %s", show, strerror(errno));
        goto out;
    }
    /* after chown: chown clears the setgid bit */
    if (fchmod(fd, DIR_MODE) != 0) {
        err_set(err, errlen, errno, "chmod %s: %s", show, strerror(errno));
        goto out;
    }
    rc = 0;
out:
    close(fd);
    return rc;
}

int spool_init(const char *path, uid_t uid, gid_t gid, char *err, size_t errlen)
{
    char rel[64], show[PATH_MAX + 64];
    int fd, i, b, rc = -1;

    if (mkdir(path, DIR_MODE) != 0 && errno != EEXIST)
        return err_set(err, errlen, errno, "mkdir %s: %s", path,
                       strerror(errno));
    if ((fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
        return err_set(err, errlen, errno, "%s: %s", path, strerror(errno));
    if (make_dir(fd, ".", path, uid, gid, err, errlen) != 0)
        goto out;
    snprintf(show, sizeof(show), "%s/lock", path);
    if (make_dir(fd, "lock", show, uid, gid, err, errlen) != 0)
        goto out;
    snprintf(show, sizeof(show), "%s/lease", path);
    if (make_dir(fd, "lease", show, uid, gid, err, errlen) != 0)
        goto out;
    snprintf(show, sizeof(show), "%s/stage", path);
    if (make_dir(fd, "stage", show, uid, gid, err, errlen) != 0)
        goto out;
    for (i = -1; queue_names[i < 0 ? 0 : i]; i++) {
        const char *q = i < 0 ? "tmp" : queue_names[i];

        snprintf(show, sizeof(show), "%s/%s", path, q);
        if (make_dir(fd, q, show, uid, gid, err, errlen) != 0)
            goto out;
        if (i < 0)
            continue;
        for (b = 0; b < SLICE_BUCKETS; b++) {
            snprintf(rel, sizeof(rel), "%s/%02x", q, b);
            snprintf(show, sizeof(show), "%s/%s", path, rel);
            if (make_dir(fd, rel, show, uid, gid, err, errlen) != 0)
                goto out;
        }
    }
    rc = 0;
    /* Directory entries must survive a crash like everything else. */
    if (syncfs(fd) != 0)
        rc =
            err_set(err, errlen, errno, "syncfs %s: %s", path, strerror(errno));
out:
    close(fd);
    return rc;
}

/* ---------------------------------------------------------------- names */

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static int is_lhex(char c)
{
    return is_digit(c) || (c >= 'a' && c <= 'f');
}

static int parse_claim_suffix(const char *s, struct qname *qn)
{
    const char *h2, *h3;
    char *end;
    size_t nlen;
    unsigned long long v;

    /* s points after the first '#': NODE#PID#START */
    if (!(h2 = strchr(s, '#')) || !(h3 = strchr(h2 + 1, '#')))
        return -1;
    nlen = (size_t)(h2 - s);
    if (nlen == 0 || nlen >= sizeof(qn->node))
        return -1;
    memcpy(qn->node, s, nlen);
    qn->node[nlen] = 0;
    if (!config_valid_node(qn->node) || !is_digit(h2[1]) || !is_digit(h3[1]))
        return -1;
    errno = 0;
    v = strtoull(h2 + 1, &end, 10);
    if (errno || end != h3 || v == 0 || v > 0x7fffffff)
        return -1;
    qn->pid = (pid_t)v;
    qn->start = strtoull(h3 + 1, &end, 10);
    if (errno || *end)
        return -1;
    qn->kind = QN_CLAIMED;
    return 0;
}

int qname_parse(const char *f, struct qname *qn)
{
    const char *rest;
    int i;

    memset(qn, 0, sizeof(*qn));
    for (i = 0; i < QNAME_LEN; i++) {
        char c = f[i];
        int ok = i < 10    ? is_digit(c)
                 : i == 10 ? c == '.'
                 : i < 17  ? is_digit(c)
                 : i == 17 ? c == '+'
                           : is_lhex(c);
        if (!ok)
            return -1; /* also stops at a NUL */
    }
    memcpy(qn->name, f, QNAME_LEN);
    memcpy(qn->hash, f + 18, 40);
    if (slice_key(qn->hash, &qn->key) != 0)
        return -1;
    qn->sec = strtoll(f, NULL, 10);
    qn->usec = (int32_t)strtol(f + 11, NULL, 10);
    rest = f + QNAME_LEN;
    if (strlen(rest) > QFILE_MAX - QNAME_LEN)
        return -1;
    if (*rest == '@') {
        size_t n = strcspn(rest + 1, "#");
        if (n == 0 || n >= sizeof(qn->origin))
            return -1;
        memcpy(qn->origin, rest + 1, n);
        qn->origin[n] = 0;
        if (!queue_valid(qn->origin))
            return -1;
        rest += 1 + n;
    }
    if (*rest == '#')
        return parse_claim_suffix(rest + 1, qn);
    return *rest ? -1 : 0;
}

void qname_bucket(const char *queue, const char *name, char *out, size_t outlen)
{
    snprintf(out, outlen, "%s/%.2s", queue, name + 18);
}

/* File name (in its bucket) of a ready entry, with its origin if any. */
static void ready_fname(const struct qname *qn, char *out, size_t outlen)
{
    if (qn->origin[0])
        snprintf(out, outlen, "%s@%s", qn->name, qn->origin);
    else
        snprintf(out, outlen, "%s", qn->name);
}

/* --------------------------------------------------------------- writer */

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

static unsigned long tmp_counter;

static int qf_fail(struct queue_file *qf, int e, const char *what)
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

static int qf_flush(struct queue_file *qf)
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
static int qf_seal(struct queue_file *qf)
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
    if (check_dir(sp, bfd, bucket, why, sizeof(why)) != 0) {
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

static void qf_free(struct queue_file *qf)
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
    if (fsync_dir(sp->fd, rel) != 0)
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

/* ------------------------------------------------------------- listing */

static int qname_cmp(const void *a, const void *b)
{
    return strcmp(((const struct qname *)a)->name,
                  ((const struct qname *)b)->name);
}

static int qlist_push(struct qlist *l, const struct qname *qn)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        struct qname *p = realloc(l->v, cap * sizeof(*p));
        if (!p)
            return -1;
        l->v = p;
        l->cap = cap;
    }
    l->v[l->n++] = *qn;
    return 0;
}

void qlist_free(struct qlist *l)
{
    free(l->v);
    l->v = NULL;
    l->n = l->cap = 0;
}

static int list_bucket(struct spool *sp, const char *queue, unsigned b,
                       const struct slice_set *set, int flags, size_t max,
                       struct qlist *out, char *err, size_t errlen)
{
    char rel[64];
    struct dirent *de;
    DIR *d;
    int fd;

    snprintf(rel, sizeof(rel), "%s/%02x", queue, b);
    fd = openat(sp->fd, rel, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return err_set(err, errlen, errno, "%s/%s: %s", sp->path, rel,
                       strerror(errno));
    /* Entries of a bucket anyone could write to are not ours to take. */
    if (check_dir(sp, fd, rel, err, errlen) != 0) {
        close(fd);
        return -1;
    }
    if (!(d = fdopendir(fd))) {
        close(fd);
        return err_set(err, errlen, errno, "%s/%s: %s", sp->path, rel,
                       strerror(errno));
    }
    while ((errno = 0, de = readdir(d)) != NULL) {
        struct qname qn;

        if (de->d_name[0] == '.' || qname_parse(de->d_name, &qn) != 0)
            continue;
        if (set && !slice_set_has(set, qn.key))
            continue;
        if (!((qn.kind == QN_READY && (flags & QL_READY)) ||
              (qn.kind == QN_CLAIMED && (flags & QL_CLAIMED))))
            continue;
        if (qlist_push(out, &qn) != 0) {
            closedir(d);
            return err_set(err, errlen, ENOMEM, "out of memory");
        }
        if (max && out->n >= 2 * max) { /* keep memory bounded */
            qsort(out->v, out->n, sizeof(out->v[0]), qname_cmp);
            out->n = max;
        }
    }
    if (errno) {
        int e = errno;
        closedir(d);
        return err_set(err, errlen, e, "readdir %s: %s", rel, strerror(e));
    }
    closedir(d);
    return 0;
}

int queue_list(struct spool *sp, const char *queue, const struct slice_set *set,
               int flags, size_t max, struct qlist *out, char *err,
               size_t errlen)
{
    unsigned char want[SLICE_BUCKETS];
    unsigned i, b, first, last;

    out->n = 0;
    if (!queue_valid(queue))
        return err_set(err, errlen, EINVAL, "unknown queue \"%s\"", queue);
    memset(want, set ? 0 : 1, sizeof(want));
    for (i = 0; set && i < set->n; i++) {
        if (!set->on[i])
            continue;
        slice_buckets(i, set->n, &first, &last);
        for (b = first; b <= last; b++)
            want[b] = 1;
    }
    for (b = 0; b < SLICE_BUCKETS; b++)
        if (want[b] &&
            list_bucket(sp, queue, b, set, flags, max, out, err, errlen) != 0)
            return -1;
    if (out->n > 1)
        qsort(out->v, out->n, sizeof(out->v[0]), qname_cmp);
    if (max && out->n > max)
        out->n = max;
    return 0;
}

/* --------------------------------------------------------------- claims */

static void claim_path(char *out, size_t outlen, const char *queue,
                       const struct qname *qn, const char *token)
{
    char fname[QFILE_MAX];

    ready_fname(qn, fname, sizeof(fname));
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
    else if (st.st_uid != 0 && !owner_ok(sp, st.st_uid))
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
    if (fsync_dir(c->sp->fd, bucket) != 0)
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
    if (fsync_dir(sp->fd, to_bucket) != 0 ||
        (strcmp(from_bucket, to_bucket) != 0 &&
         fsync_dir(sp->fd, from_bucket) != 0))
        return err_set(err, errlen, errno, "fsync after rename to %s: %s", to,
                       strerror(errno));
    return 0;
}

int queue_unclaim(struct claim *c, char *err, size_t errlen)
{
    char bucket[64], dst[QFILE_MAX + 64], fname[QFILE_MAX];

    queue_claim_close(c);
    qname_bucket(c->queue, c->qn.name, bucket, sizeof(bucket));
    ready_fname(&c->qn, fname, sizeof(fname));
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
    if (fsync_dir(c->sp->fd, bucket) != 0) {
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

/* ------------------------------------------------------------- recovery */

/* Restore one entry left claimed by a dead process of this node. */
static void recover_one(struct spool *sp, const char *queue,
                        const struct qname *dead, struct recover_stats *st)
{
    char why[QUEUE_ERR_MAX];
    struct envelope env;
    struct claim c;
    off_t off;
    int rc, recoveries;

    /* Claim it ourselves first, so that two recoverers never both act. */
    rc = queue_claim_takeover(sp, queue, dead, &c, why, sizeof(why));
    if (rc == 1)
        return;
    if (rc < 0) {
        log_warn("%s: cannot take over from dead process %ld: %s", dead->name,
                 (long)dead->pid, why);
        return;
    }
    if (queue_claim_read(&c, &env, &off, why, sizeof(why)) != 0) {
        log_error("%s: unreadable entry left by process %ld, moving to "
                  "bad/: %s",
                  dead->name, (long)dead->pid, why);
        goto to_bad;
    }
    if (env.recoveries >= sp->cfg->max_recoveries) {
        log_error("%s: recovered %d times after crashes (max_recoveries "
                  "%d), moving to bad/",
                  dead->name, env.recoveries, sp->cfg->max_recoveries);
        envelope_free(&env);
        goto to_bad;
    }
    /* Progress in the journal since the last rewrite: the entry made it
     * through transactions, as a rewrite for progress would have
     * recorded (recoveries 0): it is not what crashes its runner. */
    if (c.settled)
        env.recoveries = 0;
    recoveries = ++env.recoveries;
    rc = queue_rewrite(&c, &env, why, sizeof(why));
    envelope_free(&env);
    if (rc != 0 || queue_unclaim(&c, why, sizeof(why)) != 0) {
        log_error("%s: recovery failed (entry stays claimed by us): %s",
                  dead->name, why);
        queue_claim_close(&c);
        return;
    }
    log_info("%s: restored to %s/ after process %ld on %s died (recovery %d)",
             dead->name, queue, (long)dead->pid, dead->node, recoveries);
    st->restored++;
    return;
to_bad:
    if (queue_move(&c, "bad", why, sizeof(why)) != 0)
        log_error("%s: cannot move to bad/: %s", dead->name, why);
    else
        st->to_bad++;
}

/* Is this claim abandoned?  Our own node's: when its process is dead.
 * Another node's: only when the caller knows (foreign, after taking the
 * slice's lease): nothing here can see that node's processes. */
static int claim_abandoned(const struct spool *sp, const struct qname *qn,
                           int foreign)
{
    if (strcmp(qn->node, sp->cfg->node) != 0)
        return foreign;
    if (foreign || (qn->pid == sp->pid && qn->start == sp->start))
        return 0;
    return !proc_alive(qn->pid, qn->start);
}

static int recover_claims(struct spool *sp, const char *queue,
                          const struct slice_set *set, int foreign,
                          struct recover_stats *st, char *err, size_t errlen)
{
    struct qlist l = {NULL, 0, 0};
    size_t i;

    if (queue_list(sp, queue, set, QL_CLAIMED, 0, &l, err, errlen) != 0) {
        qlist_free(&l);
        return -1;
    }
    for (i = 0; i < l.n; i++)
        if (claim_abandoned(sp, &l.v[i], foreign))
            recover_one(sp, queue, &l.v[i], st);
    qlist_free(&l);
    return 0;
}

int queue_recover(struct spool *sp, const char *queue,
                  const struct slice_set *set, struct recover_stats *st,
                  char *err, size_t errlen)
{
    return recover_claims(sp, queue, set, 0, st, err, errlen);
}

int queue_recover_foreign(struct spool *sp, const char *queue,
                          const struct slice_set *set, struct recover_stats *st,
                          char *err, size_t errlen)
{
    return recover_claims(sp, queue, set, 1, st, err, errlen);
}

/* tmp names: SEC.USEC#NODE#PID#START#COUNTER */
static int tmp_owner_dead(const struct spool *sp, const char *name)
{
    char node[64];
    const char *h1 = strchr(name, '#'), *h2, *h3;
    unsigned long long start;
    long pid;
    size_t n;

    if (!h1 || !(h2 = strchr(h1 + 1, '#')) || !(h3 = strchr(h2 + 1, '#')))
        return 0;
    n = (size_t)(h2 - h1 - 1);
    if (n == 0 || n >= sizeof(node))
        return 0;
    memcpy(node, h1 + 1, n);
    node[n] = 0;
    if (strcmp(node, sp->cfg->node) != 0)
        return 0;
    if (sscanf(h2 + 1, "%ld#%llu", &pid, &start) != 2 || pid <= 0)
        return 0;
    if (pid == sp->pid && start == sp->start)
        return 0;
    (void)h3;
    return !proc_alive((pid_t)pid, start);
}

int spool_clean_tmp(struct spool *sp, int max_age, struct recover_stats *st,
                    char *err, size_t errlen)
{
    struct dirent *de;
    time_t now = time(NULL);
    DIR *d;
    int fd;

    fd = openat(sp->fd, "tmp", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 || !(d = fdopendir(fd))) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        return err_set(err, errlen, e, "%s/tmp: %s", sp->path, strerror(e));
    }
    while ((de = readdir(d)) != NULL) {
        struct stat s;
        int old;

        if (de->d_name[0] == '.')
            continue;
        if (fstatat(fd, de->d_name, &s, AT_SYMLINK_NOFOLLOW) != 0)
            continue; /* gone meanwhile */
        old = now - s.st_mtime > max_age;
        if (!old && !tmp_owner_dead(sp, de->d_name))
            continue;
        if (unlinkat(fd, de->d_name, 0) == 0) {
            log_info("removed orphaned temporary file tmp/%s (%s)", de->d_name,
                     old ? "too old" : "its writer is dead");
            st->tmp_removed++;
        }
    }
    closedir(d);
    return 0;
}
