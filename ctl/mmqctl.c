/*
 * mmqctl - the postmaster's tool for the mmq spool.
 *
 *     mmqctl [-c FILE] init [-u USER] [-g GROUP]
 *     mmqctl [-c FILE] queue [QUEUE...] [--list L] [--slice SET] [--json]
 *     mmqctl [-c FILE] show [--envelope] [--headers] [--body] ID
 *     mmqctl [-c FILE] retry ID... | --all [--list L]
 *     mmqctl [-c FILE] hold ID...
 *     mmqctl [-c FILE] release ID...
 *     mmqctl [-c FILE] delete [-y] ID... | --all --queue Q [--list L]
 *     mmqctl [-c FILE] requeue ID...
 *     mmqctl [-c FILE] stats [QUEUE...] [--json | --prometheus]
 *     mmqctl [-c FILE] check [--no-agents] [--deferred-age SECONDS]
 *     mmqctl [-c FILE] recover
 *     mmqctl [-c FILE] slices [--json]
 *     mmqctl [-c FILE] members LIST [--json]
 *     mmqctl [-c FILE] members LIST enable|disable|remove ADDRESS...
 *     mmqctl [-c FILE] members LIST add|remove ADDRESS... [--notify]
 *     mmqctl [-c FILE] members LIST add|approve|reject ADDRESS...
 *     mmqctl [-c FILE] members LIST --pending [--json]
 *     mmqctl [-c FILE] bounces [LIST] [--json]
 *
 * The verbs only read the spool (queue, show, stats, check) or act on
 * entries through shared/qinfo.c, which claims every entry exactly as a
 * runner does before touching it: mmqctl is safe to run while mmq-process
 * and mmq-deliver run, on this node or others.  An entry claimed by
 * someone else is reported "busy or gone" (exit 75) and left alone.
 *
 * Exit status: the first failure's sysexits code (see mmqctl(8)).
 */
#include "autoconf.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <inttypes.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "counters.h"
#include "envelope.h"
#include "listdef.h"
#include "log.h"
#include "members.h"
#include "subs.h"
#include "token.h"
#include "qcheck.h"
#include "qinfo.h"
#include "queue.h"
#include "slices.h"

struct ctl {
    struct mmq_config cfg;
    struct spool sp;
    struct qentries all; /* every entry of the spool, sorted by name */
    int rc;              /* exit status: the first failure's */
};

static void usage(void) __attribute__((noreturn));

static void usage(void)
{
    fprintf(stderr,
            "usage: mmqctl [-V] [-c FILE] init [-u USER] [-g GROUP]\n"
            "       mmqctl [-c FILE] queue [QUEUE...] [--list L] "
            "[--slice SET] [--json]\n"
            "       mmqctl [-c FILE] show [--envelope] [--headers] [--body] "
            "ID\n"
            "       mmqctl [-c FILE] retry ID... | --all [--list L]\n"
            "       mmqctl [-c FILE] hold ID...\n"
            "       mmqctl [-c FILE] release ID...\n"
            "       mmqctl [-c FILE] delete [-y] ID... | --all --queue Q "
            "[--list L]\n"
            "       mmqctl [-c FILE] requeue ID...\n"
            "       mmqctl [-c FILE] stats [QUEUE...] [--json | --prometheus]\n"
            "       mmqctl [-c FILE] check [--no-agents] [--deferred-age "
            "SECONDS]\n"
            "       mmqctl [-c FILE] recover\n"
            "       mmqctl [-c FILE] slices [--json]\n"
            "       mmqctl [-c FILE] members LIST [--json]\n"
            "       mmqctl [-c FILE] members LIST enable|disable|remove "
            "ADDRESS...\n"
            "       mmqctl [-c FILE] members LIST add|approve|reject "
            "ADDRESS...\n"
            "       mmqctl [-c FILE] members LIST add|remove ADDRESS... "
            "--notify\n"
            "       mmqctl [-c FILE] members LIST --pending [--json]\n"
            "       mmqctl [-c FILE] bounces [LIST] [--json]\n");
    exit(EX_USAGE);
}

static void set_rc(struct ctl *x, int rc)
{
    if (x->rc == EX_OK)
        x->rc = rc;
}

/* ------------------------------------------------------------- printing */

/* Text for a terminal: bytes outside 0x20..0x7e, and \, as \xHH;
 * truncated to fit out. */
static void safe_text(char *out, size_t outlen, const char *s)
{
    size_t n = 0;

    for (; *s && n + 5 < outlen; s++) {
        unsigned char c = (unsigned char)*s;

        if (c < 0x20 || c > 0x7e || c == '\\')
            n += (size_t)snprintf(out + n, outlen - n, "\\x%02x", c);
        else
            out[n++] = (char)c;
    }
    out[n] = 0;
}

static void put_safe(FILE *fp, const char *s)
{
    char text[4096];

    safe_text(text, sizeof(text), s);
    fputs(text, fp);
}

/* A JSON string; bytes above 0x7e are given one each as \u0080..\u00ff,
 * so the output is valid (ASCII) JSON whatever the envelope holds. */
static void put_json_str(FILE *fp, const char *s)
{
    if (!s) {
        fputs("null", fp);
        return;
    }
    putc('"', fp);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;

        if (c == '"' || c == '\\')
            fprintf(fp, "\\%c", c);
        else if (c < 0x20 || c > 0x7e)
            fprintf(fp, "\\u%04x", c);
        else
            putc(c, fp);
    }
    putc('"', fp);
}

static void put_json_key(FILE *fp, const char *key, const char *val, int comma)
{
    fprintf(fp, "%s\"%s\":", comma ? "," : "", key);
    put_json_str(fp, val);
}

static void fmt_time(char *out, size_t outlen, int64_t t)
{
    time_t tt = (time_t)t;
    struct tm tm;

    if (!localtime_r(&tt, &tm) ||
        strftime(out, outlen, "%Y-%m-%dT%H:%M:%S", &tm) == 0)
        snprintf(out, outlen, "%lld", (long long)t);
}

/* The short ID of entry i of the whole spool. */
static void short_id(const struct ctl *x, size_t i, char *out, size_t outlen)
{
    size_t n = qentries_short_len(&x->all, i);

    snprintf(out, outlen, "%.*s", (int)n, x->all.v[i].qn.name);
}

/* ---------------------------------------------------------- the spool */

static void load_config(const char *path, struct mmq_config *cfg)
{
    char err[CONFIG_ERR_MAX];

    if (config_load(path, cfg, err, sizeof(err)) != 0)
        log_fatal(EX_CONFIG, "%s", err);
}

static void open_spool(struct ctl *x)
{
    char err[QUEUE_ERR_MAX];

    if (spool_open(&x->sp, &x->cfg, err, sizeof(err)) != 0)
        log_fatal(errno == ENOENT ? EX_NOINPUT : EX_TEMPFAIL, "%s", err);
}

