/*
 * process.h - the list stage: mmq-process.c runs the loop over in/,
 * post.c turns one in/ entry into out/ entries (or holds, rejects or
 * discards it).
 */
#ifndef MMQ_PROCESS_H
#define MMQ_PROCESS_H

#include "buf.h"
#include "config.h"
#include "dmarc.h"
#include "header.h"
#include "listdef.h"
#include "queue.h"

/* Members files, kept loaded between posts and re-read when changed. */
struct member_cache {
    char name[LIST_NAME_MAX + 1];
    struct members m;
};

struct stage_ctx {
    struct spool *sp;
    const struct mmq_config *cfg;
    struct member_cache *cache;
    size_t ncache;
    struct dmarc *dmarc; /* NULL: no resolver (every lookup fails) */
    struct listdef_cache lists; /* list files, parsed again when changed */
};

/*
 * Process the ready in/ entry fname.  Every outcome is final and durable
 * before the in/ entry is finished; a crash anywhere leaves either the
 * entry (claimed, restored at start-up) or its completed result, and a
 * rerun never fans a post out twice (see post.c).  Returns 1 when the
 * entry was given back to in/ to be tried again later (a list file in
 * error, a full disk): the caller leaves it alone for a while.
 */
int post_process(struct stage_ctx *ctx, const char *fname);

/*
 * Email commands (command.c): the in/ entry c (claimed, read: env and the
 * message msg) of role request, join, leave or confirm for list ld.
 * 0: done (what says how, for the log line that finishes the entry);
 * -1: a step failed (what says why): give the entry back, a rerun
 * applies nothing twice.
 */
int command_process(struct stage_ctx *ctx, const struct claim *c,
                    const struct envelope *env, const struct buf *msg,
                    const struct listdef *ld, char *what, size_t whatlen);

/*
 * The rules of RFC 3834 and of the issue that every answer and notice
 * obeys (command.c): why mail with headers h from envelope sender, to be
 * answered at requester, must never be answered (null sender,
 * Auto-Submitted, Precedence bulk/junk/list, List-*, X-BeenThere, our own
 * X-Loop, mailer and list addresses), or NULL.
 */
const char *notice_refusal(struct headers *h, const char *sender,
                           const char *requester, const struct listdef *ld);
/* Who is answered: the From: address if plain, else the envelope sender;
 * requester gets up to 255 bytes.  0, or -1 when neither is usable. */
int notice_requester(struct headers *h, const char *sender, char *requester);

/*
 * A post (claimed in/ entry c, envelope env, headers h) is about to be
 * held for moderation for reason (hold.c): the poster is told that it
 * awaits approval (once: the names are derived from the entry; subject to
 * the safety rules and max_autoresponses_per_day) and the owners get its
 * summary with approve, reject and discard tokens.  0: done (or nothing
 * to send); -1: a step failed (err): give the entry back.
 */
int hold_notices(struct stage_ctx *ctx, const struct claim *c,
                 const struct envelope *env, struct headers *h,
                 const struct listdef *ld, const char *reason, char *err,
                 size_t errlen);

#endif
