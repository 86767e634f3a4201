/*
 * hold - what a post held for moderation tells its poster and the owners
 * (the list stage calls hold_notices() just before the move to hold/).
 * See process.h for the contract and mmq-process(8), MODERATION.
 *
 * The poster gets "your post awaits approval" unless the post is mail
 * that must never be answered (notice_refusal(): null sender,
 * Auto-Submitted, bulk, list mail, mailers) and within
 * max_autoresponses_per_day.  The owners get the post's summary (From,
 * Subject, size, the reason) and three tokens (token.h: 'p' approve, 'r'
 * reject, 'd' discard, each a MAC over the list, the entry's name, the
 * action and the expiry); the Reply-To is LIST-confirm+APPROVE@DOMAIN and
 * the Subject "confirm APPROVE", so a plain reply approves.  Each token's
 * pending/ file names the entry (the "address" of the token); command.c
 * acts on a reply (held.h: one decider per post, mmqctl release too).
 *
 * Crash rule: everything is derived from the entry (tokens from its
 * arrival time, out/ names and rate limit marks from its name), and all
 * of it is done before the move to hold/; a crash before the move leaves
 * the entry in in/, and the rerun makes the same files (pending: EEXIST),
 * replaces the notices still queued and counts no reply twice.  A notice
 * delivered in the instant before the crash is sent once more.  So each
 * post's notices are sent once (at most once more per crash).
 */
#include "autoconf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "header.h"
#include "listmail.h"
#include "log.h"
#include "member.h"
#include "process.h"
#include "token.h"

#define ADDR_MAX 254

/* The value of the first field name, shown on one line, or "-". */
static void summary_field(struct headers *h, const char *name, char *out,
                          size_t len)
{
    long i = h ? headers_find(h, name, 0) : -1;
    char *v = i >= 0 ? headers_value(h, (size_t)i) : NULL;
    size_t o = 0, k;

    for (k = 0; v && v[k] && o + 4 < len && o < 200; k++)
        out[o++] = (unsigned char)v[k] < 0x20 || (unsigned char)v[k] > 0x7e
                       ? '?'
                       : v[k];
    if (v && v[k] && o + 4 < len)
        memcpy(out + o, "...", 3), o += 3;
    out[o] = 0;
    if (!o)
        snprintf(out, len, "-");
    free(v);
}

static int tell_poster(struct stage_ctx *ctx, const struct claim *c,
                       const struct envelope *env, struct headers *h,
                       const struct listdef *ld, struct member_store *ms,
                       const char *subject, char *err, size_t errlen)
{
    char poster[ADDR_MAX + 1], by[QNAME_LEN + 8], name[QNAME_LEN + 1];
    char to[ADDR_MAX + 3], subj[LIST_NAME_MAX + 300], text[2048];
    const char *why;
    char *rcpt = poster, *mid = NULL;
    struct listmail m;
    long i;
    int rc;

    if (notice_requester(h, env->sender, poster) != 0)
        why = "no usable sender or From: address";
    else
        why = notice_refusal(h, env->sender, poster, ld);
    if (why) {
        log_info("%s: list %s: no held-post notice to the poster: %s",
                 c->qn.name, ld->name, why);
        return 0;
    }
    snprintf(by, sizeof(by), "%s.h", c->qn.name);
    rc = token_rate_take(ms, poster, by, (int64_t)time(NULL),
                         ld->max_autoresponses_per_day, err, errlen);
    if (rc <= 0) {
        if (rc == 0)
            log_warn("%s: list %s: no held-post notice to %s: "
                     "max_autoresponses_per_day (%d) reached",
                     c->qn.name, ld->name, poster,
                     ld->max_autoresponses_per_day);
        return rc;
    }
    snprintf(to, sizeof(to), "<%s>", poster);
    snprintf(subj, sizeof(subj), "Your message to %s@%s awaits approval",
             ld->name, ld->domain);
    snprintf(text, sizeof(text),
             "Your message to the list %s@%s\n\n    Subject: %s\n\n"
             "is held until a moderator approves it.  You will hear again "
             "only\nif it is rejected.  Questions: %s-owner@%s\n",
             ld->name, ld->domain, subject, ld->name, ld->domain);
    if ((i = headers_find(h, "Message-ID", 0)) >= 0)
        mid = headers_value(h, (size_t)i);
    memset(&m, 0, sizeof(m));
    m.to = to;
    m.subject = subj;
    m.in_reply_to = mid;
    m.text = text;
    listmail_name(c->qn.name, c->qn.name, "hold", 0, name);
    rc = listmail_queue(ctx->sp, ld, &rcpt, 1, &m, name, err, errlen);
    free(mid);
    if (rc == 0)
        log_info("%s: list %s: held-post notice %s queued to %s", c->qn.name,
                 ld->name, name, poster);
    return rc;
}

