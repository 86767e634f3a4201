/*
 * mmq-filter - take one message from the MTA and queue it, durably.
 *
 * The MTA (Postfix pipe(8), Exim's pipe transport) runs us once per message
 * with the message on stdin:
 *
 *     mmq-filter [-c FILE] [-f SENDER] [-r RECIPIENT] [-R ROLE]
 *                [-q MTA_QUEUE_ID] LIST
 *
 * We answer with a sysexits(3) code, and the MTA acts on it:
 *   0  EX_OK         the entry is complete and fsync()ed in the spool
 *   65 EX_DATAERR    empty message (permanent)
 *   67 EX_NOUSER     no such list (permanent)
 *   69 EX_UNAVAILABLE message larger than max_message_size (permanent;
 *                    "5.3.4 ..." on stdout becomes the bounce's status)
 *   75 EX_TEMPFAIL   anything else: the MTA keeps the message and retries.
 * A permanent code is returned only for a fault of the message itself; a
 * fault of ours (configuration, spool, disk, a bug) is always 75, because
 * any other code would make the MTA bounce or drop mail that we could
 * have taken an hour later.
 *
 * No privileges: we run as the MTA's pipe user, who must own the spool or
 * be in its group (see mmq-filter(8)).
 */
#include "autoconf.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <sysexits.h>
#include <unistd.h>

#include "config.h"
#include "counters.h"
#include "envelope.h"
#include "list.h"
#include "log.h"
#include "queue.h"

#define SENDER_MAX 2048
#define MTA_ID_MAX 256
#define READ_CHUNK 65536

struct options {
    const char *config;
    const char *sender;
    const char *rcpt;
    const char *role;
    const char *mta_id; /* the MTA's queue ID, for following a message */
    const char *list;
};

/* The MTA's queue ID (-q), named in every refusal so that a deferred or
 * bounced message can be found in our log from the MTA's. */
static const char *mta_id;

/* The entry being written, for the signal handler's cleanup. */
static struct queue_file *volatile current;

/* Tell the MTA (stdout, which it puts into the DSN) and the log, and exit. */
static void __attribute__((noreturn, format(printf, 3, 4)))
refuse(int status, const char *dsn_text, const char *fmt, ...)
{
    char why[1024];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    if (status == EX_TEMPFAIL)
        log_warn("%s%s%s%s; exit %d (the MTA will retry)",
                 mta_id ? "mta_queue_id=" : "", mta_id ? mta_id : "",
                 mta_id ? ": " : "", why, status);
    else
        log_error("%s%s%s%s; exit %d", mta_id ? "mta_queue_id=" : "",
                  mta_id ? mta_id : "", mta_id ? ": " : "", why, status);
    if (dsn_text)
        printf("%s\n", dsn_text);
    fflush(stdout);
    exit(status);
}

static void on_signal(int sig)
{
    /* Async-signal-safe only: unlink our temporary file and go. */
    queue_file_unlink_signal_safe(current);
    (void)sig;
    _exit(EX_TEMPFAIL);
}

/*
 * The signal handler must see `current` and the temporary file agree:
 * signals are held while they change, and from the commit on, because
 * once the entry is renamed into the queue an exit 75 would make the MTA
 * deliver it a second time.
 */
static void hold_signals(int hold)
{
    sigset_t set;

    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGALRM);
    sigprocmask(hold ? SIG_BLOCK : SIG_UNBLOCK, &set, NULL);
}

/* Throw the entry being written away (temporary file removed). */
static void drop_entry(struct queue_file *qf)
{
    hold_signals(1);
    current = NULL;
    queue_file_abort(qf);
    hold_signals(0);
}

static void arm_signals(int timeout)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    sigaction(SIGALRM, &sa, NULL); /* a hang is not a crash: time-limit it */
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);
    alarm((unsigned)timeout);
}

static void usage(void)
{
    refuse(EX_TEMPFAIL, "4.3.5 mmq-filter is misconfigured",
           "usage: mmq-filter [-c FILE] [-f SENDER] [-r RECIPIENT] "
           "[-R post|bounces|owner|request] [-q MTA_QUEUE_ID] [-V] LIST");
}

static void parse_args(int argc, char **argv, struct options *o)
{
    static const struct option longopts[] = {{"version", 0, NULL, 'V'},
                                             {NULL, 0, NULL, 0}};
    int c;

    memset(o, 0, sizeof(*o));
    while ((c = getopt_long(argc, argv, "c:f:r:R:q:V", longopts, NULL)) != -1) {
        switch (c) {
        case 'c':
            o->config = optarg;
            break;
        case 'f':
            o->sender = optarg;
            break;
        case 'r':
            o->rcpt = optarg;
            break;
        case 'R':
            o->role = optarg;
            break;
        case 'q':
            o->mta_id = optarg;
            break;
        case 'V':
            log_version_exit();
        default:
            usage();
        }
    }
    if (optind != argc - 1)
        usage();
    o->list = argv[optind];
}

