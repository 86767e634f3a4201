/*
 * token - confirmation tokens for email commands, and their once-only use.
 *
 * A token is "A" + "EEEEEEEE" + 32 hex digits, all lower case (41 bytes):
 * A the action (TOKEN_SUBSCRIBE 's', TOKEN_UNSUBSCRIBE 'u', TOKEN_APPROVE
 * 'a'; for a held post TOKEN_HOLD_APPROVE 'p', _REJECT 'r', _DISCARD 'd'), E the expiry (unix seconds, 8 hex digits), then the first 128 bits
 * of HMAC-SHA256 (OpenSSL) over the list, the address in lower case, the
 * action and the expiry, keyed with the installation's secret.  Only the
 * holder of the secret can make one; checking one needs the secret and
 * the address it claims to be for, no state.  Lower-case hex survives
 * MTAs that fold the case of local parts (LIST-confirm+TOKEN@DOMAIN).
 *
 * The secret: SPOOL/secret, 64 hex digits (32 random bytes), made by
 * "mmqctl init" (token_secret_create(), mode 0640, the spool's group) and
 * kept in the spool so that every node of a cluster has the same one.
 *
 * The durable state, under SPOOL/members/LIST/ (the member store of
 * member.h, one store), every file made by link(2) of a complete, fsynced
 * temporary file, so that of two writers (two nodes) exactly one wins:
 *   pending/TOKEN   a request waiting for its confirmation or approval:
 *                   "address A", "requester R" lines.  Removed once used
 *                   (or expired: token_pending_gc()).
 *   used/TOKEN      the token was used, by the in/ entry named in the
 *                   file ("by NAME"): a second use is refused; a rerun of
 *                   the same entry after a crash finds its own name and
 *                   goes on (applied once, never twice).
 *   replies/DAY/KEY/NAME  one reply to the member of KEY (member_key())
 *                   on DAY (YYYYMMDD, UTC), caused by in/ entry NAME:
 *                   the daily rate limit counts these.
 *
 * Memory: no allocation except token_pending_list() (freed with
 * token_pending_free()).  Errors: -1, errno and a reason in err.
 */
#ifndef MMQ_TOKEN_H
#define MMQ_TOKEN_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "member.h"

#define TOKEN_LEN 41
#define TOKEN_SECRET_LEN 32
#define TOKEN_SUBSCRIBE 's'
#define TOKEN_UNSUBSCRIBE 'u'
#define TOKEN_APPROVE 'a'
/* a post held for moderation (the "address" is its in/ entry name) */
#define TOKEN_HOLD_APPROVE 'p'
#define TOKEN_HOLD_REJECT 'r'
#define TOKEN_HOLD_DISCARD 'd'
#define TOKEN_IS_HOLD(a) ((a) == 'p' || (a) == 'r' || (a) == 'd')

struct token_key {
    unsigned char k[TOKEN_SECRET_LEN];
};

/* Create SPOOL/secret unless it exists (O_EXCL, mode 0640, group gid when
 * not -1).  0 made, 1 there already, -1 error. */
int token_secret_create(const char *spool, uid_t uid, gid_t gid, char *err,
                        size_t errlen);
/* Read SPOOL/secret.  0 or -1. */
int token_secret_load(const char *spool, struct token_key *key, char *err,
                      size_t errlen);

/* The token for (list, address, action, expiry) into out[TOKEN_LEN + 1]. */
void token_make(const struct token_key *key, const char *list,
                const char *address, char action, int64_t expiry, char *out);

enum token_verdict {
    TOKEN_OK,
    TOKEN_MALFORMED, /* not the shape of a token */
    TOKEN_FORGED,    /* the MAC does not match (or unknown address) */
    TOKEN_EXPIRED
};

/* Shape only: action and expiry of tok (any case).  0, or -1 malformed. */
int token_parse(const char *tok, char *action, int64_t *expiry);
/* Check tok for address at time now (constant-time MAC compare). */
enum token_verdict token_check(const struct token_key *key, const char *list,
                               const char *address, const char *tok,
                               int64_t now);
const char *token_verdict_text(enum token_verdict v);

/* Record a pending request (pending/TOKEN).  0 made, 1 existed, -1. */
int token_pending_add(struct member_store *ms, const char *tok,
                      const char *address, const char *requester, char *err,
                      size_t errlen);
/* Read pending/TOKEN: 0 (address filled), 1 none, -1 error. */
int token_pending_get(struct member_store *ms, const char *tok, char *address,
                      size_t addrlen, char *err, size_t errlen);
int token_pending_remove(struct member_store *ms, const char *tok);

struct token_pending {
    char token[TOKEN_LEN + 1];
    char address[MEMBER_ADDR_MAX];
    char action;
    int64_t expiry;
};
/* Every pending request not expired at now (expired ones are removed),
 * sorted by token.  0 or -1. */
int token_pending_list(struct member_store *ms, int64_t now,
                       struct token_pending **out, size_t *n, char *err,
                       size_t errlen);
void token_pending_free(struct token_pending *v);

/*
 * Use tok (for address) once, for in/ entry (or mmqctl run) by: link
 * used/TOKEN.  0: this is its first use (or a rerun of by's own use);
 * 1: used before by another; -1: error.
 */
int token_use(struct member_store *ms, const char *tok, const char *by,
              const char *address, char *err, size_t errlen);
/* Who used tok, for which address: 0 (filled), 1 not used, -1 error. */
int token_used_get(struct member_store *ms, const char *tok, char *by,
                   size_t bylen, char *address, size_t addrlen);

/*
 * May in/ entry by (a queue entry name: they sort by arrival) send one
 * more reply to address on the day of now?  Its mark is made (kept on a
 * rerun), then the marks of the day are counted: allowed when at most max
 * marks sort at or before ours, so that nodes racing for the last reply
 * agree on who has it.  1 allowed, 0 over the limit, -1 error.
 */
int token_rate_take(struct member_store *ms, const char *address,
                    const char *by, int64_t now, int max, char *err,
                    size_t errlen);

#endif
