/*
 * qname - entry names: parsing a bucket's file names (ready, claimed, with
 * an origin queue), and listing a queue's entries by slice, oldest first
 * (queue_list).  Contract in queue.h (sections "names" and "listing").
 * Reading only: nothing here writes to the spool.
 */
#include "autoconf.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
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
    if (spool_check_dir(sp, fd, rel, err, errlen) != 0) {
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

/*
 * Listing a queue means opening and reading up to 256 bucket directories.
 * On a local disk that is a few microseconds each; over FUSE (GlusterFS)
 * every open and every getdents is a network round trip, and 256 of them
 * one after the other took 1-2 s per listing on this machine: the
 * delivery agent lists several times per dispatch cycle (recovery,
 * deferred/, out/), so that was most of a cluster node's delivery time.
 * The buckets are therefore read by LIST_THREADS threads at once, each
 * taking the next wanted bucket: the same operations, in the same
 * directories, only overlapped (measured: 256 buckets in 0.2-0.3 s with
 * 4 threads instead of 1.0-1.2 s).  Nothing changes for safety: a listing
 * only reads, and what it returns is, as before, a snapshot that may be
 * stale by the time the caller acts on it (claims decide, never lists).
 * Without threads (pthread_create failing) the caller reads them alone.
 */
#define LIST_THREADS 4
#define LIST_THREADS_MIN_BUCKETS 16 /* below this, threads cost more */

struct list_job {
    struct spool *sp;
    const char *queue;
    const struct slice_set *set;
    const unsigned char *want;
    int flags;
    size_t max;
    unsigned *next; /* the next bucket to take, shared by the threads */
    struct qlist out;
    int failed_bucket; /* the bucket that failed, or -1 */
    int error;         /* its errno */
    char err[QUEUE_ERR_MAX];
};

static void *list_worker(void *arg)
{
    struct list_job *j = arg;
    unsigned b;

    while ((b = __atomic_fetch_add(j->next, 1, __ATOMIC_RELAXED)) <
           SLICE_BUCKETS) {
        if (!j->want[b])
            continue;
        if (list_bucket(j->sp, j->queue, b, j->set, j->flags, j->max, &j->out,
                        j->err, sizeof(j->err)) != 0) {
            j->failed_bucket = (int)b;
            j->error = errno;
            break;
        }
    }
    return NULL;
}

/* Read the wanted buckets with up to LIST_THREADS threads into out. */
static int list_buckets(struct spool *sp, const char *queue,
                        const struct slice_set *set, const unsigned char *want,
                        int flags, size_t max, struct qlist *out, char *err,
                        size_t errlen)
{
    struct list_job job[LIST_THREADS];
    pthread_t tid[LIST_THREADS];
    sigset_t all, old;
    unsigned next = 0, b, nwant = 0;
    int i, nt = 0, rc = 0, failed = -1, fi = -1;

    for (b = 0; b < SLICE_BUCKETS; b++)
        nwant += want[b];
    memset(job, 0, sizeof(job));
    for (i = 0; i < LIST_THREADS; i++) {
        job[i].sp = sp;
        job[i].queue = queue;
        job[i].set = set;
        job[i].want = want;
        job[i].flags = flags;
        job[i].max = max;
        job[i].next = &next;
        job[i].failed_bucket = -1;
    }
    /* The threads take no signals: the agent's handlers and its poll()
     * stay with the main thread. */
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    for (i = 1; nwant >= LIST_THREADS_MIN_BUCKETS && i < LIST_THREADS; i++) {
        if (pthread_create(&tid[i - 1], NULL, list_worker, &job[i]) != 0)
            break;
        nt++;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    list_worker(&job[0]);
    for (i = 0; i < nt; i++)
        pthread_join(tid[i], NULL);
    for (i = 0; i <= nt; i++) {
        if (job[i].failed_bucket >= 0 &&
            (failed < 0 || job[i].failed_bucket < failed)) {
            failed = job[i].failed_bucket;
            fi = i;
        }
        for (size_t k = 0; rc == 0 && k < job[i].out.n; k++)
            if (qlist_push(out, &job[i].out.v[k]) != 0)
                rc = err_set(err, errlen, ENOMEM, "out of memory");
        qlist_free(&job[i].out);
    }
    if (rc == 0 && fi >= 0) {
        snprintf(err, errlen, "%s", job[fi].err);
        errno = job[fi].error;
        rc = -1;
    }
    return rc;
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
    if (list_buckets(sp, queue, set, want, flags, max, out, err, errlen) != 0)
        return -1;
    if (out->n > 1)
        qsort(out->v, out->n, sizeof(out->v[0]), qname_cmp);
    if (max && out->n > max)
        out->n = max;
    return 0;
}
