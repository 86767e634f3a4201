/*
 * mmq-deliver - the delivery agent: drains out/ for a set of slices and
 * relays every entry to the MTA.
 *
 *     mmq-deliver [-c FILE] [-s SLICES] [-1] [-e] [-v] [-V]
 *
 * The story: lock our slices (per node), recover what a dead agent of this
 * node left claimed, then loop: promote deferred entries whose time has
 * come, list the oldest ready entries of our slices, and hand them in
 * batches to up to `connections` worker processes, one SMTP session each.
 * A worker records every transaction's outcome in the spool itself; if one
 * dies (a crash inside libESMTP, a kill, a hang past session_time_limit),
 * we defer what it held.  New entries are noticed through inotify, and by
 * a full scan every scan_interval seconds for shared filesystems where
 * inotify sees nothing of other nodes' writes.
 *
 * Signals: SIGTERM/SIGINT let the workers finish the transaction in flight
 * and exit with nothing lost; SIGHUP re-reads the configuration and
 * reopens the log.  With -1 the agent exits once its slices of out/ are
 * empty (used by tests and the demo).
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
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "deliver.h"
#include "journal.h"
#include "lease.h"
#include "log.h"
#include "queue.h"
#include "slice.h"
#include "smtp.h"

/* Entries handed to one worker at most (the worker itself stops claiming
 * at SESSION_RCPTS_MAX recipients, which bounds its memory). */
#define ENTRIES_PER_SESSION_MAX 256

struct worker {
    pid_t pid;
    time_t started;
    char (*names)[QFILE_MAX];
    size_t n;
};

struct agent {
    const char *config_path;
    const char *slices_arg;
    int once;
    struct mmq_config cfg;
    struct spool sp;
    struct slice_set set;    /* every slice we may serve (own + standby) */
    struct slice_set active; /* those we may start work on now */
    int cluster;             /* leases decide (nodes in the config) */
    struct lease_set lease;
    struct worker *w;
    int nw;
    int inotify_fd;
    int wake[2];
    time_t next_scan, next_deferred, next_recover;
    time_t next_overlap; /* without nodes: other nodes on our slices */
    int overlapping;
    int dirty;
};

static volatile sig_atomic_t got_term, got_hup;
static int wake_fd = -1;

static void on_signal(int sig)
{
    int e = errno;

    if (sig == SIGTERM || sig == SIGINT)
        got_term = 1;
    else if (sig == SIGHUP)
        got_hup = 1;
    if (wake_fd >= 0)
        (void)!write(wake_fd, "x", 1);
    errno = e;
}

static void on_worker_term(int sig)
{
    (void)sig;
    worker_stop = 1;
}

static void usage(void)
{
    fprintf(stderr,
            "usage: mmq-deliver [-c FILE] [-s SLICES] [-1] [-e] [-v] [-V]\n");
    exit(EX_USAGE);
}

