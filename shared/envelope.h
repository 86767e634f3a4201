/*
 * envelope - the text header at the start of every spool entry.
 *
 * An entry is an envelope followed by the message exactly as received.
 * The envelope is a few lines "key SP value LF", ended by an empty line:
 *
 *     MMQ 1                      magic and format version (first line)
 *     list announce
 *     role post
 *     sender alice@example.org   (empty value: the null sender)
 *     arrival 1732312345.123456
 *     attempts 0
 *     next-attempt 0
 *     recoveries 0
 *     last-error 4.4.1%20connection%20refused   (optional)
 *     mbox-from From%20alice@example.org%20Sat%20Nov...  (optional)
 *     mta-queue-id 4XyZ1k2Lmnz9 (optional) the MTA's queue ID (mmq-filter -q)
 *     verp 1                     (optional) per-recipient bounce sender
 *     member-header X-Member     (optional) per-member header field, see
 *                                deliver/member.h
 *     approved 1                 (optional) released by the postmaster
 *     expanded 12                (optional) list stage: 12 out/ entries staged
 *     held 3600                  (optional) seconds spent in hold/ so far:
 *                                the lifetime clock runs from arrival + held
 *     size 00000000000000001234  message length in bytes, 20 digits
 *     rcpt bob@example.org       (any number, in order)
 *
 * Values are percent-encoded: every byte outside 0x21..0x7E, and '%'
 * itself, is written as %XX, so a value never holds a space, a line end or
 * a NUL, whatever the MTA or the network handed us.  Lines with keys this
 * version does not know are kept verbatim and written back unchanged
 * (room to grow); a version number above ours is refused.  mmq-spool(5)
 * is the full specification.
 *
 * Parsing treats its input as hostile: bounded line length, bounded total
 * size, strict numbers, no duplicate single-valued keys, no NUL in values.
 *
 * Memory: every pointer in struct envelope is owned by it; envelope_free()
 * releases all.  Setters copy their arguments.
 */
#ifndef MMQ_ENVELOPE_H
#define MMQ_ENVELOPE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "buf.h"

#define ENVELOPE_VERSION 1
#define ENVELOPE_MAX_BYTES (64u << 20) /* whole envelope */
#define ENVELOPE_MAX_LINE (1u << 20)   /* one line, encoded */
#define ENVELOPE_SIZE_DIGITS 20

/* join, leave, confirm: LIST-join@ (or -subscribe), LIST-leave@ (or
 * -unsubscribe), LIST-confirm+TOKEN@ (email commands, process/command.c) */
enum mmq_role {
    ROLE_POST,
    ROLE_BOUNCES,
    ROLE_OWNER,
    ROLE_REQUEST,
    ROLE_JOIN,
    ROLE_LEAVE,
    ROLE_CONFIRM
};

struct envelope_rcpt {
    char *addr;
    char *extra; /* verbatim text after the address (future use), or NULL */
};

struct envelope {
    int version;
    char *list;
    enum mmq_role role;
    char *sender; /* "" for the null sender, never NULL once parsed */
    int64_t arrival_sec;
    int32_t arrival_usec;
    int attempts;
    int64_t next_attempt; /* unix time; 0 means "now" */
    int recoveries;
    int verp;         /* 1: send each recipient with its own VERP sender */
    int approved;     /* 1: released from hold/, skip the posting policy */
    int expanded;     /* list stage: this many out/ entries are staged */
    int64_t held;     /* seconds spent in hold/ (not counted in lifetime) */
    char *last_error; /* NULL: none */
    char *mbox_from;  /* the MTA's leading "From " line, no line end */
    char *mta_queue_id; /* the MTA's queue ID of the message, or NULL */
    char *member_header; /* per-member header field name, or NULL */
    int64_t size;     /* message bytes after the envelope */
    struct envelope_rcpt *rcpt;
    size_t nrcpt;
    size_t rcpt_cap;
    struct buf extra; /* unknown lines, verbatim, each ending in LF */
};

const char *role_name(enum mmq_role role);
int role_parse(const char *s, enum mmq_role *role);

void envelope_init(struct envelope *env);
/* Start of the lifetime clock: arrival plus the time spent in hold/. */
int64_t envelope_life_start(const struct envelope *env);
void envelope_free(struct envelope *env);

/* Replace *field by a copy of value (NULL clears).  -1: out of memory. */
int envelope_set(char **field, const char *value);
int envelope_add_rcpt(struct envelope *env, const char *addr,
                      const char *extra);
/* Drop recipient i, keeping the order of the others. */
void envelope_remove_rcpt(struct envelope *env, size_t i);

/* Append value to out, percent-encoded.  -1: out of memory. */
int envelope_encode(struct buf *out, const char *value);

/*
 * Serialise env (with its size field) onto out, ending with the empty line.
 * *size_off, if not NULL, receives the offset in out of the 20 size digits,
 * so that a writer that learns the size later can patch it in place.
 * -1: out of memory or a field that cannot be written (NULL list).
 */
int envelope_format(const struct envelope *env, struct buf *out,
                    size_t *size_off);

/*
 * Parse an envelope from data[0..len).  Returns 0 and sets *consumed to the
 * offset of the message; 1 when data ends before the empty line (read more
 * and call again); -1 when it is malformed, with a reason in err.  On
 * anything but 0 env is left empty (envelope_init state).
 */
int envelope_parse(const char *data, size_t len, struct envelope *env,
                   size_t *consumed, char *err, size_t errlen);

/*
 * Read and parse the envelope at the start of fd (using pread, the file
 * offset is not used) and check that the file holds exactly env->size
 * message bytes after it.  0: ok, *body_off is the message's offset.
 * -1: malformed or truncated (errno EINVAL) or an I/O error (errno set),
 * with a reason in err.
 */
int envelope_read(int fd, struct envelope *env, off_t *body_off, char *err,
                  size_t errlen);

#endif
