/*
 * journal - settled recipients of a spool entry, append-only.  See
 * journal.h for the format and the contract, mmq-spool(5) for the users.
 */
#include "autoconf.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "fsutil.h"
#include "journal.h"
#include "log.h"

#define DIR_MODE (S_ISGID | 0770)
#define FILE_MODE 0640

/* journal/BB/NAME (name: a bare entry name, QNAME_LEN bytes) */
static int journal_path(const char *name, char *out, size_t outlen)
{
    if (strlen(name) != QNAME_LEN)
        return -1;
    snprintf(out, outlen, "%s/%.2s/%s", JOURNAL_DIR, name + 18, name);
    return 0;
}

/* journal/ must be a real directory: the spool's own checks
 * (spool_open()) cover the queues, not this one, made on demand. */
static int dir_ok(struct spool *sp)
{
    struct stat st;

    if (fstatat(sp->fd, JOURNAL_DIR, &st, AT_SYMLINK_NOFOLLOW) != 0)
        return errno == ENOENT ? 0 : -1;
    if (!S_ISDIR(st.st_mode) || (st.st_mode & S_IWOTH)) {
        errno = EPERM;
        return -1;
    }
    return 0;
}

void journal_init(struct journal *j)
{
    j->fd = -1;
    j->unsynced = 0;
}