static void load_config(const struct options *o, struct mmq_config *cfg)
{
    char err[CONFIG_ERR_MAX];

    if (config_load(o->config, cfg, err, sizeof(err)) != 0)
        refuse(EX_TEMPFAIL, "4.3.5 mail list configuration error",
               "configuration: %s", err);
    log_set_verbose(cfg->verbose);
    if (log_open_file(cfg->log_file, err, sizeof(err)) != 0)
        log_error("%s", err); /* the message is still taken */
}

/* Which list, and as which role: from -R, the recipient, or a suffix. */
static void resolve_list(const struct options *o, const struct mmq_config *cfg,
                         char *list, enum mmq_role *role)
{
    char stem[LIST_NAME_MAX + 1];
    enum mmq_role suffix_role;
    int have_role = 0, ex;

    if (list_name_normalise(o->list, list) != 0)
        refuse(EX_NOUSER, "5.1.1 no such mailing list",
               "invalid list name \"%.80s\"", o->list);
    *role = ROLE_POST;
    if (o->role) {
        if (role_parse(o->role, role) != 0)
            usage();
        have_role = 1;
    }
    ex = list_exists(cfg, list);
    if (ex == 0 && list_split_suffix(list, stem, &suffix_role) &&
        (ex = list_exists(cfg, stem)) == 1) {
        /* invoked with the full local part, e.g. "announce-bounces" */
        strcpy(list, stem);
        if (!have_role)
            *role = suffix_role, have_role = 1;
    }
    if (ex < 0)
        refuse(EX_TEMPFAIL, "4.3.0 mail list directory unavailable",
               "list %s: cannot check %s: %s", list, cfg->lists_dir,
               strerror(errno));
    if (ex == 0) {
        printf("5.1.1 <%s>: no such mailing list here\n", list);
        refuse(EX_NOUSER, NULL, "list %s: no such list in %s", list,
               cfg->lists_dir);
    }
    if (!have_role && o->rcpt &&
        list_role_of_recipient(list, o->rcpt, role) != 0)
        *role = ROLE_POST; /* an alias of the list: take it as a post */
}

static void open_spool(const struct mmq_config *cfg, struct spool *sp)
{
    char err[QUEUE_ERR_MAX];

    if (spool_open(sp, cfg, err, sizeof(err)) != 0)
        refuse(EX_TEMPFAIL, "4.3.0 mail list spool unavailable", "%s", err);
}

/* Read at least until a line end, EOF or a full buffer; bytes kept. */
static size_t read_first_block(char *buf, size_t cap, int *eof)
{
    size_t have = 0;

    *eof = 0;
    while (have < cap && !memchr(buf, '\n', have)) {
        ssize_t n = read(STDIN_FILENO, buf + have, cap - have);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            refuse(EX_TEMPFAIL, "4.3.0 cannot read the message",
                   "read from the MTA: %s", strerror(errno));
        }
        if (n == 0) {
            *eof = 1;
            break;
        }
        have += (size_t)n;
    }
    return have;
}

/* A leading mbox "From " line is the MTA's, not the message's: record it. */
static size_t take_mbox_from(struct envelope *env, const char *buf, size_t len)
{
    const char *nl;
    size_t n;
    char line[1024];

    if (len < 5 || memcmp(buf, "From ", 5) != 0 ||
        !(nl = memchr(buf, '\n', len)))
        return 0;
    n = (size_t)(nl - buf);
    if (n > 0 && buf[n - 1] == '\r')
        n--;
    if (n >= sizeof(line) || memchr(buf, 0, n))
        return 0; /* not a plausible From_ line: leave it in the message */
    memcpy(line, buf, n);
    line[n] = 0;
    if (envelope_set(&env->mbox_from, line) != 0)
        refuse(EX_TEMPFAIL, "4.3.0 out of memory", "out of memory");
    return (size_t)(nl - buf) + 1;
}

static void too_big(const char *list, int64_t max)
{
    char buf[READ_CHUNK];

    /* Drain the rest so the MTA sees a clean end and reads our status. */
    while (read(STDIN_FILENO, buf, sizeof(buf)) > 0)
        ;
    printf("5.3.4 Message too big for list %s (limit %lld bytes)\n", list,
           (long long)max);
    refuse(EX_UNAVAILABLE, NULL, "list %s: message larger than %lld bytes",
           list, (long long)max);
}

