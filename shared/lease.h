/*
 * lease - which agent runs a slice of a stage when several nodes share one
 * spool (doc/cluster.md tells the administrator's side).
 *
 * No global lock, no fcntl or flock between nodes: only link(2), rename(2)
 * to a name nobody else writes, and reading files.  In SPOOL/lease/:
 *
 *   STAGE.SLICE.GGGGGGGGGG   generation G of the lease on (STAGE, SLICE):
 *                            "mmq-lease 1", "holder NODE PID START",
 *                            "state held|free", "wall T".  Written whole in a
 *                            temporary file and link(2)ed to its name: of any
 *                            number of agents making generation G exactly one
 *                            succeeds, the others get EEXIST (on ext4 as on
 *                            NFS and GlusterFS).  The highest generation is
 *                            the lease; generations are never removed, so a
 *                            stale directory listing can only show too few.
 *   hb.STAGE.NODE.PID.START  one agent's heartbeat, "seq N", "wall T",
 *                            "host BOOT-ID" (the kernel's boot id of its
 *                            host), "map DIGEST" (lease_map_digest() of its
 *                            configuration), replaced by rename every
 *                            renewal (the agent is the only writer of
 *                            that name).
 *   want.STAGE.SLICE         the slice's configured owner asks for it back.
 *
 * Time: an agent never compares its clock with another node's.  The holder
 * counts lease_time on its own monotonic clock from the start of its last
 * successful renewal; an observer counts on its own monotonic clock how
 * long the holder's heartbeat has not changed.  Offsets between the nodes'
 * clocks therefore do not matter at all (wall times in the files are for
 * people).  What lease_margin must cover: how late a change becomes
 * visible on another node (file system caches) plus how long one renewal
 * round may take; a round slower than half the margin does not renew.
 *
 * The promise: once an agent has taken generation G+1, the holder of G has
 * stopped starting work on the slice, because
 *   - a holder renews only while still valid, and a renewal is valid for
 *     lease_time from the instant the round started;
 *   - a standby takes over only after the heartbeat has looked unchanged
 *     for takeover_after >= lease_time + lease_margin;
 *   - a holder that sees G+1 stops at once.
 * Work already started (an SMTP transaction in flight, one post being
 * expanded) may finish after that: that is the bounded duplicate the
 * design allows.  Callers check lease_key_ok() before each unit of work.
 *
 * Hand-back: the configured owner writes want.STAGE.SLICE; a holder that
 * sees it while the owner's heartbeat moves stops dispatching on that
 * slice, waits until nothing of it is in flight, and releases the lease
 * (a generation with state free), which the owner takes at once.  A clean
 * exit releases every lease the same way.
 *
 * Misconfiguration (lease_tick() reads the other agents' heartbeats): an
 * agent whose heartbeat names our node but another host, and whose seq
 * moves, means two hosts were given one node name (cloned hosts): each
 * would recover the other's claims as its own dead ones.  From that round
 * on we start no work (lease_key_ok() says no) and hold nothing new, and
 * two rounds later, so that the other host's agent sees our heartbeat
 * move too and refuses as well, lease_tick() sets fatal (with the reason
 * in fatal_err): the caller must refuse to run.  A live agent whose map differs
 * from ours means the nodes lists of the nodes' mmq.conf disagree: logged as an
 * error when seen and every hour while it lasts; "mmqctl check" reports both
 * (lease_peers()).
 *
 * Memory: lease_open() allocates what lease_close() frees; the validity
 * table is a MAP_SHARED page so that forked workers see it change.
 * Errors: -1 with a reason in err; nothing here calls exit().
 */
#ifndef MMQ_LEASE_H
#define MMQ_LEASE_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "queue.h"
#include "slice.h"

#define LEASE_ROLE_OWN 1
#define LEASE_ROLE_STANDBY 2

struct lease_slice {
    int role;           /* LEASE_ROLE_*, 0: not ours to run */
    uint64_t gen;       /* highest generation seen */
    int mine;           /* we hold gen */
    int handing_back;   /* the owner wants it: no new work */
    double valid_until; /* monotonic seconds, while mine */
    uint64_t obs_gen;   /* what we last saw of someone else's lease */
    long long obs_seq;
    double obs_since;
    int obs_set;
    long long want_seq; /* the wanting owner's heartbeat when first seen */
    char want_hb[200];
    int want_written; /* we (the owner) asked for it back */
    int lock_fd;      /* per-node slice lock for standby slices */
    uint64_t read_gen; /* mine: generation whose file we read as ours, or 0 */
};

