/*
 * mmq-bounce - the bounce stage: drains bounces/, finds who failed, and
 * keeps each member's bounce state (member.h).
 *
 *     mmq-bounce [-c FILE] [-s SLICES] [-1] [-e] [-v]
 *     mmq-bounce -p FILE...
 *
 * The story: lock our slices of bounces/ (per node), restore what a dead
 * bounce stage of this node left claimed, repair the member state of every
 * list (a full sweep: the disabled index, state of addresses no longer in
 * the members files), then take the entries of our slices oldest first and
 * hand each to bounce_entry() (apply.c: parse, record, disable, warn,
 * probe, remove).  Between scans, at most once a minute, a sweep of the
 * disabled members sends the warnings and removals that come due with
 * time; a full sweep runs every hour.  New entries are noticed through inotify and by a scan every
 * scan_interval seconds.  SIGTERM stops after the entry in hand; SIGHUP
 * re-reads the configuration and reopens the log.  With -1 it exits once
 * its slices of bounces/ are empty, after one sweep.
 *
 * -p parses files and prints what it finds (bparse.h), touching nothing.
 */
#include "autoconf.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "bounce.h"
#include "config.h"
#include "lease.h"
#include "log.h"
#include "queue.h"
#include "slice.h"

#define FULL_SWEEP_EVERY 3600 /* seconds between full member sweeps */
#define SWEEP_EVERY 60        /* ... and sweeps of the disabled members */

static volatile sig_atomic_t got_term, got_hup;

static void on_signal(int sig)
{
    if (sig == SIGHUP)
        got_hup = 1;
    else
        got_term = 1;
}

static void usage(void)
{
    fprintf(stderr, "usage: mmq-bounce [-c FILE] [-s SLICES] [-1] [-e] [-v]\n"
                    "       mmq-bounce -p FILE...\n");
    exit(EX_USAGE);
}

static int64_t clock_now(void)
{
    return (int64_t)time(NULL);
}

static struct lease_set lease;
static int cluster;

static void lock_and_recover(struct spool *sp, const struct mmq_config *cfg,
                             const struct slice_set *set)
{
    struct recover_stats st = {0, 0, 0};
    char err[QUEUE_ERR_MAX];

    if (spool_lock_slices(sp, "bounce", set, err, sizeof(err)) != 0)
        log_fatal(EX_TEMPFAIL, "%s", err);
    if (queue_recover(sp, "bounces", set, &st, err, sizeof(err)) != 0 ||
        spool_clean_tmp(sp, cfg->tmp_max_age, &st, err, sizeof(err)) != 0)
        log_fatal(EX_TEMPFAIL, "recovery: %s", err);
    if (st.restored || st.to_bad || st.tmp_removed)
        log_info("recovery: %u entries restored, %u moved to bad/, %u "
                 "temporary files removed",
                 st.restored, st.to_bad, st.tmp_removed);
}

/* Entries given back (a broken list file, bounce_processing = false), and
 * until when to leave them alone. */
#define RETRY_AFTER 30
#define RETRY_MAX 4096

struct later {
    char name[QNAME_LEN + 1];
    time_t until;
};

static struct later later[RETRY_MAX];
static size_t nlater;

static int is_later(const char *name, time_t now)
{
    size_t i;

    for (i = 0; i < nlater; i++)
        if (strcmp(later[i].name, name) == 0) {
            if (later[i].until > now)
                return 1;
            later[i] = later[--nlater];
            return 0;
        }
    return 0;
}

static void try_later(const char *name, time_t now)
{
    if (nlater == RETRY_MAX)
        return;
    snprintf(later[nlater].name, sizeof(later[0].name), "%s", name);
    later[nlater++].until = now + RETRY_AFTER;
}

static void cluster_start(struct spool *sp, const struct mmq_config *cfg,
                          struct slice_set *set)
{
    struct slice_set own = {0, NULL}, standby = {0, NULL};
    char err[QUEUE_ERR_MAX];