static void scan_spool(struct ctl *x)
{
    char err[QUEUE_ERR_MAX];

    if (qentries_scan(&x->sp, NULL, NULL, &x->all, err, sizeof(err)) != 0)
        log_fatal(EX_TEMPFAIL, "%s", err);
}

/* ------------------------------------------------------------- options */

enum {
    OPT_JSON = 1000,
    OPT_LIST,
    OPT_SLICE,
    OPT_ALL,
    OPT_QUEUE,
    OPT_ENVELOPE,
    OPT_HEADERS,
    OPT_BODY,
    OPT_NO_AGENTS,
    OPT_DEFERRED_AGE,
    OPT_PROMETHEUS,
    OPT_PENDING,
    OPT_NOTIFY
};

static const struct option long_opts[] = {
    {"json", no_argument, NULL, OPT_JSON},
    {"list", required_argument, NULL, OPT_LIST},
    {"slice", required_argument, NULL, OPT_SLICE},
    {"all", no_argument, NULL, OPT_ALL},
    {"queue", required_argument, NULL, OPT_QUEUE},
    {"envelope", no_argument, NULL, OPT_ENVELOPE},
    {"headers", no_argument, NULL, OPT_HEADERS},
    {"body", no_argument, NULL, OPT_BODY},
    {"no-agents", no_argument, NULL, OPT_NO_AGENTS},
    {"deferred-age", required_argument, NULL, OPT_DEFERRED_AGE},
    {"prometheus", no_argument, NULL, OPT_PROMETHEUS},
    {"pending", no_argument, NULL, OPT_PENDING},
    {"notify", no_argument, NULL, OPT_NOTIFY},
    {"yes", no_argument, NULL, 'y'},
    {NULL, 0, NULL, 0}};

struct opts {
    int json, all, yes, no_agents, prometheus, pending, notify;
    int parts; /* show: 1 envelope, 2 headers, 4 body */
    const char *list, *slice, *queue;
    const char *deferred_age; /* check: in seconds */
    char **args;              /* the operands */
    int nargs;
};

/* Parse the options of a verb; only those in allowed (their OPT_ or
 * short values, 0-terminated) are accepted. */
static void parse_opts(int argc, char **argv, const int *allowed,
                       struct opts *o)
{
    int c, k, ok;

    memset(o, 0, sizeof(*o));
    optind = 0; /* glibc: start afresh (with permutation) */
    while ((c = getopt_long(argc, argv, "y", long_opts, NULL)) != -1) {
        for (ok = 0, k = 0; allowed[k]; k++)
            ok |= allowed[k] == c;
        if (!ok)
            usage();
        switch (c) {
        case OPT_JSON:
            o->json = 1;
            break;
        case OPT_LIST:
            o->list = optarg;
            break;
        case OPT_SLICE:
            o->slice = optarg;
            break;
        case OPT_ALL:
            o->all = 1;
            break;
        case OPT_QUEUE:
            o->queue = optarg;
            break;
        case OPT_ENVELOPE:
            o->parts |= 1;
            break;
        case OPT_HEADERS:
            o->parts |= 2;
            break;
        case OPT_BODY:
            o->parts |= 4;
            break;
        case OPT_NO_AGENTS:
            o->no_agents = 1;
            break;
        case OPT_DEFERRED_AGE:
            o->deferred_age = optarg;
            break;
        case OPT_PROMETHEUS:
            o->prometheus = 1;
            break;
        case OPT_PENDING:
            o->pending = 1;
            break;
        case OPT_NOTIFY:
            o->notify = 1;
            break;
        case 'y':
            o->yes = 1;
            break;
        default:
            usage();
        }
    }
    o->args = argv + optind;
    o->nargs = argc - optind;
}

static void check_queue_names(char **names, int n)
{
    int i;

    for (i = 0; i < n; i++)
        if (!queue_valid(names[i]))
            log_fatal(EX_USAGE,
                      "unknown queue \"%s\" (one of in, bounces, "
                      "out, deferred, hold, bad)",
                      names[i]);
}

static int queue_wanted(char **names, int n, const char *q)
{
    int i;

    for (i = 0; i < n; i++)
        if (strcmp(names[i], q) == 0)
            return 1;
    return n == 0;
}

/* ------------------------------------------------------------ resolving */

/*
 * The index in x->all of the entry id names, or -1 after reporting why
 * (malformed, no such entry, ambiguous: the candidates are listed).
 */
static long resolve(struct ctl *x, const char *id)
{
    char sid[QNAME_LEN + 1];
    size_t first, count, i;

    if (qentries_find(&x->all, id, &first, &count) != 0) {
        log_error("%s: not a queue ID", id);
        set_rc(x, EX_USAGE);
        return -1;
    }
    if (count == 0) {
        log_error("%s: no such entry", id);
        set_rc(x, EX_NOINPUT);
        return -1;
    }
    if (count > 1 &&
        strcmp(x->all.v[first].qn.name, x->all.v[first + count - 1].qn.name)) {
        log_error("%s: ambiguous ID, %zu entries match:", id, count);
        for (i = first; i < first + count; i++) {
            short_id(x, i, sid, sizeof(sid));
            fprintf(stderr, "  %s  %s/\n", sid, x->all.v[i].queue);
        }
        set_rc(x, EX_USAGE);
        return -1;
    }
    return (long)first;
}

/* ---------------------------------------------------------------- queue */

/* "QUEUE" or "QUEUE@ORIGIN" */
static const char *where_of(const struct qentry *e, char *out, size_t outlen)
{
    snprintf(out, outlen, "%s%s%s", e->queue, e->qn.origin[0] ? "@" : "",
             e->qn.origin);
    return out;
}

/*
 * A post held for moderation (hold/, from in/) has the list address as
 * its one recipient; what the postmaster wants to know is how many it
 * goes to once released: the list's member count, read once per list.
 * -1: the list or its members file cannot be read.
 */
static long held_members(const struct mmq_config *cfg, const char *list)
{
    static struct {
        char *list;
        long n;
    } *cache;
    static size_t ncache;
    char err[QUEUE_ERR_MAX];
    struct listdef ld;
    struct members m;
    void *v;
    long n = -1;

    for (size_t k = 0; k < ncache; k++)
        if (strcmp(cache[k].list, list) == 0)
            return cache[k].n;
    memset(&ld, 0, sizeof(ld));
    memset(&m, 0, sizeof(m));
    if (listdef_load(cfg, list, &ld, err, sizeof(err)) == 0 &&
        members_load(&m, ld.members_path, err, sizeof(err)) == 0)
        n = (long)m.n;
    members_free(&m);
    listdef_free(&ld);
    if ((v = realloc(cache, (ncache + 1) * sizeof(*cache))) != NULL) {
        cache = v;
        if ((cache[ncache].list = strdup(list)) != NULL)
            cache[ncache++].n = n;
    }
    return n;
}