struct lease_peer_obs; /* lease.c */

struct lease_set {
    struct spool *sp;
    const struct mmq_config *cfg;
    char stage[16];
    unsigned n;
    struct lease_slice *s; /* n */
    int dfd;               /* SPOOL/lease */
    int takeover_after;
    long long seq;
    char me[160]; /* "NODE PID START" */
    char hb[200]; /* our heartbeat's file name */
    double next_tick;
    double *shared; /* valid_until per slice, MAP_SHARED (workers read) */
    size_t shared_len;
    char host[64];    /* our host's boot id */
    char map[41];     /* lease_map_digest() of our configuration */
    int fatal;        /* another host runs agents under our node name */
    int fatal_rounds; /* rounds since we saw it (see lease_tick()) */
    char fatal_err[512];
    struct lease_peer_obs *peers; /* other agents' heartbeats observed */
    size_t npeers;
};

/* Seconds on the monotonic clock. */
double lease_now(void);

/*
 * The slices of stage an agent of this node leases, given sel, the slices
 * it was started for (-s; "all" by default): own, those of the node's
 * own slices in sel, and standby, those of its standby slices in sel.
 * So one agent without -s covers everything the node may run, and two
 * agents of one node given disjoint -s sets share it out.  0, or -1.
 */
int lease_split(const struct mmq_config *cfg, const char *stage,
                const struct slice_set *sel, struct slice_set *own,
                struct slice_set *standby, char *err, size_t errlen);

/*
 * Start leasing for stage ("process" or "deliver"): own are the slices
 * this agent runs when their lease allows (already locked per node by the
 * caller), standby the other nodes' slices it may take over.  Nothing is
 * acquired until lease_tick().
 */
int lease_open(struct lease_set *ls, struct spool *sp, const char *stage,
               const struct slice_set *own, const struct slice_set *standby,
               char *err, size_t errlen);

/*
 * One round: renew, observe, acquire, hand back.  busy(arg, i) says
 * whether work on slice i is still in flight (NULL: never).  Slices
 * acquired in this round are set in *gained (allocated here, n slices; the
 * caller frees it): their previous holder's claims must be recovered
 * before work starts.  Returns the number of slices gained, or -1.
 */
int lease_tick(struct lease_set *ls, int (*busy)(void *, unsigned), void *arg,
               struct slice_set *gained, char *err, size_t errlen);

/* The slices we may start work on now (a fresh set; caller frees). */
int lease_active(const struct lease_set *ls, struct slice_set *out);

/* May work start on the entry with this key now?  Async-signal-safe and
 * usable in forked workers (reads the shared table). */
int lease_key_ok(const struct lease_set *ls, uint64_t key);

/* Release every lease we hold (state free) and remove our heartbeat. */
void lease_close(struct lease_set *ls);

/* ------------------------------------------------- for mmqctl slices */

struct lease_info {
    uint64_t gen;      /* 0: no lease was ever taken */
    char holder[160];  /* "NODE PID START" or "" */
    char node[64];     /* holder's node */
    int free;          /* state free */
    long long hb_wall; /* holder's last renewal by its own clock, 0 unknown */
};

/* The host identity written in heartbeats: the kernel's boot id (two
 * cloned hosts differ in it even when everything else is copied). */
int lease_host_id(char *out, size_t len);

/* SHA-1 (hex) of the slice map: slices and, per node in name order, the
 * sets of its process, deliver and standby slices (as sets: "0-3" and
 * "0,1,2,3" are one map).  Two nodes agree on the map iff the digests do. */
int lease_map_digest(const struct mmq_config *cfg, char *hex);

/* One agent's heartbeat, as read by lease_peers(). */
struct lease_peer {
    char name[200]; /* hb.STAGE.NODE.PID.START */
    char stage[16];
    char node[64];
    char host[64]; /* "" if the heartbeat has none (older agents) */
    char map[41];  /* "" likewise */
    long long seq, wall;
};

/* The heartbeats of every stage in the lease directory, at most max, into
 * out; returns how many (0 when there is no lease directory), or -1. */
int lease_peers(struct spool *sp, struct lease_peer *out, size_t max, char *err,
                size_t errlen);

/* Read the current lease of every slice of stage without taking part:
 * li has room for sp->cfg->slices entries. */
int lease_info(struct spool *sp, const char *stage, struct lease_info *li,
               char *err, size_t errlen);

#endif
