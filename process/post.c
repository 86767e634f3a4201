/*
 * post - one in/ entry through the list's policy into out/.
 *
 * For a post: loop guard (our own X-BeenThere or List-Id: discard), size
 * and poster policy (hold, reject with a notice, or discard), then the
 * list headers (RFC 2369, RFC 2919, Precedence, X-BeenThere, subject
 * prefix, Reply-To, and a Date and Message-ID if missing), archive, and
 * expansion to the members in out/ entries of at most recipients_per_entry
 * recipients.  Owner mail is forwarded to the owners as is; request,
 * join, leave and confirm mail goes to the email commands (command.c).
 *
 * Crash rule (two-phase expansion).  The out/ entries of a post have
 * names derived from the in/ entry's name and their index, so that they
 * spread over all slices and a rerun computes the same names:
 *   1. every out/ entry is written complete and fsync()ed as stage/NAME,
 *      invisible to the delivery agents; then stage/ is fsync()ed;
 *   2. the in/ entry is rewritten with "expanded N" (atomic, durable);
 *   3. each stage/NAME is renamed into out/; the buckets are fsync()ed;
 *   4. the in/ entry is removed.
 * A crash before 2 leaves the in/ entry unmarked: the rerun stages again
 * (same names, replaced) and nothing was ever visible.  A crash after 2
 * leaves it marked: the rerun publishes whatever is still staged and
 * finishes, so no member gets the post twice and none is skipped, even
 * if some out/ entries were already delivered and removed meanwhile.
 */
#include "autoconf.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "dedup.h"
#include "digest.h"
#include "dsn.h"
#include "envelope.h"
#include "header.h"
#include "log.h"
#include "member.h"
#include "munge.h"
#include "process.h"

struct post {
    struct stage_ctx *ctx;
    struct claim c;
    struct envelope env;
    off_t body_off;
    struct buf msg; /* the message as received */
    const struct listdef *ld; /* borrowed from ctx->lists */
    char id[QNAME_LEN + 1];
    int retry; /* given back to in/: try again later */
};

/* ------------------------------------------------------------- helpers */

static int read_message(struct post *p)
{
    size_t len = (size_t)p->env.size;
    ssize_t n;

    if (buf_reserve(&p->msg, len) != 0)
        return -1;
    n = pread(p->c.fd, p->msg.data, len, p->body_off);
    if (n < 0 || (size_t)n != len)
        return -1;
    p->msg.len = len;
    p->msg.data[len] = 0;
    return 0;
}

/* Name of out/ entry i of the in/ entry: its stamp, a digest of both. */
static void out_name(const char *in_name, size_t i, char *out)
{
    char input[QNAME_LEN + 32];
    int n = snprintf(input, sizeof(input), "%s/%zu", in_name, i);

    memcpy(out, in_name, 18); /* "SSSSSSSSSS.UUUUUU+" */
    digest_hex_of(input, (size_t)n, out + 18);
}

static void rfc5322_date(char *out, size_t outlen)
{
    time_t t = time(NULL);

    if (dsn_date((int64_t)t, out, outlen) != 0)
        snprintf(out, outlen, "Thu, 01 Jan 1970 00:00:00 +0000");
}

/* Something failed that may work later (disk full, a list file being
 * edited): put the entry back and have the loop skip it for a while. */
/* The reason goes into the entry's last-error too, as for deferred/
 * entries, so that "mmqctl queue", "show" and "check" tell the postmaster
 * without the log.  The envelope is read again from the entry, so that
 * only last-error changes (not what this run changed in p->env); written
 * only when the reason is new, not every RETRY_AFTER seconds. */
static void note_error(struct post *p, const char *why)
{
    struct envelope env;
    off_t off;
    char err[QUEUE_ERR_MAX];

    envelope_init(&env);
    if (queue_claim_read(&p->c, &env, &off, err, sizeof(err)) != 0 ||
        (env.last_error && strcmp(env.last_error, why) == 0)) {
        envelope_free(&env);
        return;
    }
    if (envelope_set(&env.last_error, why) != 0 ||
        queue_rewrite(&p->c, &env, err, sizeof(err)) != 0)
        log_warn("%s: cannot record the error in the entry: %s", p->id, err);
    envelope_free(&env);
}

static int give_back(struct post *p, const char *why)
{
    char err[QUEUE_ERR_MAX];

    log_error("%s: %s (entry kept in in/, will retry)", p->id, why);
    note_error(p, why);
    if (queue_unclaim(&p->c, err, sizeof(err)) != 0)
        log_error("%s: cannot give the entry back (it stays claimed until "
                  "the next start): %s",
                  p->id, err);
    p->retry = 1;
    return -1;
}