static int is_held_post(const struct qentry *e, const struct envelope *env)
{
    return strcmp(e->queue, "hold") == 0 && strcmp(e->qn.origin, "in") == 0 &&
           env->role == ROLE_POST;
}

static void print_entry_text(const struct ctl *x, size_t i, int width,
                             const struct envelope *env, const struct stat *st)
{
    const struct qentry *e = &x->all.v[i];
    char sid[QNAME_LEN + 1], when[32], next[40], where[32];

    short_id(x, i, sid, sizeof(sid));
    fmt_time(when, sizeof(when), e->qn.sec);
    where_of(e, where, sizeof(where));
    if (strcmp(e->queue, "deferred") == 0)
        fmt_time(next, sizeof(next), (int64_t)st->st_mtime);
    else
        snprintf(next, sizeof(next), "%s",
                 strcmp(e->queue, "out") == 0    ? "now"
                 : strcmp(e->queue, "hold") == 0 ? "held"
                                                 : "-");
    printf("%-*s %-12s %8lld %s ", width, sid, where, (long long)env->size,
           when);
    put_safe(stdout, env->list);
    printf("/%s <", role_name(env->role));
    put_safe(stdout, env->sender);
    if (is_held_post(e, env) && held_members(&x->cfg, env->list) >= 0)
        printf("> members=%ld", held_members(&x->cfg, env->list));
    else
        printf("> rcpts=%zu", env->nrcpt);
    printf(" attempts=%d next=%s", env->attempts, next);
    if (e->qn.kind == QN_CLAIMED)
        printf(" claimed=%s#%ld", e->qn.node, (long)e->qn.pid);
    if (env->last_error) {
        printf(" (");
        put_safe(stdout, env->last_error);
        putchar(')');
    }
    putchar('\n');
}

static void print_entry_json(const struct ctl *x, size_t i,
                             const struct envelope *env, const struct stat *st,
                             const char *error)
{
    const struct qentry *e = &x->all.v[i];
    char sid[QNAME_LEN + 1];

    short_id(x, i, sid, sizeof(sid));
    putchar('{');
    put_json_key(stdout, "id", sid, 0);
    put_json_key(stdout, "name", e->qn.name, 1);
    put_json_key(stdout, "queue", e->queue, 1);
    put_json_key(stdout, "origin", e->qn.origin[0] ? e->qn.origin : NULL, 1);
    if (e->qn.kind == QN_CLAIMED) {
        printf(",\"claimed\":{");
        put_json_key(stdout, "node", e->qn.node, 0);
        printf(",\"pid\":%ld}", (long)e->qn.pid);
    } else {
        printf(",\"claimed\":null");
    }
    printf(",\"arrival\":%lld.%06d", (long long)e->qn.sec, (int)e->qn.usec);
    if (error) {
        put_json_key(stdout, "error", error, 1);
        printf("}\n");
        return;
    }
    printf(",\"size\":%lld", (long long)env->size);
    put_json_key(stdout, "list", env->list, 1);
    put_json_key(stdout, "role", role_name(env->role), 1);
    put_json_key(stdout, "sender", env->sender, 1);
    if (is_held_post(e, env) && held_members(&x->cfg, env->list) >= 0)
        printf(",\"members\":%ld", held_members(&x->cfg, env->list));
    printf(",\"recipients\":%zu,\"attempts\":%d,\"next_attempt\":%lld",
           env->nrcpt, env->attempts,
           (long long)(strcmp(e->queue, "deferred") == 0 ? st->st_mtime
                                                         : env->next_attempt));
    put_json_key(stdout, "last_error", env->last_error, 1);
    printf(",\"recoveries\":%d,\"held\":%lld,\"approved\":%s}\n",
           env->recoveries, (long long)env->held,
           env->approved ? "true" : "false");
}

/* List entry i if it is of o->list (when given): 1 if listed, with its
 * size added to *bytes. */
static int queue_one(struct ctl *x, size_t i, const struct opts *o, int width,
                     long long *bytes)
{
    const struct qentry *e = &x->all.v[i];
    char err[QUEUE_ERR_MAX], sid[QNAME_LEN + 1], where[32];
    struct envelope env;
    struct stat st;
    int rc = qentry_read(&x->sp, e, &env, NULL, &st, NULL, err, sizeof(err));

    if (rc == 1)
        snprintf(err, sizeof(err), "busy or gone");
    if (rc != 0 && o->list)
        return 0;
    if (rc == 0 && o->list && strcmp(env.list, o->list) != 0) {
        envelope_free(&env);
        return 0;
    }
    if (rc != 0 && o->json) {
        print_entry_json(x, i, NULL, NULL, err);
    } else if (rc != 0) {
        short_id(x, i, sid, sizeof(sid));
        printf("%-*s %-12s (unreadable: %s)\n", width, sid,
               where_of(e, where, sizeof(where)), err);
    } else {
        *bytes += env.size;
        if (o->json)
            print_entry_json(x, i, &env, &st, NULL);
        else
            print_entry_text(x, i, width, &env, &st);
        envelope_free(&env);
    }
    return 1;
}

static int cmd_queue(struct ctl *x, int argc, char **argv)
{
    static const int allowed[] = {OPT_JSON, OPT_LIST, OPT_SLICE, 0};
    struct slice_set set = {0, NULL};
    char err[QUEUE_ERR_MAX];
    long long bytes = 0;
    size_t i, total = 0;
    int width = QID_MIN;
    struct opts o;

    parse_opts(argc, argv, allowed, &o);
    check_queue_names(o.args, o.nargs);
    if (o.slice && slice_set_parse(o.slice, (unsigned)x->cfg.slices, &set, err,
                                   sizeof(err)) != 0)
        log_fatal(EX_USAGE, "--slice %s: %s", o.slice, err);
    scan_spool(x);
    for (i = 0; i < x->all.n; i++)
        if ((int)qentries_short_len(&x->all, i) > width)
            width = (int)qentries_short_len(&x->all, i);
    for (i = 0; i < x->all.n; i++)
        if (queue_wanted(o.args, o.nargs, x->all.v[i].queue) &&
            (!o.slice || slice_set_has(&set, x->all.v[i].qn.key)))
            total += (size_t)queue_one(x, i, &o, width, &bytes);
    if (o.slice)
        slice_set_free(&set);
    if (o.json)
        return EX_OK;
    if (total == 0)
        printf("Mail queue is empty\n");
    else
        printf("-- %lld Kbytes in %zu Request%s.\n", (bytes + 1023) / 1024,
               total, total == 1 ? "" : "s");
    return EX_OK;
}

/* ----------------------------------------------------------------- show */

