/*
 * listdef - list definitions and member files.  See listdef.h.
 */
#include "autoconf.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <libconfig.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "listdef.h"
#include "log.h"

static const char *const actions[] = {"hold", "reject", "discard"};
static const char *const dmarc_actions[] = {"munge_from", "wrap_message",
                                            "reject", "discard", "none"};

const char *list_action_name(enum list_action a)
{
    return (unsigned)a < 3 ? actions[a] : "?";
}

const char *list_dmarc_action_name(enum list_dmarc_action a)
{
    return (unsigned)a < 5 ? dmarc_actions[a] : "?";
}

void listdef_free(struct listdef *ld)
{
    size_t i;

    free(ld->domain);
    free(ld->description);
    for (i = 0; i < ld->nowners; i++)
        free(ld->owners[i]);
    free(ld->owners);
    free(ld->members_path);
    free(ld->subject_prefix);
    free(ld->reply_to_address);
    free(ld->help_file);
    free(ld->welcome_file);
    free(ld->goodbye_file);
    for (i = 0; i < ld->nallowed; i++)
        free(ld->allowed[i]);
    free(ld->allowed);
    free(ld->dmarc_notice);
    free(ld->dmarc_wrapped_text);
    memset(ld, 0, sizeof(*ld));
}

struct ctx {
    const char *file;
    char *err;
    size_t errlen;
};

static int bad(const struct ctx *c, config_setting_t *s, const char *why)
{
    snprintf(c->err, c->errlen, "%s:%d: %s: %s", c->file,
             s ? config_setting_source_line(s) : 0,
             s && config_setting_name(s) ? config_setting_name(s) : "?", why);
    return -1;
}

/* A string; lines > 0 allows line breaks and tabs (body text). */
static int get_text(const struct ctx *c, config_setting_t *s, char **out,
                    int lines)
{
    const unsigned char *p;

    if (config_setting_type(s) != CONFIG_TYPE_STRING)
        return bad(c, s, "expected a string in double quotes");
    /* Strings for headers: no line breaks or controls; body text may
     * have line breaks and tabs. */
    for (p = (const unsigned char *)config_setting_get_string(s); *p; p++)
        if ((*p < 0x20 || *p == 0x7f) && !(lines && (*p == '\n' || *p == '\t')))
            return bad(c, s, "control characters are not allowed");
    free(*out);
    if (!(*out = strdup(config_setting_get_string(s))))
        return bad(c, s, "out of memory");
    return 0;
}

static int get_str(const struct ctx *c, config_setting_t *s, char **out)
{
    return get_text(c, s, out, 0);
}

static int get_addrs(const struct ctx *c, config_setting_t *s, char ***out,
                     size_t *n)
{
    int i, len;

    if (config_setting_type(s) != CONFIG_TYPE_ARRAY &&
        config_setting_type(s) != CONFIG_TYPE_LIST)
        return bad(c, s, "expected a list of addresses like [\"a@b\"]");
    len = config_setting_length(s);
    if (!(*out = calloc((size_t)len + 1, sizeof(char *))))
        return bad(c, s, "out of memory");
    for (i = 0; i < len; i++) {
        const char *a = config_setting_get_string_elem(s, i);
        if (!a || !members_plausible(a))
            return bad(c, s, "not an address");
        if (!((*out)[(*n)++] = strdup(a)))
            return bad(c, s, "out of memory");
    }
    return 0;
}

static int get_enum(const struct ctx *c, config_setting_t *s,
                    const char *const *names, int count, int *out)
{
    const char *v;
    int i;

    if (config_setting_type(s) != CONFIG_TYPE_STRING)
        return bad(c, s, "expected a string in double quotes");
    v = config_setting_get_string(s);
    for (i = 0; i < count; i++)
        if (strcmp(v, names[i]) == 0) {
            *out = i;
            return 0;
        }
    return bad(c, s, "not one of the allowed values (see mmq.conf(5))");
}

static int get_int(const struct ctx *c, config_setting_t *s, long long min,
                   long long max, long long *out)
{
    /* the range rules of mmq.conf (config.h), wrapped literals included */
    return config_get_integer(s, c->file, min, max, out, c->err, c->errlen);
}

static int get_bool(const struct ctx *c, config_setting_t *s, int *out)
{
    if (config_setting_type(s) != CONFIG_TYPE_BOOL)
        return bad(c, s, "expected true or false");
    *out = config_setting_get_bool(s);
    return 0;
}