/* The in/ entry is done with: remove it and anything it left staged. */
static int finish(struct post *p, const char *what)
{
    char err[QUEUE_ERR_MAX];

    if (queue_done(&p->c, err, sizeof(err)) != 0)
        return give_back(p, err);
    if (spool_unstage(p->ctx->sp, p->c.qn.name, err, sizeof(err)) != 0)
        log_warn("%s: %s", p->id, err);
    log_info("%s: %s", p->id, what);
    return 0;
}

/* ---------------------------------------------------------- expansion */

/* Publish staged out/ entries 0..n-1 and finish the in/ entry (3, 4). */
static int publish(struct post *p, size_t n)
{
    struct spool *sp = p->ctx->sp;
    unsigned char synced[SLICE_BUCKETS] = {0};
    char name[QNAME_LEN + 1], err[QUEUE_ERR_MAX], bucket[64];
    char staged[QNAME_LEN + 24];
    size_t i, published = 0;
    uint64_t key;

    name[QNAME_LEN] = 0;
    for (i = 0; i < n; i++) {
        int rc;
        out_name(p->c.qn.name, i, name);
        snprintf(staged, sizeof(staged), "%s.%zu", p->c.qn.name, i);
        rc = queue_publish_staged(sp, staged, "out", name, err, sizeof(err));
        if (rc < 0)
            return give_back(p, err);
        published += rc == 0;
        if (slice_key(name + 18, &key) == 0)
            synced[slice_bucket(key)] = 1;
    }
    for (i = 0; i < SLICE_BUCKETS; i++) {
        if (!synced[i])
            continue;
        snprintf(bucket, sizeof(bucket), "out/%02zx", i);
        if (spool_sync_dir(sp, bucket, err, sizeof(err)) != 0)
            return give_back(p, err);
    }
    if (p->env.role == ROLE_POST)
        snprintf(err, sizeof(err),
                 "expanded into %zu out/ entr%s (%zu published now)", n,
                 n == 1 ? "y" : "ies", published);
    else
        snprintf(err, sizeof(err),
                 "forwarding %s mail of list %s to its owners: %zu out/ "
                 "entr%s (%zu published now)",
                 role_name(p->env.role), p->env.list, n, n == 1 ? "y" : "ies",
                 published);
    return finish(p, err);
}

static void archive(struct post *p, const struct buf *msg);

/*
 * Recipients per out/ entry: recipients_per_entry; for a VERP post (one
 * transaction per recipient) at most n / (2 x connections), rounded up,
 * but not under VERP_ENTRY_MIN, so that every connection of mmq-deliver
 * gets entries to work on (an entry is one connection's work): 1,000
 * members with 10 connections make 20 entries of 50, not 2 of 500.
 * Below VERP_ENTRY_MIN an entry's own cost (create, fsync, claim,
 * remove) weighs as much as its transactions.
 */
#define VERP_ENTRY_MIN 20
static size_t entry_size(const struct post *p, size_t n, int verp)
{
    size_t per = (size_t)p->ld->per_entry, conns, split;

    if (!verp)
        return per;
    conns = p->ctx->cfg->connections > 0 ? (size_t)p->ctx->cfg->connections : 1;
    split = (n + 2 * conns - 1) / (2 * conns);
    if (split < VERP_ENTRY_MIN)
        split = VERP_ENTRY_MIN;
    return split < per ? split : per;
}

/* Stage the out/ entries for rcpt[0..n) (1), mark the in/ entry (2). */
static int expand(struct post *p, const struct buf *msg, char **rcpt, size_t n,
                  const char *sender, int verp)
{
    struct spool *sp = p->ctx->sp;
    size_t per = entry_size(p, n, verp), chunks = (n + per - 1) / per, i, k;
    char staged[QNAME_LEN + 24], err[QUEUE_ERR_MAX];
    struct envelope out;

    if (n == 0)
        return finish(p, "no recipients: nothing to deliver");
    for (i = 0; i < chunks; i++) {
        struct queue_file *qf;

        envelope_init(&out);
        out.role = p->env.role; /* owner, request: mmq-deliver logs it as
                                   forwarding */
        out.arrival_sec = p->env.arrival_sec; /* lifetime counts from here */
        out.arrival_usec = p->env.arrival_usec;
        out.held = p->env.held; /* time held for moderation does not count */
        out.verp = verp;
        out.size = (int64_t)msg->len;
        if (envelope_set(&out.list, p->ld->name) ||
            envelope_set(&out.sender, sender))
            goto oom;
        for (k = i * per; k < n && k < (i + 1) * per; k++)
            if (envelope_add_rcpt(&out, rcpt[k], NULL) != 0)
                goto oom;
        snprintf(staged, sizeof(staged), "%s.%zu", p->c.qn.name, i);
        if (!(qf = queue_file_create(sp, "out", err, sizeof(err))) ||
            queue_file_begin(qf, &out) != 0 ||
            queue_file_write(qf, msg->data, msg->len) != 0) {
            if (qf)
                snprintf(err, sizeof(err), "%s", queue_file_error(qf));
            queue_file_abort(qf);
            goto fail;
        }
        if (queue_file_stage(qf, staged, err, sizeof(err)) != 0)
            goto fail;
        envelope_free(&out);
    }
    if (spool_sync_dir(sp, "stage", err, sizeof(err)) != 0)
        return give_back(p, err);
    p->env.expanded = (int)chunks;
    if (queue_rewrite(&p->c, &p->env, err, sizeof(err)) != 0)
        return give_back(p, err);
    if (p->env.role == ROLE_POST)
        archive(p, msg); /* after the mark: a rerun never archives again */
    return publish(p, chunks);
oom:
    snprintf(err, sizeof(err), "out of memory while expanding");
fail:
    envelope_free(&out);
    return give_back(p, err);
}

