/*
 * queue_test - the spool of queue.h on a temporary spool: spool_open's
 * safety checks, listing by slice, claims, rewrite, move, unclaim, done,
 * crash recovery with forked children that die holding a claim, and the
 * cleaning of tmp/.  Runs as root or not.
 */
#include "autoconf.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "envelope.h"
#include "log.h"
#include "proc.h"
#include "queue.h"
#include "slice.h"
#include "tap.h"

#define NODE "queue-test"
#define NENTRIES 400
#define ARRIVAL0 1732312345

static char tmpdir[] = "/tmp/mmq-queue-test.XXXXXX";
static char spooldir[sizeof(tmpdir) + 16];
static struct mmq_config cfg;
static struct spool sp;

/* ------------------------------------------------------------- helpers */

static void make_env(struct envelope *env, int64_t sec, int32_t usec)
{
    envelope_init(env);
    if (envelope_set(&env->list, "announce") ||
        envelope_set(&env->sender, "alice@example.org") ||
        envelope_add_rcpt(env, "bob@example.org", NULL) ||
        envelope_add_rcpt(env, "carol@example.org", NULL))
        bail_out("out of memory");
    env->arrival_sec = sec;
    env->arrival_usec = usec;
}

/* Enqueue msg into queue with the given arrival; name receives NAME. */
static int enqueue(const char *queue, int64_t sec, int32_t usec,
                   const void *msg, size_t len, char *name)
{
    struct envelope env;
    struct queue_file *qf;
    char err[QUEUE_ERR_MAX];
    int rc;

    make_env(&env, sec, usec);
    if (!(qf = queue_file_create(&sp, queue, err, sizeof(err)))) {
        diag("queue_file_create: %s", err);
        envelope_free(&env);
        return -1;
    }
    if (queue_file_begin(qf, &env) != 0 ||
        queue_file_write(qf, msg, len) != 0) {
        diag("write: %s", queue_file_error(qf));
        queue_file_abort(qf);
        envelope_free(&env);
        return -1;
    }
    envelope_free(&env);
    rc = queue_file_commit(qf, name, err, sizeof(err));
    if (rc != 0)
        diag("queue_file_commit: %s", err);
    return rc;
}

