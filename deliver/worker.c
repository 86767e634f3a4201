/*
 * worker - one SMTP session's worth of deliveries, recorded durably.
 *
 * A worker is a child of mmq-deliver.  It claims the entries it was given
 * (a claim names this process, so a crash leaves a recognisable state),
 * cuts their recipients into transactions of at most
 * recipients_per_transaction, and sends them over one connection.  As soon
 * as the server has answered a transaction's DATA, the outcome is written
 * to the spool before anything else happens:
 *   - an entry all of whose recipients are settled is finished: a DSN for
 *     the failed ones is queued first, then the entry is removed;
 *   - an entry with transactions still to come gets the recipients just
 *     delivered or failed appended to its journal (journal.h: one write
 *     per transaction, fdatasync once per JOURNAL_SYNC_TXNS transactions
 *     or JOURNAL_SYNC_SECS), folded into the entry when it is rewritten
 *     anyway (deferred, recovered) or dropped with it when it is done;
 * so a kill -9 at any instant re-sends at most the transaction in flight.
 * What is left when the session ends goes to deferred/ with the next
 * attempt time from the backoff, or, past max_lifetime, into a DSN.
 *
 * Duplicates, bounded: a transaction the server accepted but whose outcome
 * we had not yet recorded when killed is sent again (at most one
 * transaction per worker); a DSN may be queued twice if the kill falls
 * between queuing it and rewriting the entry.
 */
#include "autoconf.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "counters.h"
#include "deliver.h"
#include "dsn.h"
#include "envelope.h"
#include "journal.h"
#include "lease.h"
#include "list.h"
#include "log.h"
#include "member.h"
#include "retry.h"
#include "smtp.h"

#define HEADERS_MAX 65536
#define FOLLOWUPS_MAX 50
#define SESSION_RCPTS_MAX 10000
/* The journal's fdatasync, batched: a power loss (not a crash: a written
 * record survives kill -9) re-sends at most this many transactions per
 * connection, or what they settled in this many seconds. */
#define JOURNAL_SYNC_TXNS 64
#define JOURNAL_SYNC_SECS 0.1

volatile sig_atomic_t worker_stop;
const struct lease_set *worker_lease;

enum rstate { R_PENDING, R_SENT, R_FAILED, R_RETRY };

struct went {
    struct claim c;
    struct envelope env;
    int src; /* the message as claimed: survives our rewrites */
    off_t body_off;
    int64_t size;
    int body8; /* 8-bit bytes in the message: found once, at the claim */
    unsigned char *state;
    unsigned char *again;    /* 452: try again in a following transaction */
    unsigned char *reported; /* failed and already in a DSN */
    const struct smtp_rcpt_result **why;
    size_t txns_left;
    int finalized;
    struct journal j; /* settled recipients, opened at the first */
    int journaled;    /* we made a journal for it (claiming folds any) */
};

struct wtxn {
    struct smtp_txn t;
    struct went *e;
    size_t *idx;       /* t.rcpt[k] is e->env.rcpt[idx[k]] */
    char *verp;        /* the VERP sender of a one-recipient txn, or NULL */
    struct buf hdr;    /* per-member header lines (member.h), or empty */
    const char **rcpt; /* the array behind t.rcpt */
};

struct batch {
    struct spool *sp;
    const struct mmq_config *cfg;
    struct went *e;
    size_t ne;
    char session_err[SMTP_TEXT_MAX + 64];
    int cut_off;       /* the spool cannot be written at all: stop sending */
    unsigned unsynced; /* transactions journaled since the last sync */
    double last_sync;
    /* per-transaction counters, added to the node's file at most once
     * per JOURNAL_SYNC_TXNS transactions or JOURNAL_SYNC_SECS (a flock and
     * a rewrite of stats/NODE per transaction cost more than the journal's
     * record); a kill -9 loses at most those counts: statistics, not mail */
    uint64_t counts[CNT_N];
    unsigned uncounted; /* transactions in counts[] */
    double last_count;
};

/*
 * A failure to record an outcome because the spool itself is gone (a
 * dead network mount, an I/O error, a read-only remount), as opposed to
 * a full disk: nothing more this session sends could be recorded, and
 * whoever recovers the entries would send it again, so the session stops
 * after the transaction in flight.  (On a full disk completed entries can
 * still be removed, so delivery goes on.)
 */
static void note_record_failure(struct batch *b, int e)
{
    if (e == EIO || e == ENOTCONN || e == ESTALE || e == EROFS || e == ENODEV ||
        e == ENXIO || e == ESHUTDOWN)
        b->cut_off = 1;
}

/* May this worker go on with the entries it holds? */
static int leases_hold(const struct batch *b)
{
    size_t i;

    for (i = 0; worker_lease && i < b->ne; i++)
        if (!b->e[i].finalized && b->e[i].c.fd >= 0 &&
            !lease_key_ok(worker_lease, b->e[i].c.qn.key))
            return 0;
    return 1;
}

