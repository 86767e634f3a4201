/*
 * held - deciding a held post, one decider per post.  See held.h.
 */
#include "autoconf.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "held.h"
#include "log.h"

int held_find(struct spool *sp, const char *name, enum held_where *where,
              char *err, size_t errlen)
{
    char dir[16], ready[QNAME_LEN + 8];
    size_t rl;
    struct dirent *de;
    DIR *dp;
    int d;

    *where = HELD_GONE;
    if (strlen(name) != QNAME_LEN)
        return err_set(err, errlen, EINVAL, "not an entry name");
    snprintf(dir, sizeof(dir), "hold/%.2s", name + 18);
    snprintf(ready, sizeof(ready), "%s@in", name);
    rl = strlen(ready);
    if ((d = openat(sp->fd, dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
        return errno == ENOENT ? 0
                               : err_set(err, errlen, errno, "%s: %s", dir,
                                         strerror(errno));
    if (!(dp = fdopendir(d))) {
        close(d);
        return err_set(err, errlen, errno, "%s: %s", dir, strerror(errno));
    }
    while ((de = readdir(dp)) != NULL && *where != HELD_READY)
        if (strncmp(de->d_name, ready, rl) == 0)
            *where = de->d_name[rl] == 0     ? HELD_READY
                     : de->d_name[rl] == '#' ? HELD_CLAIMED
                                             : *where;
    closedir(dp);
    return 0;
}

int held_claim(struct spool *sp, const char *name, struct claim *c, char *err,
               size_t errlen)
{
    char fname[QNAME_LEN + 8];

    snprintf(fname, sizeof(fname), "%s@in", name);
    return queue_claim(sp, "hold", fname, c, err, errlen);
}

int held_release(struct claim *c, char *err, size_t errlen)
{
    struct envelope env;
    struct stat st;
    int64_t now = (int64_t)time(NULL);
    off_t off;
    int rc;

    /* the mtime of a held file is when it was held */
    if (fstat(c->fd, &st) != 0)
        return err_set(err, errlen, errno, "fstat: %s", strerror(errno));
    if (queue_claim_read(c, &env, &off, err, errlen) != 0)
        return -1;
    if (now > (int64_t)st.st_mtime)
        env.held += now - (int64_t)st.st_mtime;
    if (strcmp(c->qn.origin, "in") == 0)
        env.approved = 1;
    rc = queue_rewrite(c, &env, err, errlen);
    envelope_free(&env);
    if (rc != 0 || queue_touch(c, now, err, errlen) != 0)
        return -1;
    return queue_move(c, c->qn.origin, err, errlen);
}

/* One line of a decision file: no control bytes, no line end. */
static void line_of(char *out, size_t len, const char *s)
{
    size_t o = 0;

    for (; s && *s && o + 1 < len; s++)
        out[o++] = (unsigned char)*s < 0x20 || *s == 0x7f ? ' ' : *s;
    out[o] = 0;
    if (!out[0] && len > 1)
        out[0] = '-', out[1] = 0;
}

int held_decision_write(struct member_store *ms, const char *name,
                        const struct held_decision *d, char *err, size_t errlen)
{
    char tmp[300], rel[QNAME_LEN + 16], text[4 * MEMBER_ADDR_MAX + 64];
    char by[MEMBER_ADDR_MAX], poster[MEMBER_ADDR_MAX];
    char subject[MEMBER_DIAG_MAX], action[16];
    int fd, e, n;

    if (strlen(name) != QNAME_LEN || strchr(name, '/'))
        return err_set(err, errlen, EINVAL, "not an entry name");
    line_of(by, sizeof(by), d->by);
    line_of(action, sizeof(action), d->action);
    line_of(poster, sizeof(poster), d->poster);
    line_of(subject, sizeof(subject), d->subject);
    n = snprintf(text, sizeof(text),
                 "by %s\naction %s\nposter %s\nsubject %s\n", by, action,
                 poster, subject);
    snprintf(tmp, sizeof(tmp), "tmp/%s.h%u", ms->token, ms->seq++);
    snprintf(rel, sizeof(rel), "held/%s", name);
    if (mkdirat(ms->fd, "held", 02770) != 0 && errno != EEXIST)
        return err_set(err, errlen, errno, "members/%s/held: %s", ms->list,
                       strerror(errno));
    fd = openat(ms->fd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0660);
    if (fd < 0)
        return err_set(err, errlen, errno, "members/%s/%s: %s", ms->list, tmp,
                       strerror(errno));
    if (write(fd, text, (size_t)n) != n || fsync(fd) != 0) {
        e = errno ? errno : EIO;
        close(fd);
        unlinkat(ms->fd, tmp, 0);
        return err_set(err, errlen, e, "members/%s/%s: %s", ms->list, tmp,
                       strerror(e));
    }
    close(fd);
    /* rename, not link: a dead decider's record is replaced (held.h) */
    if (renameat(ms->fd, tmp, ms->fd, rel) != 0) {
        e = errno;
        unlinkat(ms->fd, tmp, 0);
        return err_set(err, errlen, e, "members/%s/%s: %s", ms->list, rel,
                       strerror(e));
    }
    /* durable before the act it permits */
    if ((fd = openat(ms->fd, "held", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0 ||
        fsync(fd) != 0) {
        e = errno;
        if (fd >= 0)
            close(fd);
        return err_set(err, errlen, e, "members/%s/held: fsync: %s", ms->list,
                       strerror(e));
    }
    close(fd);
    return 0;
}

static int value(const char *text, const char *key, char *out, size_t len)
{
    size_t kl = strlen(key);
    const char *p;

    for (p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
        if (strncmp(p, key, kl) == 0 && p[kl] == ' ') {
            const char *v = p + kl + 1, *nl = strchr(v, '\n');
            size_t n = nl ? (size_t)(nl - v) : strlen(v);
            if (n >= len)
                n = len - 1;
            memcpy(out, v, n);
            out[n] = 0;
            return 0;
        }
    return -1;
}

int held_decision_read(struct member_store *ms, const char *name,
                       struct held_decision *d)
{
    char rel[QNAME_LEN + 16], text[4 * MEMBER_ADDR_MAX + 64];
    ssize_t n;
    int fd;

    memset(d, 0, sizeof(*d));
    if (strlen(name) != QNAME_LEN || strchr(name, '/')) {
        errno = EINVAL;
        return -1;
    }
    snprintf(rel, sizeof(rel), "held/%s", name);
    if ((fd = openat(ms->fd, rel, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) < 0)
        return errno == ENOENT ? 1 : -1;
    n = read(fd, text, sizeof(text) - 1);
    close(fd);
    if (n < 0)
        return -1;
    text[n] = 0;
    if (value(text, "by", d->by, sizeof(d->by)) != 0 ||
        value(text, "action", d->action, sizeof(d->action)) != 0) {
        errno = EINVAL;
        return -1;
    }
    value(text, "poster", d->poster, sizeof(d->poster));
    value(text, "subject", d->subject, sizeof(d->subject));
    return 0;
}
