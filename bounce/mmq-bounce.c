/*
 * mmq-bounce - the bounce stage: drains bounces/, finds who failed, and
 * keeps each member's bounce state (member.h).
 *
 *     mmq-bounce [-c FILE] [-s SLICES] [-1] [-e] [-v] [-V]
 *     mmq-bounce -p FILE...
 *
 * The story: lock our slices of bounces/ (per node), restore what a dead
 * bounce stage of this node left claimed, repair the member state of every
 * list (a full sweep: the disabled index, state of addresses no longer in
 * the members files), then take the entries of our slices oldest first and
 * hand each to bounce_entry() (apply.c: parse, record, disable, warn,
 * probe, remove).  Between scans, at most once a minute, a sweep of the
 * disabled members sends the warnings and removals that come due with
 * time; a full sweep runs every hour.  New entries are noticed through
 * inotify and by a scan every scan_interval seconds (the runner skeleton,
 * locks, leases and recovery are shared/runner.c, as for mmq-process).  SIGTERM
 * stops after the entry in hand; SIGHUP re-reads the configuration and reopens
 * the log.  With -1 it exits once its slices of bounces/ are empty, after one
 * sweep.
 *
 * -p parses files and prints what it finds (bparse.h), touching nothing.
 */
#include "autoconf.h"

#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "bounce.h"
#include "config.h"
#include "lease.h"
#include "log.h"
#include "queue.h"
#include "runner.h"
#include "slice.h"

#define FULL_SWEEP_EVERY 3600 /* seconds between full member sweeps */
#define SWEEP_EVERY 60        /* ... and sweeps of the disabled members */

static volatile sig_atomic_t got_term, got_hup;
static int opt_verbose; /* -v: debug lines whatever the configuration says */

static void on_signal(int sig)
{
    if (sig == SIGHUP)
        got_hup = 1;
    else
        got_term = 1;
}

static void usage(void)
{
    fprintf(stderr, "usage: mmq-bounce [-c FILE] [-s SLICES] [-1] [-e] [-v] "
                    "[-V]\n"
                    "       mmq-bounce -p FILE...\n");
    exit(EX_USAGE);
}

static int64_t clock_now(void)
{
    return (int64_t)time(NULL);
}

static int one_bounce(void *bc, const char *name)
{
    return bounce_entry(bc, name);
}

/* Process what is ready now; returns how many entries were handled. */
static size_t run_once(struct runner *r, struct bounce_ctx *bc)
{
    size_t n = runner_scan(r, one_bounce, bc, &got_term);

    if (n)
        bounce_counts_save(bc);
    return n;
}

/* Open the log_file of cfg, if any (at start and after SIGHUP). */
static void open_log_file(const struct mmq_config *cfg)
{
    char err[CONFIG_ERR_MAX];

    if (log_open_file(cfg->log_file, err, sizeof(err)) != 0)
        log_error("%s", err);
}

/*
 * SIGHUP: reopen the log and read the configuration again.  The spool,
 * slices and nodes stay as they are (they are what we locked and leased);
 * lists_dir, scan_interval, max_recoveries, verbose and log_file apply at
 * once; list files are re-read per entry anyway.  A configuration that
 * does not load is refused and the old one kept.
 */
static void reload(const char *path, struct mmq_config *cfg,
                   struct bounce_ctx *bc)
{
    struct mmq_config fresh;
    char err[CONFIG_ERR_MAX];

    if (log_reopen(err, sizeof(err)) != 0)
        log_error("SIGHUP: %s", err);
    if (config_load(path, &fresh, err, sizeof(err)) != 0) {
        log_error("SIGHUP: %s (keeping the configuration in use)", err);
        return;
    }
#define TAKE(f)                                                                \
    do {                                                                       \
        __typeof__(fresh.f) t = fresh.f;                                       \
        fresh.f = cfg->f;                                                      \
        cfg->f = t;                                                            \
    } while (0)
    TAKE(verbose);
    TAKE(scan_interval);
    TAKE(max_recoveries);
    TAKE(lists_dir);
    TAKE(log_file);
#undef TAKE
    config_free(&fresh); /* the old values taken out, the rest unused */
    log_set_verbose(opt_verbose || cfg->verbose);
    open_log_file(cfg);
    bounce_ctx_free(bc);
    log_info("SIGHUP: configuration re-read, log reopened");
}

int main(int argc, char **argv)
{
    const char *config_path = NULL, *slices = NULL;
    struct mmq_config cfg;
    struct spool sp;
    struct slice_set set;
    struct runner r;
    struct bounce_ctx bc;
    struct sigaction sa;
    char err[QUEUE_ERR_MAX];
    static const struct option longopts[] = {{"version", 0, NULL, 'V'},
                                             {NULL, 0, NULL, 0}};
    int c, once = 0;
    time_t next_full, next_sweep = 0;

    if (argc >= 2 && strcmp(argv[1], "-p") == 0) {
        if (argc < 3)
            usage();
        return bounce_parse_mode(argc - 2, argv + 2);
    }
    log_init(argv[0], LOG_STDERR_AUTO);
    while ((c = getopt_long(argc, argv, "c:s:1evV", longopts, NULL)) != -1) {
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
            log_init(argv[0], LOG_STDERR_STAMPED);
            break;
        case 'v':
            opt_verbose = 1;
            log_set_verbose(1);
            break;
        case 'V':
            log_version_exit();
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
    open_log_file(&cfg);
    log_warn_if_unheard();
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
    runner_start(&r, &sp, &cfg, "bounce", "bounces", NULL, &set);
    memset(&bc, 0, sizeof(bc));
    bc.sp = &sp;
    bc.cfg = &cfg;
    bc.now = clock_now;
    bc.lease = r.cluster ? &r.lease : NULL;
    log_info("processing slices %s of %d of bounces/", slices ? slices : "all",
             cfg.slices);
    bounce_sweep(&bc, 1);
    next_full = time(NULL) + FULL_SWEEP_EVERY;

    while (!got_term) {
        size_t seen = run_once(&r, &bc);

        if (got_hup) {
            got_hup = 0;
            reload(config_path, &cfg, &bc);
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
        if (once && !r.cluster)
            break;
        runner_wait(&r, &got_term, &got_hup);
    }
    bounce_counts_save(&bc);
    runner_stop(&r);
    log_info("stopped");
    bounce_ctx_free(&bc);
    spool_close(&sp);
    config_free(&cfg);
    return EX_OK;
}