/* Copy len bytes of fd from off to stdout. */
static int copy_out(int fd, off_t off, off_t len)
{
    char buf[65536];

    while (len > 0) {
        size_t want = len > (off_t)sizeof(buf) ? sizeof(buf) : (size_t)len;
        ssize_t n = pread(fd, buf, want, off);

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        if (fwrite(buf, 1, (size_t)n, stdout) != (size_t)n)
            return -1;
        off += n;
        len -= n;
    }
    return 0;
}

/* Length of the header section of the message at off (through the empty
 * line that ends it, or the whole message). */
static off_t header_len(int fd, off_t off, off_t len)
{
    char buf[65536];
    off_t done = 0;
    int prev_nl = 1; /* a message that starts with an empty line */

    while (done < len) {
        size_t want = len - done > (off_t)sizeof(buf) ? sizeof(buf)
                                                      : (size_t)(len - done);
        ssize_t n = pread(fd, buf, want, off + done), k;

        if (n <= 0)
            return len;
        for (k = 0; k < n; k++) {
            if (buf[k] == '\n' && prev_nl)
                return done + k + 1;
            if (buf[k] != '\r')
                prev_nl = buf[k] == '\n';
        }
        done += n;
    }
    return len;
}

/* Did the entry's journal drop recipients from env (read from fd)? */
static int journal_shortened(int fd, const struct envelope *env)
{
    char why[QUEUE_ERR_MAX];
    struct envelope raw;
    off_t off;
    int r;

    if (envelope_read(fd, &raw, &off, why, sizeof(why)) != 0)
        return 0;
    r = raw.nrcpt != env->nrcpt;
    envelope_free(&raw);
    return r;
}

static int cmd_show(struct ctl *x, int argc, char **argv)
{
    static const int allowed[] = {OPT_ENVELOPE, OPT_HEADERS, OPT_BODY, 0};
    char err[QUEUE_ERR_MAX];
    struct envelope env;
    struct stat st;
    struct opts o;
    off_t off, hlen;
    long i;
    int fd = -1, rc;

    parse_opts(argc, argv, allowed, &o);
    if (o.nargs != 1)
        usage();
    if (!o.parts)
        o.parts = 7;
    scan_spool(x);
    if ((i = resolve(x, o.args[0])) < 0)
        return x->rc;
    rc = qentry_read(&x->sp, &x->all.v[i], &env, &off, &st, &fd, err,
                     sizeof(err));
    if (rc == 1)
        log_fatal(EX_TEMPFAIL, "%s: entry busy or gone", o.args[0]);
    if (rc != 0)
        log_fatal(EX_DATAERR, "%s: unreadable: %s", o.args[0], err);
    hlen = header_len(fd, off, (off_t)env.size);
    if ((o.parts & 1) && journal_shortened(fd, &env)) {
        /* recipients settled in its journal: the envelope as the agent
         * reads it, which is what a rewrite will store */
        struct buf b;
        buf_init(&b);
        if (envelope_format(&env, &b, NULL) != 0 ||
            fwrite(b.data, 1, b.len, stdout) != b.len)
            log_fatal(EX_IOERR, "%s: cannot print the envelope", o.args[0]);
        buf_free(&b);
        o.parts &= ~1;
    }
    if (((o.parts & 1) && copy_out(fd, 0, off) != 0) ||
        ((o.parts & 2) && copy_out(fd, off, hlen) != 0) ||
        ((o.parts & 4) && copy_out(fd, off + hlen, env.size - hlen) != 0))
        log_fatal(EX_IOERR, "%s: cannot copy the entry: %s", o.args[0],
                  strerror(errno));
    close(fd);
    envelope_free(&env);
    if (fflush(stdout) != 0)
        log_fatal(EX_IOERR, "standard output: %s", strerror(errno));
    return EX_OK;
}

/* -------------------------------------------------------------- actions */

typedef int (*action_fn)(struct spool *, const struct qentry *, char *, size_t);

struct action {
    const char *verb; /* "hold" */
    const char *done; /* "held" */
    action_fn fn;
};

/* Act on entry i of x->all, reporting the outcome.  Returns the qact code. */
static int act_on(struct ctl *x, const struct action *a, size_t i,
                  const char *id)
{
    char err[QUEUE_ERR_MAX], sid[QNAME_LEN + 1];
    int rc = a->fn(&x->sp, &x->all.v[i], err, sizeof(err));

    short_id(x, i, sid, sizeof(sid));
    switch (rc) {
    case QA_OK:
        printf("%s: %s\n", sid, a->done);
        log_info("%s: %s by mmqctl (uid %ld)", x->all.v[i].qn.name, a->done,
                 (long)getuid());
        break;
    case QA_NOTHING:
        printf("%s: %s\n", sid, err);
        break;
    case QA_BUSY:
        log_error("%s: entry busy or gone (%s)", id, err);
        set_rc(x, EX_TEMPFAIL);
        break;
    case QA_WRONG:
        log_error("%s: cannot %s: %s", id, a->verb, err);
        set_rc(x, EX_DATAERR);
        break;
    default:
        log_error("%s: %s failed: %s", id, a->verb, err);
        set_rc(x, EX_IOERR);
        break;
    }
    return rc;
}

static void act_on_ids(struct ctl *x, const struct action *a, char **ids, int n)
{
    long i;
    int k;

    for (k = 0; k < n; k++)
        if ((i = resolve(x, ids[k])) >= 0)
            act_on(x, a, (size_t)i, ids[k]);
}

/* Does entry i belong to list (NULL: any)?  Unreadable entries do not. */
static int of_list(struct ctl *x, size_t i, const char *list)
{
    char err[QUEUE_ERR_MAX];
    struct envelope env;
    struct stat st;
    int yes;

    if (!list)
        return 1;
    if (qentry_read(&x->sp, &x->all.v[i], &env, NULL, &st, NULL, err,
                    sizeof(err)) != 0)
        return 0;
    yes = strcmp(env.list, list) == 0;
    envelope_free(&env);
    return yes;
}

/* Indexes of the ready entries of queue (and list): the --all set. */
static size_t select_all(struct ctl *x, const char *queue, const char *list,
                         size_t *sel)
{
    size_t i, n = 0;

    for (i = 0; i < x->all.n; i++)
        if (strcmp(x->all.v[i].queue, queue) == 0 &&
            x->all.v[i].qn.kind == QN_READY && of_list(x, i, list))
            sel[n++] = i;
    return n;
}