static double now_f(void)
{
    struct timeval tv;

    gettimeofday(&tv, NULL);
    return (double)tv.tv_sec + tv.tv_usec / 1e6;
}

/* Add to this node's counters (mmqctl stats --prometheus); best effort. */
static void count(struct batch *b, enum counter c, size_t n)
{
    uint64_t d[CNT_N] = {0};
    char err[QUEUE_ERR_MAX];

    d[c] = n;
    if (n && counters_add(b->sp, d, err, sizeof(err)) != 0)
        log_warn("counters: %s", err);
}

/* ---------------------------------------------------------------- DSN */

static int read_headers(struct went *e, struct buf *b)
{
    size_t want = e->size < HEADERS_MAX ? (size_t)e->size : HEADERS_MAX;
    ssize_t n;

    if (buf_reserve(b, want) != 0)
        return -1;
    n = pread(e->src, b->data, want, e->body_off);
    if (n < 0)
        return -1;
    b->len = (size_t)n;
    return 0;
}

/* Queue one DSN for the recipients idx[0..n) of e.  0 also when no DSN
 * is due (null sender): the recipients are then only logged. */
static int queue_dsn(struct batch *b, struct went *e, const size_t *idx,
                     size_t n, const char *action, const char *status)
{
    struct dsn_rcpt *r = calloc(n, sizeof(*r));
    struct dsn_info info;
    struct envelope env;
    struct queue_file *qf = NULL;
    struct buf orig, msg;
    struct timeval tv;
    char err[QUEUE_ERR_MAX], name[QNAME_LEN + 1], host[256];
    size_t i;
    int rc = -1;

    buf_init(&orig);
    buf_init(&msg);
    envelope_init(&env);
    if (!r)
        return -1;
    if (!e->env.sender || !e->env.sender[0]) {
        for (i = 0; i < n; i++)
            log_info("%s: to=<%s>, status=%s: no DSN to the null sender",
                     e->c.qn.name, e->env.rcpt[idx[i]].addr, action);
        free(r);
        return 0;
    }
    snprintf(host, sizeof(host), "%s", config_myhostname(b->cfg));
    for (i = 0; i < n; i++) {
        const struct smtp_rcpt_result *w = e->why[idx[i]];
        r[i].addr = e->env.rcpt[idx[i]].addr;
        r[i].action = action;
        r[i].status = status ? status : (w && w->status[0] ? w->status : NULL);
        r[i].diag = w && w->text[0] ? w->text : e->env.last_error;
        r[i].remote_mta = b->cfg->relay_host;
    }
    memset(&info, 0, sizeof(info));
    info.reporting_mta = host;
    info.postmaster = b->cfg->postmaster;
    info.to = e->env.sender;
    info.list = e->env.list;
    info.queue_id = e->c.qn.name;
    info.arrival = e->env.arrival_sec;
    info.rcpt = r;
    info.nrcpt = n;
    if (read_headers(e, &orig) != 0) {
        log_error("%s: cannot read the message for a DSN: %s", e->c.qn.name,
                  strerror(errno));
        goto out;
    }
    info.orig = orig.data ? orig.data : "";
    info.orig_len = orig.len;
    if (dsn_build(&info, &msg, err, sizeof(err)) != 0) {
        log_error("%s: cannot build a DSN: %s", e->c.qn.name, err);
        goto out;
    }
    gettimeofday(&tv, NULL);
    env.role = ROLE_POST;
    env.arrival_sec = tv.tv_sec;
    env.arrival_usec = (int32_t)tv.tv_usec;
    env.size = (int64_t)msg.len;
    if (envelope_set(&env.list, e->env.list) || envelope_set(&env.sender, "") ||
        envelope_add_rcpt(&env, e->env.sender, NULL))
        goto out;
    if (!(qf = queue_file_create(b->sp, "out", err, sizeof(err))) ||
        queue_file_begin(qf, &env) != 0 ||
        queue_file_write(qf, msg.data, msg.len) != 0) {
        log_error("%s: cannot queue a DSN: %s", e->c.qn.name,
                  qf ? queue_file_error(qf) : err);
        queue_file_abort(qf);
        goto out;
    }
    if (queue_file_commit(qf, name, err, sizeof(err)) != 0) {
        log_error("%s: cannot queue a DSN: %s", e->c.qn.name, err);
        goto out;
    }
    log_info("%s: sender non-delivery notification: %s (%zu recipient%s, "
             "%s)",
             e->c.qn.name, name, n, n == 1 ? "" : "s", action);
    count(b, CNT_DSN, 1);
    rc = 0;
out:
    envelope_free(&env);
    buf_free(&orig);
    buf_free(&msg);
    free(r);
    return rc;
}

