/*
 * command - email commands: mail to LIST-request@ (commands in the
 * Subject and body), LIST-join@/-subscribe@, LIST-leave@/-unsubscribe@
 * and LIST-confirm+TOKEN@, turned into subscriptions, confirmations and
 * one reply; an owner's token of a held post (hold.c) approves, rejects
 * or discards it (held.h: one decider per post, mmqctl release too); a
 * completed subscription or unsubscription queues the welcome or goodbye
 * message (listmail.h).  See mmq-process(8), EMAIL COMMANDS.
 *
 * Why in the list stage and not a daemon of its own: the list stage
 * already claims every in/ entry of every role (it forwarded -request
 * mail to the owners before), holds the list's definition and members
 * file, has the crash recovery, slices, cluster leases, signals and
 * systemd unit; command mail is a trickle beside posts.  A separate
 * daemon would have needed a queue of its own and a second copy of all
 * that for no gain.
 *
 * The order of one entry, and what a crash (kill -9) at any instant
 * leaves (the entry stays claimed until finished, and is run again):
 *   1. safety: mail we must never answer is finished in silence (logged);
 *   2. each command is applied: a subscription by members_file_add() (a
 *      rerun finds the address and adds nothing), a confirmation by
 *      token_use() (a link: the first user wins, a rerun of the same entry
 *      finds its own name), pending requests by link (EEXIST on a rerun);
 *      confirmation tokens are made from the entry's arrival time, so a
 *      rerun makes the same token;
 *   3. the reply and the confirmation requests are queued into out/ under
 *      names derived from the entry's: a rerun replaces one still queued.
 *      One already delivered in the instant between its queueing and the
 *      entry's removal is sent again (at most once more per crash).
 * No state change is applied twice; the rate limit marks are named after
 * the entry, so a rerun does not count twice either.
 */
#include "autoconf.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "digest.h"
#include "dsn.h"
#include "header.h"
#include "held.h"
#include "listmail.h"
#include "log.h"
#include "member.h"
#include "process.h"
#include "token.h"

#define MAX_LINES 10      /* command lines read */
#define MAX_SCAN 100000   /* body lines looked at (quoted, blank) at most */
#define MAX_LINE 998      /* longer lines are not commands */
#define SHOW_MAX 78       /* bytes of a line quoted in the reply */
#define ADDR_MAX 254

struct cmd {
    struct stage_ctx *ctx;
    const struct claim *c;
    const struct envelope *env;
    const struct listdef *ld;
    struct headers h;
    struct member_store ms;
    struct token_key key;
    char requester[ADDR_MAX + 1]; /* who is answered (From:, else sender) */
    struct buf reply;             /* the lines of the reply */
    unsigned nout;                /* out/ entries queued (their index) */
    int fail;                     /* a step failed: give the entry back */
    char why[QUEUE_ERR_MAX];
};

/* ------------------------------------------------------------ helpers */

/* An address we are willing to act on and write into a file: printable
 * ASCII, no quotes, comments, brackets or list separators, one '@' with
 * something on both sides. */
static int addr_ok(const char *a)
{
    const char *at = strchr(a, '@');
    size_t n = strlen(a);

    if (n == 0 || n > ADDR_MAX || !at || at == a || !at[1] ||
        strchr(at + 1, '@') || at[1] == '.')
        return 0;
    for (; *a; a++)
        if ((unsigned char)*a <= 0x20 || (unsigned char)*a >= 0x7f ||
            strchr("\"()<>,;:\\[]", *a))
            return 0;
    return 1;
}

