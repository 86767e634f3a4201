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
 * With -1 it exits once its slices of in/ are empty.
 */
#include "autoconf.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "lease.h"
#include "log.h"
#include "process.h"
#include "queue.h"
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

/* In a cluster (nodes in the configuration) the leases say which of our
 * slices we may work on now; otherwise all of them, always. */
static struct lease_set lease;
static int cluster;

static void lock_and_recover(struct spool *sp, const struct mmq_config *cfg,
                             const struct slice_set *set)
{
    struct recover_stats st = {0, 0, 0};
    char err[QUEUE_ERR_MAX];

    if (spool_lock_slices(sp, "process", set, err, sizeof(err)) != 0)
        log_fatal(EX_TEMPFAIL, "%s", err);
    /* hold/ too: an owner's reply deciding a held post claims it there */
    if (queue_recover(sp, "in", set, &st, err, sizeof(err)) != 0 ||
        queue_recover(sp, "hold", set, &st, err, sizeof(err)) != 0 ||
        spool_clean_tmp(sp, cfg->tmp_max_age, &st, err, sizeof(err)) != 0)
        log_fatal(EX_TEMPFAIL, "recovery: %s", err);
    if (st.restored || st.to_bad || st.tmp_removed)
        log_info("recovery: %u entries restored, %u moved to bad/, %u "
                 "temporary files removed",
                 st.restored, st.to_bad, st.tmp_removed);
}

/* Entries given back for a later try, and until when to leave them. */
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
            later[i] = later[--nlater]; /* its time has come */
            return 0;
        }
    return 0;
}

static void try_later(const char *name, time_t now)
{
    if (nlater == RETRY_MAX)
        return; /* then it is simply retried at the next scan */
    snprintf(later[nlater].name, sizeof(later[0].name), "%s", name);
    later[nlater++].until = now + RETRY_AFTER;
}

/* In a cluster, -s (default: all) selects among the node's own slices
 * and its standby ones: set becomes our own slices (locked and recovered
 * at start), *standby the others we may take over. */
static void cluster_split(const struct mmq_config *cfg, struct slice_set *set,
                          struct slice_set *standby)
{
    struct slice_set own = {0, NULL};
    char err[QUEUE_ERR_MAX];

    if (lease_split(cfg, "process", set, &own, standby, err, sizeof(err)))
        log_fatal(EX_CONFIG, "%s", err);
    slice_set_free(set);
    *set = own;
    cluster = 1;
}

/* Join the cluster; set becomes every slice we may ever serve (for
 * inotify). */
static void cluster_join(struct spool *sp, struct slice_set *set,
                         struct slice_set *standby)
{
    char err[QUEUE_ERR_MAX];

    if (lease_open(&lease, sp, "process", set, standby, err, sizeof(err)))
        log_fatal(EX_TEMPFAIL, "%s", err);
    for (unsigned i = 0; i < standby->n; i++)
        set->on[i] |= standby->on[i];
    slice_set_free(standby);
}

/* Renew, take over, hand back; restore what the previous holder of a
 * slice we just took left claimed.  Returns the number of slices gained. */
static int lease_round(struct spool *sp)
{
    struct slice_set gained = {0, NULL};
    struct recover_stats st = {0, 0, 0};
    char err[QUEUE_ERR_MAX];
    int n = lease_tick(&lease, NULL, NULL, &gained, err, sizeof(err));

    if (n < 0)
        log_error("%s", err);
    if (n > 0 &&
        (queue_recover_foreign(sp, "in", &gained, &st, err, sizeof(err)) != 0 ||
         queue_recover_foreign(sp, "hold", &gained, &st, err, sizeof(err)) !=
             0))
        log_error("recovery after takeover: %s", err);
    if (st.restored || st.to_bad)
        log_info("takeover: %u entries restored, %u moved to bad/", st.restored,
                 st.to_bad);
    slice_set_free(&gained);
    return n > 0 ? n : 0;
}

/* Process what is ready now; returns how many entries were handled
 * (entries waiting for a later try are not counted). */
static size_t run_once(struct stage_ctx *ctx, const struct slice_set *all)
{
    struct qlist l = {NULL, 0, 0};
    struct slice_set active = {0, NULL};
    const struct slice_set *set = all;
    char err[QUEUE_ERR_MAX];
    time_t now = time(NULL);
    size_t i, n = 0;

    if (cluster) {
        if (lease_now() >= lease.next_tick)
            lease_round(ctx->sp);
        if (lease_active(&lease, &active) != 0)
            log_fatal(EX_OSERR, "out of memory");
        set = &active;
    }
    if (queue_list(ctx->sp, "in", set, QL_READY, 1000 + nlater, &l, err,
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
                lease_round(ctx->sp); /* a long run must keep renewing */
            if (!lease_key_ok(&lease, l.v[i].key))
                continue; /* lost or handed back meanwhile */
        }
        if (post_process(ctx, l.v[i].name))
            try_later(l.v[i].name, now);
        n++;
    }
    qlist_free(&l);
    slice_set_free(&active);
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
    struct slice_set set, standby = {0, NULL};
    struct stage_ctx ctx;
    struct sigaction sa;
    char err[QUEUE_ERR_MAX];
    static const struct option longopts[] = {{"version", 0, NULL, 'V'},
                                             {NULL, 0, NULL, 0}};
    int c, once = 0, ifd;

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
    if (cfg.nnodes > 0)
        cluster_split(&cfg, &set, &standby);
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    lock_and_recover(&sp, &cfg, &set);
    if (cluster)
        cluster_join(&sp, &set, &standby);
    ifd = queue_watch(&sp, "in", &set);
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
        struct pollfd p = {ifd, POLLIN, 0};
        size_t seen = run_once(&ctx, &set);

        if (got_hup) {
            got_hup = 0;
            reload(config_path, &cfg);
        }
        if (once && seen == 0 && !cluster)
            break;
        if (seen > 0)
            continue; /* there may be more */
        /* wait for inotify or the next scan, a second at most at a time
         * so that a SIGTERM arriving just before poll() is seen promptly;
         * leases are renewed on time meanwhile, and a slice taken over
         * is scanned at once */
        for (double until = lease_now() + cfg.scan_interval;
             !got_term && lease_now() < until;) {
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
    if (cluster)
        lease_close(&lease);
    log_info("stopped");
    for (size_t i = 0; i < ctx.ncache; i++)
        members_free(&ctx.cache[i].m);
    free(ctx.cache);
    dmarc_close(ctx.dmarc);
    if (ifd >= 0)
        close(ifd);
    slice_set_free(&set);
    spool_close(&sp);
    config_free(&cfg);
    return EX_OK;
}