static void parse_args(struct agent *a, int argc, char **argv)
{
    static const struct option longopts[] = {{"version", 0, NULL, 'V'},
                                             {NULL, 0, NULL, 0}};
    int c;

    while ((c = getopt_long(argc, argv, "c:s:1evV", longopts, NULL)) != -1) {
        switch (c) {
        case 'c':
            a->config_path = optarg;
            break;
        case 's':
            a->slices_arg = optarg;
            break;
        case '1':
            a->once = 1;
            break;
        case 'e':
            log_init("mmq-deliver", LOG_STDERR_STAMPED);
            break;
        case 'v':
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
}

static void load_config(struct agent *a)
{
    char err[CONFIG_ERR_MAX];

    if (config_load(a->config_path, &a->cfg, err, sizeof(err)) != 0)
        log_fatal(EX_CONFIG, "%s", err);
    if (a->cfg.verbose)
        log_set_verbose(1);
    if (log_open_file(a->cfg.log_file, err, sizeof(err)) != 0)
        log_error("%s", err);
    log_warn_if_unheard();
    if (smtp_setup(&a->cfg, err, sizeof(err)) != 0)
        log_fatal(EX_CONFIG, "%s", err);
}

/*
 * Lock every slice we serve, so no second agent of this node runs it.  In
 * a cluster -s only selects among the node's own and standby slices; the
 * own ones are locked here, the standby ones when we take one over, and
 * which of them we may work on is the leases' business.
 */
static void lock_slices(struct agent *a)
{
    char err[QUEUE_ERR_MAX];
    const char *spec = a->slices_arg ? a->slices_arg : a->cfg.delivery_slices;
    struct slice_set sel = {0, NULL}, standby = {0, NULL};

    a->cluster = a->cfg.nnodes > 0;
    if (a->cluster && !a->slices_arg)
        spec = "all";
    if (slice_set_parse(spec, (unsigned)a->cfg.slices, &sel, err,
                        sizeof(err)) != 0)
        log_fatal(a->slices_arg ? EX_USAGE : EX_CONFIG, "%s", err);
    if (!a->cluster) {
        a->set = sel;
        if (slice_set_parse(spec, (unsigned)a->cfg.slices, &a->active, err,
                            sizeof(err)) != 0)
            log_fatal(EX_CONFIG, "%s", err);
    } else if (lease_split(&a->cfg, "deliver", &sel, &a->set, &standby, err,
                           sizeof(err)) != 0)
        log_fatal(EX_CONFIG, "%s", err);
    if (spool_lock_slices(&a->sp, "deliver", &a->set, err, sizeof(err)) != 0)
        log_fatal(EX_TEMPFAIL, "%s", err);
    if (!a->cluster)
        return;
    slice_set_free(&sel);
    if (lease_open(&a->lease, &a->sp, "deliver", &a->set, &standby, err,
                   sizeof(err)) != 0)
        log_fatal(EX_TEMPFAIL, "%s", err);
    for (unsigned i = 0; i < standby.n; i++)
        a->set.on[i] |= standby.on[i];
    slice_set_free(&standby);
    a->active.n = a->set.n;
    if (!(a->active.on = calloc(a->set.n, 1)))
        log_fatal(EX_OSERR, "out of memory");
}

static void recover(struct agent *a, int at_start)
{
    struct recover_stats st = {0, 0, 0};
    char err[QUEUE_ERR_MAX];

    if (queue_recover(&a->sp, "out", &a->set, &st, err, sizeof(err)) != 0 ||
        queue_recover(&a->sp, "deferred", &a->set, &st, err, sizeof(err)) ||
        spool_clean_tmp(&a->sp, a->cfg.tmp_max_age, &st, err, sizeof(err)) ||
        journal_clean(&a->sp, a->cfg.tmp_max_age, &st.tmp_removed, err,
                      sizeof(err))) {
        if (at_start)
            log_fatal(EX_TEMPFAIL, "recovery: %s", err);
        log_error("recovery: %s", err);
    }
    if (st.restored || st.to_bad || st.tmp_removed)
        log_info("recovery: %u entries restored, %u moved to bad/, %u "
                 "temporary files removed",
                 st.restored, st.to_bad, st.tmp_removed);
}

/* ------------------------------------------------------------- leases */

static void shutdown_workers(struct agent *a);

/* Is an entry of slice i in a worker's hands? */
static int slice_busy(void *arg, unsigned i)
{
    const struct agent *a = arg;
    uint64_t key;
    int j;
    size_t k;

    for (j = 0; j < a->nw; j++)
        for (k = 0; a->w[j].pid > 0 && k < a->w[j].n; k++)
            if (slice_key(a->w[j].names[k] + 18, &key) == 0 &&
                slice_of(key, a->set.n) == i)
                return 1;
    return 0;
}

/* Renew, take over, hand back; then restore what the previous holder of a
 * slice we just took left claimed, before any of it is dispatched. */
static void lease_round(struct agent *a)
{
    struct slice_set gained = {0, NULL}, fresh = {0, NULL};
    struct recover_stats st = {0, 0, 0};
    char err[QUEUE_ERR_MAX];
    int n = lease_tick(&a->lease, slice_busy, a, &gained, err, sizeof(err));
    unsigned i;

    if (a->lease.fatal) { /* another host uses our node name */
        char why[sizeof(a->lease.fatal_err)];
        snprintf(why, sizeof(why), "%s", a->lease.fatal_err);
        slice_set_free(&gained);
        shutdown_workers(a);
        lease_close(&a->lease);
        log_fatal(EX_CONFIG, "%s", why);
    }
    if (n < 0)
        log_error("%s", err);
    if (n > 0 && (queue_recover_foreign(&a->sp, "out", &gained, &st, err,
                                        sizeof(err)) != 0 ||
                  queue_recover_foreign(&a->sp, "deferred", &gained, &st, err,
                                        sizeof(err)) != 0))
        log_error("recovery after takeover: %s", err);
    if (st.restored || st.to_bad)
        log_info("takeover: %u entries restored, %u moved to bad/", st.restored,
                 st.to_bad);
    slice_set_free(&gained);
    if (lease_active(&a->lease, &fresh) != 0)
        log_fatal(EX_OSERR, "out of memory");
    /* Only a change of the slices we work on calls for a new look at
     * out/ and deferred/: a plain renewal costs no listing. */
    for (i = 0; i < fresh.n; i++) {
        if (fresh.on[i] && !a->active.on[i])
            a->next_deferred = 0; /* the deferred entries of a new slice */
        if (fresh.on[i] != a->active.on[i])
            a->dirty = 1;
    }
    slice_set_free(&a->active);
    a->active = fresh;
}

static void watch_buckets(struct agent *a)
{
    if ((a->inotify_fd = queue_watch(&a->sp, "out", &a->set)) < 0)
        log_warn("inotify unavailable (%s): relying on scans every %d s",
                 strerror(errno), a->cfg.scan_interval);
}

/* ------------------------------------------------------------ workers */

static int in_flight(const struct agent *a, const char *name)
{
    int i;
    size_t k;

    for (i = 0; i < a->nw; i++)
        for (k = 0; a->w[i].pid > 0 && k < a->w[i].n; k++)
            if (strncmp(a->w[i].names[k], name, QNAME_LEN) == 0)
                return 1;
    return 0;
}

static void start_worker(struct agent *a, struct worker *w)
{
    pid_t parent = getpid(), pid = fork();

    if (pid < 0) {
        log_error("fork: %s", strerror(errno));
        return;
    }
    if (pid == 0) {
        struct sigaction sa;
        int rc;

        /* If the agent dies, so do we: a restarted agent must not race
         * a leftover worker for the same entries. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent) /* the agent died before prctl() */
            _exit(75);
        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = on_worker_term;
        sigaction(SIGTERM, &sa, NULL);
        sa.sa_handler = SIG_DFL;
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGHUP, &sa, NULL);
        sigaction(SIGCHLD, &sa, NULL);
        close(a->wake[0]);
        close(a->wake[1]);
        if (a->inotify_fd >= 0)
            close(a->inotify_fd);
        if (spool_set_identity(&a->sp) != 0)
            _exit(75);
        alarm((unsigned)a->cfg.session_time_limit); /* a hang is not a crash */
        rc = worker_run(&a->sp, &a->cfg, w->names, w->n);
        _exit(rc);
    }
    w->pid = pid;
    w->started = time(NULL);
}

/* A worker ended: if it did not end well, defer what it left claimed. */
static void reap(struct agent *a)
{
    int status, i;
    pid_t pid;

    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        for (i = 0; i < a->nw; i++) {
            struct worker *w = &a->w[i];
            char why[128], err[QUEUE_ERR_MAX];
            struct qlist l = {NULL, 0, 0};
            size_t k;

            if (w->pid != pid)
                continue;
            w->pid = 0;
            w->n = 0;
            a->dirty = 1;
            if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
                break;
            if (WIFSIGNALED(status))
                snprintf(why, sizeof(why),
                         "4.3.0 delivery process %ld killed by signal %d",
                         (long)pid, WTERMSIG(status));
            else
                snprintf(why, sizeof(why),
                         "4.3.0 delivery process %ld exited with status %d",
                         (long)pid, WEXITSTATUS(status));
            log_warn("%s", why + 6);
            if (queue_list(&a->sp, "out", &a->set, QL_CLAIMED, 0, &l, err,
                           sizeof(err)) != 0)
                log_error("salvage: %s", err);
            for (k = 0; k < l.n; k++)
                if (l.v[k].pid == pid && strcmp(l.v[k].node, a->cfg.node) == 0)
                    worker_salvage(&a->sp, &a->cfg, &l.v[k], why);
            qlist_free(&l);
            break;
        }
    }
}

