/*
 * member - the durable per-member state of a list (bounce score, enabled or
 * disabled, warnings sent), shared by mmq-bounce (which changes it),
 * mmq-process (which skips disabled members) and mmqctl (which shows and
 * edits it).  One store, kept in the spool so that every node of a cluster
 * sees the same state.
 *
 * The members file and the state.  The members file (listdef.h) stays the
 * admin's plain text file and the only list of who is a member: state is
 * kept beside it, never in it, so the admin may edit the file while the
 * daemons run.  They combine by address (compared in lower case):
 *   - an address in the file with no state is an enabled member, score 0;
 *   - an address removed from the file is gone: its state no longer counts
 *     (mmq-process never sees it, mmq-bounce ignores its bounces) and is
 *     dropped when the member is next looked at, or by mmq-bounce's hourly
 *     full sweep (member_scan());
 *   - the only writes to the file are removals (members_file_remove():
 *     mmq-bounce, mmqctl, unsubscriptions by mail) and additions
 *     (members_file_add(): subscriptions by mail, mmqctl members add):
 *     the file is rewritten whole into a
 *     temporary file (FILE.mmq-tmp) and renamed over, only if it did not
 *     change since it was read (otherwise read again); comments and order
 *     are kept.  Writers hold flock(2) on the file meanwhile (enforced
 *     across GlusterFS mounts), so two writers never both rename and lose
 *     the first one's change; a lock not had within ~10 s is an error
 *     (EAGAIN), never an endless wait.  An
 *     editor that saves an older copy at the same instant can bring the
 *     address back: it is then a member again, with fresh state.
 *
 * Layout, under SPOOL/members/LIST/:
 *   BBB/KEY.TTTTTTTTTT.K.ID   one event: KEY = 16 hex digits of the SHA-1
 *                             of the address in lower case, BBB its first
 *                             3 digits (4096 buckets), T the event's time
 *                             (unix seconds, 10 digits), K its kind, ID
 *                             what makes it unique.  The file holds
 *                             "address A", "status S", "diag D" lines.
 *   disabled/KEY              the index: one file per member whose state
 *                             is disabled or removed, holding its address.
 *   tmp/                      files being written (names unique to node
 *                             and process).
 *
 * Events are immutable and appear only by link(2) of a complete, fsynced
 * temporary file to their final name, so a reader never sees half of one
 * and of two writers of the same name exactly one succeeds (EEXIST for the
 * other) on a local file system as on GlusterFS and NFS, without a lock
 * between nodes.  A member's state is the fold of its event names (sorted
 * by time, bounces before other events of the same second, then name) - no file needs to be opened for it, except the
 * newest ones for the address and the last status.  Kinds:
 *   F  a failed (permanent) bounce      ID = QUEUEHASH-N: the bounces/
 *   T  a delayed (temporary) bounce        entry's digest and the index of
 *   P  a policy refusal                    the recipient in it; T = the
 *                                          entry's arrival time
 *   D  disabled by bounces              ID = eN (N: admin enables before)
 *   W  disabled-warning K sent          ID = eN.wK
 *   Q  probe K sent                     ID = eN.pK
 *   R  removed by bounces               ID = eN
 *   X  disabled by the admin            ID = unique (time, node, pid)
 *   E  enabled by the admin             ID = unique; score and warnings
 *                                          start again from 0
 *   q  the notices of action event A were queued   ID = A's K and ID
 * The fold (member_fold_names()) is a pure function of the names, so two
 * nodes that see the same files compute the same state; the deterministic
 * IDs make a decision taken by two nodes at once the same file, created
 * once.
 *
 * Crash windows (kill -9 at any instant):
 *   - a bounce: its event name is derived from the bounces/ entry, which
 *     stays claimed until every event is made; a rerun after a crash gets
 *     EEXIST for the events already made (not applied twice) and makes the
 *     rest (none lost).  A duplicate would not change the score anyway:
 *     it counts days, and a rerun has the same time.
 *   - an action (D, W, Q, R): the action event is made first (link: one
 *     winner), then its notices are queued into out/ under names derived
 *     from the event (a rerun replaces a notice still queued), then the q
 *     marker.  A crash between queueing and the marker queues the notices
 *     again when the member is next looked at: a notice delivered in that
 *     window is sent twice (at most once more per crash); a state change
 *     is never applied twice.  Removal: R, notice, q, then the members
 *     file, then member_forget(); an R with the address still in the file
 *     is finished by the next look (the sweep of disabled members).
 *   - the index: written after the event that changes it (link or
 *     unlink), and compared with the fold again afterwards, so a race
 *     between two writers converges; a crash between an event and the
 *     index is repaired when the member is next looked at, and
 *     member_rebuild() redoes the whole index from the events.  The index
 *     is a cache: deleting it loses nothing.
 *
 * Memory: structures own their strings and are freed by the matching
 * _free/_close; err gets a reason on -1 (errno set).  Nothing here exits.
 */
