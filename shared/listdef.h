/*
 * listdef - a mailing list's definition and its members.
 *
 * A list is defined by LISTS_DIR/NAME.conf (libconfig syntax, see
 * mmq.conf(5), section LISTS); its members are a text file, one address
 * per line, '#' comments and empty lines ignored, re-read whenever it
 * changes.  Lines that are not a plausible address (no '@', blanks inside,
 * control characters, too long) are skipped with a warning naming the
 * file and line: one bad line never stops a list.
 *
 * Memory: struct listdef and struct members own all their strings;
 * listdef_free() and members_free() release them.  Errors come back as
 * -1 with "file:line: reason" in err.
 */
#ifndef MMQ_LISTDEF_H
#define MMQ_LISTDEF_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "config.h"
#include "list.h"
#include "member.h"

enum list_action { ACT_HOLD, ACT_REJECT, ACT_DISCARD };
enum list_posters { POSTERS_MEMBERS, POSTERS_ANYONE, POSTERS_LIST };
enum list_reply_to { REPLYTO_NONE, REPLYTO_LIST, REPLYTO_ADDRESS };
/* dmarc_mitigate_action (Mailman 3's names; see mmq-process(8), DMARC) */
enum list_dmarc_action {
    DMARC_MUNGE_FROM,
    DMARC_WRAP_MESSAGE,
    DMARC_REJECT,
    DMARC_DISCARD,
    DMARC_NO_MITIGATION
};
/* subscribe_policy, unsubscribe_policy (email commands) */
enum list_sub_policy { SUB_CONFIRM, SUB_APPROVE, SUB_OPEN, SUB_CLOSED };

struct listdef {
    char name[LIST_NAME_MAX + 1];
    char *domain;
    char *description;
    char **owners;
    size_t nowners;
    char *members_path;
    char *subject_prefix; /* NULL: none */
    enum list_reply_to reply_to;
    char *reply_to_address;
    int64_t max_message_size; /* 0: the global max_message_size */
    enum list_posters posters;
    char **allowed; /* extra (or, for "list", the only) posters */
    size_t nallowed;
    enum list_action others;   /* poster not allowed */
    enum list_action oversize; /* message too large */
    int archive;
    int verp;
    int per_entry; /* recipients per out/ entry */

    /* DMARC mitigation (Mailman's settings, see mmq-process(8)) */
    enum list_dmarc_action dmarc_action; /* default munge_from */
    int dmarc_unconditionally;           /* every post, no lookup */
    int dmarc_quarantine;     /* p=quarantine triggers too (default yes) */
    int dmarc_none;           /* p=none triggers too (default no) */
    char *dmarc_notice;       /* reason in the rejection notice, or NULL */
    char *dmarc_wrapped_text; /* text/plain part of wrap_message, or NULL */
    struct member_policy bounce; /* the bounce_* settings */
    enum list_sub_policy subscribe_policy;   /* SUB_CONFIRM */
    enum list_sub_policy unsubscribe_policy; /* SUB_CONFIRM or SUB_OPEN */
    int64_t pending_request_life;            /* seconds (3 days) */
    int max_autoresponses_per_day;           /* 10 */
    char *help_file;                         /* NULL: LISTS_DIR/NAME.help */
    int send_welcome_message;                /* true */
    char *welcome_file;                      /* NULL: LISTS_DIR/NAME.welcome */
    int send_goodbye_message;                /* true */
    char *goodbye_file;                      /* NULL: LISTS_DIR/NAME.goodbye */
};

int listdef_load(const struct mmq_config *cfg, const char *name,
                 struct listdef *ld, char *err, size_t errlen);
void listdef_free(struct listdef *ld);
const char *list_action_name(enum list_action a);
const char *list_dmarc_action_name(enum list_dmarc_action a);

/*
 * The definitions of the lists a long-running program uses, each parsed
 * again only when its file changed (device, inode, size, mtime or ctime):
 * that spares the work at every post, and libconfig leaks memory after
 * some syntax errors, so a list file in error that is retried every few
 * seconds would make the daemon grow.  An error is remembered as well and
 * returned (the same text) until the file changes.  A change in a file
 * the list file @includes is not noticed until the list file itself
 * changes (touch it).
 */
struct listdef_cached {
    char name[LIST_NAME_MAX + 1];
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtime, ctime;
    int rc;            /* 0: ld is loaded; -1: err */
    struct listdef ld; /* when rc == 0 */
    char err[512];
};

struct listdef_cache {
    struct listdef_cached *v;
    size_t n;
};

/*
 * List name's definition from the cache, (re)loaded if its file changed.
 * The result is borrowed from c: valid until the next listdef_get() of
 * the same list or listdef_cache_free().  NULL with err on error.
 */
const struct listdef *listdef_get(struct listdef_cache *c,
                                  const struct mmq_config *cfg,
                                  const char *name, char *err, size_t errlen);
void listdef_cache_free(struct listdef_cache *c);

struct members {
    char *path;
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtime;
    char **addr; /* in file order, duplicates removed */
    size_t n;
    char **sorted; /* lower-cased copies, sorted, for lookups */
    unsigned junk; /* lines skipped */
    unsigned utf8; /* addresses skipped: non-ASCII, they need SMTPUTF8 */
};

/*
 * (Re)load path into m unless it is unchanged since the last load.
 * Lines that are not an address are skipped with a warning (file:line);
 * so are addresses with non-ASCII bytes (they need SMTPUTF8, which
 * mmq-deliver's libESMTP cannot send): never delivered, never a member.
 * Returns 0 (loaded or unchanged), -1 on error (m keeps the old list).
 */
int members_load(struct members *m, const char *path, char *err, size_t errlen);
int members_contains(const struct members *m, const char *addr);
void members_free(struct members *m);

/* 1 if addr looks like an address we can deliver to. */
int members_plausible(const char *addr);

#endif