static void act_on_all(struct ctl *x, const struct action *a, const size_t *sel,
                       size_t n)
{
    size_t k, ok = 0, busy = 0;

    for (k = 0; k < n; k++) {
        char err[QUEUE_ERR_MAX];
        int rc = a->fn(&x->sp, &x->all.v[sel[k]], err, sizeof(err));

        if (rc == QA_OK)
            ok++;
        else if (rc == QA_BUSY)
            busy++; /* an agent took it meanwhile: not ours to touch */
        else if (rc != QA_NOTHING) {
            log_error("%s: %s failed: %s", x->all.v[sel[k]].qn.name, a->verb,
                      err);
            set_rc(x, rc == QA_WRONG ? EX_DATAERR : EX_IOERR);
        }
    }
    printf("%s: %zu entr%s, %zu busy or gone\n", a->done, ok,
           ok == 1 ? "y" : "ies", busy);
    log_info("%s %zu entries by mmqctl (uid %ld)", a->done, ok, (long)getuid());
}

static size_t *alloc_sel(const struct ctl *x)
{
    size_t *sel = calloc(x->all.n + 1, sizeof(*sel));

    if (!sel)
        log_fatal(EX_OSERR, "out of memory");
    return sel;
}

static int cmd_retry(struct ctl *x, int argc, char **argv)
{
    static const int allowed[] = {OPT_ALL, OPT_LIST, 0};
    static const struct action a = {"retry", "due now", qact_retry};
    struct opts o;

    parse_opts(argc, argv, allowed, &o);
    if (o.all == (o.nargs > 0) || (o.list && !o.all))
        usage();
    scan_spool(x);
    if (o.all) {
        size_t *sel = alloc_sel(x);
        act_on_all(x, &a, sel, select_all(x, "deferred", o.list, sel));
        free(sel);
    } else {
        act_on_ids(x, &a, o.args, o.nargs);
    }
    return x->rc;
}

static int cmd_simple(struct ctl *x, int argc, char **argv,
                      const struct action *a)
{
    static const int allowed[] = {0};
    struct opts o;

    parse_opts(argc, argv, allowed, &o);
    if (o.nargs == 0)
        usage();
    scan_spool(x);
    act_on_ids(x, a, o.args, o.nargs);
    return x->rc;
}

static int cmd_hold(struct ctl *x, int argc, char **argv)
{
    static const struct action a = {"hold", "held", qact_hold};

    return cmd_simple(x, argc, argv, &a);
}

static int cmd_release(struct ctl *x, int argc, char **argv)
{
    static const struct action a = {"release", "released", qact_release};

    return cmd_simple(x, argc, argv, &a);
}

static int cmd_requeue(struct ctl *x, int argc, char **argv)
{
    static const struct action a = {"requeue", "requeued", qact_requeue};

    return cmd_simple(x, argc, argv, &a);
}

/* Ask on the terminal; without one, refuse (the caller must give -y). */
static int confirmed(size_t n)
{
    char line[64];

    if (!isatty(STDIN_FILENO))
        log_fatal(EX_USAGE, "delete: standard input is not a terminal: "
                            "refusing to delete without -y");
    fprintf(stderr, "delete %zu entr%s? [y/N] ", n, n == 1 ? "y" : "ies");
    if (!fgets(line, sizeof(line), stdin))
        return 0;
    return strcmp(line, "y\n") == 0 || strcmp(line, "yes\n") == 0;
}

static int cmd_delete(struct ctl *x, int argc, char **argv)
{
    static const int allowed[] = {OPT_ALL, OPT_QUEUE, OPT_LIST, 'y', 0};
    static const struct action a = {"delete", "deleted", qact_delete};
    size_t *sel, n = 0;
    struct opts o;
    long i;
    int k;

    parse_opts(argc, argv, allowed, &o);
    if (o.all == (o.nargs > 0) || (o.all && !o.queue) ||
        (!o.all && (o.queue || o.list)))
        usage();
    if (o.queue)
        check_queue_names((char **)&o.queue, 1);
    scan_spool(x);
    sel = alloc_sel(x);
    if (o.all)
        n = select_all(x, o.queue, o.list, sel);
    for (k = 0; !o.all && k < o.nargs; k++)
        if ((i = resolve(x, o.args[k])) >= 0)
            sel[n++] = (size_t)i;
    if (x->rc == EX_OK && n > 0 && !o.yes && !confirmed(n)) {
        printf("nothing deleted\n");
        free(sel);
        return 1;
    }
    if (x->rc != EX_OK) /* a bad ID: delete none rather than some */
        n = 0;
    if (o.all)
        act_on_all(x, &a, sel, n);
    for (k = 0; !o.all && (size_t)k < n; k++)
        act_on(x, &a, sel[k], x->all.v[sel[k]].qn.name);
    free(sel);
    return x->rc;
}

/* ---------------------------------------------------------------- stats */

struct qcount {
    size_t entries, rcpts;
    long long bytes;
    int64_t oldest; /* arrival of the oldest entry (0: none) */
};

struct listshape {
    char *list;
    size_t b[QSHAPE_BUCKETS], total;
};

struct stats {
    struct qcount q[8];      /* per queue (queue_names order) */
    size_t *slice;           /* [slice * 8 + queue] */
    struct listshape *shape; /* [0] is TOTAL */
    size_t nshape;
    int want[8]; /* the queues asked for (all without operands) */
};

static size_t queue_index(const char *q)
{
    size_t k;

    for (k = 0; queue_names[k]; k++)
        if (strcmp(queue_names[k], q) == 0)
            return k;
    return 7;
}

static struct listshape *shape_of(struct stats *s, const char *list)
{
    struct listshape *v;
    size_t k;

    for (k = 1; k < s->nshape; k++)
        if (strcmp(s->shape[k].list, list) == 0)
            return &s->shape[k];
    if (!(v = realloc(s->shape, (s->nshape + 1) * sizeof(*v))))
        log_fatal(EX_OSERR, "out of memory");
    s->shape = v;
    memset(&v[s->nshape], 0, sizeof(*v));
    if (!(v[s->nshape].list = strdup(list)))
        log_fatal(EX_OSERR, "out of memory");
    return &v[s->nshape++];
}

static void count_entry(struct ctl *x, struct stats *s, size_t i, int in_shape,
                        time_t now)
{
    const struct qentry *e = &x->all.v[i];
    size_t q = queue_index(e->queue), b;
    char err[QUEUE_ERR_MAX];
    struct envelope env;
    struct stat st;
    const char *list = "(unreadable)";
    int rc;

    rc = qentry_read(&x->sp, e, &env, NULL, &st, NULL, err, sizeof(err));
    if (rc == 1)
        return; /* moved meanwhile */
    if (s->q[q].entries++ == 0 || e->qn.sec < s->q[q].oldest)
        s->q[q].oldest = e->qn.sec;
    s->slice[slice_of(e->qn.key, (unsigned)x->cfg.slices) * 8 + q]++;
    if (rc == 0 && is_held_post(e, &env) &&
        held_members(&x->cfg, env.list) >= 0) {
        s->q[q].rcpts += (size_t)held_members(&x->cfg, env.list);
        s->q[q].bytes += env.size;
        list = env.list;
    } else if (rc == 0) {
        s->q[q].rcpts += env.nrcpt;
        s->q[q].bytes += env.size;
        list = env.list;
    }
    if (in_shape) {
        b = qshape_bucket((int64_t)now - e->qn.sec);
        s->shape[0].b[b]++;
        s->shape[0].total++;
        shape_of(s, list)->b[b]++;
        shape_of(s, list)->total++;
    }
    if (rc == 0)
        envelope_free(&env);
}