/* DSN for failed recipients not yet reported; marks them reported. */
static int report_failures(struct batch *b, struct went *e)
{
    size_t i, n = 0, *idx = malloc((e->env.nrcpt + 1) * sizeof(size_t));
    int rc;

    if (!idx)
        return -1;
    for (i = 0; i < e->env.nrcpt; i++)
        if (e->state[i] == R_FAILED && !e->reported[i])
            idx[n++] = i;
    rc = n ? queue_dsn(b, e, idx, n, "failed", NULL) : 0;
    if (rc == 0)
        for (i = 0; i < n; i++)
            e->reported[idx[i]] = 1;
    free(idx);
    return rc;
}

/* --------------------------------------------------------- recording */

/* e's envelope with only the recipients in state keep1/keep2. */
static int rewrite_keeping(struct batch *b, struct went *e,
                           const struct envelope *base, char *err,
                           size_t errlen)
{
    struct envelope tmp = *base;
    struct envelope_rcpt *kept = malloc((e->env.nrcpt + 1) * sizeof(*kept));
    size_t i, n = 0;
    int rc;

    (void)b;
    if (!kept)
        return -1;
    for (i = 0; i < e->env.nrcpt; i++)
        if (e->state[i] == R_PENDING || e->state[i] == R_RETRY)
            kept[n++] = e->env.rcpt[i];
    tmp.rcpt = kept;
    tmp.nrcpt = n;
    rc = queue_rewrite(&e->c, &tmp, err, errlen);
    free(kept);
    return rc;
}

static size_t count_state(const struct went *e, enum rstate s)
{
    size_t i, n = 0;

    for (i = 0; i < e->env.nrcpt; i++)
        n += e->state[i] == s;
    return n;
}

static const char *first_retry_reason(const struct went *e)
{
    size_t i;

    for (i = 0; i < e->env.nrcpt; i++)
        if (e->state[i] == R_RETRY && e->why[i] && e->why[i]->text[0])
            return e->why[i]->text;
    return NULL;
}

/* Add the counts gathered since the last time to the node's counters. */
static void flush_counts(struct batch *b)
{
    char err[QUEUE_ERR_MAX];
    size_t k;
    int any = 0;

    for (k = 0; k < CNT_N; k++)
        any |= b->counts[k] != 0;
    if (any && counters_add(b->sp, b->counts, err, sizeof(err)) != 0)
        log_warn("counters: %s", err);
    memset(b->counts, 0, sizeof(b->counts));
    b->uncounted = 0;
    b->last_count = now_f();
}

/* fdatasync every journal written to since the last time. */
static void sync_journals(struct batch *b)
{
    size_t i;

    flush_counts(b);

    for (i = 0; i < b->ne; i++)
        if (journal_sync(&b->e[i].j) != 0) {
            note_record_failure(b, errno);
            log_error("%s: cannot sync its journal: %s", b->e[i].c.qn.name,
                      strerror(errno));
        }
    b->unsynced = 0;
    b->last_sync = now_f();
}

/* Progress: append the recipients of w that are settled (delivered, or
 * failed and in a DSN) to e's journal, so a crash cannot resend them. */
static int journal_settled(struct batch *b, struct wtxn *w)
{
    struct went *e = w->e;
    char err[QUEUE_ERR_MAX];
    size_t k;

    for (k = 0; k < w->t.nrcpt; k++) {
        size_t i = w->idx[k];
        int settled = e->state[i] == R_SENT ||
                      (e->state[i] == R_FAILED && e->reported[i]);
        if (!settled)
            continue;
        if (e->j.fd < 0 &&
            journal_open(b->sp, e->c.qn.name, &e->j, err, sizeof(err)) != 0) {
            log_error("%s: cannot record progress: %s", e->c.qn.name, err);
            return -1;
        }
        e->journaled = 1;
        if (journal_append(&e->j, i, e->env.rcpt[i].addr) != 0) {
            log_error("%s: cannot record progress in its journal: %s",
                      e->c.qn.name, strerror(errno));
            return -1;
        }
    }
    if (++b->unsynced >= JOURNAL_SYNC_TXNS ||
        now_f() - b->last_sync >= JOURNAL_SYNC_SECS)
        sync_journals(b);
    return 0;
}

/* out/ buckets with entries removed but not yet fsync()ed. */
static unsigned char b_removed[SLICE_BUCKETS];

static void sync_removed(struct spool *sp)
{
    char bucket[64], err[QUEUE_ERR_MAX];
    unsigned b;

    for (b = 0; b < SLICE_BUCKETS; b++) {
        if (!b_removed[b])
            continue;
        b_removed[b] = 0;
        snprintf(bucket, sizeof(bucket), "out/%02x", b);
        if (spool_sync_dir(sp, bucket, err, sizeof(err)) != 0)
            log_error("%s", err);
    }
}