static int busy_workers(const struct agent *a)
{
    int i, n = 0;

    for (i = 0; i < a->nw; i++)
        n += a->w[i].pid > 0;
    return n;
}

/* Move deferred entries whose time has come (mtime) back to out/. */
static void promote_deferred(struct agent *a, time_t now)
{
    struct qlist l = {NULL, 0, 0};
    char err[QUEUE_ERR_MAX], rel[QFILE_MAX + 64];
    time_t earliest = now + a->cfg.scan_interval;
    size_t i;

    if (queue_list(&a->sp, "deferred", &a->active, QL_READY, 0, &l, err,
                   sizeof(err)) != 0) {
        log_error("%s", err);
        return;
    }
    for (i = 0; i < l.n; i++) {
        struct stat st;
        struct claim c;

        snprintf(rel, sizeof(rel), "deferred/%.2s/%s", l.v[i].hash,
                 l.v[i].name);
        if (fstatat(a->sp.fd, rel, &st, AT_SYMLINK_NOFOLLOW) != 0)
            continue;
        if (st.st_mtime > now) {
            if (st.st_mtime < earliest)
                earliest = st.st_mtime;
            continue;
        }
        if (queue_claim(&a->sp, "deferred", l.v[i].name, &c, err,
                        sizeof(err)) != 0)
            continue;
        if (queue_move(&c, "out", err, sizeof(err)) != 0)
            log_error("%s: %s", l.v[i].name, err);
        else
            a->dirty = 1;
    }
    qlist_free(&l);
    a->next_deferred = earliest;
}

