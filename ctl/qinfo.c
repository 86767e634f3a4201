/*
 * qinfo - the postmaster's view of the spool and its safe actions.  See
 * qinfo.h for the contract: every action claims the entry first, exactly
 * as a runner does, and acts only on its own claimed file.
 */
#include "autoconf.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "held.h"
#include "journal.h"
#include "log.h"
#include "member.h"
#include "qinfo.h"

/* ------------------------------------------------------------- listing */

static int qentry_cmp(const void *a, const void *b)
{
    const struct qentry *x = a, *y = b;
    int c = strcmp(x->qn.name, y->qn.name);

    return c ? c : strcmp(x->queue, y->queue);
}

static int qentries_push(struct qentries *l, const char *queue,
                         const struct qname *qn)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 256;
        struct qentry *v = realloc(l->v, cap * sizeof(*v));

        if (!v)
            return -1;
        l->v = v;
        l->cap = cap;
    }
    snprintf(l->v[l->n].queue, sizeof(l->v[l->n].queue), "%s", queue);
    l->v[l->n++].qn = *qn;
    return 0;
}

static int wanted_queue(const char *const *queues, const char *q)
{
    size_t i;

    if (!queues)
        return 1;
    for (i = 0; queues[i]; i++)
        if (strcmp(queues[i], q) == 0)
            return 1;
    return 0;
}

int qentries_scan(struct spool *sp, const char *const *queues,
                  const struct slice_set *set, struct qentries *out, char *err,
                  size_t errlen)
{
    struct qlist l = {NULL, 0, 0};
    size_t i;
    int q;

    out->n = 0;
    for (q = 0; queue_names[q]; q++) {
        if (!wanted_queue(queues, queue_names[q]))
            continue;
        if (queue_list(sp, queue_names[q], set, QL_READY | QL_CLAIMED, 0, &l,
                       err, errlen) != 0) {
            qlist_free(&l);
            return -1;
        }
        for (i = 0; i < l.n; i++)
            if (qentries_push(out, queue_names[q], &l.v[i]) != 0) {
                qlist_free(&l);
                return err_set(err, errlen, ENOMEM, "out of memory");
            }
    }
    qlist_free(&l);
    if (out->n > 1)
        qsort(out->v, out->n, sizeof(out->v[0]), qentry_cmp);
    return 0;
}

void qentries_free(struct qentries *l)
{
    free(l->v);
    l->v = NULL;
    l->n = l->cap = 0;
}

static size_t common_prefix(const char *a, const char *b)
{
    size_t n = 0;

    while (a[n] && a[n] == b[n])
        n++;
    return n;
}

size_t qentries_short_len(const struct qentries *l, size_t i)
{
    const char *name = l->v[i].qn.name;
    size_t need = QID_MIN, j, c;

    /* Sorted: the longest shared prefix is with a neighbour (skipping the
     * same name listed in another queue). */
    for (j = i; j-- > 0;)
        if (strcmp(l->v[j].qn.name, name) != 0) {
            c = common_prefix(l->v[j].qn.name, name) + 1;
            need = c > need ? c : need;
            break;
        }
    for (j = i + 1; j < l->n; j++)
        if (strcmp(l->v[j].qn.name, name) != 0) {
            c = common_prefix(l->v[j].qn.name, name) + 1;
            need = c > need ? c : need;
            break;
        }
    return need > QNAME_LEN ? QNAME_LEN : need;
}