/* All transactions of e are over: finish, return or defer it. */
static void finalize(struct batch *b, struct went *e)
{
    char err[QUEUE_ERR_MAX];
    const char *reason;
    int64_t now = time(NULL), next;
    size_t i, left;

    e->finalized = 1;
    /* From here the entry is removed (with its journal) or rewritten
     * (which folds the journal): no more records. */
    journal_close(&e->j);
    for (i = 0; i < e->env.nrcpt; i++)
        if (e->state[i] == R_PENDING)
            e->state[i] = R_RETRY;
    if (report_failures(b, e) != 0)
        goto keep; /* DSN not queued: keep everything, try again later */
    left = count_state(e, R_RETRY);
    if (left == 0) {
        char bucket[64];
        unsigned bk;

        /* The bucket is fsync()ed once per session (sync_removed()), not
         * once per entry: a kill cannot bring a removed entry back, only a
         * power loss before the session's end, and then it is delivered
         * again -- a bounded, documented duplicate, for a large gain on
         * streams of small entries. */
        if (queue_remove(&e->c, bucket, err, sizeof(err)) != 0) {
            note_record_failure(b, errno);
            log_error("%s: %s", e->c.qn.name, err);
            return;
        }
        if (sscanf(bucket + 4, "%2x", &bk) == 1 && bk < SLICE_BUCKETS)
            b_removed[bk] = 1;
        /* after the entry: a crash in between leaves an orphaned journal
         * (journal_clean()), never an entry without its journal */
        if (e->journaled && journal_remove(b->sp, e->c.qn.name) != 0)
            log_error("%s: cannot remove its journal: %s", e->c.qn.name,
                      strerror(errno));
        log_info("%s: removed", e->c.qn.name);
        return;
    }
    reason = first_retry_reason(e);
    if (!reason)
        reason = b->session_err[0] ? b->session_err : "4.4.0 not delivered";
    if (envelope_set(&e->env.last_error, reason) != 0)
        goto keep;
    if (retry_expired(envelope_life_start(&e->env), b->cfg->max_lifetime,
                      now)) {
        size_t n = 0, *idx = malloc(left * sizeof(size_t));
        if (!idx)
            goto keep;
        for (i = 0; i < e->env.nrcpt; i++)
            if (e->state[i] == R_RETRY)
                idx[n++] = i;
        if (queue_dsn(b, e, idx, n, "failed", "4.4.7") != 0) {
            free(idx);
            goto keep;
        }
        free(idx);
        log_info("%s: %zu recipient%s expired after %d s (max_lifetime): "
                 "returned to sender",
                 e->c.qn.name, left, left == 1 ? "" : "s",
                 b->cfg->max_lifetime);
        count(b, CNT_EXPIRED, left);
        if (queue_done(&e->c, err, sizeof(err)) != 0) {
            note_record_failure(b, errno);
            log_error("%s: %s", e->c.qn.name, err);
        }
        return;
    }
keep:
    e->env.attempts++;
    e->env.recoveries = 0; /* it made it through a session: not a crasher */
    next = now +
           retry_delay(e->env.attempts, b->cfg->retry_min, b->cfg->retry_max);
    e->env.next_attempt = next;
    /* failed-and-reported recipients are dropped, unreported ones kept */
    for (i = 0; i < e->env.nrcpt; i++)
        if (e->state[i] == R_FAILED && !e->reported[i])
            e->state[i] = R_RETRY;
    if (rewrite_keeping(b, e, &e->env, err, sizeof(err)) != 0 ||
        queue_touch(&e->c, next, err, sizeof(err)) != 0 ||
        queue_move(&e->c, "deferred", err, sizeof(err)) != 0) {
        note_record_failure(b, errno);
        log_error("%s: cannot defer (entry stays claimed until recovery): %s",
                  e->c.qn.name, err);
        return;
    }
    log_info("%s: deferred %zu recipient%s, attempt %d, next in %lld s: %s",
             e->c.qn.name, count_state(e, R_RETRY),
             count_state(e, R_RETRY) == 1 ? "" : "s", e->env.attempts,
             (long long)(next - now), e->env.last_error);
}