static void stats_text(struct ctl *x, const struct stats *s)
{
    size_t q, i, b;

    printf("%-10s %8s %8s %10s\n", "queue", "entries", "rcpts", "Kbytes");
    for (q = 0; queue_names[q]; q++)
        if (s->want[q])
            printf("%-10s %8zu %8zu %10lld\n", queue_names[q], s->q[q].entries,
                   s->q[q].rcpts, (s->q[q].bytes + 1023) / 1024);
    printf("\n%-6s", "slice");
    for (q = 0; queue_names[q]; q++)
        if (s->want[q])
            printf(" %8s", queue_names[q]);
    putchar('\n');
    for (i = 0; i < (size_t)x->cfg.slices; i++) {
        printf("%-6zu", i);
        for (q = 0; queue_names[q]; q++)
            if (s->want[q])
                printf(" %8zu", s->slice[i * 8 + q]);
        putchar('\n');
    }
    printf("\n%-20s %6s", "list (age)", "T");
    for (b = 0; b < QSHAPE_BUCKETS; b++)
        printf(" %6s", qshape_label(b));
    putchar('\n');
    for (i = 0; i < s->nshape; i++) {
        char name[256];

        safe_text(name, sizeof(name), s->shape[i].list);
        printf("%-20s %6zu", name, s->shape[i].total);
        for (b = 0; b < QSHAPE_BUCKETS; b++)
            printf(" %6zu", s->shape[i].b[b]);
        putchar('\n');
    }
    ctl_bounce_stats(&x->sp, 0);
}

static void stats_json(struct ctl *x, const struct stats *s)
{
    size_t q, i, b;

    int first = 1;

    printf("{\"queues\":{");
    for (q = 0; queue_names[q]; q++)
        if (s->want[q]) {
            printf("%s\"%s\":{\"entries\":%zu,\"recipients\":%zu,"
                   "\"bytes\":%lld}",
                   first ? "" : ",", queue_names[q], s->q[q].entries,
                   s->q[q].rcpts, s->q[q].bytes);
            first = 0;
        }
    printf("},\"slices\":[");
    for (i = 0; i < (size_t)x->cfg.slices; i++) {
        printf("%s{\"slice\":%zu", i ? "," : "", i);
        for (q = 0; queue_names[q]; q++)
            if (s->want[q])
                printf(",\"%s\":%zu", queue_names[q], s->slice[i * 8 + q]);
        putchar('}');
    }
    printf("],\"age_buckets\":[");
    for (b = 0; b < QSHAPE_BUCKETS; b++)
        printf("%s\"%s\"", b ? "," : "", qshape_label(b));
    printf("],\"age\":[");
    for (i = 0; i < s->nshape; i++) {
        printf("%s{", i ? "," : "");
        put_json_key(stdout, "list", i ? s->shape[i].list : NULL, 0);
        printf(",\"total\":%zu,\"counts\":[", s->shape[i].total);
        for (b = 0; b < QSHAPE_BUCKETS; b++)
            printf("%s%zu", b ? "," : "", s->shape[i].b[b]);
        printf("]}");
    }
    printf("]");
    ctl_bounce_stats(&x->sp, 1);
    printf("}\n");
}

/* One node's counters as Prometheus samples (counters_read callback). */
struct prom_counters {
    const char *metric;
    int first, last; /* counters first..last, labelled outcome= */
};

static const struct prom_counters prom_counters[] = {
    {"mmq_delivery_recipients_total", CNT_SENT, CNT_EXPIRED},
    {"mmq_dsns_total", CNT_DSN, CNT_DSN},
    {"mmq_bounces_received_total", CNT_BOUNCES_IN, CNT_BOUNCES_IN},
    {"mmq_bounce_processing_total", CNT_B_ENTRIES, CNT_B_REMOVED}};

static int prom_metric; /* the prom_counters[] being printed */

static void prom_node(void *arg, const char *node, const uint64_t v[CNT_N])
{
    const struct prom_counters *m = &prom_counters[prom_metric];

    (void)arg;
    for (int k = m->first; k <= m->last; k++) {
        printf("%s{node=\"%s\"", m->metric, node); /* node: [A-Za-z0-9._-] */
        if (m->first != m->last)
            printf(",outcome=\"%s\"", /* bounce_failed: failed */
                   counter_names[k] + (k >= CNT_B_ENTRIES ? 7 : 0));
        printf("} %" PRIu64 "\n", v[k]);
    }
}

/*
 * The Prometheus text format (version 0.0.4), for node_exporter's textfile
 * collector: queue depths, recipients, bytes and the age of the oldest
 * entry per queue, entries per age bucket, and each node's counters
 * (counters.h).  Names and labels are ours or validated node names: no
 * escaping needed.
 */
static void stats_prometheus(struct ctl *x, const struct stats *s, time_t now)
{
    static const char *const help[][3] = {
        {"mmq_queue_entries", "gauge", "Entries in the queue."},
        {"mmq_queue_recipients", "gauge",
         "Recipients of the entries (a held post: its list's members)."},
        {"mmq_queue_bytes", "gauge", "Message bytes of the entries."},
        {"mmq_queue_oldest_age_seconds", "gauge",
         "Age of the queue's oldest entry (0 when empty)."}};
    char err[QUEUE_ERR_MAX];
    size_t q, b, k;

    for (k = 0; k < 4; k++) {
        printf("# HELP %s %s\n# TYPE %s %s\n", help[k][0], help[k][2],
               help[k][0], help[k][1]);
        for (q = 0; queue_names[q]; q++) {
            const struct qcount *c = &s->q[q];

            if (!s->want[q])
                continue;
            printf("%s{queue=\"%s\"} ", help[k][0], queue_names[q]);
            if (k == 0)
                printf("%zu\n", c->entries);
            else if (k == 1)
                printf("%zu\n", c->rcpts);
            else if (k == 2)
                printf("%lld\n", c->bytes);
            else
                printf("%lld\n", c->entries && now > c->oldest
                                     ? (long long)(now - c->oldest)
                                     : 0LL);
        }
    }
    printf("# HELP mmq_entries_by_age Entries of the queues shown, by age "
           "(the buckets of mmqctl stats).\n# TYPE mmq_entries_by_age "
           "gauge\n");
    for (b = 0; b < QSHAPE_BUCKETS; b++)
        printf("mmq_entries_by_age{age=\"%s\"} %zu\n", qshape_label(b),
               s->shape[0].b[b]);
    for (k = 0; k < sizeof(prom_counters) / sizeof(prom_counters[0]); k++) {
        printf("# HELP %s %s\n# TYPE %s counter\n", prom_counters[k].metric,
               k == 0   ? "Recipients by delivery outcome (a deferral "
                          "counts each time)."
               : k == 1 ? "Non-delivery notifications queued."
               : k == 2 ? "Messages taken into bounces/."
                        : "What mmq-bounce counted (entries, recipients, "
                          "member steps).",
               prom_counters[k].metric);
        prom_metric = (int)k;
        if (counters_read(&x->sp, prom_node, NULL, err, sizeof(err)) != 0)
            log_fatal(EX_TEMPFAIL, "%s", err);
    }
}

