/*
 * spool - the spool directory itself: opening and checking it (spool_open,
 * spool_init), our claim identity, the per-node slice locks and the
 * probe for another node on our slices, and inotify watches.  The
 * contract is in queue.h (section "spool"); mmq-spool(5) is the layout.
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
#include "fsutil.h"
#include "journal.h"
#include "log.h"
#include "proc.h"
#include "queue-int.h"
#include "queue.h"

const char *const queue_names[] = {"in",   "bounces", "out", "deferred",
                                   "hold", "bad",     NULL};

int queue_valid(const char *queue)
{
    int i;

    for (i = 0; queue_names[i]; i++)
        if (strcmp(queue, queue_names[i]) == 0)
            return 1;
    return 0;
}

/* fsync a directory of the spool (relative path). */
int queue_fsync_dir(int spoolfd, const char *rel)
{
    return fsync_dir_at(spoolfd, rel);
}

/* ---------------------------------------------------------------- spool */

/*
 * Our user and spool_user's uid are looked up once per process, in
 * spool_open(): every check of the ten queue directories and every claim
 * compares against them, and a passwd lookup per check cost mmq-filter a
 * read of /etc/passwd per directory.  A spool_user added to passwd while a
 * daemon runs is seen after its restart (SIGHUP re-reads the configuration
 * and opens the spool again).  spool_owner_ok() then only compares, which
 * is also what makes it safe in queue_list()'s reader threads.
 */
static void spool_learn_users(struct spool *sp)
{
    struct passwd *pw;

    sp->euid = geteuid();
    sp->user_known = 0;
    if (sp->cfg->spool_user && (pw = getpwnam(sp->cfg->spool_user)) != NULL) {
        sp->user_uid = pw->pw_uid;
        sp->user_known = 1;
    }
}

int spool_owner_ok(const struct spool *sp, uid_t uid)
{
    return uid == sp->euid || (sp->user_known && uid == sp->user_uid);
}

/* The checks of spool_check_dir() on a stat already made. */
static int spool_check_stat(const struct spool *sp, const struct stat *st,
                            const char *what, char *err, size_t errlen)
{
    if (!S_ISDIR(st->st_mode))
        return err_set(err, errlen, ENOTDIR, "%s/%s: not a directory", sp->path,
                       what);
    if (st->st_mode & S_IWOTH)
        return err_set(err, errlen, EPERM,
                       "%s/%s: world-writable: refusing an unsafe spool",
                       sp->path, what);
    if (!spool_owner_ok(sp, st->st_uid)) {
        /* say what to do: run as the owner (or name it in spool_user) */
        struct passwd pwbuf, *pw = NULL;
        char owner[64], buf[4096];

        if (getpwuid_r(st->st_uid, &pwbuf, buf, sizeof(buf), &pw) != 0)
            pw = NULL;
        snprintf(owner, sizeof(owner), "%s", pw ? pw->pw_name : "OWNER");
        return err_set(err, errlen, EPERM,
                       "%s/%s: owned by uid %ld (%s), not by us (uid %ld) nor "
                       "by spool_user: refusing an unsafe spool; run as the "
                       "spool's owner: runuser -u %s -- %s ...",
                       sp->path, what, (long)st->st_uid, owner, (long)sp->euid,
                       owner, log_progname());
    }
    return 0;
}

int spool_check_dir(const struct spool *sp, int fd, const char *what, char *err,
                    size_t errlen)
{
    struct stat st;

    if (fstat(fd, &st) != 0)
        return err_set(err, errlen, errno, "%s/%s: %s", sp->path, what,
                       strerror(errno));
    return spool_check_stat(sp, &st, what, err, errlen);
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
    spool_learn_users(sp);
    if (spool_check_dir(sp, sp->fd, ".", err, errlen) != 0)
        goto bad;
    for (i = -3; queue_names[i < 0 ? 0 : i]; i++) {
        const char *d = i == -3   ? "tmp"
                        : i == -2 ? "lock"
                        : i == -1 ? "stage"
                                  : queue_names[i];
        /* One fstatat() per queue, not open+fstat+close: mmq-filter pays
         * this once per message.  The refusals are those of an open with
         * O_DIRECTORY | O_NOFOLLOW (a symlink: ELOOP, not a directory:
         * ENOTDIR); the queues are then reached by name below sp->fd, so
         * the check is as strong as before. */
        struct stat st;
        int e = 0;

        if (fstatat(sp->fd, d, &st, AT_SYMLINK_NOFOLLOW) != 0)
            e = errno;
        else if (S_ISLNK(st.st_mode))
            e = ELOOP;
        else if (!S_ISDIR(st.st_mode))
            e = ENOTDIR;
        if (e) {
            err_set(err, errlen, e == ELOOP || e == ENOTDIR ? EPERM : e,
                    "spool %s: %s/: %s%s", sp->path, d, strerror(e),
                    e == ENOENT ? " (complete it with: mmqctl init)" : "");
            goto bad;
        }
        if (spool_check_stat(sp, &st, d, err, errlen) != 0)
            goto bad;
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