/* Recipients of a transaction: delivered, failed or to retry. */
static void classify(struct batch *b, struct wtxn *w)
{
    struct went *e = w->e;
    size_t k, n57 = 0, nfail = 0;

    for (k = 0; k < w->t.nrcpt; k++) {
        const struct smtp_rcpt_result *r = &w->t.res[k];
        if (smtp_outcome(&w->t, k) == SMTP_FAILED) {
            nfail++;
            n57 += strncmp(r->status, "5.7.", 4) == 0;
        }
    }
    /* Every recipient refused with 5.7.x: the relay refuses *us* (AUTH,
     * relay access): a configuration fault, not a bad address. */
    if (n57 == w->t.nrcpt && n57 > 0)
        log_error("relay %s refused all %zu recipients with %s: check "
                  "relay_host, auth_file and the relay's access rules; "
                  "deferring",
                  b->cfg->relay_host, n57, w->t.res[0].text);
    for (k = 0; k < w->t.nrcpt; k++) {
        size_t i = w->idx[k];
        const struct smtp_rcpt_result *r = &w->t.res[k];
        enum smtp_outcome o = smtp_outcome(&w->t, k);

        /* a 2xx RCPT reply is no reason: the message's reply is (451,
         * 554...), or, if the transaction never ended, the session's */
        e->why[i] = r->code && r->code / 100 != 2 ? r
                    : w->t.msg.code               ? &w->t.msg
                                                  : NULL;
        if (o == SMTP_SENT)
            e->state[i] = R_SENT;
        else if (o == SMTP_FAILED && !(n57 == w->t.nrcpt))
            e->state[i] = R_FAILED;
        else
            e->state[i] = R_RETRY;
        if (r->code == 452) /* too many recipients: continue next txn */
            e->again[i] = 1;
    }
}

/*
 * The delivery log, as Postfix writes it: the recipients a transaction
 * delivered on one line, and every recipient it did not deliver on a line
 * of its own with the server's reply (or, when the server said nothing,
 * why the session failed: "4.4.2 Connection refused").  Each recipient is
 * on exactly one line, so counting "status=" words counts recipients.
 * What is logged is what classify() decided (a 5.7.x refusal of every
 * recipient is a deferral, not a bounce).
 */
static const char *state_word(unsigned char s)
{
    return s == R_SENT ? "sent" : s == R_FAILED ? "bounced" : "deferred";
}

/* The "d.d.d" status at the start of text or after its SMTP code. */
static void status_of(const char *text, char *out, size_t outlen)
{
    const char *p = text;
    size_t n;

    if (p[0] >= '2' && p[0] <= '5' && p[1] >= '0' && p[1] <= '9' &&
        p[2] >= '0' && p[2] <= '9' && (p[3] == ' ' || p[3] == '-'))
        p += 4;
    n = strspn(p, "0123456789.");
    if (n < 5 || n >= outlen || (p[0] != '2' && p[0] != '4' && p[0] != '5') ||
        p[1] != '.')
        n = 0;
    snprintf(out, outlen, "%.*s", n ? (int)n : 1, n ? p : "-");
}

static void log_line(struct batch *b, const struct wtxn *w, const char *to,
                     size_t more, const struct smtp_rcpt_result *r,
                     const char *status)
{
    const struct went *e = w->e;
    const char *text = r && r->text[0]     ? r->text
                       : b->session_err[0] ? b->session_err
                                           : "-";
    char dsn[sizeof(r->status)];

    if (r && r->status[0])
        snprintf(dsn, sizeof(dsn), "%s", r->status);
    else
        status_of(text, dsn, sizeof(dsn));
    log_info("%s: to=<%s>%s%.0zu, list=%s%s%s, relay=%s:%d, delay=%.2f, "
             "rcpts=%zu, dsn=%s, status=%s (%s)",
             e->c.qn.name, to, more ? " +" : "", more, e->env.list,
             e->env.role == ROLE_POST ? "" : ", forwarding=",
             e->env.role == ROLE_POST ? "" : role_name(e->env.role),
             b->cfg->relay_host, b->cfg->relay_port,
             now_f() - ((double)e->env.arrival_sec +
                        (double)e->env.arrival_usec / 1e6),
             more + 1, dsn, status, text);
}

static void log_txn(struct batch *b, const struct wtxn *w)
{
    size_t k, sent = 0, first = 0;

    for (k = 0; k < w->t.nrcpt; k++) {
        unsigned char s = w->e->state[w->idx[k]];

        b->counts[s == R_SENT     ? CNT_SENT
                  : s == R_FAILED ? CNT_BOUNCED
                                  : CNT_DEFERRED]++;
        if (s == R_SENT && sent++ == 0)
            first = k;
    }
    if (++b->uncounted >= JOURNAL_SYNC_TXNS ||
        now_f() - b->last_count >= JOURNAL_SYNC_SECS)
        flush_counts(b);
    if (sent > 0)
        log_line(b, w, w->t.rcpt[first], sent - 1, &w->t.msg, "sent");
    for (k = 0; k < w->t.nrcpt; k++) {
        unsigned char s = w->e->state[w->idx[k]];

        if (s != R_SENT)
            log_line(b, w, w->t.rcpt[k], 0, w->e->why[w->idx[k]],
                     state_word(s));
    }
}