/* Hand the oldest ready entries to idle workers.  Returns entries seen. */
static size_t dispatch(struct agent *a)
{
    size_t per = (size_t)a->cfg.transactions_per_connection, want, k = 0;
    struct qlist l = {NULL, 0, 0};
    char err[QUEUE_ERR_MAX];
    int idle = a->nw - busy_workers(a), j;
    size_t seen;

    if (per > ENTRIES_PER_SESSION_MAX)
        per = ENTRIES_PER_SESSION_MAX; /* each may hold many txns */
    want = (size_t)a->nw * per * 2;
    if (queue_list(&a->sp, "out", &a->active, QL_READY, want, &l, err,
                   sizeof(err)) != 0) {
        log_error("%s", err);
        return 1;
    }
    seen = l.n;
    /* spread the work over the idle workers, oldest first */
    for (j = 0; j < a->nw && idle > 0 && k < l.n; j++) {
        struct worker *w = &a->w[j];
        size_t share;

        if (w->pid > 0)
            continue;
        share = (l.n - k + (size_t)idle - 1) / (size_t)idle;
        if (share > per)
            share = per;
        w->n = 0;
        for (; k < l.n && w->n < share; k++) {
            if (in_flight(a, l.v[k].name))
                continue;
            snprintf(w->names[w->n++], QFILE_MAX, "%s", l.v[k].name);
        }
        if (w->n) {
            start_worker(a, w);
            idle--;
        }
    }
    qlist_free(&l);
    return seen;
}

static void kill_hung_workers(struct agent *a, time_t now)
{
    int i;

    for (i = 0; i < a->nw; i++)
        if (a->w[i].pid > 0 &&
            now - a->w[i].started > a->cfg.session_time_limit + 30)
            kill(a->w[i].pid, SIGKILL);
}

static void drain_fd(int fd)
{
    char buf[4096];

    while (fd >= 0 && read(fd, buf, sizeof(buf)) > 0)
        ;
}

static void wait_for_work(struct agent *a, time_t now)
{
    struct pollfd p[2];
    time_t until =
        a->next_scan < a->next_deferred ? a->next_scan : a->next_deferred;
    int ms = until > now ? (int)(until - now) * 1000 : 0;

    if (a->cluster) {
        int lms = (int)((a->lease.next_tick - lease_now()) * 1000) + 1;
        if (lms < ms)
            ms = lms < 0 ? 0 : lms;
    }

    if (a->once && ms > 200)
        ms = 200;
    p[0].fd = a->wake[0];
    p[0].events = POLLIN;
    p[1].fd = a->inotify_fd;
    p[1].events = POLLIN;
    if (poll(p, a->inotify_fd >= 0 ? 2 : 1, ms) > 0) {
        if (p[0].revents)
            drain_fd(a->wake[0]);
        if (a->inotify_fd >= 0 && p[1].revents) {
            drain_fd(a->inotify_fd);
            a->dirty = 1;
        }
    }
}

static void setup_signals(struct agent *a)
{
    struct sigaction sa;

    if (pipe2(a->wake, O_NONBLOCK | O_CLOEXEC) != 0)
        log_fatal(EX_OSERR, "pipe: %s", strerror(errno));
    wake_fd = a->wake[1];
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    sigaction(SIGCHLD, &sa, NULL);
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL); /* a reset during DATA must not kill us */
}

static void make_workers(struct agent *a)
{
    int i;

    a->nw = a->cfg.connections;
    if (!(a->w = calloc((size_t)a->nw, sizeof(*a->w))))
        log_fatal(EX_OSERR, "out of memory");
    for (i = 0; i < a->nw; i++)
        if (!(a->w[i].names = calloc(ENTRIES_PER_SESSION_MAX, QFILE_MAX)))
            log_fatal(EX_OSERR, "out of memory");
}