/* A duration: a whole number of days, or a string "N" + s, m, h, d or w. */
static int get_duration(const struct ctx *c, config_setting_t *s,
                        int64_t *out)
{
    static const char units[] = "smhdw";
    static const int64_t secs[] = {1, 60, 3600, 86400, 7 * 86400};
    const char *v, *u;
    char *end;
    long long n;

    if (config_setting_type(s) == CONFIG_TYPE_INT ||
        config_setting_type(s) == CONFIG_TYPE_INT64) {
        if (get_int(c, s, 0, 36500, &n))
            return -1;
        *out = (int64_t)n * 86400;
        return 0;
    }
    if (config_setting_type(s) != CONFIG_TYPE_STRING)
        return bad(c, s, "expected days, or a string like \"7d\" or \"12h\"");
    v = config_setting_get_string(s);
    n = strtoll(v, &end, 10);
    if (end == v || n < 0 || !*end || end[1] || !(u = strchr(units, *end)) ||
        n > 36500LL * 86400)
        return bad(c, s, "expected a number and s, m, h, d or w, like \"7d\"");
    *out = (int64_t)n * secs[u - units];
    if (*out > 36500LL * 86400)
        return bad(c, s, "out of range");
    return 0;
}

/* The bounce_* settings (n without the prefix). */
static int apply_bounce(const struct ctx *c, config_setting_t *s,
                        const char *n, struct member_policy *b)
{
    long long v;

    if (!strcmp(n, "processing"))
        return get_bool(c, s, &b->processing);
    if (!strcmp(n, "probe"))
        return get_bool(c, s, &b->probe);
    if (!strcmp(n, "notify_owner_on_disable"))
        return get_bool(c, s, &b->notify_disable);
    if (!strcmp(n, "notify_owner_on_removal"))
        return get_bool(c, s, &b->notify_removal);
    if (!strcmp(n, "unrecognized_goes_to_list_owner"))
        return get_bool(c, s, &b->forward_unknown);
    if (!strcmp(n, "info_stale_after"))
        return get_duration(c, s, &b->stale_after);
    if (!strcmp(n, "you_are_disabled_warnings_interval"))
        return get_duration(c, s, &b->interval);
    if (!strcmp(n, "you_are_disabled_warnings")) {
        if (get_int(c, s, 0, 100, &v))
            return -1;
        b->warnings = (int)v;
        return 0;
    }
    if (!strcmp(n, "score_threshold")) {
        int t = config_setting_type(s);
        if (t == CONFIG_TYPE_FLOAT)
            b->threshold = config_setting_get_float(s);
        else if (get_int(c, s, 1, 1000000, &v))
            return -1;
        else
            b->threshold = (double)v;
        if (!(b->threshold >= 1.0 && b->threshold <= 1000000.0))
            return bad(c, s, "must be a number of at least 1");
        return 0;
    }
    return bad(c, s, "unknown setting");
}

/* The settings of email commands (process/command.c). */
static int apply_commands(const struct ctx *c, config_setting_t *s,
                          const char *n, struct listdef *ld)
{
    static const char *const subs[] = {"confirm", "approve", "open",
                                       "closed"};
    static const char *const unsubs[] = {"confirm", "", "open"};
    long long v;
    int e;

    if (!strcmp(n, "subscribe_policy")) {
        if (get_enum(c, s, subs, 4, &e))
            return -1;
        ld->subscribe_policy = (enum list_sub_policy)e;
        return 0;
    }
    if (!strcmp(n, "unsubscribe_policy")) {
        if (get_enum(c, s, unsubs, 3, &e) || e == 1)
            return e == 1 ? bad(c, s, "expected \"confirm\" or \"open\"")
                          : -1;
        ld->unsubscribe_policy = (enum list_sub_policy)e;
        return 0;
    }
    if (!strcmp(n, "pending_request_life")) {
        if (get_duration(c, s, &ld->pending_request_life))
            return -1;
        if (ld->pending_request_life < 60 ||
            ld->pending_request_life > 365 * 86400)
            return bad(c, s, "out of range (1 minute to 365 days)");
        return 0;
    }
    if (!strcmp(n, "max_autoresponses_per_day")) {
        if (get_int(c, s, 0, 1000, &v))
            return -1;
        ld->max_autoresponses_per_day = (int)v;
        return 0;
    }
    if (!strcmp(n, "help_file"))
        return get_str(c, s, &ld->help_file);
    if (!strcmp(n, "send_welcome_message"))
        return get_bool(c, s, &ld->send_welcome_message);
    if (!strcmp(n, "welcome_file"))
        return get_str(c, s, &ld->welcome_file);
    if (!strcmp(n, "send_goodbye_message"))
        return get_bool(c, s, &ld->send_goodbye_message);
    if (!strcmp(n, "goodbye_file"))
        return get_str(c, s, &ld->goodbye_file);
    return bad(c, s, "unknown setting");
}

