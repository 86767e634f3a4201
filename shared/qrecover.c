/*
 * qrecover - crash recovery: entries left claimed by dead processes of
 * this node (or, after a lease takeover, by another node) are restored
 * with their recovery count raised, or set aside in bad/ past
 * max_recoveries; temporary files of dead processes are removed.
 * Contract in queue.h (section "recovery").
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
