/*
 * mmqctl - the postmaster's tool for the mmq spool.
 *
 *     mmqctl [-c FILE] init [-u USER] [-g GROUP]
 *     mmqctl [-c FILE] queue [QUEUE...]
 *     mmqctl [-c FILE] recover
 *
 * init creates (or repairs) the spool directory tree with safe modes and
 * ownership; queue lists entries one line each, oldest first, with a
 * summary like mailq's; recover restores entries left claimed by dead
 * processes of this node and removes orphaned temporary files (every
 * runner does the same at start-up).
 */
#include "autoconf.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "envelope.h"
#include "log.h"
#include "queue.h"

static void usage(void)
{
    fprintf(stderr, "usage: mmqctl [-c FILE] init [-u USER] [-g GROUP]\n"
                    "       mmqctl [-c FILE] queue [QUEUE...]\n"
                    "       mmqctl [-c FILE] recover\n");
    exit(EX_USAGE);
}

static void load_config(const char *path, struct mmq_config *cfg)
{
    char err[CONFIG_ERR_MAX];

    if (config_load(path, cfg, err, sizeof(err)) != 0)
        log_fatal(EX_CONFIG, "%s", err);
}

static void open_spool(const struct mmq_config *cfg, struct spool *sp)
{
    char err[QUEUE_ERR_MAX];

    if (spool_open(sp, cfg, err, sizeof(err)) != 0)
        log_fatal(EX_TEMPFAIL, "%s", err);
}

static int cmd_init(const struct mmq_config *cfg, int argc, char **argv)
{
    uid_t uid = (uid_t)-1;
    gid_t gid = (gid_t)-1;
    char err[QUEUE_ERR_MAX];
    int c;

    optind = 1;
    while ((c = getopt(argc, argv, "u:g:")) != -1) {
        if (c == 'u') {
            struct passwd *pw = getpwnam(optarg);
            if (!pw)
                log_fatal(EX_NOUSER, "init: no such user: %s", optarg);
            uid = pw->pw_uid;
            if (gid == (gid_t)-1)
                gid = pw->pw_gid;
        } else if (c == 'g') {
            struct group *gr = getgrnam(optarg);
            if (!gr)
                log_fatal(EX_NOUSER, "init: no such group: %s", optarg);
            gid = gr->gr_gid;
        } else {
            usage();
        }
    }
    if (spool_init(cfg->spool, uid, gid, err, sizeof(err)) != 0)
        log_fatal(EX_CANTCREAT, "init: %s", err);
    printf("spool %s ready\n", cfg->spool);
    return EX_OK;
}

static void print_entry(struct spool *sp, const char *queue,
                        const struct qname *qn, long long *bytes)
{
    char rel[QFILE_MAX + 64], when[32], err[QUEUE_ERR_MAX];
    struct envelope env;
    struct tm tm;
    time_t t = (time_t)qn->sec;
    off_t off;
    int fd;
    char claim[128] = "";

    if (qn->kind == QN_CLAIMED)
        snprintf(claim, sizeof(claim), "#%s#%ld#%llu", qn->node, (long)qn->pid,
                 qn->start);
    snprintf(rel, sizeof(rel), "%s/%.2s/%s%s%s%s", queue, qn->hash, qn->name,
             qn->origin[0] ? "@" : "", qn->origin, claim);
    localtime_r(&t, &tm);
    strftime(when, sizeof(when), "%a %b %e %H:%M:%S", &tm);
    fd = openat(sp->fd, rel, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 || envelope_read(fd, &env, &off, err, sizeof(err)) != 0) {
        printf("%-58s %-8s %s  (unreadable: %s)\n", qn->name, queue, when,
               fd < 0 ? strerror(errno) : err);
        if (fd >= 0)
            close(fd);
        return;
    }
    close(fd);
    *bytes += env.size;
    printf("%-58s %-8s %8lld %s  %s/%s <%s> rcpts=%zu attempts=%d\n", qn->name,
           queue, (long long)env.size, when, env.list, role_name(env.role),
           env.sender, env.nrcpt, env.attempts);
    if (env.last_error)
        printf("%58s (%s)\n", "", env.last_error);
    envelope_free(&env);
}

static int cmd_queue(struct spool *sp, int argc, char **argv)
{
    char err[QUEUE_ERR_MAX];
    long long bytes = 0;
    size_t total = 0, i;
    int q, j;

    for (j = 1; j < argc; j++)
        if (!queue_valid(argv[j]))
            log_fatal(EX_USAGE, "queue: unknown queue \"%s\"", argv[j]);
    for (q = 0; queue_names[q]; q++) {
        struct qlist l = {NULL, 0, 0};
        int wanted = argc <= 1;

        for (j = 1; j < argc; j++)
            wanted |= strcmp(argv[j], queue_names[q]) == 0;
        if (!wanted)
            continue;
        if (queue_list(sp, queue_names[q], NULL, QL_READY | QL_CLAIMED, 0, &l,
                       err, sizeof(err)) != 0)
            log_fatal(EX_TEMPFAIL, "queue: %s", err);
        for (i = 0; i < l.n; i++)
            print_entry(sp, queue_names[q], &l.v[i], &bytes);
        total += l.n;
        qlist_free(&l);
    }
    if (total == 0)
        printf("Mail queue is empty\n");
    else
        printf("-- %lld Kbytes in %zu Request%s.\n", (bytes + 1023) / 1024,
               total, total == 1 ? "" : "s");
    return EX_OK;
}

static int cmd_recover(struct spool *sp)
{
    struct recover_stats st = {0, 0, 0};
    char err[QUEUE_ERR_MAX];
    int q;

    for (q = 0; queue_names[q]; q++)
        if (queue_recover(sp, queue_names[q], NULL, &st, err, sizeof(err)))
            log_fatal(EX_TEMPFAIL, "recover: %s", err);
    if (spool_clean_tmp(sp, sp->cfg->tmp_max_age, &st, err, sizeof(err)))
        log_fatal(EX_TEMPFAIL, "recover: %s", err);
    printf("restored %u, moved to bad %u, temporary files removed %u\n",
           st.restored, st.to_bad, st.tmp_removed);
    return EX_OK;
}

int main(int argc, char **argv)
{
    const char *config_path = NULL;
    struct mmq_config cfg;
    struct spool sp;
    const char *verb;
    int c, rc;

    log_init(argv[0], LOG_STDERR_ALWAYS);
    while ((c = getopt(argc, argv, "+c:")) != -1) {
        if (c == 'c')
            config_path = optarg;
        else
            usage();
    }
    if (optind >= argc)
        usage();
    verb = argv[optind];
    argc -= optind;
    argv += optind;
    if (strcmp(verb, "init") != 0 && strcmp(verb, "queue") != 0 &&
        strcmp(verb, "recover") != 0)
        usage();
    load_config(config_path, &cfg);
    log_set_verbose(cfg.verbose);
    if (strcmp(verb, "init") == 0) {
        rc = cmd_init(&cfg, argc, argv);
        config_free(&cfg);
        return rc;
    }
    open_spool(&cfg, &sp);
    if (strcmp(verb, "queue") == 0)
        rc = cmd_queue(&sp, argc, argv);
    else if (strcmp(verb, "recover") == 0)
        rc = cmd_recover(&sp);
    else
        usage();
    spool_close(&sp);
    config_free(&cfg);
    return rc;
}