/* ------------------------------------------------------------- policy */

static int is_auto(struct headers *h)
{
    long i;
    char *v;
    int autom = 0;

    if ((i = headers_find(h, "Precedence", 0)) >= 0 &&
        (v = headers_value(h, (size_t)i)) != NULL) {
        autom = !strcasecmp(v, "bulk") || !strcasecmp(v, "list") ||
                !strcasecmp(v, "junk");
        free(v);
    }
    if (!autom && (i = headers_find(h, "Auto-Submitted", 0)) >= 0 &&
        (v = headers_value(h, (size_t)i)) != NULL) {
        autom = strncasecmp(v, "no", 2) != 0;
        free(v);
    }
    return autom;
}

/* A short notice to the poster, from the list owner, never to <>. */
static void reject_notice(struct post *p, struct headers *h, const char *reason)
{
    struct buf msg;
    char date[64], err[QUEUE_ERR_MAX], name[QNAME_LEN + 1];
    struct envelope env;
    struct queue_file *qf;
    const char *to = p->env.sender;
    struct timeval tv;
    size_t dn = strlen(p->ld->domain);
    const char *at = strrchr(to, '@');

    enum mmq_role role;

    if (!to[0] || is_auto(h) ||
        (at && strcasecmp(at + 1, p->ld->domain) == 0 &&
         list_role_of_recipient(p->ld->name, to, &role) == 0)) {
        log_info("%s: no rejection notice to <%s> (null sender, automatic "
                 "mail or the list itself)",
                 p->id, to);
        return;
    }
    (void)dn;
    buf_init(&msg);
    rfc5322_date(date, sizeof(date));
    gettimeofday(&tv, NULL);
    buf_printf(&msg,
               "From: %s-owner@%s\r\nTo: <%s>\r\nSubject: Your message to "
               "%s was rejected\r\nDate: %s\r\nMessage-ID: <%s.reject@%s>\r\n"
               "Auto-Submitted: auto-replied\r\nPrecedence: list\r\n"
               "MIME-Version: 1.0\r\nContent-Type: text/plain; "
               "charset=us-ascii\r\n\r\nYour message to the list %s@%s was "
               "not distributed:\r\n\r\n    %s\r\n\r\nContact %s-owner@%s "
               "if you think this is wrong.\r\n",
               p->ld->name, p->ld->domain, to, p->ld->name, date, p->c.qn.hash,
               p->ld->domain, p->ld->name, p->ld->domain, reason, p->ld->name,
               p->ld->domain);
    envelope_init(&env);
    env.role = ROLE_POST;
    env.arrival_sec = tv.tv_sec;
    env.arrival_usec = (int32_t)tv.tv_usec;
    env.size = (int64_t)msg.len;
    if (envelope_set(&env.list, p->ld->name) || envelope_set(&env.sender, "") ||
        envelope_add_rcpt(&env, to, NULL) ||
        !(qf = queue_file_create(p->ctx->sp, "out", err, sizeof(err)))) {
        log_error("%s: cannot queue a rejection notice", p->id);
    } else if (queue_file_begin(qf, &env) != 0 ||
               queue_file_write(qf, msg.data, msg.len) != 0) {
        log_error("%s: cannot queue a rejection notice: %s", p->id,
                  queue_file_error(qf));
        queue_file_abort(qf);
    } else if (out_name(p->c.qn.name, (size_t)-1, name), name[QNAME_LEN] = 0,
               queue_file_commit_as(qf, name, err, sizeof(err)) != 0) {
        log_error("%s: cannot queue a rejection notice: %s", p->id, err);
    } else {
        log_info("%s: rejection notice %s to <%s>", p->id, name, to);
    }
    envelope_free(&env);
    buf_free(&msg);
}

