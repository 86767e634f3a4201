/*
 * dedup - marks of accepted posts, to drop a post queued twice.  See
 * dedup.h for the design and the crash and cluster rules.
 */
#include "autoconf.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "dedup.h"
#include "digest.h"
#include "log.h"

#define DUP_DIR "dup"
#define DIR_MODE (S_ISGID | 0770)

static unsigned long dup_counter = 1000000000UL; /* apart from qwriter.c's */

/* mkdir rel in the spool if missing (dup/ and its buckets are made on
 * first use, so spools made before need no "mmqctl init"). */
static int ensure_dir(struct spool *sp, const char *rel, char *err,
                      size_t errlen)
{
    if (mkdirat(sp->fd, rel, DIR_MODE) != 0 && errno != EEXIST)
        return err_set(err, errlen, errno, "mkdir %s/%s: %s", sp->path, rel,
                       strerror(errno));
    return 0;
}

/* The owner named in the mark at rel into first; -1 if unreadable. */
static int read_mark(struct spool *sp, const char *rel, char *first)
{
    char buf[QNAME_LEN + 2];
    ssize_t n;
    int fd =
        openat(sp->fd, rel, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);

    if (fd < 0)
        return -1;
    n = read(fd, buf, sizeof(buf));
    close(fd);
    if (n < QNAME_LEN)
        return -1;
    memcpy(first, buf, QNAME_LEN);
    first[QNAME_LEN] = 0;
    return 0;
}

/*
 * Remove the mark at rel if it is older than window, by renaming it to a
 * name of ours first: of several removers only one gets it, and if what
 * it got is in fact fresh (replaced meanwhile), it is linked back.
 * 1: removed; 0: not (fresh, or gone).
 */
static int remove_expired(struct spool *sp, const char *rel, int window,
                          time_t now)
{
    char mine[QFILE_MAX + 64];
    struct stat st;

    if (fstatat(sp->fd, rel, &st, AT_SYMLINK_NOFOLLOW) != 0 ||
        now - st.st_mtime < window)
        return 0;
    snprintf(mine, sizeof(mine), "%s.expired%s", rel, sp->token);
    if (renameat(sp->fd, rel, sp->fd, mine) != 0)
        return 0;
    if (fstatat(sp->fd, mine, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
        now - st.st_mtime < window) {
        (void)linkat(sp->fd, mine, sp->fd, rel, 0); /* EEXIST: newer still */
        unlinkat(sp->fd, mine, 0);
        return 0;
    }
    unlinkat(sp->fd, mine, 0);
    return 1;
}

/* Write the mark for entry complete in tmp/ and link it to rel.
 * 0: made; 1: another made it first (EEXIST); -1: error. */
static int make_mark(struct spool *sp, const char *rel, const char *entry,
                     char *err, size_t errlen)
{
    char tmp[QFILE_MAX + 64], line[QNAME_LEN + 2];
    struct timeval tv;
    int fd, rc, e;
    size_t n = (size_t)snprintf(line, sizeof(line), "%s\n", entry);

    gettimeofday(&tv, NULL);
    /* a tmp/ name spool_clean_tmp() knows: removed if we die right here */
    snprintf(tmp, sizeof(tmp), "tmp/%lld.%06d%s#%lu", (long long)tv.tv_sec,
             (int)tv.tv_usec, sp->token, ++dup_counter);
    fd = openat(sp->fd, tmp,
                O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0640);
    if (fd < 0)
        return err_set(err, errlen, errno, "%s/%s: %s", sp->path, tmp,
                       strerror(errno));
    rc = write(fd, line, n) == (ssize_t)n && fsync(fd) == 0 ? 0 : -1;
    e = errno;
    if (close(fd) != 0 && rc == 0) {
        rc = -1;
        e = errno;
    }
    if (rc == 0 && linkat(sp->fd, tmp, sp->fd, rel, 0) != 0) {
        e = errno;
        rc = e == EEXIST ? 1 : -1;
    }
    unlinkat(sp->fd, tmp, 0);
    if (rc < 0)
        return err_set(err, errlen, e, "duplicate mark %s: %s", rel,
                       strerror(e));
    return rc;
}

int dedup_check(struct spool *sp, int window, const char *list,
                const char *msgid, const void *body, size_t blen,
                const char *entry, char *first, char *err, size_t errlen)
{
    char body_hex[DIGEST_HEX_LEN + 1], hex[DIGEST_HEX_LEN + 1];
    char bucket[16], rel[64];
    struct digest d;
    int tries;

    if (window <= 0 || !msgid || !msgid[0])
        return 0;
    digest_hex_of(body, blen, body_hex);
    digest_init(&d);
    digest_update(&d, list, strlen(list) + 1); /* the NULs separate */
    digest_update(&d, msgid, strlen(msgid) + 1);
    digest_update(&d, body_hex, sizeof(body_hex));
    digest_hex(&d, hex);
    snprintf(bucket, sizeof(bucket), DUP_DIR "/%.2s", hex);
    snprintf(rel, sizeof(rel), "%s/%s", bucket, hex);
    if (ensure_dir(sp, DUP_DIR, err, errlen) != 0 ||
        ensure_dir(sp, bucket, err, errlen) != 0)
        return -1;
    /* Bounded: each round either decides, or saw a mark vanish or
     * expire under it, which a fourth time in a row would be odd. */
    for (tries = 0; tries < 4; tries++) {
        time_t now = time(NULL);
        int rc;

        if (read_mark(sp, rel, first) == 0) {
            if (strcmp(first, entry) == 0)
                return 0; /* our own: a rerun after a crash */
            if (!remove_expired(sp, rel, window, now))
                return 1; /* fresh (or it vanished: read again) */
            continue;
        }
        rc = make_mark(sp, rel, entry, err, errlen);
        if (rc < 0)
            return -1;
        if (rc == 0)
            return spool_sync_dir(sp, bucket, err, errlen) != 0 ? -1 : 0;
        /* EEXIST: another process (node) marked it first: read it */
    }
    return err_set(err, errlen, EAGAIN,
                   "duplicate mark %s keeps changing: try later", rel);
}

unsigned dedup_expire(struct spool *sp, int window)
{
    time_t now = time(NULL);
    unsigned removed = 0, b;

    if (window <= 0)
        return 0;
    for (b = 0; b < 256; b++) {
        char bucket[16], rel[16 + 256];
        struct dirent *de;
        DIR *d;
        int fd;

        snprintf(bucket, sizeof(bucket), DUP_DIR "/%02x", b);
        fd = openat(sp->fd, bucket,
                    O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
            continue; /* never used */
        if (!(d = fdopendir(fd))) {
            close(fd);
            continue;
        }
        while ((de = readdir(d)) != NULL) {
            struct stat st;

            snprintf(rel, sizeof(rel), "%s/%s", bucket, de->d_name);
            if (strlen(de->d_name) == DIGEST_HEX_LEN)
                removed += (unsigned)remove_expired(sp, rel, window, now);
            else if (strstr(de->d_name, ".expired#") &&
                     fstatat(fd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
                     now - st.st_mtime >= window)
                unlinkat(fd, de->d_name, 0); /* a remover died */
        }
        closedir(d);
    }
    if (removed)
        log_info("removed %u duplicate marks older than duplicate_window "
                 "(%d s)",
                 removed, window);
    return removed;
}