static int id_char_ok(size_t i, char c)
{
    if (i < 10 || (i > 10 && i < 17))
        return c >= '0' && c <= '9';
    if (i == 10)
        return c == '.';
    if (i == 17)
        return c == '+';
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

int qentries_find(const struct qentries *l, const char *id, size_t *first,
                  size_t *count)
{
    size_t n = strcspn(id, "@#"), lo = 0, hi = l->n, i;

    *first = *count = 0;
    if (n == 0 || n > QNAME_LEN)
        return -1;
    for (i = 0; i < n; i++)
        if (!id_char_ok(i, id[i]))
            return -1;
    while (lo < hi) { /* first name >= id's prefix */
        size_t mid = lo + (hi - lo) / 2;

        if (strncmp(l->v[mid].qn.name, id, n) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *first = lo;
    for (i = lo; i < l->n && strncmp(l->v[i].qn.name, id, n) == 0; i++)
        ;
    *count = i - lo;
    return 0;
}

void qentry_fname(const struct qentry *e, char *out, size_t outlen)
{
    const struct qname *qn = &e->qn;

    if (qn->kind == QN_CLAIMED)
        snprintf(out, outlen, "%s%s%s#%s#%ld#%llu", qn->name,
                 qn->origin[0] ? "@" : "", qn->origin, qn->node, (long)qn->pid,
                 qn->start);
    else
        snprintf(out, outlen, "%s%s%s", qn->name, qn->origin[0] ? "@" : "",
                 qn->origin);
}

void qentry_path(const struct qentry *e, char *out, size_t outlen)
{
    char fname[QFILE_MAX + 1];

    qentry_fname(e, fname, sizeof(fname));
    snprintf(out, outlen, "%s/%.2s/%s", e->queue, e->qn.hash, fname);
}

int qentry_read(struct spool *sp, const struct qentry *e, struct envelope *env,
                off_t *body_off, struct stat *st, int *fd_out, char *err,
                size_t errlen)
{
    char rel[QFILE_MAX + 64], why[QUEUE_ERR_MAX];
    size_t settled;
    off_t off;
    int fd, found;

    envelope_init(env);
    qentry_path(e, rel, sizeof(rel));
    fd = openat(sp->fd, rel, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT)
        return 1;
    if (fd < 0)
        return err_set(err, errlen, errno, "%s", strerror(errno));
    if (fstat(fd, st) != 0 || !S_ISREG(st->st_mode)) {
        int e2 = errno;
        close(fd);
        return err_set(err, errlen, e2, "not a regular file");
    }
    if (envelope_read(fd, env, body_off ? body_off : &off, why, sizeof(why)) !=
        0) {
        close(fd);
        return err_set(err, errlen, EINVAL, "%s", why);
    }
    /* what is still to deliver: the entry less its journal (journal.h) */
    if (strcmp(e->queue, "in") != 0 && strcmp(e->queue, "bounces") != 0 &&
        journal_apply(sp, e->qn.name, env, &found, &settled, why,
                      sizeof(why)) != 0) {
        envelope_free(env);
        close(fd);
        return err_set(err, errlen, errno, "%s", why);
    }
    if (fd_out)
        *fd_out = fd;
    else
        close(fd);
    return 0;
}

/* ------------------------------------------------------------- actions */

static int is_one_of(const char *q, const char *const *set)
{
    size_t i;

    for (i = 0; set[i]; i++)
        if (strcmp(q, set[i]) == 0)
            return 1;
    return 0;
}

static const char *const active_queues[] = {"in", "bounces", "out", "deferred",
                                            NULL};

/* Claim e (which must be ready as listed).  QA_OK, QA_BUSY or QA_ERROR. */
static int claim_entry(struct spool *sp, const struct qentry *e,
                       struct claim *c, char *err, size_t errlen)
{
    char fname[QFILE_MAX + 1];
    int rc;

    if (e->qn.kind == QN_CLAIMED) {
        err_set(err, errlen, EBUSY, "claimed by process %ld on node %s",
                (long)e->qn.pid, e->qn.node);
        return QA_BUSY;
    }
    qentry_fname(e, fname, sizeof(fname));
    rc = queue_claim(sp, e->queue, fname, c, err, errlen);
    if (rc == 1) {
        err_set(err, errlen, ENOENT, "being worked on, or gone");
        return QA_BUSY;
    }
    return rc == 0 ? QA_OK : QA_ERROR;
}

/* Undo our claim after a failure; the reason already is in err. */
static int give_back(struct claim *c)
{
    char why[QUEUE_ERR_MAX];

    queue_claim_close(c);
    (void)queue_unclaim(c, why, sizeof(why)); /* else recovery restores it */
    return QA_ERROR;
}

int qact_hold(struct spool *sp, const struct qentry *e, char *err,
              size_t errlen)
{
    struct claim c;
    int rc;

    if (!is_one_of(e->queue, active_queues)) {
        err_set(err, errlen, EINVAL,
                "in %s/: only entries of in/, "
                "bounces/, out/ and deferred/ can be held",
                e->queue);
        return QA_WRONG;
    }
    if ((rc = claim_entry(sp, e, &c, err, errlen)) != QA_OK)
        return rc;
    /* The mtime of a held file is when it was held (see release). */
    if (queue_touch(&c, (int64_t)time(NULL), err, errlen) != 0)
        return give_back(&c);
    if (queue_move(&c, "hold", err, errlen) != 0)
        return give_back(&c); /* if the rename was done, nothing to undo */
    return QA_OK;
}

/* A post held from in/: record that mmqctl decides it (held.h), so that
 * a reply killed after its own record knows it lost. */
static int record_release(struct spool *sp, struct claim *c, char *err,
                          size_t errlen)
{
    struct held_decision d;
    struct member_store ms;
    struct envelope env;
    off_t off;
    int rc;

    if (strcmp(c->qn.origin, "in") != 0)
        return 0;
    if (queue_claim_read(c, &env, &off, err, errlen) != 0)
        return -1;
    rc = member_store_open(&ms, sp->path, env.list, sp->cfg->node, 1, err,
                           errlen);
    envelope_free(&env);
    if (rc != 0)
        return -1;
    memset(&d, 0, sizeof(d));
    snprintf(d.by, sizeof(d.by), "mmqctl.%s.%ld", sp->cfg->node,
             (long)getpid());
    snprintf(d.action, sizeof(d.action), "release");
    rc = held_decision_write(&ms, c->qn.name, &d, err, errlen);
    member_store_close(&ms);
    return rc;
}

int qact_release(struct spool *sp, const struct qentry *e, char *err,
                 size_t errlen)
{
    struct claim c;
    int rc;

    if (strcmp(e->queue, "hold") != 0) {
        err_set(err, errlen, EINVAL, "in %s/, not held", e->queue);
        return QA_WRONG;
    }
    if (!is_one_of(e->qn.origin, active_queues)) {
        err_set(err, errlen, EINVAL,
                "held from \"%s\": no queue to release "
                "it to",
                e->qn.origin);
        return QA_WRONG;
    }
    if ((rc = claim_entry(sp, e, &c, err, errlen)) != QA_OK)
        return rc;
    /* claimed: ours alone; an owner's reply now finds it gone */
    if (record_release(sp, &c, err, errlen) != 0 ||
        held_release(&c, err, errlen) != 0)
        return give_back(&c);
    return QA_OK;
}

int qact_retry(struct spool *sp, const struct qentry *e, char *err,
               size_t errlen)
{
    struct envelope env;
    struct claim c;
    int64_t now = (int64_t)time(NULL);
    off_t off;
    int rc;

    if (strcmp(e->queue, "out") == 0) {
        err_set(err, errlen, 0, "already due (in out/)");
        return QA_NOTHING;
    }
    if (strcmp(e->queue, "deferred") != 0) {
        err_set(err, errlen, EINVAL, "in %s/, not deferred", e->queue);
        return QA_WRONG;
    }
    if ((rc = claim_entry(sp, e, &c, err, errlen)) != QA_OK)
        return rc;
    if (queue_claim_read(&c, &env, &off, err, errlen) != 0)
        return give_back(&c);
    env.next_attempt = now;
    rc = queue_rewrite(&c, &env, err, errlen);
    envelope_free(&env);
    if (rc != 0 || queue_touch(&c, now, err, errlen) != 0)
        return give_back(&c);
    /* The rename into out/ wakes the agent (inotify IN_MOVED_TO). */
    if (queue_move(&c, "out", err, errlen) != 0)
        return give_back(&c);
    return QA_OK;
}

int qact_delete(struct spool *sp, const struct qentry *e, char *err,
                size_t errlen)
{
    struct claim c;
    int rc;

    if ((rc = claim_entry(sp, e, &c, err, errlen)) != QA_OK)
        return rc;
    if (queue_done(&c, err, errlen) != 0)
        return QA_ERROR;
    /* A post the list stage had begun to expand (its "expanded" mark)
     * leaves staged out/ entries nobody will publish now: remove them.
     * Only the claimer of the post publishes, and the post is gone. */
    if (strcmp(e->queue, "in") == 0 || strcmp(e->qn.origin, "in") == 0)
        (void)spool_unstage(sp, e->qn.name, NULL, 0);
    return QA_OK;
}

int qact_requeue(struct spool *sp, const struct qentry *e, char *err,
                 size_t errlen)
{
    /* not hold/: an entry goes to bad/ from hold/ keeping "@ORIGIN" */
    static const char *const targets[] = {"in", "bounces", "out", "deferred",
                                          NULL};
    struct envelope env;
    struct claim c;
    off_t off;
    int rc;

    if (strcmp(e->queue, "bad") != 0) {
        err_set(err, errlen, EINVAL, "in %s/, not in bad/", e->queue);
        return QA_WRONG;
    }
    if (!is_one_of(e->qn.origin, targets)) {
        err_set(err, errlen, EINVAL, "no origin queue in its name");
        return QA_WRONG;
    }
    if ((rc = claim_entry(sp, e, &c, err, errlen)) != QA_OK)
        return rc;
    if (queue_claim_read(&c, &env, &off, err, errlen) != 0) {
        give_back(&c);
        return QA_WRONG; /* unreadable: it stays in bad/ */
    }
    env.recoveries = 0;
    rc = queue_rewrite(&c, &env, err, errlen);
    envelope_free(&env);
    if (rc != 0 || queue_touch(&c, (int64_t)time(NULL), err, errlen) != 0)
        return give_back(&c);
    if (queue_move(&c, e->qn.origin, err, errlen) != 0)
        return give_back(&c);
    return QA_OK;
}

/* ------------------------------------------------------------ age shape */

static const char *const qshape_labels[QSHAPE_BUCKETS] = {
    "5m",   "10m",  "20m",  "40m",   "80m",
    "160m", "320m", "640m", "1280m", "1280m+"};

unsigned qshape_bucket(int64_t age)
{
    int64_t limit = 5 * 60;
    unsigned i;

    for (i = 0; i < QSHAPE_BUCKETS - 1; i++, limit *= 2)
        if (age < limit)
            return i;
    return QSHAPE_BUCKETS - 1;
}

const char *qshape_label(unsigned i)
{
    return i < QSHAPE_BUCKETS ? qshape_labels[i] : "?";
}