#ifndef MMQ_MEMBER_H
#define MMQ_MEMBER_H

#include <stddef.h>
#include <stdint.h>

#include "list.h"

#define MEMBER_KEY_LEN 16
#define MEMBER_ID_MAX 96
#define MEMBER_ADDR_MAX 256
#define MEMBER_DIAG_MAX 256

/* The list's bounce settings (mmq.conf(5), LISTS), Mailman's defaults. */
struct member_policy {
    int processing;        /* bounce_processing (true) */
    double threshold;      /* bounce_score_threshold (5), >= 1 */
    int64_t stale_after;   /* bounce_info_stale_after, seconds (7 days) */
    int warnings;          /* bounce_you_are_disabled_warnings (3) */
    int64_t interval;      /* ..._warnings_interval, seconds (7 days) */
    int probe;             /* bounce_probe (false) */
    int notify_disable;    /* bounce_notify_owner_on_disable (true) */
    int notify_removal;    /* bounce_notify_owner_on_removal (true) */
    int forward_unknown; /* bounce_unrecognized_goes_to_list_owner (true) */
};

void member_policy_default(struct member_policy *pol);

enum member_state { MEMBER_ENABLED, MEMBER_DISABLED, MEMBER_REMOVED };

const char *member_state_name(enum member_state s); /* "enabled", ... */

/* An action event whose notices may not have been queued yet. */
struct member_pending {
    char kind;
    char id[MEMBER_ID_MAX];
    int64_t when;
};

struct member_info {
    char key[MEMBER_KEY_LEN + 1];
    char address[MEMBER_ADDR_MAX]; /* "" if no event file could be read */
    enum member_state state;
    char disabled_by;       /* 'D' bounces, 'X' the admin, 0 enabled */
    int64_t disabled_since; /* 0 when enabled */
    int score;              /* days with a failed bounce, 0 when stale */
    int64_t last_bounce;    /* last failed bounce that counts, 0 none */
    int64_t last_event;     /* last bounce of any kind, 0 none */
    char last_kind;         /* its kind: 'F', 'T' or 'P' */
    char last_status[16];   /* its status, "" if unknown */
    char reason[MEMBER_DIAG_MAX]; /* its diagnostic, or "" */
    unsigned failed, delayed, policy; /* bounce events of each kind */
    unsigned epoch;         /* admin enables so far: the N of "eN" */
    int warnings;           /* warnings sent in this epoch */
    int64_t last_warning;
    int probes;             /* probes sent in this epoch */
    int64_t last_probe;
    int probe_bounced;      /* a probe of this epoch bounced */
    int64_t newest;         /* time of the newest event of any kind */
    struct member_pending pending[8]; /* actions without a q marker */
    size_t npending;
};

/*
 * Fold the event names of one member (any order; not modified) into mi at
 * time now under pol.  Names that are not events of key are ignored.
 * Fills everything but address, last_status and reason.
 */
void member_fold_names(const char *key, char **names, size_t n,
                       const struct member_policy *pol, int64_t now,
                       struct member_info *mi);

/* What should happen to the member next (member_next()). */
enum member_step {
    STEP_NONE,
    STEP_DISABLE, /* make D eN: owners told, warning 1 to the member */
    STEP_PROBE,   /* make Q eN.pK and send a probe */
    STEP_WARN,    /* make W eN.wK (K = warnings + 1) */
    STEP_REMOVE   /* make R eN, tell the owners, remove from the file */
};

enum member_step member_next(const struct member_info *mi,
                             const struct member_policy *pol, int64_t now);

/* ---------------------------------------------------------- the store */

struct member_store {
    int fd; /* SPOOL/members/LIST */
    char list[LIST_NAME_MAX + 1];
    char token[128]; /* ".NODE.PID.COUNT" part of temporary names */
    unsigned seq;
};

