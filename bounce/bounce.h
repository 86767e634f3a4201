/*
 * bounce.h - mmq-bounce's daemon side: mmq-bounce.c runs the loop over
 * bounces/, apply.c turns one bounces/ entry into member events and steps
 * (disable, warn, probe, remove), notice.c writes the notices those steps
 * queue into out/.  The parser is bparse.h; the member state member.h.
 */
#ifndef MMQ_BOUNCE_H
#define MMQ_BOUNCE_H

#include <stdint.h>

#include "bparse.h"
#include "config.h"
#include "lease.h"
#include "listdef.h"
#include "member.h"
#include "queue.h"

/* What the daemon counted since it last saved (mmqctl stats): bounces/
 * entries and the recipients found in them, in the order of CNT_B_*. */
struct bounce_counts {
    unsigned long entries;      /* bounces/ entries finished */
    unsigned long failed;       /* recipients: failed */
    unsigned long delayed;      /* delayed */
    unsigned long policy;       /* policy */
    unsigned long not_bounce;   /* entries: auto-replies, receipts */
    unsigned long unrecognised; /* entries nobody could be found in */
    unsigned long not_member;   /* recipients that are not members */
    unsigned long disabled, warnings, probes, removed; /* steps taken */
};

/* One list's definition and members, kept between entries. */
struct blist {
    struct listdef ld;
    struct members m;
    struct member_store ms;
    int loaded;
};

struct bounce_ctx {
    struct spool *sp;
    const struct mmq_config *cfg;
    struct blist *lists;
    size_t nlists;
    struct bounce_counts counts;
    const struct lease_set *lease; /* NULL: not in a cluster */
    int64_t (*now)(void);          /* the clock (time(), for libfaketime) */
};

/*
 * Handle the ready bounces/ entry fname: every member event it causes is
 * durable before the entry is removed.  Returns 1 when it was given back
 * to be tried later (the list's files are broken, the disk is full).
 */
int bounce_entry(struct bounce_ctx *bc, const char *fname);

/* The list (loaded, members re-read if changed), or NULL with a log line. */
struct blist *bounce_list(struct bounce_ctx *bc, const char *name);

/*
 * Look at one member now: queue notices whose marker is missing, sync the
 * index, take every step that is due (member_next()).  Used after each
 * bounce and by the sweep.  0, or -1 (logged).
 */
int bounce_member_step(struct bounce_ctx *bc, struct blist *bl,
                       const char *address);

/*
 * The sweep: for every list with state, every member in its disabled
 * index whose key is in our slices (warnings and removal come due with
 * time, not with bounces).  With full, every member with state
 * (member_scan(): repairs the index, drops state of addresses no longer
 * in the members file).
 */
void bounce_sweep(struct bounce_ctx *bc, int full);

/* Add the counts since the last save to this node's counters
 * (shared/counters.h, SPOOL/stats/NODE) and zero them; on an error they
 * are logged and kept for the next save. */
void bounce_counts_save(struct bounce_ctx *bc);

void bounce_ctx_free(struct bounce_ctx *bc);

/* ------------------------------------------------------------ notices */

/*
 * Queue one notice into out/ under a name derived from (when, tag): a
 * rerun with the same tag replaces a notice still queued.  The envelope
 * sender is sender (the list's bounce address, or a probe's VERP
 * address); body is plain text.  0 or -1 (logged).
 */
int notice_queue(struct bounce_ctx *bc, const struct listdef *ld,
                 int64_t when, const char *tag, const char *sender,
                 char **to, size_t nto, const char *subject,
                 const char *body);

/* Forward an unrecognised bounce to the owners, wrapped (so that its own
 * bounce is never forwarded again): name derived from the entry's. */
int notice_forward(struct bounce_ctx *bc, const struct listdef *ld,
                   const char *entry, const char *msg, size_t len);

/* The marker forwarded bounces carry: a bounce holding it is not sent on. */
#define BOUNCE_FORWARD_MARK "X-MMQ-Bounce-Forward"

#endif