static int tell_owners(struct stage_ctx *ctx, const struct claim *c,
                       const struct envelope *env, struct headers *h,
                       const struct listdef *ld, struct member_store *ms,
                       const char *subject, const char *reason, char *err,
                       size_t errlen)
{
    static const char acts[3] = {TOKEN_HOLD_APPROVE, TOKEN_HOLD_REJECT,
                                 TOKEN_HOLD_DISCARD};
    char tok[3][TOKEN_LEN + 1], from[256], to[LIST_NAME_MAX + 300];
    char subj[TOKEN_LEN + 16], reply_to[LIST_NAME_MAX + 400];
    char name[QNAME_LEN + 1], text[4096];
    struct token_key key;
    struct listmail m;
    int64_t expiry = env->arrival_sec + ld->pending_request_life;
    int i, rc;

    if (ld->nowners == 0) {
        log_warn("%s: list %s has no owners: nobody is told of the held post",
                 c->qn.name, ld->name);
        return 0;
    }
    if (token_secret_load(ctx->cfg->spool, &key, err, errlen) != 0) {
        /* a spool from before the secret: held all the same (mmqctl
         * release still works), rather than kept in in/ for ever */
        log_error("%s: list %s: no held-post summary to the owners: %s",
                  c->qn.name, ld->name, err);
        return 0;
    }
    for (i = 0; i < 3; i++) {
        token_make(&key, ld->name, c->qn.name, acts[i], expiry, tok[i]);
        if (token_pending_add(ms, tok[i], c->qn.name,
                              env->sender[0] ? env->sender : "-", err,
                              errlen) < 0) {
            explicit_bzero(&key, sizeof(key));
            return -1;
        }
    }
    explicit_bzero(&key, sizeof(key));
    summary_field(h, "From", from, sizeof(from));
    snprintf(to, sizeof(to), "%s-owner@%s", ld->name, ld->domain);
    snprintf(subj, sizeof(subj), "confirm %s", tok[0]);
    snprintf(reply_to, sizeof(reply_to), "%s-confirm+%s@%s", ld->name, tok[0],
             ld->domain);
    snprintf(text, sizeof(text),
             "A post to %s@%s is held for moderation:\n\n"
             "    From:    %s\n    Sender:  <%s>\n    Subject: %s\n"
             "    Size:    %lld bytes\n    Held:    %s\n    Entry:   %s\n\n"
             "To APPROVE it (it goes to the list), simply reply to this\n"
             "message: the reply goes to\n%s.\n\n"
             "To REJECT it (the poster is told), reply to\n"
             "%s-confirm+%s@%s\n"
             "or send \"confirm %s\" to %s-request@%s.\n\n"
             "To DISCARD it (nobody is told), reply to\n"
             "%s-confirm+%s@%s\n"
             "or send \"confirm %s\" to %s-request@%s.\n\n"
             "Or run:  mmqctl release %s   (or mmqctl delete)\n"
             "These tokens expire in %lld days; the first decision wins.\n",
             ld->name, ld->domain, from, env->sender, subject,
             (long long)env->size, reason, c->qn.name, reply_to, ld->name,
             tok[1], ld->domain, tok[1], ld->name, ld->domain, ld->name, tok[2],
             ld->domain, tok[2], ld->name, ld->domain, c->qn.name,
             (long long)(ld->pending_request_life + 86399) / 86400);
    memset(&m, 0, sizeof(m));
    m.to = to;
    m.subject = subj;
    m.reply_to = reply_to;
    m.text = text;
    listmail_name(c->qn.name, c->qn.name, "hold", 1, name);
    rc = listmail_queue(ctx->sp, ld, ld->owners, ld->nowners, &m, name, err,
                        errlen);
    if (rc == 0)
        log_info("%s: list %s: held-post summary %s queued to the owners",
                 c->qn.name, ld->name, name);
    return rc;
}

int hold_notices(struct stage_ctx *ctx, const struct claim *c,
                 const struct envelope *env, struct headers *h,
                 const struct listdef *ld, const char *reason, char *err,
                 size_t errlen)
{
    struct member_store ms;
    char subject[256];
    int rc;

    if (!h || env->role != ROLE_POST)
        return 0; /* owner mail held for want of owners: nobody to tell */
    if (member_store_open(&ms, ctx->cfg->spool, ld->name, ctx->cfg->node, 1,
                          err, errlen) != 0)
        return -1;
    summary_field(h, "Subject", subject, sizeof(subject));
    rc = tell_poster(ctx, c, env, h, ld, &ms, subject, err, errlen);
    if (rc >= 0)
        rc = tell_owners(ctx, c, env, h, ld, &ms, subject, reason, err, errlen);
    member_store_close(&ms);
    return rc < 0 ? -1 : 0;
}
