/*
 * held - deciding a post held for moderation: approve (release it to the
 * list stage), reject or discard.  Used by "mmqctl release" and by the
 * owners' replies to a held-post notice (mmq-process, command.c), so that
 * both act on the same hold/ entry the same way.
 *
 * One decider per post (claim first): every decider claims the hold/
 * entry (queue_claim(): a rename to a name unique to its node and
 * process, so of two exactly one wins, on GlusterFS too) and only the
 * winner acts; the other finds it gone or claimed.  While it holds the
 * claim, the winner records its decision in the list's member store,
 * SPOOL/members/LIST/held/NAME ("by WHO", "action A", "poster P",
 * "subject S"), written to tmp/ and renamed over (one writer at a time:
 * the claim's holder), and only then acts.  A decider killed after its
 * record and before its act leaves the entry claimed by a dead process;
 * the recovery (mmq-process at start-up and on takeover, mmqctl recover)
 * puts it back in hold/, and the next decider to claim it records its
 * own decision over the dead one's.  So a rerun of the killed one reads
 * whose decision stands: its own (it finishes: nothing done twice, since
 * the act was the entry's own move or removal) or another's ("decided
 * already").  A post is never released twice: releasing is the rename of
 * the one claimed file into in/.
 *
 * Errors: -1, errno and a reason in err.
 */
#ifndef MMQ_HELD_H
#define MMQ_HELD_H

#include <stddef.h>

#include "member.h"
#include "queue.h"

enum held_where { HELD_READY, HELD_CLAIMED, HELD_GONE };

/* Where the post NAME held from in/ is now (hold/BB/NAME@in[#...]). */
int held_find(struct spool *sp, const char *name, enum held_where *where,
              char *err, size_t errlen);

/* Claim hold/BB/NAME@in: 0 claimed, 1 not there to claim, -1 error. */
int held_claim(struct spool *sp, const char *name, struct claim *c, char *err,
               size_t errlen);

/*
 * Release the claimed hold/ entry c to the queue it was held from: the
 * time held is added to its envelope (it does not count against its
 * lifetime), a post from in/ is marked approved (the policy is not asked
 * again), its mtime is now; rewritten, then moved.  0 or -1 (the claim is
 * still ours: the caller gives it back).
 */
int held_release(struct claim *c, char *err, size_t errlen);

struct held_decision {
    char by[MEMBER_ADDR_MAX];      /* an in/ entry name, or "mmqctl..." */
    char action[16];               /* approve, reject, discard, release */
    char poster[MEMBER_ADDR_MAX];  /* who is told of a rejection, or "-" */
    char subject[MEMBER_DIAG_MAX]; /* the post's Subject, one line */
};

/* Record d for held post name (only while holding its claim).  0 or -1. */
int held_decision_write(struct member_store *ms, const char *name,
                        const struct held_decision *d, char *err,
                        size_t errlen);
/* The decision recorded for name: 0 (d filled), 1 none, -1 error. */
int held_decision_read(struct member_store *ms, const char *name,
                       struct held_decision *d);

#endif