/* lstat of a path relative to the spool: 1 exists, 0 not. */
static int exists(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int exists(const char *fmt, ...)
{
    char rel[512];
    struct stat st;
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(rel, sizeof(rel), fmt, ap);
    va_end(ap);
    return fstatat(sp.fd, rel, &st, AT_SYMLINK_NOFOLLOW) == 0;
}

/* Number of directory entries (not . and ..) of a spool directory. */
static int count_dir(const char *rel)
{
    char path[sizeof(spooldir) + 64];
    struct dirent *de;
    DIR *d;
    int n = 0;

    snprintf(path, sizeof(path), "%s/%s", spooldir, rel);
    if (!(d = opendir(path)))
        return -1;
    while ((de = readdir(d)))
        if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
            n++;
    closedir(d);
    return n;
}

/* Files in all buckets of a queue, counted with readdir (not queue_list). */
static int count_queue(const char *queue)
{
    char rel[64];
    int b, n = 0;

    for (b = 0; b < SLICE_BUCKETS; b++) {
        snprintf(rel, sizeof(rel), "%s/%02x", queue, b);
        n += count_dir(rel);
    }
    return n;
}

/* Read a whole file of the spool. */
static char *slurp(const char *rel, size_t *len)
{
    struct stat st;
    char *data;
    int fd = openat(sp.fd, rel, O_RDONLY | O_NOFOLLOW);

    *len = 0;
    if (fd < 0)
        return NULL;
    if (fstat(fd, &st) != 0 || !(data = malloc((size_t)st.st_size + 1))) {
        close(fd);
        return NULL;
    }
    if (read(fd, data, (size_t)st.st_size) != st.st_size) {
        free(data);
        close(fd);
        return NULL;
    }
    close(fd);
    *len = (size_t)st.st_size;
    return data;
}

/* The envelope and message of an entry file. */
static int read_entry(const char *rel, struct envelope *env, char **body,
                      size_t *bodylen)
{
    char err[QUEUE_ERR_MAX];
    off_t off;
    size_t len;
    char *data;
    int fd = openat(sp.fd, rel, O_RDONLY | O_NOFOLLOW), rc;

    *body = NULL;
    *bodylen = 0;
    if (fd < 0)
        return -1;
    rc = envelope_read(fd, env, &off, err, sizeof(err));
    close(fd);
    if (rc != 0) {
        diag("%s: %s", rel, err);
        return -1;
    }
    if (!(data = slurp(rel, &len))) {
        envelope_free(env);
        return -1;
    }
    *bodylen = len - (size_t)off;
    if (!(*body = malloc(*bodylen + 1)))
        bail_out("out of memory");
    memcpy(*body, data + off, *bodylen);
    free(data);
    return 0;
}

/* Remove every entry of every queue (between tests). */
static void empty_queues(void)
{
    char path[sizeof(spooldir) + 64];
    int q, b;

    for (q = 0; queue_names[q]; q++)
        for (b = 0; b < SLICE_BUCKETS; b++) {
            struct dirent *de;
            DIR *d;

            snprintf(path, sizeof(path), "%s/%s/%02x", spooldir, queue_names[q],
                     b);
            if (!(d = opendir(path)))
                continue;
            while ((de = readdir(d)))
                if (de->d_name[0] != '.')
                    unlinkat(dirfd(d), de->d_name, 0);
            closedir(d);
        }
}

/* ---------------------------------------------------------- spool_open */

static int try_open(int *e, char *err, size_t errlen)
{
    struct spool s;
    int rc;

    err[0] = 0;
    errno = 0;
    rc = spool_open(&s, &cfg, err, errlen);
    *e = errno;
    if (rc == 0)
        spool_close(&s);
    return rc;
}

static void test_spool_open(void)
{
    char err[QUEUE_ERR_MAX], path[sizeof(spooldir) + 64],
        other[sizeof(spooldir) + 64];
    struct stat st;
    int e, rc, q, modes_ok = 1;

    /* spool_init made every directory 2770, and is idempotent. */
    for (q = -1; queue_names[q < 0 ? 0 : q]; q++) {
        snprintf(path, sizeof(path), "%s/%s", spooldir,
                 q < 0 ? "tmp" : queue_names[q]);
        if (stat(path, &st) != 0 || (st.st_mode & 07777) != 02770) {
            diag("%s: mode %o", path, (unsigned)(st.st_mode & 07777));
            modes_ok = 0;
        }
    }
    snprintf(path, sizeof(path), "%s/in/ff", spooldir);
    if (stat(path, &st) != 0 || (st.st_mode & 07777) != 02770)
        modes_ok = 0;
    ok(modes_ok, "spool_init: directories are mode 2770");
    ok(spool_init(spooldir, (uid_t)-1, (gid_t)-1, err, sizeof(err)) == 0,
       "spool_init is idempotent");

    rc = try_open(&e, err, sizeof(err));
    if (!ok(rc == 0, "spool_open accepts the fresh spool"))
        diag("%s", err);

    /* World-writable spool directory. */
    chmod(spooldir, 02777);
    rc = try_open(&e, err, sizeof(err));
    ok(rc == -1 && e == EPERM && strstr(err, "world-writable"),
       "spool_open refuses a world-writable spool (%s)", err);
    chmod(spooldir, 02770);

    /* World-writable queue directory. */
    snprintf(path, sizeof(path), "%s/deferred", spooldir);
    chmod(path, 0777);
    rc = try_open(&e, err, sizeof(err));
    ok(rc == -1 && e == EPERM, "spool_open refuses a world-writable queue (%s)",
       err);
    chmod(path, 02770);
    snprintf(path, sizeof(path), "%s/tmp", spooldir);
    chmod(path, 01777); /* even sticky, like /tmp */
    rc = try_open(&e, err, sizeof(err));
    ok(rc == -1 && e == EPERM, "spool_open refuses a world-writable tmp/ (%s)",
       err);
    chmod(path, 02770);

    /* A queue directory that is a symlink (to a perfectly good directory). */
    snprintf(path, sizeof(path), "%s/bounces", spooldir);
    snprintf(other, sizeof(other), "%s/bounces.real", spooldir);
    if (rename(path, other) != 0 || symlink("bounces.real", path) != 0)
        bail_out("cannot plant the symlink: %s", strerror(errno));
    rc = try_open(&e, err, sizeof(err));
    ok(rc == -1, "spool_open refuses a queue that is a symlink (%s)", err);
    /* queue.h: EPERM when the spool is unsafe (ENOENT means "run mmqctl
     * init", which would not help here). */
    if (!ok(rc == -1 && e == EPERM, "  with errno EPERM"))
        diag("errno %d (%s)", e, strerror(e));
    unlink(path);
    if (rename(other, path) != 0)
        bail_out("cannot restore %s: %s", path, strerror(errno));

    /* Missing queue, missing spool. */
    snprintf(path, sizeof(path), "%s/hold", spooldir);
    snprintf(other, sizeof(other), "%s/hold.away", spooldir);
    rename(path, other);
    rc = try_open(&e, err, sizeof(err));
    ok(rc == -1 && e == ENOENT, "spool_open: a missing queue is ENOENT (%s)",
       err);
    rename(other, path);
    {
        char *saved = cfg.spool;

        cfg.spool = other; /* does not exist */
        rc = try_open(&e, err, sizeof(err));
        ok(rc == -1 && e == ENOENT, "spool_open: a missing spool is ENOENT");
        cfg.spool = saved;
    }

    rc = try_open(&e, err, sizeof(err));
    if (!ok(rc == 0, "spool_open accepts the spool again after the repairs"))
        diag("%s", err);
}

/* ------------------------------------------------------------- listing */

static char names[NENTRIES][QNAME_LEN + 1];

static int cmp_name(const void *a, const void *b)
{
    return strcmp((const char *)a, (const char *)b);
}

static void test_list(void)
{
    static const unsigned ns[] = {1, 3, 7, 16};
    char err[QUEUE_ERR_MAX], msg[64];
    struct qlist l = {NULL, 0, 0};
    size_t k, i;
    int failed = 0, sorted = 1;

    for (i = 0; i < NENTRIES; i++) {
        /* arrival order is not enqueue order: names must sort by arrival */
        int64_t sec = ARRIVAL0 + (int64_t)((i * 7919) % NENTRIES);

        snprintf(msg, sizeof(msg), "Subject: %zu\n\nbody\n", i);
        if (enqueue("in", sec, (int32_t)(i % 1000), msg, strlen(msg),
                    names[i]) != 0)
            failed = 1;
    }
    ok(!failed, "enqueued %d entries", NENTRIES);
    qsort(names, NENTRIES, sizeof(names[0]), cmp_name);

    ok(queue_list(&sp, "in", NULL, QL_READY, 0, &l, err, sizeof(err)) == 0 &&
           l.n == NENTRIES,
       "queue_list(all) lists every entry");
    for (i = 0; i < l.n && i < NENTRIES; i++)
        if (strcmp(l.v[i].name, names[i]) != 0)
            sorted = 0;
    ok(sorted && l.n == NENTRIES, "queue_list sorts by name");
    for (i = 1; i < l.n; i++)
        if (l.v[i - 1].sec > l.v[i].sec)
            sorted = 0;
    ok(sorted, "name order is arrival order");

    for (k = 0; k < sizeof(ns) / sizeof(ns[0]); k++) {
        unsigned n = ns[k], s;
        unsigned char *seen = calloc(NENTRIES, 1);
        int wrong_slice = 0, dup = 0, unknown = 0, missing = 0;

        if (!seen)
            bail_out("out of memory");
        for (s = 0; s < n; s++) {
            struct slice_set set;
            char spec[16];

            snprintf(spec, sizeof(spec), "%u", s);
            if (slice_set_parse(spec, n, &set, err, sizeof(err)) != 0)
                bail_out("slice_set_parse: %s", err);
            if (queue_list(&sp, "in", &set, QL_READY, 0, &l, err,
                           sizeof(err)) != 0)
                bail_out("queue_list: %s", err);
            for (i = 0; i < l.n; i++) {
                char(*hit)[QNAME_LEN + 1] = bsearch(
                    l.v[i].name, names, NENTRIES, sizeof(names[0]), cmp_name);

                if (slice_of(l.v[i].key, n) != s)
                    wrong_slice++;
                if (!hit) {
                    unknown++;
                    continue;
                }
                if (seen[hit - names]++)
                    dup++;
            }
            slice_set_free(&set);
        }
        for (i = 0; i < NENTRIES; i++)
            if (!seen[i])
                missing++;
        ok(!wrong_slice && !dup && !unknown && !missing,
           "n=%u: every entry is listed in exactly one slice, its own", n);
        if (wrong_slice || dup || unknown || missing)
            diag("wrong slice %d, listed twice %d, unknown %d, missing %d",
                 wrong_slice, dup, unknown, missing);
        free(seen);
    }

    /* A set of several slices lists their union. */
    {
        struct slice_set set;
        size_t want = 0;

        slice_set_parse("0,2-4", 7, &set, err, sizeof(err));
        queue_list(&sp, "in", &set, QL_READY, 0, &l, err, sizeof(err));
        for (i = 0; i < l.n; i++)
            if (!slice_set_has(&set, l.v[i].key))
                want = (size_t)-1;
        if (want == 0)
            for (i = 0; i < NENTRIES; i++) {
                uint64_t key;
                slice_key(names[i] + 18, &key);
                if (slice_set_has(&set, key))
                    want++;
            }
        ok(want == l.n, "slices \"0,2-4\" of 7: exactly their entries (%zu)",
           l.n);
        slice_set_free(&set);
    }

    /* max keeps the oldest. */
    {
        static const size_t maxes[] = {1,  2,   10,  63,  64,
                                       65, 200, 399, 400, 1000};
        int bad = 0;

        for (k = 0; k < sizeof(maxes) / sizeof(maxes[0]); k++) {
            size_t max = maxes[k], want = max < NENTRIES ? max : NENTRIES;

            if (queue_list(&sp, "in", NULL, QL_READY, max, &l, err,
                           sizeof(err)) != 0 ||
                l.n != want) {
                diag("max %zu: %zu listed", max, l.n);
                bad = 1;
                continue;
            }
            for (i = 0; i < want; i++)
                if (strcmp(l.v[i].name, names[i]) != 0) {
                    diag("max %zu: entry %zu is %s, want %s", max, i,
                         l.v[i].name, names[i]);
                    bad = 1;
                    break;
                }
        }
        ok(!bad, "queue_list with max keeps the max oldest, in order");
    }
    /* max together with a slice set: the oldest of that slice. */
    {
        struct slice_set set;
        size_t j = 0;
        int bad = 0;

        slice_set_parse("1", 3, &set, err, sizeof(err));
        queue_list(&sp, "in", &set, QL_READY, 5, &l, err, sizeof(err));
        for (i = 0; i < NENTRIES && j < 5; i++) {
            uint64_t key;

            slice_key(names[i] + 18, &key);
            if (!slice_set_has(&set, key))
                continue;
            if (j >= l.n || strcmp(l.v[j].name, names[i]) != 0)
                bad = 1;
            j++;
        }
        ok(!bad && l.n == 5, "max 5 with slice 1 of 3: that slice's 5 oldest");
        slice_set_free(&set);
    }

    ok(queue_list(&sp, "nope", NULL, QL_READY, 0, &l, err, sizeof(err)) == -1 &&
           errno == EINVAL,
       "queue_list refuses an unknown queue");
    ok(queue_list(&sp, "deferred", NULL, QL_READY | QL_CLAIMED, 0, &l, err,
                  sizeof(err)) == 0 &&
           l.n == 0,
       "an empty queue lists nothing");
    qlist_free(&l);
}

/* --------------------------------------------------------------- claims */

static void test_claims(void)
{
    char err[QUEUE_ERR_MAX], name[QNAME_LEN + 1], want[QFILE_MAX + 64];
    char fname[QFILE_MAX + 8];
    struct claim c, c2;
    struct qlist l = {NULL, 0, 0};
    struct envelope env;
    off_t off;
    int rc;

    empty_queues();
    if (enqueue("in", ARRIVAL0, 1, "hello\n", 6, name) != 0)
        bail_out("enqueue failed");

    rc = queue_claim(&sp, "in", name, &c, err, sizeof(err));
    ok(rc == 0 && c.fd >= 0, "queue_claim: claimed and opened");
    snprintf(want, sizeof(want), "in/%.2s/%s%s", name + 18, name, sp.token);
    is_str(c.path, want, "  the claimed file is NAME#NODE#PID#START");
    ok(exists("%s", want) && !exists("in/%.2s/%s", name + 18, name),
       "  the ready name is gone, the claimed one is there");
    ok(c.qn.kind == QN_CLAIMED && c.qn.pid == getpid() &&
           strcmp(c.qn.node, NODE) == 0 && strcmp(c.qn.name, name) == 0,
       "  the claim names us");
    rc = queue_claim(&sp, "in", name, &c2, err, sizeof(err));
    is_int(rc, 1, "claiming it again: 1 (gone)");

    /* (QL_CLAIMED first: an empty listing into a fresh qlist is checked
     * on its own, in test_empty_lists) */
    ok(queue_list(&sp, "in", NULL, QL_CLAIMED, 0, &l, err, sizeof(err)) == 0 &&
           l.n == 1 && l.v[0].kind == QN_CLAIMED && l.v[0].pid == getpid(),
       "QL_CLAIMED lists it, with our pid");
    ok(queue_list(&sp, "in", NULL, QL_READY, 0, &l, err, sizeof(err)) == 0 &&
           l.n == 0,
       "QL_READY does not list a claimed entry");
    ok(queue_list(&sp, "in", NULL, QL_READY | QL_CLAIMED, 0, &l, err,
                  sizeof(err)) == 0 &&
           l.n == 1,
       "QL_READY | QL_CLAIMED lists it");
    qlist_free(&l);

    ok(queue_claim_read(&c, &env, &off, err, sizeof(err)) == 0 &&
           env.size == 6 && env.nrcpt == 2 &&
           strcmp(env.list, "announce") == 0 && env.arrival_sec == ARRIVAL0 &&
           env.arrival_usec == 1,
       "queue_claim_read gives the envelope");
    envelope_free(&env);

    ok(queue_unclaim(&c, err, sizeof(err)) == 0 &&
           exists("in/%.2s/%s", name + 18, name) && !exists("%s", want),
       "queue_unclaim gives the ready name back");
    rc = queue_claim(&sp, "in", name, &c, err, sizeof(err));
    is_int(rc, 0, "an unclaimed entry can be claimed again");
    ok(queue_done(&c, err, sizeof(err)) == 0 && !exists("%s", want) &&
           !exists("in/%.2s/%s", name + 18, name) && count_queue("in") == 0,
       "queue_done removes the file");
    is_int(queue_claim(&sp, "in", name, &c, err, sizeof(err)), 1,
           "a finished entry cannot be claimed: 1");

    /* Refusals. */
    errno = 0;
    ok(queue_claim(&sp, "nope", name, &c, err, sizeof(err)) == -1 &&
           errno == EINVAL,
       "queue_claim refuses an unknown queue");
    snprintf(fname, sizeof(fname), "%s#n#1#2", name);
    ok(queue_claim(&sp, "in", fname, &c, err, sizeof(err)) == -1 &&
           errno == EINVAL,
       "queue_claim refuses a claimed name");
    ok(queue_claim(&sp, "in", "../../etc/passwd", &c, err, sizeof(err)) == -1 &&
           errno == EINVAL,
       "queue_claim refuses a path");

    /* A symlink planted under an entry name is never opened. */
    {
        char target[sizeof(tmpdir) + 16], link[QFILE_MAX + 16];
        int fd;

        snprintf(target, sizeof(target), "%s/secret", tmpdir);
        fd = open(target, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (fd < 0 || write(fd, "secret\n", 7) != 7)
            bail_out("cannot write %s", target);
        close(fd);
        snprintf(link, sizeof(link), "in/%.2s/%s", name + 18, name);
        if (symlinkat(target, sp.fd, link) != 0)
            bail_out("symlink: %s", strerror(errno));
        rc = queue_claim(&sp, "in", name, &c, err, sizeof(err));
        ok(rc == -1, "queue_claim refuses a symlink planted as an entry (%s)",
           err);
        if (rc == 0)
            queue_claim_close(&c);
        {
            char bad[QFILE_MAX + 16];
            struct stat st;

            /* not put back (it would be claimed again at once, in a
             * loop): moved aside to bad/ as the link it is */
            snprintf(bad, sizeof(bad), "bad/%.2s/%s@in", name + 18, name);
            ok(!exists("%s", link) &&
                   fstatat(sp.fd, bad, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
                   S_ISLNK(st.st_mode),
               "  and moves it to bad/ as a link");
            ok(strstr(err, "a symbolic link: moved to bad/") != NULL,
               "  and says so: %s", err);
            unlinkat(sp.fd, bad, 0);
        }
        unlink(target);
    }
}

/*
 * A FIFO planted under an entry name: claiming it must not block (open(2)
 * of a FIFO without O_NONBLOCK waits for a writer).  Run in a child with an
 * alarm so that a hang is a failure, not a stuck test suite.
 */
static void test_claim_fifo(void)
{
    char name[] = "1732312345.000000+ab00000000000000000000000000000000000000";
    char rel[QFILE_MAX + 16];
    int status = 0;
    pid_t pid;

    snprintf(rel, sizeof(rel), "in/ab/%s", name);
    if (mkfifoat(sp.fd, rel, 0660) != 0)
        bail_out("mkfifo: %s", strerror(errno));
    tap_fork_prepare();
    if ((pid = fork()) < 0)
        bail_out("fork: %s", strerror(errno));
    if (pid == 0) {
        struct claim c;
        char err[QUEUE_ERR_MAX];
        int rc;

        alarm(3);
        rc = queue_claim(&sp, "in", name, &c, err, sizeof(err));
        _exit(rc == -1 ? 0 : 10 + rc);
    }
    waitpid(pid, &status, 0);
    if (!ok(WIFEXITED(status) && WEXITSTATUS(status) == 0,
            "queue_claim refuses a FIFO planted as an entry, without "
            "blocking")) {
        if (WIFSIGNALED(status) && WTERMSIG(status) == SIGALRM)
            diag("queue_claim blocked in open(2) on the FIFO for 3 s");
        else
            diag("status 0x%x", status);
    }
    empty_queues();
}

/*
 * Listing a queue with nothing to list, into a fresh qlist {NULL, 0, 0},
 * and recovering where nothing is claimed: both must just give nothing.
 * In a child, because undefined behaviour here (qsort of a NULL array)
 * aborts the process under UBSan.
 */
static void test_empty_lists(void)
{
    int status = 0;
    pid_t pid;

    empty_queues();
    tap_fork_prepare();
    if ((pid = fork()) == 0) {
        struct qlist l = {NULL, 0, 0};
        char err[QUEUE_ERR_MAX];

        if (queue_list(&sp, "deferred", NULL, QL_READY, 0, &l, err,
                       sizeof(err)) != 0 ||
            l.n != 0)
            _exit(1);
        _exit(0);
    }
    waitpid(pid, &status, 0);
    if (!ok(WIFEXITED(status) && WEXITSTATUS(status) == 0,
            "queue_list of an empty queue into a fresh qlist"))
        diag("status 0x%x%s", status,
             WIFSIGNALED(status) ? " (killed: see the sanitizer report)" : "");
    tap_fork_prepare();
    if ((pid = fork()) == 0) {
        struct recover_stats st = {0, 0, 0};
        char err[QUEUE_ERR_MAX];

        if (queue_recover(&sp, "in", NULL, &st, err, sizeof(err)) != 0 ||
            st.restored || st.to_bad)
            _exit(1);
        _exit(0);
    }
    waitpid(pid, &status, 0);
    if (!ok(WIFEXITED(status) && WEXITSTATUS(status) == 0,
            "queue_recover with nothing claimed"))
        diag("status 0x%x%s", status,
             WIFSIGNALED(status) ? " (killed: see the sanitizer report)" : "");
}

/* -------------------------------------------------------------- rewrite */

static void test_rewrite(void)
{
    char err[QUEUE_ERR_MAX], name[QNAME_LEN + 1], rel[QFILE_MAX + 64];
    struct claim c;
    struct envelope env, got;
    char *body = NULL, *msg;
    size_t bodylen = 0, i, msglen = 200000;
    off_t off;
    int rc;

    /* A binary message longer than the writer's 64 KiB buffer. */
    if (!(msg = malloc(msglen)))
        bail_out("out of memory");
    for (i = 0; i < msglen; i++)
        msg[i] = (char)((i * 131 + i / 7) & 0xff);
    memcpy(msg + 1000, "\n\nMMQ 1\nlist x\n\n", 16); /* looks like a header */
    if (enqueue("in", ARRIVAL0, 2, msg, msglen, name) != 0)
        bail_out("enqueue failed");
    if (queue_claim(&sp, "in", name, &c, err, sizeof(err)) != 0)
        bail_out("claim: %s", err);
    snprintf(rel, sizeof(rel), "%s", c.path);

    if (queue_claim_read(&c, &env, &off, err, sizeof(err)) != 0)
        bail_out("read: %s", err);
    env.attempts = 4;
    env.next_attempt = 1732400000;
    envelope_set(&env.last_error, "4.4.1 connection refused: \r\n%00");
    envelope_remove_rcpt(&env, 0);
    envelope_add_rcpt(&env, "dave@example.org", "orcpt=x");
    env.size = 1; /* wrong on purpose: the writer sets the size */
    rc = queue_rewrite(&c, &env, err, sizeof(err));
    if (!ok(rc == 0, "queue_rewrite"))
        diag("%s", err);
    is_str(c.path, rel, "  the entry keeps its claimed name");
    ok(read_entry(rel, &got, &body, &bodylen) == 0,
       "  the rewritten entry reads back (size checked)");
    is_mem(body, bodylen, msg, msglen,
           "  the message is byte-for-byte the same");
    ok(got.attempts == 4 && got.next_attempt == 1732400000 && got.last_error &&
           strcmp(got.last_error, "4.4.1 connection refused: \r\n%00") == 0 &&
           got.nrcpt == 2 &&
           strcmp(got.rcpt[0].addr, "carol@example.org") == 0 &&
           strcmp(got.rcpt[1].addr, "dave@example.org") == 0 &&
           got.rcpt[1].extra && strcmp(got.rcpt[1].extra, "orcpt=x") == 0 &&
           got.size == (int64_t)msglen,
       "  the envelope is the new one, with the real size");
    envelope_free(&got);
    free(body);
    envelope_free(&env);
    ok(queue_claim_read(&c, &env, &off, err, sizeof(err)) == 0 &&
           env.attempts == 4,
       "  the claim now reads the new entry");
    envelope_free(&env);
    is_int(count_dir("tmp"), 0, "  nothing is left in tmp/");
    queue_done(&c, err, sizeof(err));
    free(msg);
}

/* ----------------------------------------------------------------- move */

static void test_move(void)
{
    char err[QUEUE_ERR_MAX], name[QNAME_LEN + 1], fname[QFILE_MAX + 8];
    struct claim c;
    struct qlist l = {NULL, 0, 0};
    int rc;

    empty_queues();
    if (enqueue("in", ARRIVAL0, 3, "x\n", 2, name) != 0)
        bail_out("enqueue failed");
    queue_claim(&sp, "in", name, &c, err, sizeof(err));
    rc = queue_move(&c, "bad", err, sizeof(err));
    ok(rc == 0 && exists("bad/%.2s/%s@in", name + 18, name) &&
           count_queue("in") == 0 && count_queue("bad") == 1,
       "queue_move to bad/ adds the origin \"@in\"");
    ok(queue_list(&sp, "bad", NULL, QL_READY, 0, &l, err, sizeof(err)) == 0 &&
           l.n == 1 && strcmp(l.v[0].origin, "in") == 0,
       "  listed in bad/ with origin in");

    snprintf(fname, sizeof(fname), "%s@in", name);
    rc = queue_claim(&sp, "bad", fname, &c, err, sizeof(err));
    ok(rc == 0 && strcmp(c.qn.origin, "in") == 0,
       "an entry in bad/ is claimed by NAME@in");
    rc = queue_move(&c, "hold", err, sizeof(err));
    ok(rc == 0 && exists("hold/%.2s/%s@in", name + 18, name),
       "bad/ to hold/ keeps the first origin");
    queue_claim(&sp, "hold", fname, &c, err, sizeof(err));
    rc = queue_move(&c, "in", err, sizeof(err));
    ok(rc == 0 && exists("in/%.2s/%s", name + 18, name) &&
           count_queue("hold") == 0 && count_queue("bad") == 0,
       "moving back to in/ removes the origin");

    queue_claim(&sp, "in", name, &c, err, sizeof(err));
    rc = queue_move(&c, "deferred", err, sizeof(err));
    ok(rc == 0 && exists("deferred/%.2s/%s", name + 18, name),
       "in/ to deferred/: no origin");
    queue_claim(&sp, "deferred", name, &c, err, sizeof(err));
    errno = 0;
    rc = queue_move(&c, "nowhere", err, sizeof(err));
    ok(rc == -1 && errno == EINVAL, "queue_move refuses an unknown queue");
    ok(queue_unclaim(&c, err, sizeof(err)) == 0 &&
           exists("deferred/%.2s/%s", name + 18, name),
       "  and the entry can still be unclaimed");
    qlist_free(&l);
    empty_queues();
}

/* ------------------------------------------------------------- recovery */

/* A child that opens the spool as itself, claims fname in queue and dies
 * without finishing.  Returns its pid (reaped). */
static pid_t die_holding(const char *queue, const char *fname)
{
    int status = 0;
    pid_t pid;

    tap_fork_prepare();
    if ((pid = fork()) < 0)
        bail_out("fork: %s", strerror(errno));
    if (pid == 0) {
        struct spool csp;
        struct claim c;
        char err[QUEUE_ERR_MAX];

        if (spool_open(&csp, &cfg, err, sizeof(err)) != 0)
            _exit(10);
        if (queue_claim(&csp, queue, fname, &c, err, sizeof(err)) != 0)
            _exit(11);
        _exit(0); /* crash: no done, no unclaim */
    }
    waitpid(pid, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        diag("claiming child: status 0x%x", status);
    return pid;
}

/* The pid of a process that has ended (a reaped child). */
static pid_t dead_pid(void)
{
    int status;
    pid_t pid;

    tap_fork_prepare();
    if ((pid = fork()) < 0)
        bail_out("fork: %s", strerror(errno));
    if (pid == 0)
        _exit(0);
    waitpid(pid, &status, 0);
    return pid;
}

/* Capture what the log writes on stderr while queue_recover runs. */
static int recover_logged(const char *queue, struct recover_stats *st,
                          char *logbuf, size_t loglen)
{
    char err[QUEUE_ERR_MAX], path[sizeof(tmpdir) + 16];
    int saved, fd, rc;
    ssize_t n;

    snprintf(path, sizeof(path), "%s/log", tmpdir);
    fflush(stderr);
    saved = dup(2);
    fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    if (saved < 0 || fd < 0)
        bail_out("cannot capture stderr");
    dup2(fd, 2);
    rc = queue_recover(&sp, queue, NULL, st, err, sizeof(err));
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    n = pread(fd, logbuf, loglen - 1, 0);
    logbuf[n > 0 ? n : 0] = 0;
    close(fd);
    unlink(path);
    if (rc != 0)
        diag("queue_recover: %s", err);
    return rc;
}

static void test_recovery(void)
{
    char err[QUEUE_ERR_MAX], name[QNAME_LEN + 1], file[QFILE_MAX + 64];
    char logbuf[8192], want[64];
    struct recover_stats st;
    struct envelope env;
    char *body;
    size_t bodylen;
    pid_t pid;
    int round;

    empty_queues();
    cfg.max_recoveries = 3;
    if (enqueue("in", ARRIVAL0, 4, "precious\n", 9, name) != 0)
        bail_out("enqueue failed");

    for (round = 1; round <= 3; round++) {
        pid = die_holding("in", name);
        ok(!exists("in/%.2s/%s", name + 18, name) && count_queue("in") == 1,
           "round %d: child %ld died holding the claim", round, (long)pid);
        memset(&st, 0, sizeof(st));
        recover_logged("in", &st, logbuf, sizeof(logbuf));
        snprintf(file, sizeof(file), "in/%.2s/%s", name + 18, name);
        ok(st.restored == 1 && st.to_bad == 0 && exists("%s", file),
           "round %d: queue_recover restores the entry", round);
        if (read_entry(file, &env, &body, &bodylen) == 0) {
            is_int(env.recoveries, round, "round %d: recoveries is %d", round,
                   round);
            is_mem(body, bodylen, "precious\n", 9,
                   "round %d: the message is unchanged", round);
            envelope_free(&env);
            free(body);
        } else {
            ok(0, "round %d: the restored entry reads", round);
        }
        snprintf(want, sizeof(want), "(recovery %d)", round);
        if (!ok(strstr(logbuf, want) != NULL, "round %d: the log line says %s",
                round, want))
            diag("log: %s", logbuf);
    }

    /* The 4th crash: past max_recoveries, to bad/. */
    die_holding("in", name);
    memset(&st, 0, sizeof(st));
    recover_logged("in", &st, logbuf, sizeof(logbuf));
    ok(st.restored == 0 && st.to_bad == 1 &&
           exists("bad/%.2s/%s@in", name + 18, name) && count_queue("in") == 0,
       "4th recovery with max_recoveries 3: moved to bad/NAME@in");
    empty_queues();

    /* A live claimer is left alone; another node's claims too. */
    if (enqueue("in", ARRIVAL0, 5, "x\n", 2, name) != 0)
        bail_out("enqueue failed");
    {
        int p[2], status;
        char byte;

        if (pipe(p) != 0)
            bail_out("pipe");
        tap_fork_prepare();
        if ((pid = fork()) == 0) {
            struct spool csp;
            struct claim c;

            close(p[1]);
            if (spool_open(&csp, &cfg, err, sizeof(err)) != 0 ||
                queue_claim(&csp, "in", name, &c, err, sizeof(err)) != 0)
                _exit(1);
            /* alive until the parent closes the pipe */
            while (read(p[0], &byte, 1) > 0)
                ;
            _exit(0);
        }
        close(p[0]);
        /* wait until the child's claim is there */
        for (round = 0; round < 500 && count_queue("in") == 1 &&
                        exists("in/%.2s/%s", name + 18, name);
             round++)
            usleep(10000);
        memset(&st, 0, sizeof(st));
        queue_recover(&sp, "in", NULL, &st, err, sizeof(err));
        ok(st.restored == 0 && st.to_bad == 0 &&
               !exists("in/%.2s/%s", name + 18, name),
           "a claim by a live process is not recovered");
        close(p[1]);
        waitpid(pid, &status, 0);
        memset(&st, 0, sizeof(st));
        queue_recover(&sp, "in", NULL, &st, err, sizeof(err));
        ok(st.restored == 1 && exists("in/%.2s/%s", name + 18, name),
           "  once it has died, it is");
    }
    {
        char other[QFILE_MAX + 64];

        snprintf(file, sizeof(file), "in/%.2s/%s", name + 18, name);
        snprintf(other, sizeof(other), "in/%.2s/%s#other-node#%ld#1", name + 18,
                 name, (long)pid); /* pid dead here, not there */
        renameat(sp.fd, file, sp.fd, other);
        memset(&st, 0, sizeof(st));
        queue_recover(&sp, "in", NULL, &st, err, sizeof(err));
        ok(st.restored == 0 && st.to_bad == 0 && exists("%s", other),
           "a claim by another node is not recovered");
        unlinkat(sp.fd, other, 0);
    }

    /* Only the slices asked for. */
    if (enqueue("in", ARRIVAL0, 6, "x\n", 2, name) != 0)
        bail_out("enqueue failed");
    die_holding("in", name);
    {
        struct slice_set set;
        uint64_t key;
        char spec[4];

        int status;

        slice_key(name + 18, &key);
        snprintf(spec, sizeof(spec), "%u", 1 - slice_of(key, 2));
        slice_set_parse(spec, 2, &set, err, sizeof(err));
        /* in a child: nothing is claimed in that slice, and an empty listing
         * is checked on its own in test_empty_lists */
        tap_fork_prepare();
        if ((pid = fork()) == 0) {
            memset(&st, 0, sizeof(st));
            queue_recover(&sp, "in", &set, &st, err, sizeof(err));
            _exit(st.restored == 0 && st.to_bad == 0 ? 0 : 1);
        }
        waitpid(pid, &status, 0);
        ok(WIFEXITED(status) && WEXITSTATUS(status) == 0 &&
               !exists("in/%.2s/%s", name + 18, name),
           "queue_recover leaves other slices alone");
        slice_set_free(&set);
        snprintf(spec, sizeof(spec), "%u", slice_of(key, 2));
        slice_set_parse(spec, 2, &set, err, sizeof(err));
        queue_recover(&sp, "in", &set, &st, err, sizeof(err));
        ok(st.restored == 1 && exists("in/%.2s/%s", name + 18, name),
           "  and recovers in its own");
        slice_set_free(&set);
    }
    empty_queues();

    /* A corrupt entry left claimed by a dead process goes to bad/. */
    {
        char rel[QFILE_MAX + 64];
        const char *junk = "MMQ 1\nlist x\nthis is not an envelope\n\nbody";
        int fd;

        pid = dead_pid();
        snprintf(name, sizeof(name), "%s",
                 "1732312345.000007+c0ffee0000000000000000000000000000000000");
        snprintf(rel, sizeof(rel), "in/c0/%s#%s#%ld#%llu", name, NODE,
                 (long)pid, 12345ULL);
        fd = openat(sp.fd, rel, O_WRONLY | O_CREAT | O_EXCL, 0640);
        if (fd < 0 || write(fd, junk, strlen(junk)) != (ssize_t)strlen(junk))
            bail_out("cannot write %s", rel);
        close(fd);
        memset(&st, 0, sizeof(st));
        queue_recover(&sp, "in", NULL, &st, err, sizeof(err));
        ok(st.to_bad == 1 && st.restored == 0 && exists("bad/c0/%s@in", name) &&
               count_queue("in") == 0,
           "a corrupt claimed entry of a dead process goes to bad/");
    }
    empty_queues();
}

/* -------------------------------------------------------------- tmp/ */

static void make_tmp(const char *fname, time_t age)
{
    char rel[256];
    int fd;

    snprintf(rel, sizeof(rel), "tmp/%s", fname);
    fd = openat(sp.fd, rel, O_WRONLY | O_CREAT | O_EXCL, 0640);
    if (fd < 0)
        bail_out("cannot create %s: %s", rel, strerror(errno));
    close(fd);
    if (age) {
        struct timespec ts[2];

        ts[0].tv_sec = ts[1].tv_sec = time(NULL) - age;
        ts[0].tv_nsec = ts[1].tv_nsec = 0;
        if (utimensat(sp.fd, rel, ts, AT_SYMLINK_NOFOLLOW) != 0)
            bail_out("utimensat: %s", strerror(errno));
    }
}

static void test_clean_tmp(void)
{
    char err[QUEUE_ERR_MAX], f[12][160];
    struct recover_stats st;
    unsigned long long live_start = 0, my_start = 0;
    pid_t dead, live;
    int p[2], status, i;

    dead = dead_pid();
    /* A live one: a child blocked on a pipe. */
    if (pipe(p) != 0)
        bail_out("pipe");
    tap_fork_prepare();
    if ((live = fork()) == 0) {
        char byte;

        close(p[1]);
        while (read(p[0], &byte, 1) > 0)
            ;
        _exit(0);
    }
    close(p[0]);
    if (proc_start_time(live, &live_start) != 0 ||
        proc_start_time(0, &my_start) != 0)
        bail_out("proc_start_time failed");

    snprintf(f[0], sizeof(f[0]), "1732312345.000001#%s#%ld#%llu#1", NODE,
             (long)dead, live_start);
    snprintf(f[1], sizeof(f[1]), "1732312345.000002#%s#%ld#%llu#1", NODE,
             (long)live, live_start);
    snprintf(f[2], sizeof(f[2]), "1732312345.000003#%s#%ld#%llu#1", NODE,
             (long)live, live_start + 1); /* pid reused: not that process */
    snprintf(f[3], sizeof(f[3]), "1732312345.000004#%s#%ld#%llu#7", NODE,
             (long)getpid(), my_start); /* our own */
    snprintf(f[4], sizeof(f[4]), "1732312345.000005#other-node#%ld#1#1",
             (long)dead); /* another node's: cannot judge */
    snprintf(f[5], sizeof(f[5]), "1732312345.000006#other-node#%ld#1#1",
             (long)dead); /* another node's, but old */
    snprintf(f[6], sizeof(f[6]), "1732312345.000007#%s#%ld#%llu#1", NODE,
             (long)live, live_start);                /* live, but old */
    snprintf(f[7], sizeof(f[7]), "not-a-temp-file"); /* junk, recent */
    snprintf(f[8], sizeof(f[8]), "junk#%s#x#y", NODE);
    snprintf(f[9], sizeof(f[9]), "old-junk"); /* junk, old */
    make_tmp(f[0], 0);
    make_tmp(f[1], 0);
    make_tmp(f[2], 0);
    make_tmp(f[3], 0);
    make_tmp(f[4], 0);
    make_tmp(f[5], 2 * 86400);
    make_tmp(f[6], 86400 + 120);
    make_tmp(f[7], 0);
    make_tmp(f[8], 0);
    make_tmp(f[9], 3 * 86400);

    memset(&st, 0, sizeof(st));
    ok(spool_clean_tmp(&sp, 86400, &st, err, sizeof(err)) == 0,
       "spool_clean_tmp");
    ok(!exists("tmp/%s", f[0]), "removes a temp file of a dead pid of ours");
    ok(exists("tmp/%s", f[1]), "keeps one of a live process");
    ok(!exists("tmp/%s", f[2]),
       "removes one whose pid lives with another start time (reused)");
    ok(exists("tmp/%s", f[3]), "keeps our own");
    ok(exists("tmp/%s", f[4]), "keeps a recent one of another node");
    ok(!exists("tmp/%s", f[5]), "removes an old one of another node");
    ok(!exists("tmp/%s", f[6]), "removes one older than max_age, even live");
    ok(exists("tmp/%s", f[7]) && exists("tmp/%s", f[8]),
       "keeps recent files it cannot attribute");
    ok(!exists("tmp/%s", f[9]), "removes old files it cannot attribute");
    is_int(st.tmp_removed, 5, "tmp_removed counts them");

    close(p[1]);
    waitpid(live, &status, 0);
    for (i = 0; i < 10; i++) {
        char rel[200];

        snprintf(rel, sizeof(rel), "tmp/%.160s", f[i]);
        unlinkat(sp.fd, rel, 0);
    }
}

/* --------------------------------------------------------------- writer */

/*
 * The name holds the arrival as 10 + 6 digits.  An envelope whose arrival
 * does not fit must not produce a name that is not an entry name (an entry
 * no listing would ever see) nor overrun the name buffer: the commit fails,
 * or the entry can be listed.  Each case runs in a child, so that a memory
 * error (or a fortified abort) is reported, not fatal to the suite.
 */
static void odd_arrival(int64_t sec, int32_t usec, const char *what)
{
    int status = 0;
    pid_t pid;

    empty_queues();
    tap_fork_prepare();
    if ((pid = fork()) < 0)
        bail_out("fork: %s", strerror(errno));
    if (pid == 0) {
        char name[QNAME_LEN + 64];
        struct qlist l = {NULL, 0, 0};
        char err[QUEUE_ERR_MAX];
        int rc;

        memset(name, 0, sizeof(name));
        rc = enqueue("in", sec, usec, "x\n", 2, name);
        if (rc != 0)
            _exit(0); /* refused: fine */
        if (queue_list(&sp, "in", NULL, QL_READY, 0, &l, err, sizeof(err)) !=
                0 ||
            l.n != 1 || strcmp(l.v[0].name, name) != 0)
            _exit(20 + (count_queue("in") == 1)); /* 21: invisible entry */
        _exit(0);
    }
    waitpid(pid, &status, 0);
    if (!ok(WIFEXITED(status) && WEXITSTATUS(status) == 0,
            "an arrival of %s is refused or gives a listable entry", what)) {
        if (WIFSIGNALED(status))
            diag("the committing process died of signal %d", WTERMSIG(status));
        else if (WEXITSTATUS(status) == 21)
            diag("committed under a name that is not an entry name: the "
                 "entry is invisible to queue_list");
        else
            diag("exit status %d%s", WEXITSTATUS(status),
                 WEXITSTATUS(status) == 1 ? " (a sanitizer report? see stderr)"
                                          : "");
    }
    empty_queues();
}

static void test_writer(void)
{
    char err[QUEUE_ERR_MAX], name[QNAME_LEN + 1];
    struct queue_file *qf;
    struct envelope env;
    int rc;

    errno = 0;
    ok(queue_file_create(&sp, "nope", err, sizeof(err)) == NULL &&
           errno == EINVAL,
       "queue_file_create refuses an unknown queue");

    /* abort leaves nothing behind */
    if (!(qf = queue_file_create(&sp, "in", err, sizeof(err))))
        bail_out("queue_file_create: %s", err);
    make_env(&env, ARRIVAL0, 0);
    queue_file_begin(qf, &env);
    queue_file_write(qf, "abc", 3);
    ok(queue_file_size(qf) == 3 && count_dir("tmp") == 1,
       "a writer has one file in tmp/ and counts message bytes");
    queue_file_abort(qf);
    ok(count_dir("tmp") == 0 && count_queue("in") == 0,
       "queue_file_abort removes it");

    /* commit_as with a given name, and with an invalid one */
    if (!(qf = queue_file_create(&sp, "bounces", err, sizeof(err))))
        bail_out("queue_file_create: %s", err);
    queue_file_begin(qf, &env);
    queue_file_write(qf, "abc", 3);
    rc = queue_file_commit_as(
        qf, "1732312345.000000+0123456789abcdef0123456789abcdef01234567", err,
        sizeof(err));
    ok(rc == 0 && exists("bounces/01/1732312345.000000+0123456789abcdef"
                         "0123456789abcdef01234567"),
       "queue_file_commit_as uses the given name");
    if (!(qf = queue_file_create(&sp, "bounces", err, sizeof(err))))
        bail_out("queue_file_create: %s", err);
    queue_file_begin(qf, &env);
    rc = queue_file_commit_as(qf, "../in/x", err, sizeof(err));
    ok(rc == -1 && count_dir("tmp") == 0 && count_queue("bounces") == 1,
       "queue_file_commit_as refuses a bad name and cleans up");

    /* the committed name: arrival from the envelope, hash from the rest */
    if (!(qf = queue_file_create(&sp, "in", err, sizeof(err))))
        bail_out("queue_file_create: %s", err);
    env.arrival_usec = 42;
    queue_file_begin(qf, &env);
    queue_file_write(qf, "abc", 3);
    memset(name, 'X', sizeof(name));
    rc = queue_file_commit(qf, name, err, sizeof(err));
    ok(rc == 0 && name[QNAME_LEN] == 0 &&
           strncmp(name, "1732312345.000042+", 18) == 0,
       "queue_file_commit names the entry after the envelope's arrival");
    envelope_free(&env);
    empty_queues();

    odd_arrival(9999999999LL, 999999, "9999999999.999999 (the largest)");
    odd_arrival(10000000000LL, 0, "10000000000 s (11 digits)");
    odd_arrival(ARRIVAL0, 1000000, "1000000 microseconds");
    odd_arrival(-1, 0, "-1 s");
}

/* Remove the temporary tree however the test ends (bail_out too), but
 * only in the process that made it. */
static pid_t main_pid;

static void cleanup(void)
{
    char cmd[sizeof(tmpdir) + 16];

    if (getpid() != main_pid)
        return;
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", tmpdir);
}

int main(void)
{
    char err[QUEUE_ERR_MAX];

    log_init("queue_test", LOG_STDERR_ALWAYS);
    umask(022);
    if (!mkdtemp(tmpdir))
        bail_out("mkdtemp: %s", strerror(errno));
    main_pid = getpid();
    atexit(cleanup);
    snprintf(spooldir, sizeof(spooldir), "%s/spool", tmpdir);
    if (spool_init(spooldir, (uid_t)-1, (gid_t)-1, err, sizeof(err)) != 0)
        bail_out("spool_init: %s", err);
    if (config_defaults(&cfg) != 0)
        bail_out("config_defaults failed");
    free(cfg.spool);
    free(cfg.node);
    cfg.spool = strdup(spooldir);
    cfg.node = strdup(NODE);
    if (!cfg.spool || !cfg.node)
        bail_out("out of memory");

    test_spool_open();
    if (spool_open(&sp, &cfg, err, sizeof(err)) != 0)
        bail_out("spool_open: %s", err);
    test_list();
    test_claims();
    test_claim_fifo();
    test_empty_lists();
    test_rewrite();
    test_move();
    test_recovery();
    test_clean_tmp();
    test_writer();

    spool_close(&sp);
    config_free(&cfg);
    return done_testing(); /* cleanup() removes tmpdir */
}
