/*
 * qcheck - read-only consistency check of the spool.  See qcheck.h.
 */
#include "autoconf.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include "envelope.h"
#include "lease.h"
#include "proc.h"
#include "qcheck.h"

struct ctx {
    struct spool *sp;
    qcheck_report report;
    void *arg;
    uid_t spool_uid; /* uid of spool_user, or (uid_t)-1 */
    gid_t gid;       /* group of the spool directory */
    time_t now;
};

static void say(struct ctx *x, enum qcheck_severity sev, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void say(struct ctx *x, enum qcheck_severity sev, const char *fmt, ...)
{
    char text[1024];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    x->report(x->arg, sev, text);
}

static int owner_ok(const struct ctx *x, uid_t uid)
{
    return uid == geteuid() || uid == x->spool_uid;
}

/* ----------------------------------------------------------- directories */

/* Check directory rel; 0 if it can be read further. */
static int check_dir(struct ctx *x, const char *rel)
{
    struct stat st;

    if (fstatat(x->sp->fd, rel, &st, AT_SYMLINK_NOFOLLOW) != 0) {
        say(x, QC_PROBLEM, "%s/: %s (repair with: mmqctl init)", rel,
            strerror(errno));
        return -1;
    }
    if (!S_ISDIR(st.st_mode)) {
        say(x, QC_PROBLEM, "%s: not a directory%s", rel,
            S_ISLNK(st.st_mode) ? " (a symbolic link)" : "");
        return -1;
    }
    if ((st.st_mode & 07777) != (S_ISGID | 0770))
        say(x, QC_PROBLEM,
            "%s/: mode %04o, want 2770 (repair with: mmqctl "
            "init)",
            rel, (unsigned)(st.st_mode & 07777));
    if (!owner_ok(x, st.st_uid))
        say(x, QC_PROBLEM, "%s/: owned by uid %ld, not by the spool owner", rel,
            (long)st.st_uid);
    if (st.st_gid != x->gid)
        say(x, QC_PROBLEM, "%s/: group %ld, not the spool's group %ld", rel,
            (long)st.st_gid, (long)x->gid);
    return 0;
}

static DIR *open_dir(struct ctx *x, const char *rel)
{
    int fd =
        openat(x->sp->fd, rel, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    DIR *d;

    if (fd < 0) {
        say(x, QC_PROBLEM, "%s/: %s", rel, strerror(errno));
        return NULL;
    }
    if (!(d = fdopendir(fd))) {
        say(x, QC_PROBLEM, "%s/: %s", rel, strerror(errno));
        close(fd);
    }
    return d;
}

/* ---------------------------------------------------------------- files */

static void check_file_stat(struct ctx *x, const char *rel,
                            const struct stat *st)
{
    if (!S_ISREG(st->st_mode))
        say(x, QC_PROBLEM, "%s: not a regular file", rel);
    else if (st->st_mode & S_IWOTH)
        say(x, QC_PROBLEM, "%s: mode %04o: world-writable", rel,
            (unsigned)(st->st_mode & 07777));
    if (!owner_ok(x, st->st_uid))
        say(x, QC_PROBLEM, "%s: owned by uid %ld, not by the spool owner", rel,
            (long)st->st_uid);
}

static void check_claim(struct ctx *x, const char *rel, const struct qname *qn)
{
    if (strcmp(qn->node, x->sp->cfg->node) != 0)
        say(x, QC_NOTE,
            "%s: claimed by process %ld of node %s (only that "
            "node can tell whether it runs)",
            rel, (long)qn->pid, qn->node);
    else if (!proc_alive(qn->pid, qn->start))
        say(x, QC_PROBLEM,
            "%s: claimed by process %ld, which no longer "
            "runs (restore with: mmqctl recover)",
            rel, (long)qn->pid);
}

static void check_envelope(struct ctx *x, const char *rel)
{
    char why[QUEUE_ERR_MAX];
    struct envelope env;
    off_t off;
    int fd =
        openat(x->sp->fd, rel, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);

    if (fd < 0) {
        if (errno != ENOENT) /* ENOENT: claimed or finished meanwhile */
            say(x, QC_PROBLEM, "%s: %s", rel, strerror(errno));
        return;
    }
    if (envelope_read(fd, &env, &off, why, sizeof(why)) != 0)
        say(x, QC_PROBLEM, "%s: unreadable entry: %s", rel, why);
    else
        envelope_free(&env);
    close(fd);
}

static void check_entry(struct ctx *x, const char *queue, const char *bucket,
                        const char *fname)
{
    char rel[300];
    struct qname qn;
    struct stat st;

    snprintf(rel, sizeof(rel), "%s/%s/%s", queue, bucket, fname);
    if (fstatat(x->sp->fd, rel, &st, AT_SYMLINK_NOFOLLOW) != 0)
        return; /* renamed meanwhile */
    check_file_stat(x, rel, &st);
    if (qname_parse(fname, &qn) != 0) {
        say(x, QC_PROBLEM,
            "%s: not an entry name (ignored by every "
            "program)",
            rel);
        return;
    }
    if (strncmp(qn.hash, bucket, 2) != 0)
        say(x, QC_PROBLEM,
            "%s: in the wrong bucket (ignored by every "
            "program)",
            rel);
    if ((strcmp(queue, "hold") == 0 || strcmp(queue, "bad") == 0) !=
        (qn.origin[0] != 0))
        say(x, QC_PROBLEM, "%s: %s", rel,
            qn.origin[0] ? "an origin suffix outside hold/ and bad/"
                         : "no origin suffix (@QUEUE)");
    if (qn.kind == QN_CLAIMED)
        check_claim(x, rel, &qn);
    else if (S_ISREG(st.st_mode))
        check_envelope(x, rel);
}

static void check_bucket(struct ctx *x, const char *queue, const char *bucket)
{
    char rel[64];
    struct dirent *de;
    DIR *d;

    snprintf(rel, sizeof(rel), "%s/%s", queue, bucket);
    if (check_dir(x, rel) != 0 || !(d = open_dir(x, rel)))
        return;
    while ((de = readdir(d)) != NULL)
        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
            check_entry(x, queue, bucket, de->d_name);
    closedir(d);
}

static int is_bucket_name(const char *s)
{
    return strlen(s) == 2 && strspn(s, "0123456789abcdef") == 2;
}

static void check_queue(struct ctx *x, const char *queue)
{
    unsigned char seen[SLICE_BUCKETS] = {0};
    char bucket[8];
    struct dirent *de;
    unsigned b;
    DIR *d;

    if (check_dir(x, queue) != 0 || !(d = open_dir(x, queue)))
        return;
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        if (!is_bucket_name(de->d_name)) {
            say(x, QC_PROBLEM,
                "%s/%s: not a bucket (ignored by every "
                "program)",
                queue, de->d_name);
            continue;
        }
        b = (unsigned)strtoul(de->d_name, NULL, 16);
        seen[b] = 1;
    }
    closedir(d);
    for (b = 0; b < SLICE_BUCKETS; b++) {
        snprintf(bucket, sizeof(bucket), "%02x", b);
        if (!seen[b])
            say(x, QC_PROBLEM, "%s/%s/: missing (repair with: mmqctl init)",
                queue, bucket);
        else
            check_bucket(x, queue, bucket);
    }
}

/* ------------------------------------------------------------------ tmp */

/* tmp names: SEC.USEC#NODE#PID#START#COUNTER */
static void check_tmp_file(struct ctx *x, const char *name)
{
    char rel[300], node[64];
    unsigned long long start;
    struct stat st;
    long pid;
    int n = 0;

    snprintf(rel, sizeof(rel), "tmp/%s", name);
    if (fstatat(x->sp->fd, rel, &st, AT_SYMLINK_NOFOLLOW) != 0)
        return; /* committed or removed meanwhile */
    check_file_stat(x, rel, &st);
    if (sscanf(name, "%*d.%*d#%63[^#]#%ld#%llu#%*u%n", node, &pid, &start,
               &n) != 3 ||
        n == 0 || name[n] != 0) {
        say(x, QC_PROBLEM, "%s: not a temporary file name", rel);
        return;
    }
    if (x->now - st.st_mtime > x->sp->cfg->tmp_max_age)
        say(x, QC_PROBLEM,
            "%s: orphaned temporary file, not modified for "
            "%lld s (remove with: mmqctl recover)",
            rel, (long long)(x->now - st.st_mtime));
    else if (strcmp(node, x->sp->cfg->node) == 0 &&
             !proc_alive((pid_t)pid, start))
        say(x, QC_PROBLEM,
            "%s: orphaned temporary file of process %ld, "
            "which no longer runs (remove with: mmqctl recover)",
            rel, pid);
}

static void check_tmp(struct ctx *x)
{
    struct dirent *de;
    DIR *d;

    if (check_dir(x, "tmp") != 0 || !(d = open_dir(x, "tmp")))
        return;
    while ((de = readdir(d)) != NULL)
        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
            check_tmp_file(x, de->d_name);
    closedir(d);
}

/* --------------------------------------------------------------- slices */

/*
 * Is a flock(2) lock held on this file?  Read from /proc/locks rather
 * than tested by taking a lock: a test lock, however brief, would make an
 * agent starting at that instant find its slice busy and exit.
 * Lines look like "1: FLOCK  ADVISORY  WRITE 1861 fe:00:10980348 0 EOF"
 * (a waiter has "->" after the number).  -1: /proc/locks unreadable.
 */
static int flock_held(dev_t dev, ino_t ino)
{
    char line[512];
    FILE *fp = fopen("/proc/locks", "r");
    int held = 0;

    if (!fp)
        return -1;
    while (!held && fgets(line, sizeof(line), fp)) {
        char *save = NULL, *tok = strtok_r(line, " \t\n", &save);
        unsigned maj, min, k;
        unsigned long long inode;

        for (k = 0; tok && k < 5; k++) {
            tok = strtok_r(NULL, " \t\n", &save);
            if (k == 0 && tok && strcmp(tok, "->") == 0)
                tok = strtok_r(NULL, " \t\n", &save);
            if (k == 0 && (!tok || strcmp(tok, "FLOCK") != 0))
                tok = NULL;
        }
        if (tok && sscanf(tok, "%x:%x:%llu", &maj, &min, &inode) == 3)
            held = maj == major(dev) && min == minor(dev) &&
                   inode == (unsigned long long)ino;
    }
    fclose(fp);
    return held;
}

/* 1: lock/STAGE.NODE.I is held by a process; 0: not (or no file). */
static int slice_locked(struct ctx *x, const char *stage, unsigned i)
{
    char rel[160];
    struct stat st;
    int fd, held;

    snprintf(rel, sizeof(rel), "lock/%s.%s.%u", stage, x->sp->cfg->node, i);
    if (fstatat(x->sp->fd, rel, &st, AT_SYMLINK_NOFOLLOW) != 0)
        return 0;
    held = flock_held(st.st_dev, st.st_ino);
    if (held >= 0)
        return held;
    /* no /proc/locks: test with a shared lock, released at once */
    fd = openat(x->sp->fd, rel, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return 0;
    held = flock(fd, LOCK_SH | LOCK_NB) != 0 && errno == EWOULDBLOCK;
    close(fd);
    return held;
}

/* 1: some other node has a lock file for slice i of stage. */
static int slice_foreign(struct ctx *x, const char *stage, unsigned i)
{
    char suffix[32], prefix[64];
    struct dirent *de;
    int found = 0;
    DIR *d;
    int fd = openat(x->sp->fd, "lock", O_RDONLY | O_DIRECTORY | O_CLOEXEC);

    if (fd < 0 || !(d = fdopendir(fd))) {
        if (fd >= 0)
            close(fd);
        return 0;
    }
    snprintf(prefix, sizeof(prefix), "%s.", stage);
    snprintf(suffix, sizeof(suffix), ".%u", i);
    while (!found && (de = readdir(d)) != NULL) {
        size_t n = strlen(de->d_name), s = strlen(suffix);
        const char *node = de->d_name + strlen(prefix);

        found =
            strncmp(de->d_name, prefix, strlen(prefix)) == 0 && n > s &&
            strcmp(de->d_name + n - s, suffix) == 0 &&
            !(strncmp(node, x->sp->cfg->node, strlen(x->sp->cfg->node)) == 0 &&
              node + strlen(x->sp->cfg->node) == de->d_name + n - s);
    }
    closedir(d);
    return found;
}

/* Without a nodes list: another node's runner on slices we serve. */
static void check_overlap(struct ctx *x, const char *stage,
                          const struct slice_set *set)
{
    struct slice_set ov = {0, NULL};
    char others[256];
    unsigned i;

    if (spool_slice_overlap(x->sp, stage, set, &ov, others, sizeof(others)) > 0)
        for (i = 0; i < ov.n; i++)
            if (ov.on[i])
                say(x, QC_PROBLEM,
                    "slice %u of %u: run by mmq-%s on this node (%s) and on "
                    "node %s too (no nodes list keeps them apart)",
                    i, ov.n, stage, x->sp->cfg->node, others);
    slice_set_free(&ov);
}

/* Without a cluster: the slices lacking a runner, one line per kind and
 * stage with their ranges (not one line per slice). */
static void check_stage_slices(struct ctx *x, const char *stage,
                               const char *spec)
{
    struct slice_set set, idle = {0, NULL}, orphan = {0, NULL};
    char why[128], r[512];
    unsigned n = (unsigned)x->sp->cfg->slices, i, nidle = 0, norphan = 0;

    if (slice_set_parse(spec, n, &set, why, sizeof(why)) != 0) {
        say(x, QC_PROBLEM, "%s slices \"%s\": %s", stage, spec, why);
        return;
    }
    if (slice_set_parse("none", n, &idle, why, sizeof(why)) != 0 ||
        slice_set_parse("none", n, &orphan, why, sizeof(why)) != 0) {
        say(x, QC_PROBLEM, "%s slices: %s", stage, why);
        goto out;
    }
    check_overlap(x, stage, &set);
    for (i = 0; i < n; i++) {
        if (set.on[i] && !slice_locked(x, stage, i))
            idle.on[i] = 1, nidle++;
        else if (!set.on[i] && !slice_foreign(x, stage, i))
            orphan.on[i] = 1, norphan++;
    }
    if (nidle)
        say(x, QC_PROBLEM,
            "slice%s %s of %u: no mmq-%s runs for %s on this node (%s)",
            nidle == 1 ? "" : "s", slice_set_format(&idle, r, sizeof(r)), n,
            stage, nidle == 1 ? "it" : "them", x->sp->cfg->node);
    if (norphan)
        say(x, QC_PROBLEM,
            "slice%s %s of %u: not served by mmq-%s on this node, and no "
            "other node has ever locked %s",
            norphan == 1 ? "" : "s", slice_set_format(&orphan, r, sizeof(r)), n,
            stage, norphan == 1 ? "it" : "them");
out:
    slice_set_free(&idle);
    slice_set_free(&orphan);
    slice_set_free(&set);
}

int qcheck_slice_running(struct spool *sp, const char *stage, unsigned i)
{
    struct ctx x;

    memset(&x, 0, sizeof(x));
    x.sp = sp;
    return slice_locked(&x, stage, i);
}

/*
 * In a cluster the leases say who runs a slice: a slice nobody holds, or
 * whose holder has not renewed for longer than a standby would wait, has
 * no agent.  The age is the holder's own clock against ours: a clock
 * offset between the nodes shows here (and only here).
 */
static void check_cluster_slices(struct ctx *x, const char *stage)
{
    const struct mmq_config *cfg = x->sp->cfg;
    unsigned n = (unsigned)cfg->slices, i;
    struct lease_info *li = calloc(n, sizeof(*li));
    char err[QUEUE_ERR_MAX];

    if (!li || lease_info(x->sp, stage, li, err, sizeof(err)) != 0) {
        say(x, QC_PROBLEM, "leases of %s: %s", stage,
            li ? err : "out of memory");
        free(li);
        return;
    }
    for (i = 0; i < n; i++) {
        const struct mmq_node *owner = config_slice_owner(cfg, stage, i);
        long long age = (long long)x->now - li[i].hb_wall;

        if (li[i].gen == 0 || li[i].free)
            say(x, QC_PROBLEM,
                "slice %u of %u: no mmq-%s holds its lease "
                "(%s)",
                i, n, stage, li[i].gen ? "released" : "never taken");
        else if (li[i].hb_wall == 0 ||
                 age > cfg->lease_time + cfg->lease_margin)
            say(x, QC_PROBLEM,
                "slice %u of %u: the mmq-%s holding it on "
                "node %s has not renewed its lease for %lld s (by that "
                "node's clock)",
                i, n, stage, li[i].node, li[i].hb_wall ? age : -1LL);
        else if (owner && strcmp(owner->name, li[i].node) != 0)
            say(x, QC_NOTE,
                "slice %u of %u: mmq-%s of node %s runs it for "
                "its owner %s",
                i, n, stage, li[i].node, owner->name);
    }
    free(li);
}

/*
 * The agents' heartbeats (lease.h): one of our node name on another host
 * (two hosts given one node name), or one whose slice map differs from
 * ours (the nodes lists disagree).  Only recent ones count (by the
 * writer's clock, like the renewal ages above): an agent that died left
 * its heartbeat behind.
 */
static void check_peers(struct ctx *x)
{
    const struct mmq_config *cfg = x->sp->cfg;
    struct lease_peer *p = calloc(256, sizeof(*p));
    char err[QUEUE_ERR_MAX], host[64], map[41];
    int n, k;

    if (!p)
        return;
    n = lease_peers(x->sp, p, 256, err, sizeof(err));
    if (n < 0)
        say(x, QC_PROBLEM, "heartbeats: %s", err);
    lease_host_id(host, sizeof(host));
    if (lease_map_digest(cfg, map) != 0)
        map[0] = 0;
    for (k = 0; k < n; k++) {
        if (x->now - p[k].wall > 2 * (cfg->lease_time + cfg->lease_margin))
            continue;
        if (strcmp(p[k].node, cfg->node) == 0 && p[k].host[0] &&
            strcmp(p[k].host, host) != 0)
            say(x, QC_PROBLEM,
                "lease/%s: an agent of this node's name (%s) on another "
                "host (boot id %s, ours %s): give each host its own node "
                "name",
                p[k].name, cfg->node, p[k].host, host);
        if (p[k].map[0] && map[0] && strcmp(p[k].map, map) != 0)
            say(x, QC_PROBLEM,
                "lease/%s: node %s runs with slice map %.12s, this "
                "configuration has %.12s: the nodes lists disagree",
                p[k].name, p[k].node, p[k].map, map);
    }
    free(p);
}

/* ---------------------------------------------------------- config files */

/* As "postfix check" does: configuration anyone (or the group) could
 * have written.  The programs refuse a world-writable one. */
static void check_conf_file(struct ctx *x, const char *path,
                            const struct stat *st)
{
    if (!S_ISREG(st->st_mode) && !S_ISDIR(st->st_mode))
        say(x, QC_PROBLEM, "%s: not a regular file (the programs refuse it)",
            path);
    else if (st->st_mode & S_IWOTH)
        say(x, QC_PROBLEM, "%s: mode %04o: writable by anyone (%s: chmod o-w)",
            path, (unsigned)(st->st_mode & 07777),
            S_ISDIR(st->st_mode) ? "anyone can replace the list files"
                                 : "the programs refuse it");
    else if ((st->st_mode & S_IWGRP) && !S_ISDIR(st->st_mode))
        say(x, QC_NOTE, "%s: mode %04o: writable by group %ld", path,
            (unsigned)(st->st_mode & 07777), (long)st->st_gid);
}

static void check_config_files(struct ctx *x)
{
    const struct mmq_config *cfg = x->sp->cfg;
    char path[PATH_MAX];
    struct dirent *de;
    struct stat st;
    DIR *d;

    if (cfg->path && stat(cfg->path, &st) == 0)
        check_conf_file(x, cfg->path, &st);
    if (stat(cfg->lists_dir, &st) != 0 || !(d = opendir(cfg->lists_dir)))
        return; /* mmq-filter says so at every post */
    check_conf_file(x, cfg->lists_dir, &st);
    while ((de = readdir(d)) != NULL) {
        size_t n = strlen(de->d_name);
        if (de->d_name[0] == '.' ||
            !((n > 5 && strcmp(de->d_name + n - 5, ".conf") == 0) ||
              (n > 8 && strcmp(de->d_name + n - 8, ".members") == 0)))
            continue;
        snprintf(path, sizeof(path), "%s/%s", cfg->lists_dir, de->d_name);
        if (stat(path, &st) == 0)
            check_conf_file(x, path, &st);
    }
    closedir(d);
}

/* ---------------------------------------------------------------- entry */

int qcheck_spool(struct spool *sp, int flags, qcheck_report report, void *arg,
                 char *err, size_t errlen)
{
    struct ctx x;
    struct passwd *pw;
    struct stat st;
    int q;

    memset(&x, 0, sizeof(x));
    x.sp = sp;
    x.report = report;
    x.arg = arg;
    x.now = time(NULL);
    x.spool_uid = (uid_t)-1;
    if (sp->cfg->spool_user && (pw = getpwnam(sp->cfg->spool_user)) != NULL)
        x.spool_uid = pw->pw_uid;
    if (fstat(sp->fd, &st) != 0) {
        snprintf(err, errlen, "%s: %s", sp->path, strerror(errno));
        return -1;
    }
    x.gid = st.st_gid;
    (void)check_dir(&x, ".");
    (void)check_dir(&x, "lock");
    (void)check_dir(&x, "stage");
    check_config_files(&x);
    check_tmp(&x);
    for (q = 0; queue_names[q]; q++)
        check_queue(&x, queue_names[q]);
    if ((flags & QC_SLICES) && sp->cfg->nnodes > 0) {
        check_peers(&x);
        check_cluster_slices(&x, "process");
        check_cluster_slices(&x, "deliver");
    } else if (flags & QC_SLICES) {
        check_stage_slices(&x, "process", sp->cfg->process_slices);
        check_stage_slices(&x, "deliver", sp->cfg->delivery_slices);
    }
    return 0;
}