static int cmd_stats(struct ctl *x, int argc, char **argv)
{
    static const int allowed[] = {OPT_JSON, OPT_PROMETHEUS, 0};
    struct stats s;
    time_t now = time(NULL);
    struct opts o;
    size_t i;

    parse_opts(argc, argv, allowed, &o);
    check_queue_names(o.args, o.nargs);
    scan_spool(x);
    memset(&s, 0, sizeof(s));
    if (!(s.slice = calloc((size_t)x->cfg.slices * 8, sizeof(*s.slice))))
        log_fatal(EX_OSERR, "out of memory");
    shape_of(&s, "TOTAL"); /* [0] */
    s.nshape = 1;
    for (i = 0; queue_names[i]; i++)
        s.want[i] = queue_wanted(o.args, o.nargs, queue_names[i]);
    for (i = 0; i < x->all.n; i++)
        count_entry(x, &s, i, queue_wanted(o.args, o.nargs, x->all.v[i].queue),
                    now);
    if (o.json && o.prometheus)
        usage();
    if (o.prometheus)
        stats_prometheus(x, &s, now);
    else if (o.json)
        stats_json(x, &s);
    else
        stats_text(x, &s);
    for (i = 0; i < s.nshape; i++)
        free(s.shape[i].list);
    free(s.shape);
    free(s.slice);
    return EX_OK;
}

/* ---------------------------------------------------------------- check */

struct findings {
    size_t problems, notes;
};

static void report_finding(void *arg, enum qcheck_severity sev,
                           const char *text)
{
    struct findings *f = arg;

    if (sev == QC_PROBLEM)
        f->problems++;
    else
        f->notes++;
    printf("%s", sev == QC_NOTE ? "note: " : "");
    put_safe(stdout, text);
    putchar('\n');
}

/* "3d4h", "5h12m", "40m", "30s" */
static void fmt_age(char *out, size_t outlen, long long s)
{
    if (s >= 86400)
        snprintf(out, outlen, "%lldd%lldh", s / 86400, s % 86400 / 3600);
    else if (s >= 3600)
        snprintf(out, outlen, "%lldh%02lldm", s / 3600, s % 3600 / 60);
    else if (s >= 60)
        snprintf(out, outlen, "%lldm", s / 60);
    else
        snprintf(out, outlen, "%llds", s < 0 ? 0 : s);
}

/* A bounces/ entry older than this means nothing takes bounces/ in. */
#define BOUNCES_STALE 3600