static int apply(const struct ctx *c, config_setting_t *s, struct listdef *ld)
{
    static const char *const posters[] = {"members", "anyone", "list"};
    static const char *const replyto[] = {"none", "list", "address"};
    const char *n = config_setting_name(s);
    long long v;
    int e;

    if (!strcmp(n, "domain"))
        return get_str(c, s, &ld->domain);
    if (!strcmp(n, "description"))
        return get_str(c, s, &ld->description);
    if (!strcmp(n, "owners"))
        return get_addrs(c, s, &ld->owners, &ld->nowners);
    if (!strcmp(n, "members"))
        return get_str(c, s, &ld->members_path);
    if (!strcmp(n, "subject_prefix"))
        return get_str(c, s, &ld->subject_prefix);
    if (!strcmp(n, "reply_to_address"))
        return get_str(c, s, &ld->reply_to_address);
    if (!strcmp(n, "allowed_posters"))
        return get_addrs(c, s, &ld->allowed, &ld->nallowed);
    if (!strcmp(n, "reply_to")) {
        if (get_enum(c, s, replyto, 3, &e))
            return -1;
        ld->reply_to = (enum list_reply_to)e;
        return 0;
    }
    if (!strcmp(n, "posters")) {
        if (get_enum(c, s, posters, 3, &e))
            return -1;
        ld->posters = (enum list_posters)e;
        return 0;
    }
    if (!strcmp(n, "others") || !strcmp(n, "oversize")) {
        if (get_enum(c, s, actions, 3, &e))
            return -1;
        *(n[0] == 'o' && n[1] == 't' ? &ld->others : &ld->oversize) =
            (enum list_action)e;
        return 0;
    }
    if (!strcmp(n, "max_message_size")) {
        if (get_int(c, s, 0, (long long)1 << 40, &v))
            return -1;
        ld->max_message_size = v;
        return 0;
    }
    if (!strcmp(n, "recipients_per_entry")) {
        if (get_int(c, s, 1, 100000, &v))
            return -1;
        ld->per_entry = (int)v;
        return 0;
    }
    if (!strcmp(n, "dmarc_mitigate_action")) {
        if (get_enum(c, s, dmarc_actions, 5, &e))
            return -1;
        ld->dmarc_action = (enum list_dmarc_action)e;
        return 0;
    }
    if (!strcmp(n, "dmarc_mitigate_unconditionally"))
        return get_bool(c, s, &ld->dmarc_unconditionally);
    if (!strcmp(n, "dmarc_quarantine_moderation_action"))
        return get_bool(c, s, &ld->dmarc_quarantine);
    if (!strcmp(n, "dmarc_none_moderation_action"))
        return get_bool(c, s, &ld->dmarc_none);
    if (!strcmp(n, "dmarc_moderation_notice"))
        return get_str(c, s, &ld->dmarc_notice);
    if (!strcmp(n, "dmarc_wrapped_message_text"))
        return get_text(c, s, &ld->dmarc_wrapped_text, 1);
    if (!strcmp(n, "archive"))
        return get_bool(c, s, &ld->archive);
    if (!strcmp(n, "verp"))
        return get_bool(c, s, &ld->verp);
    if (!strncmp(n, "bounce_", 7))
        return apply_bounce(c, s, n + 7, &ld->bounce);
    return apply_commands(c, s, n, ld);
}

int listdef_load(const struct mmq_config *cfg, const char *name,
                 struct listdef *ld, char *err, size_t errlen)
{
    char path[PATH_MAX];
    struct ctx c = {path, err, errlen};
    config_setting_t *root;
    config_t lc;
    int i, n, rc = -1;