    if (lease_split(cfg, "bounce", set, &own, &standby, err, sizeof(err)))
        log_fatal(EX_CONFIG, "%s", err);
    slice_set_free(set);
    *set = own;
    cluster = 1;
    lock_and_recover(sp, cfg, set);
    if (lease_open(&lease, sp, "bounce", set, &standby, err, sizeof(err)))
        log_fatal(EX_TEMPFAIL, "%s", err);
    for (unsigned i = 0; i < standby.n; i++)
        set->on[i] |= standby.on[i];
    slice_set_free(&standby);
}

static int lease_round(struct spool *sp)
{
    struct slice_set gained = {0, NULL};
    struct recover_stats st = {0, 0, 0};
    char err[QUEUE_ERR_MAX];
    int n = lease_tick(&lease, NULL, NULL, &gained, err, sizeof(err));

    if (n < 0)
        log_error("%s", err);
    if (n > 0 && queue_recover_foreign(sp, "bounces", &gained, &st, err,
                                       sizeof(err)) != 0)
        log_error("recovery after takeover: %s", err);
    if (st.restored || st.to_bad)
        log_info("takeover: %u entries restored, %u moved to bad/", st.restored,
                 st.to_bad);
    slice_set_free(&gained);
    return n > 0 ? n : 0;
}

static size_t run_once(struct bounce_ctx *bc, const struct slice_set *all)
{
    struct qlist l = {NULL, 0, 0};
    struct slice_set active = {0, NULL};
    const struct slice_set *set = all;
    char err[QUEUE_ERR_MAX];
    time_t now = time(NULL);
    size_t i, n = 0;

    if (cluster) {
        if (lease_now() >= lease.next_tick)
            lease_round(bc->sp);
        if (lease_active(&lease, &active) != 0)
            log_fatal(EX_OSERR, "out of memory");
        set = &active;
    }
    if (queue_list(bc->sp, "bounces", set, QL_READY, 1000 + nlater, &l, err,
                   sizeof(err)) != 0) {
        log_error("%s", err);
        slice_set_free(&active);
        return 0;
    }
    for (i = 0; i < l.n && !got_term; i++) {
        if (is_later(l.v[i].name, now))
            continue;
        if (cluster) {
            if (lease_now() >= lease.next_tick)
                lease_round(bc->sp);
            if (!lease_key_ok(&lease, l.v[i].key))
                continue;
        }
        if (bounce_entry(bc, l.v[i].name))
            try_later(l.v[i].name, now);
        n++;
    }
    if (n)
        bounce_counts_save(bc);
    qlist_free(&l);
    slice_set_free(&active);
    return n;
}

static void reload(const char *path, struct mmq_config *cfg,
                   struct bounce_ctx *bc, int to_stderr, const char *argv0)
{
    struct mmq_config fresh;
    char err[CONFIG_ERR_MAX];

    log_init(argv0, to_stderr ? LOG_STDERR_ALWAYS : LOG_STDERR_AUTO);
    if (config_load(path, &fresh, err, sizeof(err)) != 0) {
        log_error("SIGHUP: %s (keeping the configuration in use)", err);
        return;
    }
    /* the spool, slices and nodes stay as they are: they are what we
     * locked and leased; lists are re-read per entry anyway */
    log_set_verbose(fresh.verbose);
    cfg->verbose = fresh.verbose;
    cfg->scan_interval = fresh.scan_interval;
    cfg->max_recoveries = fresh.max_recoveries;
    free(cfg->lists_dir);
    cfg->lists_dir = fresh.lists_dir;
    fresh.lists_dir = NULL;
    config_free(&fresh);
    bounce_ctx_free(bc);
    log_info("SIGHUP: configuration re-read, log reopened");
}