/* The member's key (MEMBER_KEY_LEN hex digits + NUL). */
void member_key(const char *address, char *key);

/*
 * Open (creating it with create) the state of list in the spool at
 * spool_path; node names this node in temporary files.  0; 1 when it does
 * not exist and !create; -1 error.
 */
int member_store_open(struct member_store *ms, const char *spool_path,
                      const char *list, const char *node, int create,
                      char *err, size_t errlen);
void member_store_close(struct member_store *ms);

/*
 * The store's one way to make a file (member events, the disabled index,
 * the command state of token.c): text into tmp/ (fsynced, named by
 * ms->token, which the clean-up knows), link(2)ed to rel, below dir
 * (created, with its parents, when missing; NULL: the store itself), and
 * dir fsynced, so that a change is durable before what it permits is
 * done.  Of several writers of one rel on any node exactly one makes it.
 * 0 made, 1 existed already, -1 error (err).  The temporary file is
 * removed either way.
 */
int member_store_publish(struct member_store *ms, const char *dir,
                         const char *rel, const char *text, size_t len,
                         char *err, size_t errlen);

/*
 * Make event (kind, when, id) of address, with status and diag (NULL: none)
 * in the file.  0: made; 1: it existed already (applied before); -1 error.
 */
int member_record(struct member_store *ms, const char *address, char kind,
                  int64_t when, const char *id, const char *status,
                  const char *diag, char *err, size_t errlen);

/* Read the member's events and fold them (member_fold_names()), then read
 * its newest files for address, last_status and reason. */
int member_load(struct member_store *ms, const char *address,
                const struct member_policy *pol, int64_t now,
                struct member_info *mi, char *err, size_t errlen);

/* Make the index agree with mi (0, or -1). */
int member_index_sync(struct member_store *ms, const struct member_info *mi,
                      char *err, size_t errlen);

/* Drop every event and the index entry of address (state gone). */
int member_forget(struct member_store *ms, const char *address, char *err,
                  size_t errlen);

/*
 * Call fn for every member with state (folded; address read from its
 * newest event), bucket by bucket.  fn returns 0 to go on.  The disabled
 * index is not used: this is what member_rebuild() and mmqctl rely on.
 */
int member_scan(struct member_store *ms, const struct member_policy *pol,
                int64_t now,
                int (*fn)(void *arg, const struct member_info *mi),
                void *arg, char *err, size_t errlen);

/* The addresses in the index (disabled or removed members), for the
 * sweep: *out is a malloc()ed array of malloc()ed strings. */
int member_index_list(struct member_store *ms, char ***out, size_t *n,
                      char *err, size_t errlen);
void member_strings_free(char **v, size_t n);

/* ------------------------------------------- the set mmq-process skips */

struct member_disabled {
    char (*keys)[MEMBER_KEY_LEN + 1]; /* sorted */
    size_t n;
};

/*
 * Read the index of list (SPOOL/members/LIST/disabled): one readdir, no
 * event read.  A list without state has an empty set.  0 or -1.
 */
int member_disabled_load(struct member_disabled *d, const char *spool_path,
                         const char *list, char *err, size_t errlen);
/* 1 if address is disabled or removed (a hash and a binary search). */
int member_disabled_has(const struct member_disabled *d, const char *address);
void member_disabled_free(struct member_disabled *d);

/* ------------------------------------------------ the members file */

/*
 * Remove the addresses (any case) from the members file at path, keeping
 * every other line: written whole to a temporary file beside it, fsynced
 * and renamed over, only if the file is unchanged since it was read
 * (otherwise read again, up to 5 times).  *removed counts the lines
 * dropped.  0 or -1.
 */
int members_file_remove(const char *path, char **addrs, size_t n,
                        size_t *removed, char *err, size_t errlen);

/*
 * Append the addresses (members_plausible(), else EINVAL and nothing
 * written) that are not in the file yet (any case), one per line, with
 * the same rule: rewritten whole and renamed over only if unchanged since
 * it was read.  *added counts the lines added (0: all were members: the
 * file is not touched, so a rerun after a crash adds nothing twice).
 * 0 or -1.  Used by email subscriptions and "mmqctl members LIST add".
 */
int members_file_add(const char *path, char **addrs, size_t n, size_t *added,
                     char *err, size_t errlen);

#endif