/* Write envelope and message to a new entry and make it durable. */
static int enqueue_message(struct spool *sp, struct envelope *env,
                           int64_t max_size, char *name)
{
    static char buf[READ_CHUNK];
    char err[QUEUE_ERR_MAX];
    const char *queue = env->role == ROLE_BOUNCES ? "bounces" : "in";
    size_t len, skip;
    int eof;
    struct queue_file *qf;

    len = read_first_block(buf, sizeof(buf), &eof);
    skip = take_mbox_from(env, buf, len);
    if (len == skip && eof)
        refuse(EX_DATAERR, "5.6.0 empty message", "list %s: empty message",
               env->list);
    hold_signals(1);
    if (!(qf = queue_file_create(sp, queue, err, sizeof(err))))
        refuse(EX_TEMPFAIL, "4.3.0 mail list spool unavailable", "%s", err);
    current = qf;
    hold_signals(0);
    if (queue_file_begin(qf, env) != 0 ||
        queue_file_write(qf, buf + skip, len - skip) != 0)
        goto io_error;
    while (!eof) {
        ssize_t n = read(STDIN_FILENO, buf, sizeof(buf));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            snprintf(err, sizeof(err), "read from the MTA: %s",
                     strerror(errno));
            goto fail;
        }
        if (n == 0)
            break;
        if (queue_file_size(qf) + n > max_size) {
            drop_entry(qf);
            too_big(env->list, max_size);
        }
        if (queue_file_write(qf, buf, (size_t)n) != 0)
            goto io_error;
    }
    if (queue_file_size(qf) == 0) {
        drop_entry(qf);
        refuse(EX_DATAERR, "5.6.0 empty message", "list %s: empty message",
               env->list);
    }
    if (queue_file_size(qf) > max_size) {
        drop_entry(qf);
        too_big(env->list, max_size);
    }
    env->size = queue_file_size(qf);
    /* From here on no signal may turn a queued entry into an exit 75;
     * commit cleans up after itself on failure. */
    hold_signals(1);
    current = NULL;
    if (queue_file_commit(qf, name, err, sizeof(err)) != 0)
        refuse(EX_TEMPFAIL, "4.3.0 cannot queue the message", "list %s: %s",
               env->list, err);
    return 0;
io_error:
    snprintf(err, sizeof(err), "%s", queue_file_error(qf));
fail:
    drop_entry(qf);
    refuse(EX_TEMPFAIL, "4.3.0 cannot queue the message", "list %s: %s",
           env->list, err);
}

int main(int argc, char **argv)
{
    struct options opt;
    struct mmq_config cfg;
    struct spool spool;
    struct envelope env;
    struct timeval now;
    char list[LIST_NAME_MAX + 1], name[QNAME_LEN + 1];
    enum mmq_role role;

    log_init(argv[0], LOG_STDERR_AUTO);
    parse_args(argc, argv, &opt);
    if (opt.sender && strlen(opt.sender) > SENDER_MAX)
        refuse(EX_DATAERR, "5.1.7 invalid sender address",
               "sender address longer than %d bytes", SENDER_MAX);
    if (opt.mta_id && (!*opt.mta_id || strlen(opt.mta_id) > MTA_ID_MAX))
        opt.mta_id = NULL; /* not worth refusing a message over */
    mta_id = opt.mta_id;
    load_config(&opt, &cfg);
    resolve_list(&opt, &cfg, list, &role);
    open_spool(&cfg, &spool);
    arm_signals(cfg.filter_timeout);

    gettimeofday(&now, NULL);
    envelope_init(&env);
    env.role = role;
    env.arrival_sec = now.tv_sec;
    env.arrival_usec = (int32_t)now.tv_usec;
    if (envelope_set(&env.list, list) ||
        envelope_set(&env.sender, opt.sender ? opt.sender : "") ||
        envelope_set(&env.mta_queue_id, opt.mta_id) ||
        (opt.rcpt && envelope_add_rcpt(&env, opt.rcpt, NULL)))
        refuse(EX_TEMPFAIL, "4.3.0 out of memory", "out of memory");

    enqueue_message(&spool, &env, cfg.max_message_size, name);

    log_info("%s: %s%s%slist=%s role=%s from=<%s> size=%lld queue=%s", name,
             opt.mta_id ? "mta_queue_id=" : "", opt.mta_id ? opt.mta_id : "",
             opt.mta_id ? " " : "", list, role_name(role), env.sender,
             (long long)env.size, role == ROLE_BOUNCES ? "bounces" : "in");
    if (role == ROLE_BOUNCES) {
        uint64_t d[CNT_N] = {0};
        char err[QUEUE_ERR_MAX];

        d[CNT_BOUNCES_IN] = 1; /* monitoring only: never fails the message */
        if (counters_add(&spool, d, err, sizeof(err)) != 0)
            log_warn("counters: %s", err);
    }
    envelope_free(&env);
    spool_close(&spool);
    config_free(&cfg);
    return EX_OK;
}