int main(int argc, char **argv)
{
    const char *config_path = NULL, *slices = NULL;
    struct mmq_config cfg;
    struct spool sp;
    struct slice_set set;
    struct bounce_ctx bc;
    struct sigaction sa;
    char err[QUEUE_ERR_MAX];
    int c, once = 0, ifd, to_stderr = 0;
    time_t next_full, next_sweep = 0;

    if (argc >= 2 && strcmp(argv[1], "-p") == 0) {
        if (argc < 3)
            usage();
        return bounce_parse_mode(argc - 2, argv + 2);
    }
    log_init(argv[0], LOG_STDERR_AUTO);
    while ((c = getopt(argc, argv, "c:s:1ev")) != -1) {
        switch (c) {
        case 'c':
            config_path = optarg;
            break;
        case 's':
            slices = optarg;
            break;
        case '1':
            once = 1;
            break;
        case 'e':
            log_init(argv[0], LOG_STDERR_ALWAYS);
            to_stderr = 1;
            break;
        case 'v':
            log_set_verbose(1);
            break;
        default:
            usage();
        }
    }
    if (optind != argc)
        usage();
    if (config_load(config_path, &cfg, err, sizeof(err)) != 0)
        log_fatal(EX_CONFIG, "%s", err);
    if (cfg.verbose)
        log_set_verbose(1);
    if (spool_open(&sp, &cfg, err, sizeof(err)) != 0)
        log_fatal(EX_TEMPFAIL, "%s", err);
    if (slice_set_parse(slices ? slices : "all", (unsigned)cfg.slices, &set,
                        err, sizeof(err)) != 0)
        log_fatal(EX_USAGE, "%s", err);
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    if (cfg.nnodes > 0)
        cluster_start(&sp, &cfg, &set);
    else
        lock_and_recover(&sp, &cfg, &set);
    ifd = queue_watch(&sp, "bounces", &set);
    memset(&bc, 0, sizeof(bc));
    bc.sp = &sp;
    bc.cfg = &cfg;
    bc.now = clock_now;
    bc.lease = cluster ? &lease : NULL;
    log_info("processing slices %s of %d of bounces/", slices ? slices : "all",
             cfg.slices);
    bounce_sweep(&bc, 1);
    next_full = time(NULL) + FULL_SWEEP_EVERY;

    while (!got_term) {
        struct pollfd p = {ifd, POLLIN, 0};
        size_t seen = run_once(&bc, &set);

        if (got_hup) {
            got_hup = 0;
            reload(config_path, &cfg, &bc, to_stderr, argv[0]);
        }
        if (seen > 0)
            continue; /* there may be more */
        /* the sweep: warnings and removals come due with time (a day's
         * resolution is all they need; once a minute is plenty) */
        if (once || time(NULL) >= next_sweep) {
            int full = time(NULL) >= next_full;
            bounce_sweep(&bc, full);
            next_sweep = time(NULL) + SWEEP_EVERY;
            if (full)
                next_full = time(NULL) + FULL_SWEEP_EVERY;
        }
        bounce_counts_save(&bc);
        if (once && !cluster)
            break;
        for (double until = lease_now() + cfg.scan_interval;
             !got_term && !got_hup && lease_now() < until;) {
            int ms = 1000;

            if (cluster) {
                if (lease_now() >= lease.next_tick && lease_round(&sp) > 0)
                    break;
                ms = (int)((lease.next_tick - lease_now()) * 1000) + 1;
                ms = ms < 1 ? 1 : ms > 1000 ? 1000 : ms;
            }
            if (poll(&p, ifd >= 0 ? 1 : 0, ms) > 0) {
                char buf[4096];
                while (read(ifd, buf, sizeof(buf)) > 0)
                    ;
                break;
            }
        }
    }
    bounce_counts_save(&bc);
    if (cluster)
        lease_close(&lease);
    log_info("stopped");
    bounce_ctx_free(&bc);
    if (ifd >= 0)
        close(ifd);
    slice_set_free(&set);
    spool_close(&sp);
    config_free(&cfg);
    return EX_OK;
}