static void reload(struct agent *a)
{
    char err[CONFIG_ERR_MAX];
    struct mmq_config fresh;

    got_hup = 0;
    if (log_reopen(err, sizeof(err)) != 0)
        log_error("SIGHUP: %s", err);
    if (config_load(a->config_path, &fresh, err, sizeof(err)) != 0) {
        log_error("SIGHUP: keeping the old configuration: %s", err);
        config_free(&fresh);
        return;
    }
    if (fresh.slices != a->cfg.slices ||
        fresh.connections != a->cfg.connections ||
        strcmp(fresh.spool, a->cfg.spool) != 0)
        log_warn("SIGHUP: slices, connections and spool take effect at "
                 "restart only");
    fresh.slices = a->cfg.slices;
    fresh.connections = a->cfg.connections;
    free(fresh.spool);
    fresh.spool = strdup(a->cfg.spool);
    if (smtp_setup(&fresh, err, sizeof(err)) != 0) {
        log_error("SIGHUP: keeping the old configuration: %s", err);
        config_free(&fresh);
        smtp_setup(&a->cfg, err, sizeof(err));
        return;
    }
    config_free(&a->cfg);
    a->cfg = fresh;
    a->sp.cfg = &a->cfg;
    if (log_open_file(a->cfg.log_file, err, sizeof(err)) != 0)
        log_error("SIGHUP: %s", err);
    log_info("configuration reloaded");
}

static void shutdown_workers(struct agent *a)
{
    int i;

    for (i = 0; i < a->nw; i++)
        if (a->w[i].pid > 0)
            kill(a->w[i].pid, SIGTERM);
    /* Each finishes the transaction in flight, records it and exits. */
    for (;;) {
        struct pollfd p = {a->wake[0], POLLIN, 0};

        reap(a);
        if (busy_workers(a) == 0)
            break;
        if (poll(&p, 1, 200) > 0)
            drain_fd(a->wake[0]);
    }
}

int main(int argc, char **argv)
{
    struct agent a;
    char err[QUEUE_ERR_MAX];

    memset(&a, 0, sizeof(a));
    a.inotify_fd = -1;
    log_init(argv[0], LOG_STDERR_AUTO);
    parse_args(&a, argc, argv);
    load_config(&a);
    if (spool_open(&a.sp, &a.cfg, err, sizeof(err)) != 0)
        log_fatal(EX_TEMPFAIL, "%s", err);
    lock_slices(&a);
    setup_signals(&a);
    recover(&a, 1);
    a.next_recover = time(NULL) + 60;
    make_workers(&a);
    worker_lease = a.cluster ? &a.lease : NULL;
    watch_buckets(&a);
    log_info("delivering slices %s of %d to %s:%d with %d connections",
             a.slices_arg ? a.slices_arg : a.cfg.delivery_slices, a.cfg.slices,
             a.cfg.relay_host, a.cfg.relay_port, a.nw);

    a.dirty = 1;
    while (!got_term) {
        time_t now = time(NULL);
        size_t seen = 0;

        if (got_hup)
            reload(&a);
        if (a.cluster && lease_now() >= a.lease.next_tick)
            lease_round(&a);
        if (!a.cluster)
            spool_watch_overlap(&a.sp, "deliver", &a.set, &a.next_overlap,
                                &a.overlapping);
        reap(&a);
        kill_hung_workers(&a, now);
        if (now >= a.next_deferred)
            promote_deferred(&a, now);
        if (now >= a.next_recover) {
            /* claims of processes of this node that died without our
             * knowing (an earlier agent's workers, killed with it) */
            reap(&a); /* our own dead workers are salvaged, not restored */
            recover(&a, 0);
            a.next_recover = now + 60;
        }
        if ((a.dirty || now >= a.next_scan) && busy_workers(&a) < a.nw) {
            a.dirty = 0;
            seen = dispatch(&a);
            a.next_scan = now + a.cfg.scan_interval;
        }
        if (a.once && seen == 0 && busy_workers(&a) == 0 && !a.cluster) {
            reap(&a);
            if (busy_workers(&a) == 0 && dispatch(&a) == 0)
                break;
        }
        wait_for_work(&a, time(NULL));
    }
    shutdown_workers(&a);
    if (a.cluster)
        lease_close(&a.lease); /* nothing in flight: hand every slice on */
    log_info("stopped");
    for (int i = 0; i < a.nw; i++)
        free(a.w[i].names);
    free(a.w);
    if (a.inotify_fd >= 0)
        close(a.inotify_fd);
    slice_set_free(&a.set);
    slice_set_free(&a.active);
    spool_close(&a.sp);
    config_free(&a.cfg);
    return EX_OK;
}