/* Up to SHOW_MAX bytes of s, non-printable bytes as '?'. */
static void show(char *out, size_t outlen, const char *s, size_t n)
{
    size_t i, o = 0;

    for (i = 0; i < n && o + 4 < outlen && o < SHOW_MAX; i++)
        out[o++] = (unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e
                       ? '?'
                       : s[i];
    if (i < n && o + 4 < outlen)
        out[o++] = '.', out[o++] = '.', out[o++] = '.';
    out[o] = 0;
}

static void say(struct cmd *k, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void say(struct cmd *k, const char *fmt, ...)
{
    char line[1024];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    buf_printf(&k->reply, "%s\n", line);
}

static int step_failed(struct cmd *k, const char *err)
{
    snprintf(k->why, sizeof(k->why), "%s", err);
    k->fail = 1;
    return -1;
}

/* The value of the first field name, or NULL (caller frees). */
static char *field(struct cmd *k, const char *name)
{
    long i = headers_find(&k->h, name, 0);

    return i >= 0 ? headers_value(&k->h, (size_t)i) : NULL;
}

/* The value of the first field name of h, or NULL (caller frees). */
static char *hfield(struct headers *h, const char *name)
{
    long i = headers_find(h, name, 0);

    return i >= 0 ? headers_value(h, (size_t)i) : NULL;
}

/* ------------------------------------------------------------- safety */

/* Local parts that belong to machines or to lists, never to a person. */
static int robot_address(const char *a)
{
    static const char *const robots[] = {
        "mailer-daemon", "postmaster", "mailer", "listserv", "majordomo",
        "mailman",       "nobody",     "noreply", "no-reply", "do-not-reply",
        "donotreply",    "root",       "daemon"};
    static const char *const suffixes[] = {"-request", "-bounces", "-owner",
                                           "-confirm", "-join",    "-leave",
                                           "-admin"};
    const char *at = strrchr(a, '@');
    size_t n = at ? (size_t)(at - a) : strlen(a), i;
    char local[ADDR_MAX + 1];
    char *plus;

    if (n > ADDR_MAX)
        return 1;
    memcpy(local, a, n);
    local[n] = 0;
    if ((plus = strchr(local, '+')) != NULL)
        *plus = 0;
    n = strlen(local);
    for (i = 0; i < sizeof(robots) / sizeof(robots[0]); i++)
        if (strcasecmp(local, robots[i]) == 0)
            return 1;
    for (i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
        size_t sn = strlen(suffixes[i]);
        if (n > sn && strcasecmp(local + n - sn, suffixes[i]) == 0)
            return 1;
    }
    return 0;
}

/* Why this mail must not be answered, or NULL (RFC 3834, section 2). */
const char *notice_refusal(struct headers *h, const char *sender,
                           const char *requester, const struct listdef *ld)
{
    char *v, us[LIST_NAME_MAX + 300];
    const char *why = NULL;
    size_t i;

    if (!sender[0])
        return "null sender";
    if ((v = hfield(h, "Auto-Submitted")) != NULL) {
        if (strncasecmp(v, "no", 2) != 0 || (v[2] && v[2] != ' ' &&
                                              v[2] != ';' && v[2] != '\t'))
            why = "Auto-Submitted";
        free(v);
    }
    if (!why && (v = hfield(h, "Precedence")) != NULL) {
        if (!strcasecmp(v, "bulk") || !strcasecmp(v, "junk") ||
            !strcasecmp(v, "list"))
            why = "Precedence: bulk, junk or list";
        free(v);
    }
    for (i = 0; !why && i < h->n; i++)
        if (h->f[i].name_len > 5 &&
            strncasecmp(h->msg + h->f[i].start, "List-", 5) == 0)
            why = "a List-* header (list mail)";
    snprintf(us, sizeof(us), "%s-request@%s", ld->name, ld->domain);
    if (!why && (v = hfield(h, "X-Loop")) != NULL) {
        if (strcasestr(v, us))
            why = "our own X-Loop (our own mail)";
        free(v);
    }
    if (!why && headers_find(h, "X-BeenThere", 0) >= 0)
        why = "X-BeenThere (list mail)";
    if (!why && robot_address(sender))
        why = "the sender is a mailer, postmaster or list address";
    if (!why && robot_address(requester))
        why = "From: is a mailer, postmaster or list address";
    return why;
}

/* Who we answer: the From: address if it is usable, else the sender. */
int notice_requester(struct headers *h, const char *sender, char *requester)
{
    char *v = hfield(h, "From"), a[ADDR_MAX + 64];

    requester[0] = 0;
    if (v && header_address(v, a, sizeof(a)) == 0 && addr_ok(a))
        memcpy(requester, a, strlen(a) + 1); /* addr_ok: <= ADDR_MAX */
    free(v);
    if (!requester[0] && addr_ok(sender))
        snprintf(requester, ADDR_MAX + 1, "%s", sender);
    return requester[0] ? 0 : -1;
}

/* ------------------------------------------------------------ out/ */

/*
 * Queue one message to rcpt[0..n) (listmail.h: envelope sender the list's
 * bounce address); name derived from the entry's name and the message's
 * index.  0 or -1 (k->fail set).
 */
static int queue_mail(struct cmd *k, char **rcpt, size_t n, const char *to,
                      const char *subject, const char *reply_to,
                      const char *text)
{
    char name[QNAME_LEN + 1], err[QUEUE_ERR_MAX];
    struct listmail m;
    char *mid = field(k, "Message-ID");
    int rc;

    listmail_name(k->c->qn.name, k->c->qn.name, "command", k->nout++, name);
    memset(&m, 0, sizeof(m));
    m.to = to;
    m.subject = subject;
    m.reply_to = reply_to;
    m.in_reply_to = mid;
    m.text = text;
    rc = listmail_queue(k->ctx->sp, k->ld, rcpt, n, &m, name, err,
                        sizeof(err));
    free(mid);
    if (rc != 0)
        return step_failed(k, err);
    log_info("%s: list %s: queued %s to %s: %s", k->c->qn.name, k->ld->name,
             name, n == 1 ? rcpt[0] : "the owners", subject);
    return 0;
}

/* May we write to address once more today?  1 yes, 0 no (logged). */
static int rate_ok(struct cmd *k, const char *address)
{
    char by[QNAME_LEN + 16], err[QUEUE_ERR_MAX];
    int rc;

    snprintf(by, sizeof(by), "%s.%u", k->c->qn.name, k->nout);
    rc = token_rate_take(&k->ms, address, by, (int64_t)time(NULL),
                         k->ld->max_autoresponses_per_day, err, sizeof(err));
    if (rc < 0) {
        step_failed(k, err);
        return 0;
    }
    if (rc == 0)
        log_warn("%s: list %s: no mail to %s: max_autoresponses_per_day (%d) "
                 "reached",
                 k->c->qn.name, k->ld->name, address,
                 k->ld->max_autoresponses_per_day);
    return rc;
}

/* The confirmation request for (action, address): token made, pending
 * recorded, mail queued to address (rate limit permitting). */
static int ask_confirmation(struct cmd *k, char action, const char *address)
{
    char tok[TOKEN_LEN + 1], err[QUEUE_ERR_MAX], to[ADDR_MAX + 3];
    char subject[64], reply_to[LIST_NAME_MAX + 400], text[2048];
    char *rcpt = (char *)address;
    int64_t expiry = k->env->arrival_sec + k->ld->pending_request_life;

    /* from the arrival time: a rerun makes the same token */
    token_make(&k->key, k->ld->name, address, action, expiry, tok);
    if (token_pending_add(&k->ms, tok, address, k->requester, err,
                          sizeof(err)) < 0)
        return step_failed(k, err);
    if (!rate_ok(k, address))
        return k->fail ? -1 : 1;
    snprintf(to, sizeof(to), "<%s>", address);
    snprintf(subject, sizeof(subject), "confirm %s", tok);
    snprintf(reply_to, sizeof(reply_to), "%s-confirm+%s@%s", k->ld->name, tok,
             k->ld->domain);
    snprintf(text, sizeof(text),
             "Someone (%s) asked to %s\n\n    %s\n\n%s the list %s@%s.\n\n"
             "To confirm, simply reply to this message: the reply goes to\n"
             "%s.  Or send a message to %s-request@%s\n"
             "with this line:\n\n    confirm %s\n\n"
             "This request expires in %lld days.  If you did not ask for "
             "it,\nignore this message: nothing happens without your reply.\n",
             k->requester,
             action == TOKEN_SUBSCRIBE ? "subscribe" : "unsubscribe", address,
             action == TOKEN_SUBSCRIBE ? "to" : "from", k->ld->name,
             k->ld->domain, reply_to, k->ld->name, k->ld->domain, tok,
             (long long)(k->ld->pending_request_life + 86399) / 86400);
    return queue_mail(k, &rcpt, 1, to, subject, reply_to, text);
}

/* Ask the owners to approve address (token 'a'). */
static int ask_approval(struct cmd *k, const char *address)
{
    char tok[TOKEN_LEN + 1], err[QUEUE_ERR_MAX], to[LIST_NAME_MAX + 300];
    char subject[64], reply_to[LIST_NAME_MAX + 400], text[2048];
    int64_t expiry = k->env->arrival_sec + k->ld->pending_request_life;

    if (k->ld->nowners == 0)
        return 1;
    token_make(&k->key, k->ld->name, address, TOKEN_APPROVE, expiry, tok);
    if (token_pending_add(&k->ms, tok, address, k->requester, err,
                          sizeof(err)) < 0)
        return step_failed(k, err);
    snprintf(to, sizeof(to), "%s-owner@%s", k->ld->name, k->ld->domain);
    snprintf(subject, sizeof(subject), "confirm %s", tok);
    snprintf(reply_to, sizeof(reply_to), "%s-confirm+%s@%s", k->ld->name, tok,
             k->ld->domain);
    snprintf(text, sizeof(text),
             "%s has confirmed a subscription to %s@%s, which\n"
             "needs an owner's approval (subscribe_policy = approve).\n\n"
             "To approve, reply to this message (the reply goes to\n%s),\n"
             "or run:  mmqctl members %s approve %s\n\n"
             "To refuse, send \"reject %s\" to %s-request@%s,\n"
             "or run:  mmqctl members %s reject %s\n",
             address, k->ld->name, k->ld->domain, reply_to, k->ld->name,
             address, tok, k->ld->name, k->ld->domain, k->ld->name, address);
    return queue_mail(k, k->ld->owners, k->ld->nowners, to, subject,
                      reply_to, text);
}

/* --------------------------------------------------------- the commands */

static int is_member(struct cmd *k, const char *address)
{
    struct members m;
    char err[QUEUE_ERR_MAX];
    int rc;

    memset(&m, 0, sizeof(m));
    if (members_load(&m, k->ld->members_path, err, sizeof(err)) != 0) {
        step_failed(k, err);
        members_free(&m);
        return -1;
    }
    rc = members_contains(&m, address);
    members_free(&m);
    return rc;
}

/*
 * The welcome or goodbye message, queued before the members file changes:
 * a crash between the two leaves the message queued and the change to
 * do, which the rerun does (and queues the message again under the same
 * name, replacing it); after the change, a rerun finds it done and
 * queues nothing.  So it is never lost, and sent twice only if delivered
 * in that instant.
 */
static int greet(struct cmd *k, const char *address, int welcome)
{
    char err[QUEUE_ERR_MAX];
    unsigned idx = k->nout++; /* taken either way: a rerun's names agree */
    int rc = is_member(k, address);

    if (rc < 0 || rc == welcome) /* error, or nothing will change */
        return rc < 0 ? -1 : 0;
    if (listmail_greet(k->ctx->sp, k->ctx->cfg, k->ld, address, welcome,
                       k->c->qn.name, k->c->qn.name, idx, err,
                       sizeof(err)) < 0)
        return step_failed(k, err);
    return 0;
}

static int add_member(struct cmd *k, const char *address, size_t *added)
{
    char err[QUEUE_ERR_MAX], *a = (char *)address;

    if (greet(k, address, 1) != 0)
        return -1;
    if (members_file_add(k->ld->members_path, &a, 1, added, err,
                         sizeof(err)) != 0)
        return step_failed(k, err);
    return 0;
}

static int remove_member(struct cmd *k, const char *address, size_t *removed)
{
    char err[QUEUE_ERR_MAX], *a = (char *)address;

    if (greet(k, address, 0) != 0)
        return -1;
    if (members_file_remove(k->ld->members_path, &a, 1, removed, err,
                            sizeof(err)) != 0 ||
        member_forget(&k->ms, address, err, sizeof(err)) != 0)
        return step_failed(k, err);
    return 0;
}

static void logcmd(struct cmd *k, const char *command, const char *address,
                   const char *outcome)
{
    log_info("%s: list %s: command %s address=%s from=%s: %s", k->c->qn.name,
             k->ld->name, command, address[0] ? address : "-", k->requester,
             outcome);
}

static void do_subscribe(struct cmd *k, const char *address)
{
    size_t added = 0;
    int own = strcasecmp(address, k->requester) == 0, rc;

    if (k->ld->subscribe_policy == SUB_CLOSED) {
        say(k, "    refused: this list does not take subscriptions by mail");
        logcmd(k, "subscribe", address, "refused (subscribe_policy closed)");
        return;
    }
    if ((rc = is_member(k, address)) != 0) {
        if (rc > 0) {
            /* the index greet() takes when it adds: the rerun of an entry
             * killed after the change names its reply as the first run
             * did, and replaces it instead of adding a second one */
            k->nout++;
            say(k, "    %s is already a member", address);
            logcmd(k, "subscribe", address, "already a member");
        }
        return;
    }
    if (k->ld->subscribe_policy == SUB_OPEN && own) {
        if (add_member(k, address, &added) == 0) {
            say(k, "    %s subscribed", address);
            logcmd(k, "subscribe", address, "subscribed");
        }
        return;
    }
    if (ask_confirmation(k, TOKEN_SUBSCRIBE, address) >= 0) {
        say(k, "    a confirmation request was sent to %s", address);
        logcmd(k, "subscribe", address, "confirmation requested");
    }
}

static void do_unsubscribe(struct cmd *k, const char *address)
{
    size_t removed = 0;
    int own = strcasecmp(address, k->requester) == 0, rc;

    if ((rc = is_member(k, address)) <= 0) {
        if (rc == 0) {
            k->nout++; /* greet()'s index: see do_subscribe() */
            say(k, "    %s is not a member", address);
            logcmd(k, "unsubscribe", address, "not a member");
        }
        return;
    }
    if (k->ld->unsubscribe_policy == SUB_OPEN && own) {
        if (remove_member(k, address, &removed) == 0) {
            say(k, "    %s unsubscribed", address);
            logcmd(k, "unsubscribe", address, "unsubscribed");
        }
        return;
    }
    if (ask_confirmation(k, TOKEN_UNSUBSCRIBE, address) >= 0) {
        say(k, "    a confirmation request was sent to %s", address);
        logcmd(k, "unsubscribe", address, "confirmation requested");
    }
}

/* Why tok cannot be used, or NULL with address filled in ("" after a
 * failed step). */
static const char *token_refusal(struct cmd *k, const char *tok,
                                 char *address, size_t len)
{
    char err[QUEUE_ERR_MAX], action, by[MEMBER_ADDR_MAX];
    int64_t expiry;
    enum token_verdict v;
    int rc;

    if (token_parse(tok, &action, &expiry) != 0)
        return "not a confirmation token";
    rc = token_used_get(&k->ms, tok, by, sizeof(by), address, len);
    if (rc == 0) /* ours: a rerun after a crash goes on where it stopped */
        return strcmp(by, k->c->qn.name) == 0 ? NULL
                                               : "this token was used already";
    if (rc < 0) {
        step_failed(k, "cannot read a used token's mark");
        return "";
    }
    rc = token_pending_get(&k->ms, tok, address, len, err, sizeof(err));
    if (rc < 0) {
        step_failed(k, err);
        return "";
    }
    if (rc == 1) {
        /* no request: expired (and cleaned up), or never made */
        address[0] = 0;
        v = token_check(&k->key, k->ld->name, k->requester, tok,
                        (int64_t)time(NULL));
        return v == TOKEN_EXPIRED ? "this token has expired"
                                  : "not a token of this list (forged or "
                                    "mistyped)";
    }
    v = token_check(&k->key, k->ld->name, address, tok, (int64_t)time(NULL));
    if (v != TOKEN_OK)
        return v == TOKEN_EXPIRED
                   ? "this token has expired"
                   : "not a token of this list (forged or mistyped)";
    return NULL;
}

/* ---------------------------------------------------- held posts */

/* The held post's poster, if it may be told (the rules of any answer),
 * and its Subject, read from the claimed hold/ entry c. */
static void held_poster(struct cmd *k, struct claim *c, struct held_decision *d)
{
    struct envelope env;
    struct headers h;
    off_t off;
    size_t len;
    char *buf = NULL, *v;
    ssize_t n;

    snprintf(d->poster, sizeof(d->poster), "-");
    if (queue_claim_read(c, &env, &off, d->subject, sizeof(d->subject)) != 0) {
        d->subject[0] = 0;
        return;
    }
    len = env.size > 262144 ? 262144 : (size_t)env.size;
    if ((buf = malloc(len + 1)) != NULL &&
        (n = pread(c->fd, buf, len, off)) >= 0 &&
        headers_parse(buf, (size_t)n, &h) == 0) {
        char poster[ADDR_MAX + 1];
        if ((v = hfield(&h, "Subject")) != NULL) {
            show(d->subject, sizeof(d->subject), v, strlen(v));
            free(v);
        }
        if (notice_requester(&h, env.sender, poster) == 0 &&
            !notice_refusal(&h, env.sender, poster, k->ld))
            snprintf(d->poster, sizeof(d->poster), "%s", poster);
        headers_free(&h);
    }
    free(buf);
    envelope_free(&env);
}

/* What the recorded decision d did, told to the owner (and, for a
 * rejection, to the poster: after the post is gone, from the record, so
 * that a rerun can do it again). */
static void held_done(struct cmd *k, const char *held,
                      const struct held_decision *d)
{
    char to[MEMBER_ADDR_MAX + 3], subject[LIST_NAME_MAX + 300], text[2048];
    char *rcpt = (char *)d->poster;
    const char *what = !strcmp(d->action, "approve")  ? "approved: it goes to "
                                                       "the list now"
                       : !strcmp(d->action, "reject") ? "rejected (the poster "
                                                        "is told)"
                                                      : "discarded";

    say(k, "    the held post %s (%s) was %s", held,
        d->subject[0] ? d->subject : "no Subject", what);
    logcmd(k, d->action, d->poster, "held post decided");
    log_info("%s: list %s: held post %s %sd by an owner's reply", k->c->qn.name,
             k->ld->name, held, d->action);
    if (strcmp(d->action, "reject") != 0 || !strcmp(d->poster, "-") ||
        !rate_ok(k, d->poster))
        return;
    snprintf(to, sizeof(to), "<%s>", d->poster);
    snprintf(subject, sizeof(subject), "Your message to %s@%s was rejected",
             k->ld->name, k->ld->domain);
    snprintf(text, sizeof(text),
             "Your message to the list %s@%s\n\n    Subject: %s\n\n"
             "was held for moderation, and a moderator rejected it: it was "
             "not\ndistributed.  Questions: %s-owner@%s\n",
             k->ld->name, k->ld->domain, d->subject[0] ? d->subject : "-",
             k->ld->name, k->ld->domain);
    queue_mail(k, &rcpt, 1, to, subject, NULL, text);
}

/*
 * An owner's reply with the token of held post held: claim it in hold/
 * (the first decider wins, mmqctl release included), record the
 * decision, then release it (exactly as mmqctl release) or remove it.
 * See held.h for what a crash at any instant leaves.
 */
static void do_held(struct cmd *k, char action, const char *held)
{
    struct held_decision d;
    struct claim c;
    enum held_where where;
    char err[QUEUE_ERR_MAX];
    int rc, mine;

    rc = held_decision_read(&k->ms, held, &d);
    if (rc < 0) {
        step_failed(k, "cannot read a held post's decision");
        return;
    }
    mine = rc == 0 && strcmp(d.by, k->c->qn.name) == 0;
    if ((rc = held_claim(k->ctx->sp, held, &c, err, sizeof(err))) < 0) {
        step_failed(k, err);
        return;
    }
    if (rc == 1) {
        if (held_find(k->ctx->sp, held, &where, err, sizeof(err)) != 0) {
            step_failed(k, err);
            return;
        }
        if (where != HELD_GONE) { /* another decider has it in hand */
            step_failed(k, "the held post is being decided by another "
                           "process (tried again later)");
            return;
        }
        if (mine) { /* a rerun: our act was done before the crash */
            held_done(k, held, &d);
            return;
        }
        if (d.by[0]) {
            say(k, "    refused: the held post %s was decided already (%s%s)",
                held, d.action,
                strncmp(d.by, "mmqctl", 6) == 0 ? " by mmqctl"
                                                : " by an owner's reply");
            logcmd(k, "moderate", "", "decided already");
        } else {
            say(k, "    refused: no such held post (decided already, or "
                   "never held here)");
            logcmd(k, "moderate", "", "no such held post");
        }
        return;
    }
    /* ours alone: record, then act (held.h) */
    memset(&d, 0, sizeof(d));
    snprintf(d.by, sizeof(d.by), "%s", k->c->qn.name);
    snprintf(d.action, sizeof(d.action), "%s",
             action == TOKEN_HOLD_APPROVE  ? "approve"
             : action == TOKEN_HOLD_REJECT ? "reject"
                                           : "discard");
    held_poster(k, &c, &d);
    if (held_decision_write(&k->ms, held, &d, err, sizeof(err)) != 0 ||
        (action == TOKEN_HOLD_APPROVE ? held_release(&c, err, sizeof(err))
                                      : queue_done(&c, err, sizeof(err))) !=
            0) {
        char why[QUEUE_ERR_MAX];
        queue_claim_close(&c);
        (void)queue_unclaim(&c, why, sizeof(why)); /* else recovery does */
        step_failed(k, err);
        return;
    }
    queue_claim_close(&c);
    held_done(k, held, &d);
}

static void do_confirm(struct cmd *k, const char *tok, int reject)
{
    char address[MEMBER_ADDR_MAX] = "", err[QUEUE_ERR_MAX], what[600], action;
    const char *why = token_refusal(k, tok, address, sizeof(address));
    size_t n = 0;
    int rc;

    if (why) {
        if (why[0]) {
            say(k, "    refused: %s", why);
            logcmd(k, reject ? "reject" : "confirm", address, why);
        }
        return;
    }
    action = tok[0] >= 'A' && tok[0] <= 'Z' ? (char)(tok[0] - 'A' + 'a')
                                             : tok[0];
    if (reject && action != TOKEN_APPROVE && action != TOKEN_HOLD_APPROVE) {
        say(k, "    refused: only an owner's approval request can be rejected");
        return;
    }
    if ((rc = token_use(&k->ms, tok, k->c->qn.name, address, err,
                        sizeof(err))) != 0) {
        if (rc < 0) {
            step_failed(k, err);
            return;
        }
        say(k, "    refused: this token was used already");
        logcmd(k, "confirm", address, "token used already");
        return;
    }
    /* used: from here on it is ours, and a rerun comes back here */
    if (TOKEN_IS_HOLD(action)) {
        do_held(k, reject ? TOKEN_HOLD_REJECT : action, address);
        return;
    }
    if (reject) {
        snprintf(what, sizeof(what), "subscription of %s rejected", address);
    } else if (tok[0] == TOKEN_SUBSCRIBE &&
               k->ld->subscribe_policy == SUB_APPROVE) {
        if (ask_approval(k, address) < 0)
            return;
        snprintf(what, sizeof(what),
                 "%s confirmed; the subscription awaits an owner's approval",
                 address);
    } else if (tok[0] == TOKEN_UNSUBSCRIBE) {
        if (remove_member(k, address, &n) != 0)
            return;
        snprintf(what, sizeof(what), "%s unsubscribed", address);
    } else {
        if (add_member(k, address, &n) != 0)
            return;
        snprintf(what, sizeof(what), "%s subscribed", address);
    }
    token_pending_remove(&k->ms, tok);
    say(k, "    %s", what);
    logcmd(k, reject ? "reject" : "confirm", address, what);
}

#define BUILTIN_HELP                                                           \
    "Commands, one per line, in the Subject or at the start of the body\n" \
    "of a message to %s-request@%s:\n\n" \
    "    subscribe [ADDRESS]     (or join) join the list\n" \
    "    unsubscribe [ADDRESS]   (or leave) leave the list\n" \
    "    confirm TOKEN           confirm a request (replying to the\n" \
    "                            confirmation message does the same)\n" \
    "    help                    this text\n" \
    "    end                     stop reading (as does a line \"-- \")\n\n" \
    "Or send any message to %s-join@%s or %s-leave@%s.\n" \
    "Another ADDRESS than yours always has to confirm by itself.\n"

static void do_help(struct cmd *k)
{
    char path[PATH_MAX], text[16384];
    const char *file = k->ld->help_file;
    ssize_t n = -1;
    int fd;

    if (!file) {
        snprintf(path, sizeof(path), "%s/%s.help", k->ctx->cfg->lists_dir,
                 k->ld->name);
        file = path;
    } else if (file[0] != '/') {
        snprintf(path, sizeof(path), "%s/%s", k->ctx->cfg->lists_dir, file);
        file = path;
    }
    if ((fd = open(file, O_RDONLY | O_CLOEXEC)) >= 0) {
        n = read(fd, text, sizeof(text) - 1);
        close(fd);
    }
    if (n >= 0) {
        text[n] = 0;
        buf_puts(&k->reply, text);
    } else {
        buf_printf(&k->reply, BUILTIN_HELP, k->ld->name, k->ld->domain,
                   k->ld->name, k->ld->domain, k->ld->name, k->ld->domain);
    }
    logcmd(k, "help", "", "sent");
}

/* --------------------------------------------------------- the parser */

enum verb { V_NONE, V_SUB, V_UNSUB, V_CONFIRM, V_REJECT, V_HELP, V_END };

static const struct {
    const char *word;
    enum verb v;
} verbs[] = {{"subscribe", V_SUB}, {"join", V_SUB},   {"unsubscribe", V_UNSUB},
             {"leave", V_UNSUB},   {"confirm", V_CONFIRM}, {"reject", V_REJECT},
             {"help", V_HELP},     {"end", V_END},    {"stop", V_END}};

/* Split a line (len bytes, no line end) into a verb and its argument. */
static enum verb parse_line(const char *s, size_t len, char *arg,
                            size_t arglen)
{
    char word[16];
    size_t i = 0, w = 0, a = 0;
    enum verb v = V_NONE;

    arg[0] = 0;
    while (i < len && (s[i] == ' ' || s[i] == '\t'))
        i++;
    if (len - i > MAX_LINE)
        return V_NONE;
    while (i < len && s[i] != ' ' && s[i] != '\t' && w < sizeof(word) - 1)
        word[w++] = s[i++];
    word[w] = 0;
    if (i < len && s[i] != ' ' && s[i] != '\t')
        return V_NONE;
    for (w = 0; w < sizeof(verbs) / sizeof(verbs[0]); w++)
        if (strcasecmp(word, verbs[w].word) == 0)
            v = verbs[w].v;
    if (v == V_NONE)
        return V_NONE;
    while (i < len && (s[i] == ' ' || s[i] == '\t'))
        i++;
    while (i < len && s[i] != ' ' && s[i] != '\t' && s[i] != '\r') {
        if (a + 1 >= arglen)
            return V_NONE;
        arg[a++] = s[i++];
    }
    arg[a] = 0;
    while (i < len && (s[i] == ' ' || s[i] == '\t' || s[i] == '\r'))
        i++;
    if (i < len) /* a third word: prose, not a command */
        return V_NONE;
    if ((v == V_CONFIRM || v == V_REJECT) && !arg[0])
        return V_NONE;
    if ((v == V_HELP || v == V_END) && arg[0])
        return V_NONE;
    return v;
}

/* Run one parsed command; 1 for "end". */
static int run(struct cmd *k, enum verb v, char *arg, const char *line,
               size_t len)
{
    char shown[SHOW_MAX + 8], address[ADDR_MAX + 1];

    show(shown, sizeof(shown), line, len);
    say(k, "> %s", shown);
    if (v == V_END) {
        say(k, "    done");
        return 1;
    }
    if (v == V_HELP) {
        do_help(k);
        return 0;
    }
    if (v == V_CONFIRM || v == V_REJECT) {
        do_confirm(k, arg, v == V_REJECT);
        return 0;
    }
    if (!strncasecmp(arg, "address=", 8))
        memmove(arg, arg + 8, strlen(arg + 8) + 1);
    if (arg[0] == '<' && arg[strlen(arg) - 1] == '>') {
        arg[strlen(arg) - 1] = 0;
        memmove(arg, arg + 1, strlen(arg));
    }
    snprintf(address, sizeof(address), "%s", arg[0] ? arg : k->requester);
    if (!addr_ok(address)) {
        say(k, "    refused: not an address mmq accepts");
        logcmd(k, v == V_SUB ? "subscribe" : "unsubscribe", "", "bad address");
        return 0;
    }
    if (v == V_SUB)
        do_subscribe(k, address);
    else
        do_unsubscribe(k, address);
    return 0;
}

/* The text/plain body: the whole body, or the first text/plain part of a
 * multipart one (enough for mail clients; no decoding). */
static void plain_body(struct cmd *k, const char **start, const char **end)
{
    const char *msg = k->h.msg, *b = msg + k->h.body_off, *e = msg + k->h.len;
    char *ct = field(k, "Content-Type"), *bd, boundary[200];
    const char *p;
    size_t n;

    *start = b;
    *end = e;
    if (!ct)
        return;
    if (strncasecmp(ct, "multipart/", 10) != 0 ||
        !(bd = strcasestr(ct, "boundary="))) {
        free(ct);
        return;
    }
    bd += 9;
    if (*bd == '"')
        bd++;
    for (n = 0; bd[n] && bd[n] != '"' && bd[n] != ';' && n < 190; n++)
        ;
    boundary[0] = boundary[1] = '-';
    memcpy(boundary + 2, bd, n);
    boundary[n + 2] = 0;
    free(ct);
    /* the first part: after the first boundary line and its headers */
    if (!(p = memmem(b, (size_t)(e - b), boundary, n + 2)) ||
        !(p = memmem(p, (size_t)(e - p), "\n", 1))) {
        *start = *end;
        return;
    }
    p++;
    while (p < e && *p != '\n' && !(*p == '\r' && p + 1 < e && p[1] == '\n')) {
        const char *nl = memchr(p, '\n', (size_t)(e - p));
        p = nl ? nl + 1 : e;
    }
    p = p < e && *p == '\r' ? p + 2 : p + 1;
    *start = p < e ? p : e;
    if ((p = memmem(*start, (size_t)(e - *start), boundary, n + 2)) != NULL)
        *end = p;
}

/* The Subject without "Re:", "Fwd:" and the like. */
static const char *strip_reply(const char *s)
{
    static const char *const pre[] = {"re:", "fwd:", "fw:", "aw:", "wg:",
                                      "sv:", "antw:"};
    size_t i;
    int again = 1;

    while (again) {
        again = 0;
        while (*s == ' ' || *s == '\t')
            s++;
        for (i = 0; i < sizeof(pre) / sizeof(pre[0]); i++)
            if (strncasecmp(s, pre[i], strlen(pre[i])) == 0) {
                s += strlen(pre[i]);
                again = 1;
            }
    }
    return s;
}

/* Commands of a -request message: Subject, then the body. */
static void run_request(struct cmd *k)
{
    char arg[ADDR_MAX + 64], *subject = field(k, "Subject");
    const char *p, *end, *s;
    unsigned lines = 0, seen = 0, scanned = 0;
    enum verb v;

    if (subject) {
        s = strip_reply(subject);
        if ((v = parse_line(s, strlen(s), arg, sizeof(arg))) != V_NONE) {
            lines++, seen++;
            if (run(k, v, arg, s, strlen(s)))
                lines = MAX_LINES; /* "end" in the Subject */
        }
        free(subject);
    }
    plain_body(k, &p, &end);
    while (p < end && lines < MAX_LINES && !k->fail && scanned++ < MAX_SCAN) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
        const char *line = p;
        size_t t = len;

        p = nl ? nl + 1 : end;
        if (t && line[t - 1] == '\r')
            t--;
        while (t && (line[0] == ' ' || line[0] == '\t'))
            line++, t--;
        if (t == 0 || line[0] == '>')
            continue; /* blank, or quoted text */
        if ((t == 2 && !memcmp(line, "--", 2)) ||
            (t >= 3 && !memcmp(line, "-- ", 3)))
            break; /* a signature */
        lines++;
        if ((v = parse_line(line, t, arg, sizeof(arg))) == V_NONE) {
            char shown[SHOW_MAX + 8];
            show(shown, sizeof(shown), line, t);
            say(k, "> %s", shown);
            say(k, "    not a command: the rest was ignored");
            break;
        }
        seen++;
        if (run(k, v, arg, line, t))
            break;
    }
    if (seen == 0 && !k->fail) {
        say(k, "No command was found in your message.\n");
        do_help(k);
    }
}

/* The token of LIST-confirm+TOKEN@DOMAIN, else of "confirm TOKEN" in the
 * Subject. */
static void confirm_token(struct cmd *k, char *tok, size_t len)
{
    const char *r = k->env->nrcpt ? k->env->rcpt[0].addr : "";
    const char *plus = strchr(r, '+'), *at = strrchr(r, '@');
    char *subject, arg[ADDR_MAX + 64];

    tok[0] = 0;
    if (plus && at && at > plus && (size_t)(at - plus) < len) {
        memcpy(tok, plus + 1, (size_t)(at - plus - 1));
        tok[at - plus - 1] = 0;
        return;
    }
    if ((subject = field(k, "Subject")) != NULL) {
        const char *s = strip_reply(subject);
        if (parse_line(s, strlen(s), arg, sizeof(arg)) == V_CONFIRM)
            snprintf(tok, len, "%s", arg);
        free(subject);
    }
}

/* ---------------------------------------------------------- the story */

static void answer(struct cmd *k)
{
    char to[ADDR_MAX + 3], subject[LIST_NAME_MAX + 300], *rcpt = k->requester;
    struct buf text;

    if (k->fail || k->reply.len == 0 || !rate_ok(k, k->requester))
        return;
    snprintf(to, sizeof(to), "<%s>", k->requester);
    snprintf(subject, sizeof(subject), "The results of your commands to %s@%s",
             k->ld->name, k->ld->domain);
    buf_init(&text);
    buf_printf(&text, "The results of your message to %s-request@%s:\n\n",
               k->ld->name, k->ld->domain);
    buf_append(&text, k->reply.data, k->reply.len);
    buf_printf(&text, "\n-- \nmmq, for the list %s@%s.  Questions: "
                      "%s-owner@%s\n",
               k->ld->name, k->ld->domain, k->ld->name, k->ld->domain);
    queue_mail(k, &rcpt, 1, to, subject, NULL, text.data);
    buf_free(&text);
}

int command_process(struct stage_ctx *ctx, const struct claim *c,
                    const struct envelope *env, const struct buf *msg,
                    const struct listdef *ld, char *what, size_t whatlen)
{
    struct cmd k;
    char err[QUEUE_ERR_MAX], tok[ADDR_MAX + 64];
    const char *why;
    int rc = 0;

    memset(&k, 0, sizeof(k));
    k.ctx = ctx;
    k.c = c;
    k.env = env;
    k.ld = ld;
    k.ms.fd = -1;
    buf_init(&k.reply);
    if (headers_parse(msg->data, msg->len, &k.h) != 0) {
        snprintf(what, whatlen, "out of memory parsing headers");
        buf_free(&k.reply);
        return -1;
    }
    if (notice_requester(&k.h, env->sender, k.requester) != 0) {
        snprintf(what, whatlen, "command mail not answered: no usable "
                                "sender or From: address");
        goto out;
    }
    if ((why = notice_refusal(&k.h, env->sender, k.requester, ld)) != NULL) {
        log_info("%s: list %s: command mail from <%s> not answered: %s",
                 c->qn.name, ld->name, env->sender, why);
        snprintf(what, whatlen, "command mail not answered (%s)", why);
        goto out;
    }
    if (member_store_open(&k.ms, ctx->cfg->spool, ld->name, ctx->cfg->node, 1,
                          err, sizeof(err)) != 0 ||
        token_secret_load(ctx->cfg->spool, &k.key, err, sizeof(err)) != 0) {
        snprintf(what, whatlen, "%s", err);
        rc = -1;
        goto out;
    }
    switch (env->role) {
    case ROLE_JOIN:
        run(&k, V_SUB, (char[]){0}, "subscribe", 9);
        break;
    case ROLE_LEAVE:
        run(&k, V_UNSUB, (char[]){0}, "unsubscribe", 11);
        break;
    case ROLE_CONFIRM:
        confirm_token(&k, tok, sizeof(tok));
        if (!tok[0]) {
            say(&k, "No confirmation token was found in your message.");
            break;
        }
        {
            char line[ADDR_MAX + 80];
            snprintf(line, sizeof(line), "confirm %s", tok);
            run(&k, V_CONFIRM, tok, line, strlen(line));
        }
        break;
    default:
        run_request(&k);
        break;
    }
    answer(&k);
    if (k.fail) {
        snprintf(what, whatlen, "%s", k.why);
        rc = -1;
    } else {
        snprintf(what, whatlen, "%s mail: commands done, %u message%s queued",
                 role_name(env->role), k.nout, k.nout == 1 ? "" : "s");
    }
out:
    explicit_bzero(&k.key, sizeof(k.key));
    member_store_close(&k.ms);
    headers_free(&k.h);
    buf_free(&k.reply);
    return rc;
}
