/*
 * counters - per-node delivery and bounce counters in SPOOL/stats.  See
 * counters.h for the contract.
 */
#include "autoconf.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "counters.h"
#include "log.h"

const char *const counter_names[CNT_N] = {"sent",
                                          "deferred",
                                          "bounced",
                                          "expired",
                                          "dsn",
                                          "bounces_received",
                                          "bounce_entries",
                                          "bounce_failed",
                                          "bounce_delayed",
                                          "bounce_policy",
                                          "bounce_not_bounce",
                                          "bounce_unrecognised",
                                          "bounce_not_member",
                                          "bounce_disabled",
                                          "bounce_warnings",
                                          "bounce_probes",
                                          "bounce_removed"};

static int have_dir; /* SPOOL/stats exists (one spool per process) */

#define LINE_MAX_LEN 64
#define FILE_MAX (CNT_N * LINE_MAX_LEN)

/* Parse "NAME VALUE" lines; unknown names and bad lines are skipped. */
static void parse(const char *buf, uint64_t v[CNT_N])
{
    const char *p = buf;

    memset(v, 0, CNT_N * sizeof(v[0]));
    while (*p) {
        const char *nl = strchr(p, '\n'), *sp = strchr(p, ' ');
        char *end;

        if (!nl)
            break; /* a torn last line: ignored */
        if (sp && sp < nl)
            for (int k = 0; k < CNT_N; k++)
                if ((size_t)(sp - p) == strlen(counter_names[k]) &&
                    strncmp(p, counter_names[k], (size_t)(sp - p)) == 0) {
                    uint64_t x = strtoull(sp + 1, &end, 10);
                    if (end == nl)
                        v[k] = x;
                }
        p = nl + 1;
    }
}

static int read_all(int fd, char *buf, size_t cap)
{
    ssize_t n = pread(fd, buf, cap - 1, 0);

    if (n < 0)
        return -1;
    buf[n] = 0;
    return 0;
}

int counters_add(struct spool *sp, const uint64_t delta[CNT_N], char *err,
                 size_t errlen)
{
    char rel[128], buf[FILE_MAX + 1];
    uint64_t v[CNT_N];
    size_t len = 0;
    int fd, k, rc = -1;

    if (!have_dir && mkdirat(sp->fd, "stats", 02770) == 0)
        (void)fchmodat(sp->fd, "stats", 02770, 0); /* past the umask */
    else if (!have_dir && errno != EEXIST)
        return err_set(err, errlen, errno, "%s/stats: %s", sp->path,
                       strerror(errno));
    have_dir = 1; /* once per process: a worker adds after every transaction */
    snprintf(rel, sizeof(rel), "stats/%s", sp->cfg->node);
    fd = openat(sp->fd, rel, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0660);
    if (fd < 0)
        return err_set(err, errlen, errno, "%s/%s: %s", sp->path, rel,
                       strerror(errno));
    if (flock(fd, LOCK_EX) != 0 || read_all(fd, buf, sizeof(buf)) != 0) {
        err_set(err, errlen, errno, "%s/%s: %s", sp->path, rel,
                strerror(errno));
        goto out;
    }
    if (buf[0] == 0)
        (void)fchmod(fd, 0660); /* new: writable by the spool's group */
    parse(buf, v);
    for (k = 0; k < CNT_N; k++)
        len += (size_t)snprintf(buf + len, sizeof(buf) - len,
                                "%s %020" PRIu64 "\n", counter_names[k],
                                v[k] + delta[k]);
    if (pwrite(fd, buf, len, 0) != (ssize_t)len) {
        err_set(err, errlen, errno ? errno : EIO, "%s/%s: write: %s", sp->path,
                rel, strerror(errno ? errno : EIO));
        goto out;
    }
    rc = 0;
out:
    close(fd); /* releases the lock */
    return rc;
}

int counters_read(struct spool *sp,
                  void (*fn)(void *arg, const char *node,
                             const uint64_t v[CNT_N]),
                  void *arg, char *err, size_t errlen)
{
    int dfd = openat(sp->fd, "stats", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    struct dirent *de;
    DIR *d;

    if (dfd < 0)
        return errno == ENOENT ? 0
                               : err_set(err, errlen, errno, "%s/stats: %s",
                                         sp->path, strerror(errno));
    if (!(d = fdopendir(dfd))) {
        close(dfd);
        return err_set(err, errlen, errno, "%s/stats: %s", sp->path,
                       strerror(errno));
    }
    while ((de = readdir(d)) != NULL) {
        char buf[FILE_MAX + 1];
        uint64_t v[CNT_N];
        int fd;

        if (!config_valid_node(de->d_name))
            continue;
        fd = openat(dfd, de->d_name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
            continue;
        if (flock(fd, LOCK_SH) == 0 && read_all(fd, buf, sizeof(buf)) == 0) {
            parse(buf, v);
            fn(arg, de->d_name, v);
        }
        close(fd);
    }
    closedir(d);
    return 0;
}
