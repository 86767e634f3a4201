/*
 * runner - the skeleton of a queue runner daemon; see runner.h.
 */
#include "autoconf.h"

#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include "log.h"
#include "runner.h"

static void lock_and_recover(struct runner *r)
{
    struct recover_stats st = {0, 0, 0};
    char err[QUEUE_ERR_MAX];

    if (spool_lock_slices(r->sp, r->stage, &r->set, err, sizeof(err)) != 0)
        log_fatal(EX_TEMPFAIL, "%s", err);
    if (queue_recover(r->sp, r->queue, &r->set, &st, err, sizeof(err)) != 0 ||
        (r->also &&
         queue_recover(r->sp, r->also, &r->set, &st, err, sizeof(err)) != 0) ||
        spool_clean_tmp(r->sp, r->cfg->tmp_max_age, &st, err, sizeof(err)) != 0)
        log_fatal(EX_TEMPFAIL, "recovery: %s", err);
    if (st.restored || st.to_bad || st.tmp_removed)
        log_info("recovery: %u entries restored, %u moved to bad/, %u "
                 "temporary files removed",
                 st.restored, st.to_bad, st.tmp_removed);
}

void runner_start(struct runner *r, struct spool *sp,
                  const struct mmq_config *cfg, const char *stage,
                  const char *queue, const char *also, struct slice_set *set)
{
    struct slice_set own = {0, NULL}, standby = {0, NULL};
    char err[QUEUE_ERR_MAX];

    memset(r, 0, sizeof(*r));
    r->sp = sp;
    r->cfg = cfg;
    r->stage = stage;
    r->queue = queue;
    r->also = also;
    r->set = *set;
    memset(set, 0, sizeof(*set));
    if (!(r->later = calloc(RUNNER_RETRY_MAX, sizeof(*r->later))))
        log_fatal(EX_OSERR, "out of memory");
    if (cfg->nnodes > 0) {
        /* -s selects among our own slices (locked and recovered now) and
         * the standby ones (taken over when their owner is gone) */
        if (lease_split(cfg, stage, &r->set, &own, &standby, err, sizeof(err)))
            log_fatal(EX_CONFIG, "%s", err);
        slice_set_free(&r->set);
        r->set = own;
        r->cluster = 1;
    }
    lock_and_recover(r);
    if (r->cluster) {
        if (lease_open(&r->lease, sp, stage, &r->set, &standby, err,
                       sizeof(err)))
            log_fatal(EX_TEMPFAIL, "%s", err);
        for (unsigned i = 0; i < standby.n; i++)
            r->set.on[i] |= standby.on[i]; /* watched, for a takeover */
        slice_set_free(&standby);
    }
    r->ifd = queue_watch(sp, queue, &r->set);
}

/* Renew, take over, hand back; restore what the previous holder of a
 * slice we just took left claimed.  Returns the number of slices gained. */
static int lease_round(struct runner *r)
{
    struct slice_set gained = {0, NULL};
    struct recover_stats st = {0, 0, 0};
    char err[QUEUE_ERR_MAX];
    int n = lease_tick(&r->lease, NULL, NULL, &gained, err, sizeof(err));

    if (r->lease.fatal) { /* another host uses our node name */
        snprintf(err, sizeof(err), "%s", r->lease.fatal_err);
        slice_set_free(&gained);
        lease_close(&r->lease);
        log_fatal(EX_CONFIG, "%s", err);
    }
    if (n < 0)
        log_error("%s", err);
    if (n > 0 && (queue_recover_foreign(r->sp, r->queue, &gained, &st, err,
                                        sizeof(err)) != 0 ||
                  (r->also && queue_recover_foreign(r->sp, r->also, &gained,
                                                    &st, err, sizeof(err)))))
        log_error("recovery after takeover: %s", err);
    if (st.restored || st.to_bad)
        log_info("takeover: %u entries restored, %u moved to bad/", st.restored,
                 st.to_bad);
    slice_set_free(&gained);
    return n > 0 ? n : 0;
}

/* Left alone until its time comes (then forgotten)? */
static int is_later(struct runner *r, const char *name, time_t now)
{
    for (size_t i = 0; i < r->nlater; i++)
        if (strcmp(r->later[i].name, name) == 0) {
            if (r->later[i].until > now)
                return 1;
            r->later[i] = r->later[--r->nlater]; /* its time has come */
            return 0;
        }
    return 0;
}

static void try_later(struct runner *r, const char *name, time_t now)
{
    if (r->nlater == RUNNER_RETRY_MAX)
        return; /* then it is simply retried at the next scan */
    snprintf(r->later[r->nlater].name, sizeof(r->later[0].name), "%s", name);
    r->later[r->nlater++].until = now + RUNNER_RETRY_AFTER;
}

size_t runner_scan(struct runner *r, int (*fn)(void *arg, const char *name),
                   void *arg, volatile sig_atomic_t *stop)
{
    struct qlist l = {NULL, 0, 0};
    struct slice_set active = {0, NULL};
    const struct slice_set *set = &r->set;
    char err[QUEUE_ERR_MAX];
    time_t now = time(NULL);
    size_t i, n = 0;

    if (r->cluster) {
        if (lease_now() >= r->lease.next_tick)
            lease_round(r);
        if (lease_active(&r->lease, &active) != 0)
            log_fatal(EX_OSERR, "out of memory");
        set = &active;
    } else {
        spool_watch_overlap(r->sp, r->stage, &r->set, &r->next_overlap,
                            &r->overlapping);
    }
    if (queue_list(r->sp, r->queue, set, QL_READY, 1000 + r->nlater, &l, err,
                   sizeof(err)) != 0) {
        log_error("%s", err);
        slice_set_free(&active);
        return 0;
    }
    for (i = 0; i < l.n && !*stop; i++) {
        if (is_later(r, l.v[i].name, now))
            continue;
        if (r->cluster) {
            if (lease_now() >= r->lease.next_tick)
                lease_round(r); /* a long scan must keep renewing */
            if (!lease_key_ok(&r->lease, l.v[i].key))
                continue; /* lost or handed back meanwhile */
        }
        if (fn(arg, l.v[i].name))
            try_later(r, l.v[i].name, now);
        n++;
    }
    qlist_free(&l);
    slice_set_free(&active);
    return n;
}

void runner_wait(struct runner *r, volatile sig_atomic_t *stop,
                 volatile sig_atomic_t *hup)
{
    struct pollfd p = {r->ifd, POLLIN, 0};

    for (double until = lease_now() + r->cfg->scan_interval;
         !*stop && !(hup && *hup) && lease_now() < until;) {
        int ms = 1000;

        if (r->cluster) {
            /* leases are renewed on time, and a slice taken over is
             * scanned at once */
            if (lease_now() >= r->lease.next_tick && lease_round(r) > 0)
                break;
            ms = (int)((r->lease.next_tick - lease_now()) * 1000) + 1;
            ms = ms < 1 ? 1 : ms > 1000 ? 1000 : ms;
        }
        if (poll(&p, r->ifd >= 0 ? 1 : 0, ms) > 0) {
            char buf[4096];
            while (read(r->ifd, buf, sizeof(buf)) > 0)
                ;
            break;
        }
    }
}

void runner_stop(struct runner *r)
{
    if (r->cluster)
        lease_close(&r->lease);
    if (r->ifd >= 0)
        close(r->ifd);
    slice_set_free(&r->set);
    free(r->later);
    memset(r, 0, sizeof(*r));
    r->ifd = -1;
}