/* hold, reject or discard; the in/ entry is finished either way. */
static void act(struct post *p, struct headers *h, enum list_action a,
                const char *reason)
{
    char err[QUEUE_ERR_MAX], what[600];

    switch (a) {
    case ACT_HOLD:
        /* the notices first: a crash before the move makes them again */
        if (hold_notices(p->ctx, &p->c, &p->env, h, p->ld, reason, err,
                         sizeof(err)) != 0) {
            give_back(p, err);
            return;
        }
        if (queue_move(&p->c, "hold", err, sizeof(err)) != 0) {
            give_back(p, err);
            return;
        }
        spool_unstage(p->ctx->sp, p->c.qn.name, err, sizeof(err));
        log_info("%s: held for moderation: %s", p->id, reason);
        return;
    case ACT_REJECT:
        reject_notice(p, h, reason);
        snprintf(what, sizeof(what), "rejected: %s", reason);
        finish(p, what);
        return;
    case ACT_DISCARD:
        snprintf(what, sizeof(what), "discarded: %s", reason);
        finish(p, what);
        return;
    }
}

static int poster_allowed(struct post *p, struct headers *h,
                          const struct members *m)
{
    char from[512] = "";
    long i = headers_find(h, "From", 0);
    size_t k;
    char *v;

    if (p->ld->posters == POSTERS_ANYONE)
        return 1;
    if (i >= 0 && (v = headers_value(h, (size_t)i)) != NULL) {
        if (header_address(v, from, sizeof(from)) != 0)
            from[0] = 0;
        free(v);
    }
    for (k = 0; k < p->ld->nallowed; k++)
        if (!strcasecmp(p->ld->allowed[k], from) ||
            !strcasecmp(p->ld->allowed[k], p->env.sender))
            return 1;
    if (p->ld->posters == POSTERS_LIST)
        return 0;
    for (k = 0; k < p->ld->nowners; k++)
        if (!strcasecmp(p->ld->owners[k], from))
            return 1;
    return (from[0] && members_contains(m, from)) ||
           (p->env.sender[0] && members_contains(m, p->env.sender));
}

/* Our X-BeenThere or List-Id on the message: it has been here. */
static int looped(struct post *p, struct headers *h)
{
    char us[LIST_NAME_MAX + 300], id[LIST_NAME_MAX + 300];
    long i = 0;
    int seen = 0;
    char *v;

    snprintf(us, sizeof(us), "%s@%s", p->ld->name, p->ld->domain);
    snprintf(id, sizeof(id), "<%s.%s>", p->ld->name, p->ld->domain);
    while (!seen && (i = headers_find(h, "X-BeenThere", (size_t)i)) >= 0) {
        if ((v = headers_value(h, (size_t)i++)) != NULL) {
            seen = strcasecmp(v, us) == 0;
            free(v);
        }
    }
    for (i = 0; !seen && (i = headers_find(h, "List-Id", (size_t)i)) >= 0;) {
        if ((v = headers_value(h, (size_t)i++)) != NULL) {
            seen = strcasestr(v, id) != NULL;
            free(v);
        }
    }
    return seen;
}

/* ------------------------------------------------------------ headers */

static int subject_prefix(struct post *p, struct headers *h)
{
    const char *px = p->ld->subject_prefix;
    long i;
    char *v, *dec;

    if (!px || !px[0])
        return 0;
    if ((i = headers_find(h, "Subject", 0)) < 0)
        return headers_add(h, "Subject", px);
    if (!(v = headers_value(h, (size_t)i)))
        return -1;
    dec = header_decode_2047(v);
    if (dec && strcasestr(dec, px)) { /* once only: "Re: [x] ..." stays */
        free(v);
        free(dec);
        return 0;
    }
    free(dec);
    free(v);
    /* In front of the Subject as received: its folding and every byte of
     * it (a NUL too) are kept, and the first line is folded if the prefix
     * would make it long. */
    return headers_prefix(h, (size_t)i, px);
}