    memset(ld, 0, sizeof(*ld));
    ld->per_entry = 500;
    ld->dmarc_quarantine = 1; /* as Mailman: quarantine is mitigated too */
    member_policy_default(&ld->bounce);
    ld->pending_request_life = 3 * 86400;
    ld->max_autoresponses_per_day = 10;
    ld->send_welcome_message = 1;
    ld->send_goodbye_message = 1;
    if (list_name_normalise(name, ld->name) != 0) {
        snprintf(err, errlen, "invalid list name \"%s\"", name);
        return -1;
    }
    snprintf(path, sizeof(path), "%s/%s.conf", cfg->lists_dir, ld->name);
    if (config_parse_file(&lc, path, cfg->lists_dir, err, errlen) != 0)
        return -1;
    root = config_root_setting(&lc);
    n = config_setting_length(root);
    for (i = 0; i < n; i++)
        if (apply(&c, config_setting_get_elem(root, i), ld) != 0)
            goto out;
    if (!ld->domain || !ld->domain[0] || strchr(ld->domain, '@') ||
        strpbrk(ld->domain, " \t\r\n")) {
        snprintf(err, errlen,
                 "%s: domain = \"...\" is required (the list's "
                 "address is NAME@domain)",
                 path);
        goto out;
    }
    if (ld->reply_to_address && !members_plausible(ld->reply_to_address)) {
        snprintf(err, errlen, "%s: reply_to_address is not an address", path);
        goto out;
    }
    if (ld->reply_to == REPLYTO_ADDRESS && !ld->reply_to_address) {
        snprintf(err, errlen,
                 "%s: reply_to = \"address\" needs "
                 "reply_to_address",
                 path);
        goto out;
    }
    if (!ld->members_path || ld->members_path[0] != '/') {
        /* default, or relative: in the lists directory */
        char full[PATH_MAX * 2];
        if (ld->members_path)
            snprintf(full, sizeof(full), "%s/%s", cfg->lists_dir,
                     ld->members_path);
        else
            snprintf(full, sizeof(full), "%s/%s.members", cfg->lists_dir,
                     ld->name);
        free(ld->members_path);
        if (!(ld->members_path = strdup(full)))
            goto out;
    }
    rc = 0;
out:
    config_destroy(&lc);
    if (rc != 0)
        listdef_free(ld);
    return rc;
}

/* ---------------------------------------------------------------- cache */

static int same_file(const struct listdef_cached *e, const struct stat *st)
{
    return e->dev == st->st_dev && e->ino == st->st_ino &&
           e->size == st->st_size && e->mtime.tv_sec == st->st_mtim.tv_sec &&
           e->mtime.tv_nsec == st->st_mtim.tv_nsec &&
           e->ctime.tv_sec == st->st_ctim.tv_sec &&
           e->ctime.tv_nsec == st->st_ctim.tv_nsec;
}