static void finding(struct findings *f, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void finding(struct findings *f, const char *fmt, ...)
{
    char text[QUEUE_ERR_MAX + 512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    report_finding(f, QC_PROBLEM, text);
}

/*
 * What needs the postmaster beyond the spool's consistency (qcheck): a
 * post kept in in/ by an error (the reason the list stage recorded in its
 * last-error), deferred mail older than max_age, a bounces/ queue that
 * nothing drains (its oldest entry older than BOUNCES_STALE), entries in
 * bad/.  Envelopes are read for in/ and for old deferred/ entries only.
 */
static void check_attention(struct ctl *x, long long max_age,
                            struct findings *f)
{
    char sid[QNAME_LEN + 1], err[QUEUE_ERR_MAX], age[32];
    time_t now = time(NULL);
    int64_t oldest_bounce = 0;
    size_t i, nbounces = 0;

    scan_spool(x);
    for (i = 0; i < x->all.n; i++) {
        const struct qentry *e = &x->all.v[i];
        int in = strcmp(e->queue, "in") == 0;
        struct envelope env;
        struct stat st;

        short_id(x, i, sid, sizeof(sid));
        if (strcmp(e->queue, "bounces") == 0) {
            if (nbounces++ == 0 || e->qn.sec < oldest_bounce)
                oldest_bounce = e->qn.sec;
            continue;
        }
        if (strcmp(e->queue, "bad") == 0) {
            finding(f,
                    "bad/%s (from %s/): set aside as unreadable or crashing: "
                    "look at it (mmqctl show), then requeue or delete it",
                    sid, e->qn.origin[0] ? e->qn.origin : "?");
            continue;
        }
        if (!in && (strcmp(e->queue, "deferred") != 0 ||
                    (long long)(now - e->qn.sec) <= max_age))
            continue;
        if (qentry_read(&x->sp, e, &env, NULL, &st, NULL, err, sizeof(err)))
            continue; /* gone meanwhile, or unreadable: qcheck says so */
        fmt_age(age, sizeof(age), (long long)(now - envelope_life_start(&env)));
        if (in && env.last_error)
            finding(f, "in/%s (list %s): kept in in/ by an error: %s", sid,
                    env.list, env.last_error);
        else if (!in && now - envelope_life_start(&env) > max_age)
            finding(f,
                    "deferred/%s (list %s): %zu recipient%s deferred for %s, "
                    "%d attempt%s: %s",
                    sid, env.list, env.nrcpt, env.nrcpt == 1 ? "" : "s", age,
                    env.attempts, env.attempts == 1 ? "" : "s",
                    env.last_error ? env.last_error : "-");
        envelope_free(&env);
    }
    if (nbounces && now - oldest_bounce > BOUNCES_STALE) {
        fmt_age(age, sizeof(age), (long long)(now - oldest_bounce));
        finding(f,
                "bounces/: %zu entr%s, the oldest %s old: nothing takes "
                "bounces/ in (is mmq-bounce running?), and it grows",
                nbounces, nbounces == 1 ? "y" : "ies", age);
    }
}

static int cmd_check(struct ctl *x, int argc, char **argv)
{
    static const int allowed[] = {OPT_NO_AGENTS, OPT_DEFERRED_AGE, 0};
    struct findings f = {0, 0};
    char err[QUEUE_ERR_MAX], *end;
    long long max_age = 4 * 3600;
    struct opts o;

    parse_opts(argc, argv, allowed, &o);
    if (o.nargs)
        usage();
    if (o.deferred_age) {
        errno = 0;
        max_age = strtoll(o.deferred_age, &end, 10);
        if (errno || end == o.deferred_age || *end || max_age < 0)
            log_fatal(EX_USAGE, "--deferred-age %s: not a number of seconds",
                      o.deferred_age);
    }
    if (qcheck_spool(&x->sp, o.no_agents ? 0 : QC_SLICES, report_finding, &f,
                     err, sizeof(err)) != 0)
        log_fatal(EX_TEMPFAIL, "check: %s", err);
    check_attention(x, max_age, &f);
    ctl_bounce_check(&x->sp, report_finding, &f);
    if (f.problems == 0) {
        printf("spool OK\n");
        return EX_OK;
    }
    printf("%zu problem%s found\n", f.problems, f.problems == 1 ? "" : "s");
    return EX_DATAERR;
}

/* ---------------------------------------------------------------- slices */

static int cmd_slices(struct ctl *x, int argc, char **argv)
{
    static const int allowed[] = {OPT_JSON, 0};
    struct opts o;

    parse_opts(argc, argv, allowed, &o);
    if (o.nargs)
        usage();
    return ctl_slices(&x->sp, o.json);
}

/* ------------------------------------------------- members, bounces */

static int cmd_members(struct ctl *x, int argc, char **argv)
{
    static const int allowed[] = {OPT_JSON, OPT_PENDING, OPT_NOTIFY, 0};
    struct opts o;
    const char *action;
    int rc;

    parse_opts(argc, argv, allowed, &o);
    if (o.nargs < 1)
        usage();
    action = o.nargs > 1 ? o.args[1] : NULL;
    if (o.notify && (!action || (strcmp(action, "add") && strcmp(action, "remove"))))
        usage(); /* --notify: add and remove only */
    /* the welcome or goodbye first (see ctl_members_notify()) */
    if (o.notify && (rc = ctl_members_notify(&x->sp, &x->cfg, o.args[0],
                                             action[0] == 'a', o.args + 2,
                                             o.nargs - 2)) != EX_OK)
        return rc;
    if (o.pending)
        return action ? EX_USAGE
                      : ctl_members_pending(&x->cfg, o.args[0], o.json);
    if (action && strcmp(action, "add") == 0)
        return ctl_members_add(&x->cfg, o.args[0], o.args + 2, o.nargs - 2);
    if (action && (!strcmp(action, "approve") || !strcmp(action, "reject")))
        return ctl_members_approve(&x->sp, &x->cfg, o.args[0], action[0] == 'a',
                                   o.args + 2, o.nargs - 2);
    return ctl_members(&x->cfg, o.args[0], o.json,
                       o.nargs > 1 ? o.args[1] : NULL, o.args + 2,
                       o.nargs > 2 ? o.nargs - 2 : 0);
}

static int cmd_bounces(struct ctl *x, int argc, char **argv)
{
    static const int allowed[] = {OPT_JSON, 0};
    struct opts o;

    parse_opts(argc, argv, allowed, &o);
    if (o.nargs > 1)
        usage();
    return ctl_bounces(&x->cfg, o.nargs ? o.args[0] : NULL, o.json);
}

/* -------------------------------------------------------- init, recover */

static int cmd_init(struct ctl *x, int argc, char **argv)
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
    if (spool_init(x->cfg.spool, uid, gid, err, sizeof(err)) != 0)
        log_fatal(EX_CANTCREAT, "init: %s", err);
    /* the key of confirmation tokens (token.h), kept once made: a new one
     * would make every token still out there invalid */
    if ((c = token_secret_create(x->cfg.spool, uid, gid, err, sizeof(err))) <
        0)
        log_fatal(EX_CANTCREAT, "init: %s", err);
    if (c == 0)
        printf("token secret %s/secret made\n", x->cfg.spool);
    printf("spool %s ready\n", x->cfg.spool);
    return EX_OK;
}

static int cmd_recover(struct ctl *x, int argc, char **argv)
{
    struct recover_stats st = {0, 0, 0};
    char err[QUEUE_ERR_MAX];
    int q;

    (void)argv;
    if (argc != 1)
        usage();
    for (q = 0; queue_names[q]; q++)
        if (queue_recover(&x->sp, queue_names[q], NULL, &st, err, sizeof(err)))
            log_fatal(EX_TEMPFAIL, "recover: %s", err);
    if (spool_clean_tmp(&x->sp, x->cfg.tmp_max_age, &st, err, sizeof(err)))
        log_fatal(EX_TEMPFAIL, "recover: %s", err);
    printf("restored %u, moved to bad %u, temporary files removed %u\n",
           st.restored, st.to_bad, st.tmp_removed);
    return EX_OK;
}

/* ----------------------------------------------------------------- main */

static const struct verb {
    const char *name;
    int (*fn)(struct ctl *, int, char **);
    int needs_spool;
} verbs[] = {{"init", cmd_init, 0},
             {"queue", cmd_queue, 1},
             {"show", cmd_show, 1},
             {"retry", cmd_retry, 1},
             {"hold", cmd_hold, 1},
             {"release", cmd_release, 1},
             {"delete", cmd_delete, 1},
             {"requeue", cmd_requeue, 1},
             {"stats", cmd_stats, 1},
             {"check", cmd_check, 1},
             {"recover", cmd_recover, 1},
             {"slices", cmd_slices, 1},
             {"members", cmd_members, 1},
             {"bounces", cmd_bounces, 1},
             {NULL, NULL, 0}};

static const struct verb *find_verb(const char *name)
{
    const struct verb *v;

    for (v = verbs; v->name; v++)
        if (strcmp(v->name, name) == 0)
            return v;
    usage();
}

int main(int argc, char **argv)
{
    const char *config_path = NULL;
    const struct verb *v;
    static struct ctl x;
    static const struct option longopts[] = {{"version", 0, NULL, 'V'},
                                             {NULL, 0, NULL, 0}};
    char err[CONFIG_ERR_MAX];
    int c, rc;

    log_init(argv[0], LOG_STDERR_ALWAYS);
    while ((c = getopt_long(argc, argv, "+c:V", longopts, NULL)) != -1) {
        if (c == 'c')
            config_path = optarg;
        else if (c == 'V')
            log_version_exit();
        else
            usage();
    }
    if (optind >= argc)
        usage();
    v = find_verb(argv[optind]);
    load_config(config_path, &x.cfg);
    log_set_verbose(x.cfg.verbose);
    if (log_open_file(x.cfg.log_file, err, sizeof(err)) != 0)
        log_warn("%s", err); /* what we do is still said on stderr */
    if (v->needs_spool)
        open_spool(&x);
    rc = v->fn(&x, argc - optind, argv + optind);
    if (fflush(stdout) != 0)
        log_fatal(EX_IOERR, "standard output: %s", strerror(errno));
    if (v->needs_spool)
        spool_close(&x.sp);
    qentries_free(&x.all);
    config_free(&x.cfg);
    return rc;
}