static size_t again_count(const struct went *e)
{
    size_t i, n = 0;

    for (i = 0; i < e->env.nrcpt; i++)
        n += e->again[i];
    return n;
}

/* Called by smtp_run() right after the server answered a transaction. */
static void txn_done(struct smtp_txn *t, void *arg)
{
    struct batch *b = arg;
    struct wtxn *w = (struct wtxn *)t;
    struct went *e = w->e;
    char err[QUEUE_ERR_MAX];

    classify(b, w);
    log_txn(b, w);
    e->txns_left--;
    if (e->txns_left == 0 && again_count(e) == 0) {
        finalize(b, e);
    } else {
        /* progress: record what is settled, so a crash cannot resend it
         * (failed recipients once their DSN is queued) */
        (void)report_failures(b, e);
        if (journal_settled(b, w) != 0)
            note_record_failure(b, errno);
    }
    if (worker_stop || b->cut_off || !leases_hold(b)) {
        /* SIGTERM, or a lease lost: the transaction in flight is
         * recorded; give back the entries not yet finished and go. */
        size_t i;
        sync_journals(b); /* the next claimer reads them */
        for (i = 0; i < b->ne; i++)
            if (!b->e[i].finalized && b->e[i].c.fd >= 0 &&
                queue_unclaim(&b->e[i].c, err, sizeof(err)) != 0)
                log_error("%s: %s", b->e[i].c.qn.name, err);
        sync_removed(b->sp);
        log_info("%s", worker_stop  ? "stopping on SIGTERM after a recorded "
                                      "transaction"
                       : b->cut_off ? "stopping: the spool cannot be written, "
                                      "nothing more could be recorded"
                                    : "stopping: a lease of this session's "
                                      "slices was lost or handed back");
        _exit(0);
    }
}

/* ------------------------------------------------------------ batches */

static int claim_entry(struct batch *b, const char *fname, struct went *e)
{
    char err[QUEUE_ERR_MAX];
    uint64_t key;
    int rc;

    memset(e, 0, sizeof(*e));
    e->src = -1;
    journal_init(&e->j);
    envelope_init(&e->env);
    if (worker_lease && strlen(fname) > 18 &&
        (slice_key(fname + 18, &key) != 0 || !lease_key_ok(worker_lease, key)))
        return -1; /* its slice is no longer ours to work on */
    rc = queue_claim(b->sp, "out", fname, &e->c, err, sizeof(err));
    if (rc != 0) {
        if (rc < 0)
            log_error("%s", err);
        return -1;
    }
    if (queue_claim_read(&e->c, &e->env, &e->body_off, err, sizeof(err))) {
        log_error("%s: unreadable, moving to bad/: %s", e->c.qn.name, err);
        if (queue_move(&e->c, "bad", err, sizeof(err)) != 0)
            log_error("%s: %s", e->c.qn.name, err);
        return -1;
    }
    /* A journal left by an earlier session (killed, or given back): fold
     * it now, so that the recipient positions we journal are the ones on
     * disk.  Only after a crash or a stop. */
    if (e->c.journal) {
        size_t settled = e->c.settled;
        int fold = queue_rewrite(&e->c, &e->env, err, sizeof(err));
        /* then read it again: the message now starts elsewhere */
        envelope_free(&e->env);
        if (fold != 0 || queue_claim_read(&e->c, &e->env, &e->body_off, err,
                                          sizeof(err)) != 0) {
            log_error("%s: cannot fold its journal: %s", e->c.qn.name, err);
            queue_unclaim(&e->c, err, sizeof(err));
            envelope_free(&e->env);
            return -1;
        }
        log_info("%s: journal folded: %zu recipient%s settled by an earlier "
                 "session",
                 e->c.qn.name, settled, settled == 1 ? "" : "s");
    }
    e->size = e->env.size;
    e->src = dup(e->c.fd);
    e->state = calloc(e->env.nrcpt + 1, 1);
    e->again = calloc(e->env.nrcpt + 1, 1);
    e->reported = calloc(e->env.nrcpt + 1, 1);
    e->why = calloc(e->env.nrcpt + 1, sizeof(*e->why));
    if (e->src < 0 || !e->state || !e->again || !e->reported || !e->why) {
        log_error("%s: out of memory or descriptors", e->c.qn.name);
        queue_unclaim(&e->c, err, sizeof(err));
        return -1;
    }
    /* A read error here recurs when the message is sent, where it ends
     * the worker and the entry is deferred with backoff (worker_salvage);
     * meanwhile BODY=8BITMIME is the safe guess (harmless on 7-bit data). */
    if ((e->body8 = smtp_message_8bit(e->src, e->body_off, e->size)) < 0) {
        log_warn("%s: cannot read the message: %s", e->c.qn.name,
                 strerror(errno));
        e->body8 = 1;
    }
    return 0;
}