const struct listdef *listdef_get(struct listdef_cache *c,
                                  const struct mmq_config *cfg,
                                  const char *name, char *err, size_t errlen)
{
    char norm[LIST_NAME_MAX + 1], path[PATH_MAX];
    struct listdef_cached *e = NULL;
    struct stat st;
    size_t i;

    if (list_name_normalise(name, norm) != 0) {
        snprintf(err, errlen, "invalid list name \"%s\"", name);
        return NULL;
    }
    snprintf(path, sizeof(path), "%s/%s.conf", cfg->lists_dir, norm);
    if (stat(path, &st) != 0) {
        /* nothing to parse, nothing to cache: the usual message */
        snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    for (i = 0; i < c->n && !e; i++)
        if (strcmp(c->v[i].name, norm) == 0)
            e = &c->v[i];
    if (e && same_file(e, &st)) {
        if (e->rc == 0)
            return &e->ld;
        snprintf(err, errlen, "%s", e->err);
        return NULL;
    }
    if (!e) {
        struct listdef_cached *nv = realloc(c->v, (c->n + 1) * sizeof(*nv));
        if (!nv) {
            snprintf(err, errlen, "%s: out of memory", path);
            return NULL;
        }
        c->v = nv;
        e = &c->v[c->n++];
        memset(e, 0, sizeof(*e));
        snprintf(e->name, sizeof(e->name), "%s", norm);
    } else if (e->rc == 0) {
        listdef_free(&e->ld);
    }
    /* The stat before the parse: a change while parsing is seen next time. */
    e->dev = st.st_dev;
    e->ino = st.st_ino;
    e->size = st.st_size;
    e->mtime = st.st_mtim;
    e->ctime = st.st_ctim;
    e->rc = listdef_load(cfg, norm, &e->ld, e->err, sizeof(e->err));
    if (e->rc == 0)
        return &e->ld;
    snprintf(err, errlen, "%s", e->err);
    return NULL;
}

void listdef_cache_free(struct listdef_cache *c)
{
    size_t i;

    for (i = 0; i < c->n; i++)
        if (c->v[i].rc == 0)
            listdef_free(&c->v[i].ld);
    free(c->v);
    c->v = NULL;
    c->n = 0;
}

/* -------------------------------------------------------------- members */

int members_plausible(const char *a)
{
    const unsigned char *p;
    const char *at = strrchr(a, '@');
    size_t n = strlen(a);

    if (n < 3 || n > 254 || !at || at == a || !at[1] || strchr(a, '@') != at)
        return 0;
    for (p = (const unsigned char *)a; *p; p++)
        if (*p <= 32 || *p == 127 || *p == '<' || *p == '>' || *p == ',' ||
            *p == '"' || *p == '(' || *p == ')')
            return 0;
    return 1;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static char *lower_dup(const char *s)
{
    char *d = strdup(s), *p;

    for (p = d; p && *p; p++)
        *p = (char)tolower((unsigned char)*p);
    return d;
}

void members_free(struct members *m)
{
    size_t i;

    for (i = 0; i < m->n; i++) {
        free(m->addr[i]);
        free(m->sorted[i]);
    }
    free(m->addr);
    free(m->sorted);
    free(m->path);
    memset(m, 0, sizeof(*m));
}

int members_contains(const struct members *m, const char *addr)
{
    char *key = lower_dup(addr);
    int found;

    if (!key)
        return 0;
    found =
        m->n && bsearch(&key, m->sorted, m->n, sizeof(char *), cmp_str) != NULL;
    free(key);
    return found;
}

static int dedupe(struct members *m);

/* Parse the file's text into a fresh members list. */
/*
 * Which part of a plausible address has non-ASCII bytes: "local part"
 * (it needs SMTPUTF8, RFC 6531), "domain" (a U-label: it needs SMTPUTF8
 * too, or the A-label form xn--...), or NULL when it is all ASCII.
 */
static const char *non_ascii_part(const char *a)
{
    const char *at = strrchr(a, '@'), *p;

    for (p = a; *p; p++)
        if ((unsigned char)*p >= 0x80)
            return p < at ? "local part" : "domain";
    return NULL;
}

static int parse_members(struct members *m, const char *path, char *text,
                         size_t len)
{
    size_t cap = 1024, line = 0;
    char *p = text, *end = text + len;

    m->addr = malloc(cap * sizeof(char *));
    if (!m->addr)
        return -1;
    while (p < end) {
        char *nl = memchr(p, '\n', (size_t)(end - p)), *s, *e;
        const char *part;
        int has_nul;
        if (!nl)
            nl = end;
        has_nul = memchr(p, 0, (size_t)(nl - p)) != NULL;
        *nl = 0;
        line++;
        for (s = p; *s == ' ' || *s == '\t'; s++)
            ;
        for (e = s + strlen(s); e > s && isspace((unsigned char)e[-1]); e--)
            ;
        *e = 0;
        p = nl + 1;
        if (!*s || *s == '#')
            continue;
        if (has_nul || !members_plausible(s)) {
            if (m->junk++ < 20)
                log_warn("%s:%zu: not an address, line ignored", path, line);
            continue;
        }
        /* libESMTP (mmq-deliver) has no SMTPUTF8: such an address could
         * only be sent mangled or refused by the relay; it is left out
         * of the list, loudly, every time the file is read. */
        if ((part = non_ascii_part(s)) != NULL) {
            if (m->utf8++ < 20)
                log_warn("%s:%zu: <%s>: non-ASCII %s needs SMTPUTF8, which "
                         "mmq cannot send: member skipped%s",
                         path, line, s, part,
                         strcmp(part, "domain") == 0
                             ? " (write the domain as an A-label, xn--...)"
                             : "");
            continue;
        }
        if (m->n == cap) {
            char **q = realloc(m->addr, (cap *= 2) * sizeof(char *));
            if (!q)
                return -1;
            m->addr = q;
        }
        if (!(m->addr[m->n++] = strdup(s)))
            return -1;
    }
    return dedupe(m);
}

struct keyed {
    char *key;
    size_t idx;
};

static int cmp_keyed(const void *a, const void *b)
{
    const struct keyed *x = a, *y = b;
    int c = strcmp(x->key, y->key);

    return c ? c : (x->idx > y->idx) - (x->idx < y->idx);
}

/* Lower-cased sorted index for lookups; duplicates (in any case) are
 * dropped from addr, the first occurrence kept.  O(n log n). */
static int dedupe(struct members *m)
{
    struct keyed *k = malloc((m->n + 1) * sizeof(*k));
    unsigned char *drop = calloc(m->n + 1, 1);
    size_t i, w = 0, u = 0;

    if (!k || !drop || !(m->sorted = malloc((m->n + 1) * sizeof(char *)))) {
        free(k);
        free(drop);
        return -1;
    }
    for (i = 0; i < m->n; i++) {
        k[i].idx = i;
        if (!(k[i].key = lower_dup(m->addr[i]))) {
            while (i-- > 0)
                free(k[i].key);
            free(k);
            free(drop);
            return -1;
        }
    }
    qsort(k, m->n, sizeof(*k), cmp_keyed);
    for (i = 0; i < m->n; i++) {
        if (u > 0 && strcmp(m->sorted[u - 1], k[i].key) == 0) {
            drop[k[i].idx] = 1; /* a later occurrence */
            free(k[i].key);
            continue;
        }
        m->sorted[u++] = k[i].key;
    }
    for (i = 0; i < m->n; i++) {
        if (drop[i]) {
            free(m->addr[i]);
            continue;
        }
        m->addr[w++] = m->addr[i];
    }
    m->n = w;
    free(k);
    free(drop);
    return 0;
}

int members_load(struct members *m, const char *path, char *err, size_t errlen)
{
    struct members fresh;
    struct stat st;
    char *text;
    ssize_t got;
    int fd;

    /* O_NONBLOCK: a FIFO named as the members file must not block the
     * list stage (and every other list's posts behind it) in open(). */
    if ((fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)) < 0 ||
        fstat(fd, &st) != 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    if (!S_ISREG(st.st_mode)) {
        /* /dev/zero would read as a list without members, and the post
         * would be finished with nobody to deliver to: lost. */
        snprintf(err, errlen, "%s: not a regular file", path);
        close(fd);
        return -1;
    }
    if (st.st_mode & S_IWOTH) {
        snprintf(err, errlen,
                 "%s: world-writable (mode %04o): refusing a members file "
                 "anyone could have written (chmod o-w)",
                 path, (unsigned)(st.st_mode & 07777));
        close(fd);
        return -1;
    }
    if (m->path && strcmp(m->path, path) == 0 && m->dev == st.st_dev &&
        m->ino == st.st_ino && m->size == st.st_size &&
        m->mtime.tv_sec == st.st_mtim.tv_sec &&
        m->mtime.tv_nsec == st.st_mtim.tv_nsec) {
        close(fd);
        return 0; /* unchanged */
    }
    memset(&fresh, 0, sizeof(fresh));
    text = malloc((size_t)st.st_size + 1);
    got = text ? read(fd, text, (size_t)st.st_size) : -1;
    close(fd);
    if (got != st.st_size) {
        snprintf(err, errlen, "%s: short read", path);
        free(text);
        return -1;
    }
    text[got] = 0;
    if (memchr(text, 0, (size_t)got)) {
        snprintf(err, errlen,
                 "%s: a binary file (NUL bytes), not a text file "
                 "of addresses",
                 path);
        free(text);
        return -1;
    }
    if (parse_members(&fresh, path, text, (size_t)got) != 0 ||
        !(fresh.path = strdup(path))) {
        free(text);
        members_free(&fresh);
        snprintf(err, errlen, "%s: out of memory", path);
        return -1;
    }
    free(text);
    fresh.dev = st.st_dev;
    fresh.ino = st.st_ino;
    fresh.size = st.st_size;
    fresh.mtime = st.st_mtim;
    if (fresh.junk > 20)
        log_warn("%s: %u lines ignored in all", path, fresh.junk);
    if (fresh.utf8 > 20)
        log_warn("%s: %u members needing SMTPUTF8 skipped in all", path,
                 fresh.utf8);
    members_free(m);
    *m = fresh;
    return 0;
}