static int list_headers(struct post *p, struct headers *h)
{
    const struct listdef *ld = p->ld;
    char v[1024], date[64];
    static const char *const ours[] = {
        "List-Id",        "List-Post",  "List-Help",    "List-Unsubscribe",
        "List-Subscribe", "List-Owner", "List-Archive", "Precedence"};
    size_t i;

    for (i = 0; i < sizeof(ours) / sizeof(ours[0]); i++)
        headers_drop_all(h, ours[i]);
    if (ld->description) {
        /* RFC 2919: a phrase; quoted, with '"' and '\\' escaped */
        size_t o = 0, k;
        v[o++] = '"';
        for (k = 0; ld->description[k] && o < sizeof(v) / 2; k++) {
            if (ld->description[k] == '"' || ld->description[k] == '\\')
                v[o++] = '\\';
            v[o++] = ld->description[k];
        }
        snprintf(v + o, sizeof(v) - o, "\" <%s.%s>", ld->name, ld->domain);
    } else {
        snprintf(v, sizeof(v), "<%s.%s>", ld->name, ld->domain);
    }
    if (headers_add(h, "List-Id", v))
        return -1;
    snprintf(v, sizeof(v), "<mailto:%s@%s>", ld->name, ld->domain);
    if (headers_add(h, "List-Post", v))
        return -1;
    snprintf(v, sizeof(v), "<mailto:%s-request@%s?subject=help>", ld->name,
             ld->domain);
    if (headers_add(h, "List-Help", v))
        return -1;
    snprintf(v, sizeof(v), "<mailto:%s-request@%s?subject=unsubscribe>",
             ld->name, ld->domain);
    if (headers_add(h, "List-Unsubscribe", v))
        return -1;
    snprintf(v, sizeof(v), "<mailto:%s-owner@%s>", ld->name, ld->domain);
    if (headers_add(h, "List-Owner", v) || headers_add(h, "Precedence", "list"))
        return -1;
    snprintf(v, sizeof(v), "%s@%s", ld->name, ld->domain);
    if (headers_add(h, "X-BeenThere", v))
        return -1;
    if (ld->reply_to != REPLYTO_NONE) {
        headers_drop_all(h, "Reply-To");
        if (ld->reply_to == REPLYTO_ADDRESS)
            snprintf(v, sizeof(v), "<%s>", ld->reply_to_address);
        else
            snprintf(v, sizeof(v), "<%s@%s>", ld->name, ld->domain);
        if (headers_add(h, "Reply-To", v))
            return -1;
    }
    /* libESMTP adds Date and Message-Id when they are missing, each
     * member differently; add them here so every copy is the same. */
    if (headers_find(h, "Date", 0) < 0) {
        rfc5322_date(date, sizeof(date));
        if (headers_add(h, "Date", date))
            return -1;
    }
    /* A relayed message must not carry Return-Path (RFC 5321 4.4), and
     * libESMTP would strip it anyway: drop it here so the queued entry is
     * exactly what goes on the wire.  Likewise a missing From. */
    headers_drop_all(h, "Return-Path");
    if (headers_find(h, "From", 0) < 0) {
        if (p->env.sender[0])
            snprintf(v, sizeof(v), "<%s>", p->env.sender);
        else
            snprintf(v, sizeof(v), "<%s-owner@%s>", ld->name, ld->domain);
        if (headers_add(h, "From", v))
            return -1;
    }
    if (headers_find(h, "Message-ID", 0) < 0) {
        snprintf(v, sizeof(v), "<%s@%s>", p->c.qn.hash, ld->domain);
        if (headers_add(h, "Message-ID", v))
            return -1;
    }
    return subject_prefix(p, h);
}

/* ------------------------------------------------------------ archive */

static void archive(struct post *p, const struct buf *msg)
{
    char path[PATH_MAX + LIST_NAME_MAX + 8], dir[PATH_MAX], when[64];
    struct buf rec;
    time_t t = (time_t)p->env.arrival_sec;
    struct tm tm;
    const char *s = msg->data, *end = msg->data + msg->len;
    int fd;

    if (!p->ld->archive)
        return;
    if (p->ctx->cfg->archive_dir)
        snprintf(dir, sizeof(dir), "%s", p->ctx->cfg->archive_dir);
    else
        snprintf(dir, sizeof(dir), "%s/archive", p->ctx->cfg->spool);
    if (mkdir(dir, 02770) != 0 && errno != EEXIST) {
        log_warn("%s: archive %s: %s", p->id, dir, strerror(errno));
        return;
    }
    snprintf(path, sizeof(path), "%s/%s.mbox", dir, p->ld->name);
    buf_init(&rec);
    gmtime_r(&t, &tm);
    strftime(when, sizeof(when), "%a %b %e %H:%M:%S %Y", &tm);
    buf_printf(&rec, "From %s %s\n",
               p->env.sender[0] ? p->env.sender : "MAILER-DAEMON", when);
    while (s < end) { /* mboxrd: quote ">*From " lines, LF line ends */
        const char *nl = memchr(s, '\n', (size_t)(end - s));
        size_t n = nl ? (size_t)(nl - s) : (size_t)(end - s);
        const char *q = s;
        while (q < s + n && *q == '>')
            q++;
        if ((size_t)(s + n - q) >= 5 && memcmp(q, "From ", 5) == 0)
            buf_append(&rec, ">", 1);
        buf_append(&rec, s, n && s[n - 1] == '\r' ? n - 1 : n);
        buf_append(&rec, "\n", 1);
        s += n + (nl ? 1 : 0);
    }
    buf_append(&rec, "\n", 1);
    fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC,
              0640);
    if (fd < 0 || flock(fd, LOCK_EX) != 0 ||
        write(fd, rec.data, rec.len) != (ssize_t)rec.len)
        log_warn("%s: archive %s: %s", p->id, path, strerror(errno));
    if (fd >= 0)
        close(fd);
    buf_free(&rec);
}