/* Transactions for the recipients of e selected by want(), at most per. */
static int add_txns(struct batch *b, struct went *e, int only_again, size_t per,
                    struct wtxn ***tx, size_t *nt, size_t *cap)
{
    size_t i = 0;

    if (e->env.verp || e->env.member_header)
        per = 1; /* each recipient has its own sender or header */
    while (i < e->env.nrcpt) {
        struct wtxn *w;
        size_t k = 0;

        if (*nt == *cap) {
            size_t nc = *cap ? *cap * 2 : 16;
            struct wtxn **p = realloc(*tx, nc * sizeof(*p));
            if (!p)
                return -1;
            *tx = p;
            *cap = nc;
        }
        if (!(w = calloc(1, sizeof(*w))) ||
            !(w->idx = calloc(per, sizeof(size_t))) ||
            !(w->rcpt = calloc(per, sizeof(char *))) ||
            !(w->t.res = calloc(per, sizeof(*w->t.res))))
            return -1;
        for (; i < e->env.nrcpt && k < per; i++) {
            if (only_again ? !e->again[i] : e->state[i] != R_PENDING)
                continue;
            if (only_again) {
                e->again[i] = 0;
                e->state[i] = R_PENDING;
            }
            w->idx[k] = i;
            w->rcpt[k++] = e->env.rcpt[i].addr;
        }
        if (k == 0) {
            free(w->idx);
            free(w->rcpt);
            free(w->t.res);
            free(w);
            break;
        }
        w->e = e;
        w->t.rcpt = w->rcpt;
        w->t.nrcpt = k;
        w->t.sender = e->env.sender;
        if (e->env.verp && e->env.sender[0]) {
            size_t len = strlen(e->env.sender) + strlen(w->rcpt[0]) + 2;
            if (!(w->verp = malloc(len)) ||
                list_verp_address(e->env.sender, w->rcpt[0], w->verp, len))
                return -1;
            w->t.sender = w->verp;
        }
        buf_init(&w->hdr);
        if (e->env.member_header) {
            if (member_headers(&e->env, w->rcpt[0], &w->hdr) != 0 ||
                w->hdr.len > SMTP_PREFIX_MAX)
                return -1;
            w->t.prefix = w->hdr.data;
            w->t.prefix_len = w->hdr.len;
        }
        w->t.fd = e->src;
        w->t.off = e->body_off;
        w->t.size = e->size;
        w->t.body8 = e->body8;
        e->txns_left++;
        (*tx)[(*nt)++] = w;
    }
    (void)b;
    return 0;
}

static void free_txns(struct wtxn **tx, size_t nt)
{
    size_t i;

    for (i = 0; i < nt; i++) {
        free(tx[i]->idx);
        free(tx[i]->rcpt);
        tx[i]->rcpt = NULL;
        buf_free(&tx[i]->hdr);
        tx[i]->t.prefix = NULL;
        /* res stays: e->why points into it until the batch ends */
    }
}

/* After a session: transactions never completed keep their RCPT replies
 * (a 5xx there is final); everything else of theirs is retried. */
static void settle_incomplete(struct batch *b, struct wtxn **tx, size_t nt)
{
    size_t i;

    for (i = 0; i < nt; i++) {
        if (tx[i]->t.completed)
            continue;
        classify(b, tx[i]);
        log_txn(b, tx[i]);
        tx[i]->e->txns_left--;
    }
}

