/*
 * mmq-process - the list stage: turns posts in in/ into deliveries in out/.
 *
 *     mmq-process [-c FILE] [-s SLICES] [-1] [-e] [-v] [-V]
 *
 * The story: lock our slices of in/ (per node), restore what a dead list
 * stage of this node left claimed, then take the entries of our slices
 * oldest first and hand each to post_process(), which applies the list's
 * policy and headers and expands it to the members (see post.c for the
 * crash rules).  New entries are noticed through inotify and by a full
 * scan every scan_interval seconds.  SIGTERM stops after the entry in
 * hand; SIGHUP re-reads the configuration and reopens the log (list files
 * and members files are re-read whenever they change, without a signal).
 * With -1 it exits once its slices of in/ are empty.  The runner skeleton
 * (locks, leases, recovery, the scan and the wait) is shared/runner.c.
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

#include "config.h"
#include "dedup.h"
#include "lease.h"
#include "log.h"
#include "process.h"
#include "queue.h"
#include "runner.h"
#include "slice.h"

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
    fprintf(stderr, "usage: mmq-process [-c FILE] [-s SLICES] [-1] [-e] "
                    "[-v] [-V]\n");
    exit(EX_USAGE);
}

/* Marks of accepted posts older than duplicate_window are removed at
 * start and then hourly (dedup.h). */
#define DEDUP_EXPIRE_EVERY 3600
static time_t next_expire;

static int one_post(void *ctx, const char *name)
{
    return post_process(ctx, name);
}

/* Process what is ready now; returns how many entries were handled
 * (entries waiting for a later try are not counted). */
static size_t run_once(struct runner *r, struct stage_ctx *ctx)
{
    time_t now = time(NULL);

    if (now >= next_expire) { /* scheduled first: see the GUIDE's lessons */
        next_expire = now + DEDUP_EXPIRE_EVERY;
        dedup_expire(ctx->sp, ctx->cfg->duplicate_window);
    }
    return runner_scan(r, one_post, ctx, &got_term);
}

/* Open the log_file of cfg, if any (at start and after SIGHUP). */
static void open_log_file(const struct mmq_config *cfg)
{
    char err[CONFIG_ERR_MAX];

    if (log_open_file(cfg->log_file, err, sizeof(err)) != 0)
        log_error("%s", err);
}

/*
 * SIGHUP: read the configuration again.  The spool, the slices and the
 * cluster layout (leases and locks were taken by them) stay until a
 * restart; the rest (lists_dir, archive_dir, max_message_size, verbose,
 * log_file, ...) applies from the next post on.  A configuration that does
 * not load is refused and the old one kept.
 */
static void reload(const char *path, struct mmq_config *cfg)
{
    struct mmq_config fresh;
    char err[CONFIG_ERR_MAX];

    if (log_reopen(err, sizeof(err)) != 0)
        log_error("SIGHUP: %s", err);
    if (config_load(path, &fresh, err, sizeof(err)) != 0) {
        log_error("SIGHUP: keeping the old configuration: %s", err);
        config_free(&fresh);
        return;
    }
    if (fresh.slices != cfg->slices || strcmp(fresh.spool, cfg->spool) ||
        strcmp(fresh.node, cfg->node) || fresh.nnodes != cfg->nnodes ||
        strcmp(fresh.process_slices, cfg->process_slices))
        log_warn("SIGHUP: spool, node, slices, process_slices and nodes take "
                 "effect at restart only");
#define KEEP(f)                                                                \
    do {                                                                       \
        __typeof__(fresh.f) t = fresh.f;                                       \
        fresh.f = cfg->f;                                                      \
        cfg->f = t;                                                            \
    } while (0)
    KEEP(slices);
    KEEP(spool);
    KEEP(node);
    KEEP(process_slices);
    KEEP(nodes);
    KEEP(nnodes);
    KEEP(lease_time);
    KEEP(lease_margin);
#undef KEEP
    config_free(cfg); /* the old values, and the fresh ones we did not take */
    *cfg = fresh;
    log_set_verbose(opt_verbose || cfg->verbose);
    open_log_file(cfg);
    log_info("SIGHUP: configuration reloaded, log reopened");
}

int main(int argc, char **argv)
{
    const char *config_path = NULL, *slices = NULL;
    struct mmq_config cfg;
    struct spool sp;
    struct slice_set set;
    struct runner r;
    struct stage_ctx ctx;
    struct sigaction sa;
    char err[QUEUE_ERR_MAX];
    static const struct option longopts[] = {{"version", 0, NULL, 'V'},
                                             {NULL, 0, NULL, 0}};
    int c, once = 0;

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
    if (slice_set_parse(slices           ? slices
                        : cfg.nnodes > 0 ? "all"
                                         : cfg.process_slices,
                        (unsigned)cfg.slices, &set, err, sizeof(err)) != 0)
        log_fatal(slices ? EX_USAGE : EX_CONFIG, "%s", err);
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    /* hold/ too: an owner's reply deciding a held post claims it there */
    runner_start(&r, &sp, &cfg, "process", "in", "hold", &set);
    memset(&ctx, 0, sizeof(ctx));
    ctx.sp = &sp;
    ctx.cfg = &cfg;
    /* DMARC lookups: without a resolver, posts are still distributed,
     * mitigated as when DNS fails (see post.c) */
    if (!(ctx.dmarc = dmarc_open(cfg.dmarc_timeout * 1000, err, sizeof(err))))
        log_error("DMARC policy lookups disabled, every post of a list "
                  "with dmarc_mitigate_action is mitigated: %s",
                  err);
    log_info("processing slices %s of %d of in/",
             slices ? slices : cfg.process_slices, cfg.slices);

    while (!got_term) {
        size_t seen = run_once(&r, &ctx);

        if (got_hup) {
            got_hup = 0;
            reload(config_path, &cfg);
        }
        if (once && seen == 0 && !r.cluster)
            break;
        if (seen > 0)
            continue; /* there may be more */
        runner_wait(&r, &got_term, &got_hup);
    }
    runner_stop(&r);
    log_info("stopped");
    for (size_t i = 0; i < ctx.ncache; i++)
        members_free(&ctx.cache[i].m);
    free(ctx.cache);
    dmarc_close(ctx.dmarc);
    listdef_cache_free(&ctx.lists);
    spool_close(&sp);
    config_free(&cfg);
    return EX_OK;
}