/* -------------------------------------------------------------- DMARC */

/*
 * What the From: domain's DMARC policy asks of this post: the list's
 * dmarc_mitigate_action, or DMARC_NO_MITIGATION.  A lookup that fails
 * (timeout, SERVFAIL) mitigates, as Mailman 3 does, but a rejection or a
 * discard must rest on a policy actually seen: those lists get
 * munge_from for it.  why says what was found, for the log and notice.
 */
static enum list_dmarc_action dmarc_check(struct post *p, struct headers *h,
                                          char *why, size_t whylen)
{
    const struct listdef *ld = p->ld;
    enum list_dmarc_action a = ld->dmarc_action;
    struct dmarc_policy pol;
    char from[512], *v, *at;
    long i;
    int rc = -1;

    if (a == DMARC_NO_MITIGATION)
        return a;
    if (ld->dmarc_unconditionally) {
        snprintf(why, whylen, "dmarc_mitigate_unconditionally is set");
        return a;
    }
    if ((i = headers_find(h, "From", 0)) >= 0 &&
        (v = headers_value(h, (size_t)i)) != NULL) {
        rc = header_address(v, from, sizeof(from));
        free(v);
    }
    if (rc != 0 || !(at = strrchr(from, '@')))
        return DMARC_NO_MITIGATION; /* no From: domain to ask about */
    if (!p->ctx->dmarc) {
        pol.status = DMARC_TEMPFAIL;
        snprintf(pol.source, sizeof(pol.source), "_dmarc.%s", at + 1);
        snprintf(pol.why, sizeof(pol.why), "no resolver");
    } else {
        dmarc_lookup(p->ctx->dmarc, at + 1, &pol);
    }
    switch (pol.status) {
    case DMARC_NO_POLICY:
        log_debug("%s: DMARC: no policy for %s", p->id, at + 1);
        return DMARC_NO_MITIGATION;
    case DMARC_BAD_DOMAIN:
        log_warn("%s: DMARC: From: domain \"%.200s\" is %s: not mitigated",
                 p->id, at + 1, pol.why);
        return DMARC_NO_MITIGATION;
    case DMARC_TEMPFAIL:
        snprintf(why, whylen,
                 "the DMARC policy lookup of %s failed (%s%s): mitigated as "
                 "if it were p=reject",
                 pol.source, pol.why, pol.cached ? ", remembered" : "");
        return a == DMARC_REJECT || a == DMARC_DISCARD ? DMARC_MUNGE_FROM : a;
    case DMARC_POLICY:
        break;
    }
    if (pol.policy == DMARC_P_REJECT ||
        (pol.policy == DMARC_P_QUARANTINE && ld->dmarc_quarantine) ||
        (pol.policy == DMARC_P_NONE && ld->dmarc_none)) {
        snprintf(why, whylen, "%s publishes the DMARC policy %s=%s (%s)",
                 at + 1, pol.subdomain ? "sp" : "p", dmarc_p_name(pol.policy),
                 pol.source);
        return a;
    }
    log_debug("%s: DMARC: %s has p=%s: not mitigated", p->id, at + 1,
              dmarc_p_name(pol.policy));
    return DMARC_NO_MITIGATION;
}

/* Reject or discard a post for DMARC; 1 if it was, 0 to go on. */
static int dmarc_refuse(struct post *p, struct headers *h,
                        enum list_dmarc_action a, const char *why)
{
    char reason[700];

    if (a != DMARC_REJECT && a != DMARC_DISCARD)
        return 0;
    if (a == DMARC_REJECT && p->ld->dmarc_notice)
        snprintf(reason, sizeof(reason), "%s", p->ld->dmarc_notice);
    else
        snprintf(reason, sizeof(reason),
                 "%s, so the list cannot redistribute your message under "
                 "your address: receivers would refuse it",
                 why);
    if (a == DMARC_DISCARD || p->ld->dmarc_notice)
        log_info("%s: DMARC: %s", p->id, why);
    act(p, h, a == DMARC_REJECT ? ACT_REJECT : ACT_DISCARD, reason);
    return 1;
}