int worker_run(struct spool *sp, const struct mmq_config *cfg,
               char (*names)[QFILE_MAX], size_t n)
{
    struct batch b;
    struct wtxn **tx = NULL;
    size_t i, nt = 0, cap = 0, round;
    struct wtxn **all = NULL;
    size_t nall = 0, rcpts = 0;
    char err[SMTP_TEXT_MAX + 64];

    memset(&b, 0, sizeof(b));
    b.sp = sp;
    b.cfg = cfg;
    b.last_sync = b.last_count = now_f();
    if (!(b.e = calloc(n ? n : 1, sizeof(*b.e))))
        return 75;
    /* A session holds every recipient of its entries in memory (about
     * 0.7 KiB each, libESMTP's and ours): stop claiming at
     * SESSION_RCPTS_MAX; the master hands the rest to the next worker. */
    for (i = 0; i < n && rcpts < SESSION_RCPTS_MAX; i++)
        if (claim_entry(&b, names[i], &b.e[b.ne]) == 0)
            rcpts += b.e[b.ne++].env.nrcpt;
    for (i = 0; i < b.ne; i++)
        if (add_txns(&b, &b.e[i], 0, (size_t)cfg->recipients_per_transaction,
                     &tx, &nt, &cap) != 0)
            return 75; /* claims are salvaged by the master */
    for (round = 0; nt > 0 && round < FOLLOWUPS_MAX; round++) {
        size_t per = (size_t)cfg->recipients_per_transaction, accepted;

        b.session_err[0] = 0;
        if (smtp_run(cfg, (struct smtp_txn **)tx, nt, txn_done, &b, err,
                     sizeof(err)) != 0) {
            snprintf(b.session_err, sizeof(b.session_err), "%s", err);
            if (strstr(err, " 5.7.") || strncmp(err, "5.7.", 4) == 0)
                log_error("relay %s refused us: %s: check auth_file, tls and "
                          "the relay's access rules; deferring",
                          cfg->relay_host, err);
        }
        settle_incomplete(&b, tx, nt);
        /* 452 "too many recipients": the server's real limit is what it
         * accepted; send the rest in following transactions. */
        for (i = 0; i < nt; i++) {
            size_t k, n452 = 0;
            accepted = 0;
            for (k = 0; k < tx[i]->t.nrcpt; k++) {
                accepted += tx[i]->t.res[k].code / 100 == 2;
                n452 += tx[i]->t.res[k].code == 452;
            }
            if (n452 && accepted && accepted < per)
                per = accepted;
        }
        free_txns(tx, nt);
        all = realloc(all, (nall + nt) * sizeof(*all));
        if (!all)
            return 75;
        memcpy(all + nall, tx, nt * sizeof(*tx));
        nall += nt;
        nt = 0;
        if (b.session_err[0] || worker_stop || b.cut_off)
            break; /* the connection failed: do not hammer it */
        for (i = 0; i < b.ne; i++)
            if (!b.e[i].finalized && again_count(&b.e[i]) &&
                add_txns(&b, &b.e[i], 1, per, &tx, &nt, &cap) != 0)
                return 75;
    }
    for (i = 0; i < b.ne; i++) {
        memset(b.e[i].again, 0, b.e[i].env.nrcpt);
        if (!b.e[i].finalized)
            finalize(&b, &b.e[i]);
    }
    sync_removed(sp);
    flush_counts(&b);
    return 0;
}

void worker_salvage(struct spool *sp, const struct mmq_config *cfg,
                    const struct qname *qn, const char *why)
{
    char err[QUEUE_ERR_MAX];
    struct envelope env;
    struct claim c;
    int64_t now = time(NULL), next;
    off_t off;

    if (queue_claim_takeover(sp, "out", qn, &c, err, sizeof(err)) != 0)
        return;
    if (queue_claim_read(&c, &env, &off, err, sizeof(err)) != 0) {
        log_error("%s: unreadable after a worker died, moving to bad/: %s",
                  qn->name, err);
        if (queue_move(&c, "bad", err, sizeof(err)) != 0)
            log_error("%s: %s", qn->name, err);
        return;
    }
    if (retry_expired(envelope_life_start(&env), cfg->max_lifetime, now)) {
        struct batch b;
        struct went e;
        size_t i, *idx = malloc((env.nrcpt + 1) * sizeof(size_t));

        memset(&b, 0, sizeof(b));
        b.sp = sp;
        b.cfg = cfg;
        memset(&e, 0, sizeof(e));
        journal_init(&e.j);
        e.c = c;
        e.env = env;
        e.src = c.fd;
        e.body_off = off;
        e.size = env.size;
        e.why = calloc(env.nrcpt + 1, sizeof(*e.why));
        for (i = 0; idx && i < env.nrcpt; i++)
            idx[i] = i;
        if (idx && e.why && envelope_set(&e.env.last_error, why) == 0 &&
            queue_dsn(&b, &e, idx, env.nrcpt, "failed", "4.4.7") == 0 &&
            queue_done(&c, err, sizeof(err)) == 0) {
            log_info("%s: %zu recipients expired after %d s (max_lifetime) "
                     "and its delivery process died (%s): returned to sender",
                     qn->name, env.nrcpt, cfg->max_lifetime, why);
            free(idx);
            free(e.why);
            envelope_free(&e.env);
            return;
        }
        free(idx);
        free(e.why);
        env = e.env;
    }
    env.attempts++;
    next = now + retry_delay(env.attempts, cfg->retry_min, cfg->retry_max);
    env.next_attempt = next;
    if (envelope_set(&env.last_error, why) != 0 ||
        queue_rewrite(&c, &env, err, sizeof(err)) != 0 ||
        queue_touch(&c, next, err, sizeof(err)) != 0 ||
        queue_move(&c, "deferred", err, sizeof(err)) != 0)
        log_error("%s: cannot defer after a worker died: %s", qn->name, err);
    else
        log_warn("%s: deferred after its delivery process died (%s), next "
                 "attempt in %lld s",
                 qn->name, why, (long long)(next - now));
    envelope_free(&env);
}
