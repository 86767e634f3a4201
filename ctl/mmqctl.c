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
 *     mmqctl [-c FILE] stats [QUEUE...] [--json]
 *     mmqctl [-c FILE] check [--no-agents]
 *     mmqctl [-c FILE] recover
 *     mmqctl [-c FILE] slices [--json]
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
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "envelope.h"
#include "log.h"
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
            "usage: mmqctl [-c FILE] init [-u USER] [-g GROUP]\n"
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
            "       mmqctl [-c FILE] stats [QUEUE...] [--json]\n"
            "       mmqctl [-c FILE] check [--no-agents]\n"
            "       mmqctl [-c FILE] recover\n"
            "       mmqctl [-c FILE] slices [--json]\n");
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
    OPT_NO_AGENTS
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
    {"yes", no_argument, NULL, 'y'},
    {NULL, 0, NULL, 0}};

struct opts {
    int json, all, yes, no_agents;
    int parts; /* show: 1 envelope, 2 headers, 4 body */
    const char *list, *slice, *queue;
    char **args; /* the operands */
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
    printf("> rcpts=%zu attempts=%d next=%s", env->nrcpt, env->attempts, next);
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
    s->q[q].entries++;
    s->slice[slice_of(e->qn.key, (unsigned)x->cfg.slices) * 8 + q]++;
    if (rc == 0) {
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

static void stats_text(const struct ctl *x, const struct stats *s)
{
    size_t q, i, b;

    printf("%-10s %8s %8s %10s\n", "queue", "entries", "rcpts", "Kbytes");
    for (q = 0; queue_names[q]; q++)
        printf("%-10s %8zu %8zu %10lld\n", queue_names[q], s->q[q].entries,
               s->q[q].rcpts, (s->q[q].bytes + 1023) / 1024);
    printf("\n%-6s", "slice");
    for (q = 0; queue_names[q]; q++)
        printf(" %8s", queue_names[q]);
    putchar('\n');
    for (i = 0; i < (size_t)x->cfg.slices; i++) {
        printf("%-6zu", i);
        for (q = 0; queue_names[q]; q++)
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
}

static void stats_json(const struct ctl *x, const struct stats *s)
{
    size_t q, i, b;

    printf("{\"queues\":{");
    for (q = 0; queue_names[q]; q++)
        printf("%s\"%s\":{\"entries\":%zu,\"recipients\":%zu,\"bytes\":%lld}",
               q ? "," : "", queue_names[q], s->q[q].entries, s->q[q].rcpts,
               s->q[q].bytes);
    printf("},\"slices\":[");
    for (i = 0; i < (size_t)x->cfg.slices; i++) {
        printf("%s{\"slice\":%zu", i ? "," : "", i);
        for (q = 0; queue_names[q]; q++)
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
    printf("]}\n");
}

static int cmd_stats(struct ctl *x, int argc, char **argv)
{
    static const int allowed[] = {OPT_JSON, 0};
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
    for (i = 0; i < x->all.n; i++)
        count_entry(x, &s, i, queue_wanted(o.args, o.nargs, x->all.v[i].queue),
                    now);
    if (o.json)
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

static int cmd_check(struct ctl *x, int argc, char **argv)
{
    static const int allowed[] = {OPT_NO_AGENTS, 0};
    struct findings f = {0, 0};
    char err[QUEUE_ERR_MAX];
    struct opts o;

    parse_opts(argc, argv, allowed, &o);
    if (o.nargs)
        usage();
    if (qcheck_spool(&x->sp, o.no_agents ? 0 : QC_SLICES, report_finding, &f,
                     err, sizeof(err)) != 0)
        log_fatal(EX_TEMPFAIL, "check: %s", err);
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
    v = find_verb(argv[optind]);
    load_config(config_path, &x.cfg);
    log_set_verbose(x.cfg.verbose);
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