/* ---------------------------------------------------------- duplicates */

/*
 * A second copy of a post already accepted for this list (the MTA
 * delivered it again after mmq-filter died between its commit and its
 * exit): dropped, see dedup.h.  0: go on; 1: handled (dropped, or given
 * back to in/ if the mark could not be made).
 */
static int duplicate(struct post *p, struct headers *h)
{
    char err[QUEUE_ERR_MAX], first[QNAME_LEN + 1], what[QUEUE_ERR_MAX + 64];
    long i = headers_find(h, "Message-ID", 0);
    char *id = i >= 0 ? headers_value(h, (size_t)i) : NULL;
    int rc;

    if (i >= 0 && !id)
        return give_back(p, "out of memory"), 1;
    rc = dedup_check(p->ctx->sp, p->ctx->cfg->duplicate_window, p->ld->name, id,
                     p->msg.data + h->body_off, p->msg.len - h->body_off,
                     p->c.qn.name, first, err, sizeof(err));
    if (rc == 1) {
        snprintf(what, sizeof(what),
                 "discarded: a duplicate of %s (Message-ID %s and the same "
                 "body, within duplicate_window)",
                 first, id);
        finish(p, what);
    } else if (rc < 0) {
        give_back(p, err);
    }
    free(id);
    return rc != 0;
}

/* ---------------------------------------------------------- the story */

static struct members *members_of(struct stage_ctx *ctx,
                                  const struct listdef *ld)
{
    char err[512];
    size_t i;
    struct member_cache *mc = NULL;

    for (i = 0; i < ctx->ncache; i++)
        if (strcmp(ctx->cache[i].name, ld->name) == 0)
            mc = &ctx->cache[i];
    if (!mc) {
        struct member_cache *nc =
            realloc(ctx->cache, (ctx->ncache + 1) * sizeof(*nc));
        if (!nc)
            return NULL;
        ctx->cache = nc;
        mc = &ctx->cache[ctx->ncache++];
        memset(mc, 0, sizeof(*mc));
        snprintf(mc->name, sizeof(mc->name), "%s", ld->name);
    }
    if (members_load(&mc->m, ld->members_path, err, sizeof(err)) != 0) {
        log_error("list %s: members: %s", ld->name, err);
        return NULL;
    }
    return &mc->m;
}

/*
 * Expand to the members whose delivery is not disabled (member.h): the
 * disabled index is one readdir, and only when it is not empty does each
 * member cost a hash and a binary search.  The index cannot be read:
 * keep the post for later rather than mail disabled members.
 */
static void expand_enabled(struct post *p, const struct buf *out,
                           const struct members *m, const char *sender)
{
    struct member_disabled d;
    char err[512], **keep;
    size_t i, n = 0;

    if (member_disabled_load(&d, p->ctx->cfg->spool, p->ld->name, err,
                             sizeof(err)) != 0) {
        give_back(p, err);
        return;
    }
    if (d.n == 0) {
        expand(p, out, m->addr, m->n, sender, p->ld->verp);
        return;
    }
    if (!(keep = malloc((m->n + 1) * sizeof(*keep)))) {
        member_disabled_free(&d);
        give_back(p, "out of memory");
        return;
    }
    for (i = 0; i < m->n; i++)
        if (!member_disabled_has(&d, m->addr[i]))
            keep[n++] = m->addr[i];
    if (n < m->n)
        log_info("%s: %zu disabled member%s skipped", p->id, m->n - n,
                 m->n - n == 1 ? "" : "s");
    member_disabled_free(&d);
    expand(p, out, keep, n, sender, p->ld->verp);
    free(keep);
}