static int read_all(int fd, struct buf *b)
{
    struct stat st;
    ssize_t n;

    if (fstat(fd, &st) != 0)
        return -1;
    if (!S_ISREG(st.st_mode) || st.st_size > (off_t)JOURNAL_MAX_BYTES) {
        errno = EFBIG;
        return -1;
    }
    if (buf_reserve(b, (size_t)st.st_size + 1) != 0)
        return -1;
    while (b->len < (size_t)st.st_size) {
        n = pread(fd, b->data + b->len, (size_t)st.st_size - b->len,
                  (off_t)b->len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        if (n == 0)
            break; /* shrank meanwhile: what we have is all there is */
        b->len += (size_t)n;
    }
    b->data[b->len] = 0;
    return 0;
}

/* Does line [p, end) name recipient idx of env?  Sets *idx. */
static int record_matches(const char *p, const char *end,
                          const struct envelope *env, struct buf *enc,
                          size_t *idx)
{
    size_t i = 0, alen;
    const char *sp = p;

    if (p == end || *p < '0' || *p > '9')
        return 0;
    for (; sp < end && *sp >= '0' && *sp <= '9'; sp++) {
        if (i > (size_t)-1 / 10 - 10)
            return 0;
        i = i * 10 + (size_t)(*sp - '0');
    }
    if (sp == end || *sp != ' ' || i >= env->nrcpt)
        return 0;
    sp++;
    alen = (size_t)(end - sp);
    buf_reset(enc);
    if (envelope_encode(enc, env->rcpt[i].addr) != 0)
        return 0;
    if (enc->len != alen || memcmp(enc->data, sp, alen) != 0)
        return 0;
    *idx = i;
    return 1;
}

/* Drop the recipients marked in drop[], keeping the order of the rest. */
static void drop_marked(struct envelope *env, const unsigned char *drop)
{
    size_t i, k = 0;

    for (i = 0; i < env->nrcpt; i++) {
        if (drop[i]) {
            free(env->rcpt[i].addr);
            free(env->rcpt[i].extra);
            continue;
        }
        env->rcpt[k++] = env->rcpt[i];
    }
    env->nrcpt = k;
}

int journal_apply(struct spool *sp, const char *name, struct envelope *env,
                  int *found, size_t *settled, char *err, size_t errlen)
{
    char rel[QFILE_MAX + 32];
    unsigned char *drop = NULL;
    struct buf b, enc;
    const char *p, *nl;
    size_t idx, bad = 0;
    int fd, rc = -1;

    *found = 0;
    *settled = 0;
    if (journal_path(name, rel, sizeof(rel)) != 0)
        return 0; /* not an entry name: it cannot have a journal */
    fd = openat(sp->fd, rel, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT)
        return 0;
    if (fd < 0)
        return err_set(err, errlen, errno, "%s: %s", rel, strerror(errno));
    *found = 1;
    buf_init(&b);
    buf_init(&enc);
    if (dir_ok(sp) != 0) {
        err_set(err, errlen, errno, "%s/%s: not a safe directory: %s", sp->path,
                JOURNAL_DIR, strerror(errno));
        goto out;
    }
    if (read_all(fd, &b) != 0) {
        err_set(err, errlen, errno, "%s: %s", rel, strerror(errno));
        goto out;
    }
    if (!(drop = calloc(env->nrcpt + 1, 1))) {
        err_set(err, errlen, ENOMEM, "%s: out of memory", rel);
        goto out;
    }
    /* only complete lines: the last one may be a write cut by a crash */
    for (p = b.data; p && (nl = memchr(p, '\n', b.len - (size_t)(p - b.data)));
         p = nl + 1) {
        if (record_matches(p, nl, env, &enc, &idx)) {
            *settled += !drop[idx];
            drop[idx] = 1;
        } else {
            bad++;
        }
    }
    if (bad)
        log_warn("%s: %zu journal record%s naming no recipient of the "
                 "entry: ignored",
                 name, bad, bad == 1 ? "" : "s");
    drop_marked(env, drop);
    rc = 0;
out:
    free(drop);
    buf_free(&b);
    buf_free(&enc);
    close(fd);
    return rc;
}

static int make_dir(int at, const char *rel)
{
    if (mkdirat(at, rel, DIR_MODE) != 0) {
        if (errno != EEXIST)
            return -1;
        return 0;
    }
    /* mkdir's mode went through the umask; the spool's rule is 2770 */
    return fchmodat(at, rel, DIR_MODE, 0);
}

int journal_open(struct spool *sp, const char *name, struct journal *j,
                 char *err, size_t errlen)
{
    char rel[QFILE_MAX + 32], dir[64];
    int fd;

    if (journal_path(name, rel, sizeof(rel)) != 0)
        return err_set(err, errlen, EINVAL, "%s: not an entry name", name);
    snprintf(dir, sizeof(dir), "%s/%.2s", JOURNAL_DIR, name + 18);
    if (dir_ok(sp) != 0)
        return err_set(err, errlen, errno, "%s/%s: not a safe directory: %s",
                       sp->path, JOURNAL_DIR, strerror(errno));
    fd = openat(sp->fd, rel, O_WRONLY | O_APPEND | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT) {
        if (make_dir(sp->fd, JOURNAL_DIR) != 0 || make_dir(sp->fd, dir) != 0)
            return err_set(err, errlen, errno, "mkdir %s: %s", dir,
                           strerror(errno));
        fd = openat(sp->fd, rel,
                    O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC,
                    FILE_MODE);
        /* Once per journal: without it a power loss could lose the
         * journal's name, and with it every record. */
        if (fd >= 0 && fsync_dir_at(sp->fd, dir) != 0) {
            int e = errno;
            close(fd);
            return err_set(err, errlen, e, "fsync %s: %s", dir, strerror(e));
        }
    }
    if (fd < 0)
        return err_set(err, errlen, errno, "%s: %s", rel, strerror(errno));
    j->fd = fd;
    j->unsynced = 0;
    return 0;
}

int journal_append(struct journal *j, size_t idx, const char *addr)
{
    struct buf b;
    ssize_t n;
    int rc = -1;

    buf_init(&b);
    if (buf_printf(&b, "%zu ", idx) != 0 || envelope_encode(&b, addr) != 0 ||
        buf_append(&b, "\n", 1) != 0)
        goto out;
    /* One write: O_APPEND puts the record at the end in one piece, and a
     * crash can only cut the last line, which readers ignore. */
    do
        n = write(j->fd, b.data, b.len);
    while (n < 0 && errno == EINTR);
    if (n < 0)
        goto out;
    if ((size_t)n != b.len) {
        errno = ENOSPC;
        goto out;
    }
    j->unsynced++;
    rc = 0;
out:
    buf_free(&b);
    return rc;
}

int journal_sync(struct journal *j)
{
    if (j->fd < 0 || j->unsynced == 0)
        return 0;
    if (fdatasync(j->fd) != 0)
        return -1;
    j->unsynced = 0;
    return 0;
}

void journal_close(struct journal *j)
{
    if (j->fd >= 0)
        close(j->fd);
    journal_init(j);
}

int journal_remove(struct spool *sp, const char *name)
{
    char rel[QFILE_MAX + 32];

    if (journal_path(name, rel, sizeof(rel)) != 0)
        return 0;
    /* No fsync of the directory: a journal that comes back after a power
     * loss names recipients of an entry that no longer exists, or that
     * the rewritten entry no longer holds at those positions. */
    if (unlinkat(sp->fd, rel, 0) != 0 && errno != ENOENT)
        return -1;
    return 0;
}

/* Is there a file NAME or NAME#... or NAME@... in QUEUE/BB? */
static int entry_exists(struct spool *sp, const char *bb, const char *name)
{
    static const char *const queues[] = {"out", "deferred", "hold", "bad",
                                         NULL};
    char rel[64];
    struct dirent *de;
    size_t n = strlen(name);
    int i, fd, found = 0;
    DIR *d;

    for (i = 0; queues[i] && !found; i++) {
        snprintf(rel, sizeof(rel), "%s/%s", queues[i], bb);
        fd = openat(sp->fd, rel, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
            continue;
        if (!(d = fdopendir(fd))) {
            close(fd);
            return 1; /* cannot tell: keep the journal */
        }
        while (!found && (de = readdir(d)) != NULL)
            found = strncmp(de->d_name, name, n) == 0 &&
                    (de->d_name[n] == 0 || de->d_name[n] == '#' ||
                     de->d_name[n] == '@');
        closedir(d);
    }
    return found;
}

static void clean_bucket(struct spool *sp, const char *bb, int max_age,
                         unsigned *removed)
{
    char rel[QFILE_MAX + 32];
    struct dirent *de;
    time_t now = time(NULL);
    DIR *d;
    int fd;

    snprintf(rel, sizeof(rel), "%s/%s", JOURNAL_DIR, bb);
    fd = openat(sp->fd, rel, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return;
    if (!(d = fdopendir(fd))) {
        close(fd);
        return;
    }
    while ((de = readdir(d)) != NULL) {
        struct stat st;

        if (de->d_name[0] == '.' ||
            fstatat(fd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 ||
            now - st.st_mtime <= max_age || entry_exists(sp, bb, de->d_name))
            continue;
        if (unlinkat(fd, de->d_name, 0) == 0) {
            log_info("removed orphaned journal %s/%s (no entry of that name)",
                     rel, de->d_name);
            (*removed)++;
        }
    }
    closedir(d);
}

int journal_clean(struct spool *sp, int max_age, unsigned *removed, char *err,
                  size_t errlen)
{
    struct dirent *de;
    DIR *d;
    int fd;

    fd = openat(sp->fd, JOURNAL_DIR,
                O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT)
        return 0; /* no journal was ever written */
    if (fd < 0 || !(d = fdopendir(fd))) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        return err_set(err, errlen, e, "%s/%s: %s", sp->path, JOURNAL_DIR,
                       strerror(e));
    }
    while ((de = readdir(d)) != NULL)
        if (strlen(de->d_name) == 2 && de->d_name[0] != '.')
            clean_bucket(sp, de->d_name, max_age, removed);
    closedir(d);
    return 0;
}