static void do_post(struct post *p)
{
    struct headers h;
    struct buf out, wrapped;
    struct members *m;
    char sender[LIST_NAME_MAX + 300], why[256], dwhy[600];
    enum list_dmarc_action mit;
    int64_t max = p->ld->max_message_size ? p->ld->max_message_size
                                         : p->ctx->cfg->max_message_size;

    buf_init(&out);
    buf_init(&wrapped);
    if (headers_parse(p->msg.data, p->msg.len, &h) != 0) {
        snprintf(why, sizeof(why), "out of memory parsing headers");
        goto keep;
    }
    if (looped(p, &h)) {
        finish(p, "discarded: it already carries this list's X-BeenThere "
                  "or List-Id (mail loop)");
        goto out;
    }
    if (!(m = members_of(p->ctx, p->ld))) {
        snprintf(why, sizeof(why), "members file unusable");
        goto keep;
    }
    if (!p->env.approved && p->env.size > max) {
        snprintf(why, sizeof(why),
                 "message of %lld bytes is larger than "
                 "the list's limit of %lld bytes",
                 (long long)p->env.size, (long long)max);
        act(p, &h, p->ld->oversize, why);
        goto out;
    }
    if (!p->env.approved && !poster_allowed(p, &h, m)) {
        snprintf(why, sizeof(why), "<%s> may not post to %s@%s", p->env.sender,
                 p->ld->name, p->ld->domain);
        act(p, &h, p->ld->others, why);
        goto out;
    }
    if (duplicate(p, &h))
        goto out;
    mit = dmarc_check(p, &h, dwhy, sizeof(dwhy));
    if (dmarc_refuse(p, &h, mit, dwhy))
        goto out;
    if (list_headers(p, &h) != 0 ||
        (mit != DMARC_NO_MITIGATION && munge_from(&h, p->ld) != 0) ||
        headers_write(&h, &out) != 0) {
        snprintf(why, sizeof(why), "out of memory editing headers");
        goto keep;
    }
    if (mit == DMARC_WRAP_MESSAGE) {
        if (munge_wrap(&out, p->msg.data, p->msg.len, p->ld, p->c.qn.hash,
                       &wrapped) != 0) {
            snprintf(why, sizeof(why), "out of memory wrapping the post");
            goto keep;
        }
        buf_free(&out);
        out = wrapped;
        buf_init(&wrapped);
    }
    if (mit != DMARC_NO_MITIGATION)
        log_info("%s: DMARC: %s: %s", p->id, list_dmarc_action_name(mit), dwhy);
    if (m->n == 0)
        archive(p, &out); /* expand() archives once the post is marked */
    snprintf(sender, sizeof(sender), "%s-bounces@%s", p->ld->name, p->ld->domain);
    expand_enabled(p, &out, m, sender);
    goto out;
keep:
    give_back(p, why);
out:
    headers_free(&h);
    buf_free(&out);
    buf_free(&wrapped);
}

int post_process(struct stage_ctx *ctx, const char *fname)
{
    struct post p;
    char err[QUEUE_ERR_MAX], sender[LIST_NAME_MAX + 300];
    int rc;

    memset(&p, 0, sizeof(p));
    p.ctx = ctx;
    buf_init(&p.msg);
    envelope_init(&p.env);
    rc = queue_claim(ctx->sp, "in", fname, &p.c, err, sizeof(err));
    if (rc != 0) {
        if (rc < 0)
            log_error("%s", err);
        return rc < 0; /* an error: not again at once */
    }
    snprintf(p.id, sizeof(p.id), "%s", p.c.qn.name);
    if (queue_claim_read(&p.c, &p.env, &p.body_off, err, sizeof(err)) != 0) {
        log_error("%s: unreadable, moving to bad/: %s", p.id, err);
        queue_move(&p.c, "bad", err, sizeof(err));
        goto out;
    }
    if (p.env.expanded > 0) { /* a crash after step 2: complete it */
        publish(&p, (size_t)p.env.expanded);
        goto out;
    }
    if (!(p.ld = listdef_get(&ctx->lists, ctx->cfg, p.env.list, err,
                             sizeof(err)))) {
        give_back(&p, err);
        goto out;
    }
    if (read_message(&p) != 0) {
        snprintf(err, sizeof(err), "cannot read the message: %s",
                 strerror(errno));
        give_back(&p, err);
        goto out;
    }
    switch (p.env.role) {
    case ROLE_POST:
        do_post(&p);
        break;
    case ROLE_REQUEST:
    case ROLE_JOIN:
    case ROLE_LEAVE:
    case ROLE_CONFIRM:
        if (command_process(ctx, &p.c, &p.env, &p.msg, p.ld, err,
                            sizeof(err)) != 0)
            give_back(&p, err);
        else
            finish(&p, err);
        break;
    case ROLE_OWNER:
        /* forwarded to the owners unchanged */
        snprintf(sender, sizeof(sender), "%s-bounces@%s", p.ld->name,
                 p.ld->domain);
        if (p.ld->nowners == 0) {
            log_warn("%s: %s mail for list %s, which has no owners: held", p.id,
                     role_name(p.env.role), p.ld->name);
            act(&p, NULL, ACT_HOLD, "no owners to forward to");
            break;
        }
        expand(&p, &p.msg, p.ld->owners, p.ld->nowners, sender, 0);
        break;
    case ROLE_BOUNCES:
        log_warn("%s: bounce in in/: moving it to bounces/", p.id);
        if (queue_move(&p.c, "bounces", err, sizeof(err)) != 0)
            give_back(&p, err);
        break;
    }
out:
    queue_claim_close(&p.c);
    envelope_free(&p.env);
    buf_free(&p.msg);
    return p.retry;
}
