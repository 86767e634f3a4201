/*
 * config - load and check mmq.conf.  See config.h for the contract.
 *
 * The table below is the single list of settings: adding one means adding
 * a field to struct mmq_config, a line here, and a paragraph to mmq.conf(5).
 * Unknown names are rejected so that a typo never silently leaves a
 * default in force.
 */
#include "autoconf.h"

#include <errno.h>
#include <fcntl.h>
#include <libconfig.h>
#include <limits.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "slice.h"

enum ctype { C_STR, C_INT, C_INT64, C_BOOL };

struct setting {
    const char *name;
    enum ctype type;
    size_t offset;
    int64_t min, max;
};

#define OFF(f) offsetof(struct mmq_config, f)

static const struct setting settings[] = {
    {"spool", C_STR, OFF(spool), 0, 0},
    {"node", C_STR, OFF(node), 0, 0},
    {"lists_dir", C_STR, OFF(lists_dir), 0, 0},
    {"spool_user", C_STR, OFF(spool_user), 0, 0},
    {"slices", C_INT, OFF(slices), 1, 65536},
    {"max_message_size", C_INT64, OFF(max_message_size), 1, (int64_t)1 << 40},
    {"max_recoveries", C_INT, OFF(max_recoveries), 0, 1000},
    {"tmp_max_age", C_INT, OFF(tmp_max_age), 60, 365 * 86400},
    {"filter_timeout", C_INT, OFF(filter_timeout), 1, 86400},
    {"verbose", C_BOOL, OFF(verbose), 0, 1},
    {"relay_host", C_STR, OFF(relay_host), 0, 0},
    {"relay_port", C_INT, OFF(relay_port), 1, 65535},
    {"helo_name", C_STR, OFF(helo_name), 0, 0},
    {"delivery_slices", C_STR, OFF(delivery_slices), 0, 0},
    {"recipients_per_transaction", C_INT, OFF(recipients_per_transaction), 1,
     100000},
    {"connections", C_INT, OFF(connections), 1, 256},
    {"transactions_per_connection", C_INT, OFF(transactions_per_connection), 1,
     100000},
    {"smtp_timeout", C_INT, OFF(smtp_timeout), 1, 3600},
    {"session_time_limit", C_INT, OFF(session_time_limit), 10, 86400},
    {"retry_min", C_INT, OFF(retry_min), 1, 86400},
    {"retry_max", C_INT, OFF(retry_max), 1, 7 * 86400},
    {"max_lifetime", C_INT, OFF(max_lifetime), 0, 365 * 86400},
    {"scan_interval", C_INT, OFF(scan_interval), 1, 3600},
    {"tls", C_STR, OFF(tls), 0, 0},
    {"tls_ca_file", C_STR, OFF(tls_ca_file), 0, 0},
    {"auth_file", C_STR, OFF(auth_file), 0, 0},
    {"postmaster", C_STR, OFF(postmaster), 0, 0},
    {"process_slices", C_STR, OFF(process_slices), 0, 0},
    {"archive_dir", C_STR, OFF(archive_dir), 0, 0},
    {"dmarc_timeout", C_INT, OFF(dmarc_timeout), 1, 60},
    {"duplicate_window", C_INT, OFF(duplicate_window), 0, 365 * 86400},
    {"lease_time", C_INT, OFF(lease_time), 2, 3600},
    {"lease_margin", C_INT, OFF(lease_margin), 1, 3600},
    {"log_file", C_STR, OFF(log_file), 0, 0},
    {"myhostname", C_STR, OFF(myhostname), 0, 0},
};

const char *config_default_path(void)
{
    return MMQ_CONFIG_FILE;
}

static char *xstrdup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

int config_valid_node(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n > 63 || s[0] == '.' || s[0] == '-')
        return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
              (*s >= '0' && *s <= '9') || *s == '.' || *s == '-' || *s == '_'))
            return 0;
    return 1;
}

static char *default_node(void)
{
    char host[256];
    char *dot;

    if (gethostname(host, sizeof(host) - 1) != 0)
        return strdup("localhost");
    host[sizeof(host) - 1] = 0;
    if ((dot = strchr(host, '.')) != NULL)
        *dot = 0;
    if (!config_valid_node(host))
        return strdup("localhost");
    return strdup(host);
}

const char *config_myhostname(const struct mmq_config *cfg)
{
    static char host[256];
    struct addrinfo hints, *ai = NULL;

    if (cfg->myhostname && *cfg->myhostname)
        return cfg->myhostname;
    if (host[0])
        return host;
    if (gethostname(host, sizeof(host) - 1) != 0 || !host[0])
        snprintf(host, sizeof(host), "localhost");
    host[sizeof(host) - 1] = 0;
    if (strchr(host, '.'))
        return host;
    memset(&hints, 0, sizeof(hints));
    hints.ai_flags = AI_CANONNAME;
    hints.ai_socktype = SOCK_STREAM;
    if (getaddrinfo(host, NULL, &hints, &ai) == 0 && ai->ai_canonname &&
        strchr(ai->ai_canonname, '.') &&
        strlen(ai->ai_canonname) < sizeof(host))
        snprintf(host, sizeof(host), "%s", ai->ai_canonname);
    if (ai)
        freeaddrinfo(ai);
    return host;
}

int config_defaults(struct mmq_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->spool = strdup(MMQ_SPOOL_DIR);
    cfg->node = default_node();
    cfg->lists_dir = strdup(MMQ_LISTS_DIR);
    cfg->slices = 16;
    cfg->max_message_size = 40 * 1024 * 1024;
    cfg->max_recoveries = 3;
    cfg->tmp_max_age = 86400;
    cfg->filter_timeout = 900; /* below Postfix's 1000 s command_time_limit */
    cfg->relay_host = strdup("127.0.0.1");
    cfg->relay_port = 25;
    cfg->delivery_slices = strdup("all");
    cfg->recipients_per_transaction = 500;
    cfg->connections = 10;
    cfg->transactions_per_connection = 100;
    cfg->smtp_timeout = 300;
    cfg->session_time_limit = 3600;
    cfg->retry_min = 300;
    cfg->retry_max = 4000;
    cfg->max_lifetime = 5 * 86400;
    cfg->scan_interval = 10;
    cfg->tls = strdup("off");
    cfg->process_slices = strdup("all");
    cfg->dmarc_timeout = 3;
    cfg->duplicate_window = 3 * 86400;
    cfg->lease_time = 30;
    cfg->lease_margin = 10;
    if (!cfg->spool || !cfg->node || !cfg->lists_dir || !cfg->relay_host ||
        !cfg->delivery_slices || !cfg->tls || !cfg->process_slices)
        return -1;
    return 0;
}

void config_free(struct mmq_config *cfg)
{
    free(cfg->path);
    free(cfg->spool);
    free(cfg->node);
    free(cfg->lists_dir);
    free(cfg->spool_user);
    free(cfg->relay_host);
    free(cfg->helo_name);
    free(cfg->delivery_slices);
    free(cfg->tls);
    free(cfg->tls_ca_file);
    free(cfg->auth_file);
    free(cfg->postmaster);
    free(cfg->process_slices);
    free(cfg->archive_dir);
    free(cfg->log_file);
    free(cfg->myhostname);
    for (size_t i = 0; i < cfg->nnodes; i++) {
        free(cfg->nodes[i].name);
        free(cfg->nodes[i].process);
        free(cfg->nodes[i].deliver);
        free(cfg->nodes[i].bounce);
        free(cfg->nodes[i].standby);
    }
    free(cfg->nodes);
    memset(cfg, 0, sizeof(*cfg));
}

static const struct setting *find_setting(const char *name)
{
    size_t i;

    for (i = 0; i < sizeof(settings) / sizeof(settings[0]); i++)
        if (strcmp(settings[i].name, name) == 0)
            return &settings[i];
    return NULL;
}

/*
 * libconfig 1.5 silently wraps an integer literal written without the L
 * suffix to 32 bits ("slices = 4294967312" loads as 16).  Read the literal
 * back from the file and say so instead of running with a wrong value.
 * 1: the literal on that line does not equal what libconfig loaded.
 */
static int int_literal_wrapped(const char *file, int line, const char *name,
                               long long loaded)
{
    char buf[4096], *p, *end;
    size_t n = strlen(name);
    long long lit;
    int lno = 0, wrapped = 0;
    FILE *fp = fopen(file, "r");

    if (!fp)
        return 0;
    while (fgets(buf, sizeof(buf), fp) && ++lno < line)
        ;
    fclose(fp);
    if (lno != line || !(p = strstr(buf, name)))
        return 0;
    p += n;
    p += strspn(p, " \t");
    if (*p != '=' && *p != ':')
        return 0;
    p++;
    p += strspn(p, " \t");
    errno = 0;
    lit = strtoll(p, &end, 0);
    if (end == p)
        return 0;
    if (errno == ERANGE || lit != loaded)
        wrapped = 1;
    return wrapped;
}

int config_get_integer(config_setting_t *cs, const char *file, long long min,
                       long long max, long long *out, char *err, size_t errlen)
{
    const char *name = config_setting_name(cs) ? config_setting_name(cs) : "?";
    int line = config_setting_source_line(cs);
    int type = config_setting_type(cs);

    if (type == CONFIG_TYPE_INT) {
        *out = config_setting_get_int(cs);
        if (int_literal_wrapped(file, line, name, *out)) {
            snprintf(err, errlen,
                     "%s:%d: %s is out of range for a plain integer: "
                     "libconfig reads integers without the L suffix as "
                     "32 bits (write e.g. 3000000000L)",
                     file, line, name);
            return -1;
        }
    } else if (type == CONFIG_TYPE_INT64) {
        *out = config_setting_get_int64(cs);
    } else {
        snprintf(err, errlen, "%s:%d: %s: expected an integer", file, line,
                 name);
        return -1;
    }
    if (*out < min || *out > max) {
        snprintf(err, errlen, "%s:%d: %s = %lld is out of range %lld..%lld",
                 file, line, name, *out, min, max);
        return -1;
    }
    return 0;
}

static int apply(struct mmq_config *cfg, const struct setting *st,
                 config_setting_t *cs, const char *file, char *err,
                 size_t errlen)
{
    char *base = (char *)cfg;
    int line = config_setting_source_line(cs);
    int type = config_setting_type(cs);
    long long v;

    switch (st->type) {
    case C_STR:
        if (type != CONFIG_TYPE_STRING)
            goto wrong;
        {
            char **dst = (char **)(base + st->offset);
            char *copy = strdup(config_setting_get_string(cs));
            if (!copy) {
                snprintf(err, errlen, "%s:%d: out of memory", file, line);
                return -1;
            }
            free(*dst);
            *dst = copy;
        }
        return 0;
    case C_BOOL:
        if (type != CONFIG_TYPE_BOOL)
            goto wrong;
        *(int *)(base + st->offset) = config_setting_get_bool(cs);
        return 0;
    case C_INT:
    case C_INT64:
        if (type != CONFIG_TYPE_INT && type != CONFIG_TYPE_INT64)
            goto wrong;
        if (config_get_integer(cs, file, st->min, st->max, &v, err, errlen))
            return -1;
        if (st->type == C_INT)
            *(int *)(base + st->offset) = (int)v;
        else
            *(int64_t *)(base + st->offset) = v;
        return 0;
    }
wrong:
    snprintf(err, errlen, "%s:%d: %s: expected %s", file, line, st->name,
             st->type == C_STR    ? "a string in double quotes"
             : st->type == C_BOOL ? "true or false"
                                  : "an integer (use the L suffix above 2^31)");
    return -1;
}

static int check_values(struct mmq_config *cfg, const char *file, char *err,
                        size_t errlen)
{
    if (cfg->spool[0] != '/') {
        snprintf(err, errlen, "%s: spool = \"%s\" must be an absolute path",
                 file, cfg->spool);
        return -1;
    }
    if (cfg->lists_dir[0] != '/') {
        snprintf(err, errlen, "%s: lists_dir = \"%s\" must be an absolute path",
                 file, cfg->lists_dir);
        return -1;
    }
    if (strcmp(cfg->tls, "off") != 0 &&
        strcmp(cfg->tls, "opportunistic") != 0 &&
        strcmp(cfg->tls, "required") != 0) {
        snprintf(err, errlen,
                 "%s: tls = \"%s\": expected off, opportunistic or required",
                 file, cfg->tls);
        return -1;
    }
    if (cfg->retry_min > cfg->retry_max) {
        snprintf(err, errlen,
                 "%s: retry_min (%d) is larger than retry_max (%d)", file,
                 cfg->retry_min, cfg->retry_max);
        return -1;
    }
    if (!config_valid_node(cfg->node)) {
        snprintf(err, errlen,
                 "%s: node = \"%s\" is not a valid node name (1-63 of A-Z a-z "
                 "0-9 . - _)",
                 file, cfg->node);
        return -1;
    }
    return 0;
}

/* ---------------------------------------------------------------- nodes */

static int node_str(config_setting_t *m, char **dst, const char *file,
                    char *err, size_t errlen)
{
    char *copy;

    if (config_setting_type(m) != CONFIG_TYPE_STRING) {
        snprintf(err, errlen, "%s:%d: nodes: %s: expected a string in double "
                 "quotes", file, config_setting_source_line(m),
                 config_setting_name(m));
        return -1;
    }
    if (!(copy = strdup(config_setting_get_string(m)))) {
        snprintf(err, errlen, "%s: out of memory", file);
        return -1;
    }
    free(*dst);
    *dst = copy;
    return 0;
}

/* One { name = ...; process = ...; ... } group of the nodes list. */
static int parse_node(config_setting_t *g, struct mmq_node *nd,
                      const char *file, char *err, size_t errlen)
{
    int i, n = config_setting_length(g);

    if (!(nd->process = strdup("none")) || !(nd->deliver = strdup("none")) ||
        !(nd->standby = strdup("none")) || !(nd->bounce = strdup("none"))) {
        snprintf(err, errlen, "%s: out of memory", file);
        return -1;
    }
    for (i = 0; i < n; i++) {
        config_setting_t *m = config_setting_get_elem(g, i);
        const char *k = config_setting_name(m);
        int rc;

        if (!k)
            k = "?";
        if (strcmp(k, "name") == 0)
            rc = node_str(m, &nd->name, file, err, errlen);
        else if (strcmp(k, "process") == 0)
            rc = node_str(m, &nd->process, file, err, errlen);
        else if (strcmp(k, "deliver") == 0)
            rc = node_str(m, &nd->deliver, file, err, errlen);
        else if (strcmp(k, "standby") == 0)
            rc = node_str(m, &nd->standby, file, err, errlen);
        else if (strcmp(k, "bounce") == 0)
            rc = node_str(m, &nd->bounce, file, err, errlen);
        else if (strcmp(k, "takeover_after") == 0 &&
                 config_setting_type(m) == CONFIG_TYPE_INT &&
                 config_setting_get_int(m) > 0 &&
                 config_setting_get_int(m) <= 86400) {
            nd->takeover_after = config_setting_get_int(m);
            rc = 0;
        } else {
            snprintf(err, errlen,
                     strcmp(k, "takeover_after") == 0
                         ? "%s:%d: nodes: %s: expected seconds, 1..86400"
                         : "%s:%d: nodes: unknown setting \"%s\"",
                     file, config_setting_source_line(m), k);
            rc = -1;
        }
        if (rc != 0)
            return -1;
    }
    if (!nd->name) {
        snprintf(err, errlen, "%s:%d: nodes: a node without a name", file,
                 config_setting_source_line(g));
        return -1;
    }
    return 0;
}

static int parse_nodes(struct mmq_config *cfg, config_setting_t *cs,
                       const char *file, char *err, size_t errlen)
{
    int i, n = config_setting_length(cs);

    if (config_setting_type(cs) != CONFIG_TYPE_LIST || n < 1) {
        snprintf(err, errlen, "%s:%d: nodes: expected a list of groups, "
                 "( { name = \"a\"; deliver = \"0-3\"; ... }, ... )",
                 file, config_setting_source_line(cs));
        return -1;
    }
    if (!(cfg->nodes = calloc((size_t)n, sizeof(*cfg->nodes)))) {
        snprintf(err, errlen, "%s: out of memory", file);
        return -1;
    }
    for (i = 0; i < n; i++) {
        config_setting_t *g = config_setting_get_elem(cs, i);

        cfg->nnodes++;
        if (config_setting_type(g) != CONFIG_TYPE_GROUP) {
            snprintf(err, errlen, "%s:%d: nodes: element %d is not a group "
                     "{ ... }", file, config_setting_source_line(g), i + 1);
            return -1;
        }
        if (parse_node(g, &cfg->nodes[i], file, err, errlen) != 0)
            return -1;
    }
    return 0;
}

const struct mmq_node *config_node(const struct mmq_config *cfg,
                                   const char *name)
{
    size_t i;

    for (i = 0; i < cfg->nnodes; i++)
        if (strcmp(cfg->nodes[i].name, name) == 0)
            return &cfg->nodes[i];
    return NULL;
}

static const char *node_stage(const struct mmq_node *nd, const char *stage)
{
    return strcmp(stage, "process") == 0  ? nd->process
           : strcmp(stage, "bounce") == 0 ? nd->bounce
                                          : nd->deliver;
}

const struct mmq_node *config_slice_owner(const struct mmq_config *cfg,
                                          const char *stage, unsigned i)
{
    size_t k;

    for (k = 0; k < cfg->nnodes; k++) {
        struct slice_set set;
        char err[128];
        int has;

        if (slice_set_parse(node_stage(&cfg->nodes[k], stage),
                            (unsigned)cfg->slices, &set, err,
                            sizeof(err)) != 0)
            continue;
        has = i < set.n && set.on[i];
        slice_set_free(&set);
        if (has)
            return &cfg->nodes[k];
    }
    return NULL;
}

/* Every slice set parses, no slice of a stage has two owners. */
static int check_node_sets(struct mmq_config *cfg, const char *file,
                           char *err, size_t errlen)
{
    static const char *const stages[] = {"process", "deliver", "bounce",
                                         "standby"};
    unsigned char *seen[3];
    size_t k, s;
    int rc = -1;

    seen[0] = calloc((size_t)cfg->slices, sizeof(unsigned char));
    seen[1] = calloc((size_t)cfg->slices, sizeof(unsigned char));
    seen[2] = calloc((size_t)cfg->slices, sizeof(unsigned char));
    if (!seen[0] || !seen[1] || !seen[2]) {
        snprintf(err, errlen, "%s: out of memory", file);
        goto out;
    }
    for (k = 0; k < cfg->nnodes; k++) {
        struct mmq_node *nd = &cfg->nodes[k];

        for (s = 0; s < 4; s++) {
            const char *spec = s == 3 ? nd->standby : node_stage(nd, stages[s]);
            struct slice_set set;
            char why[256];
            unsigned i;

            if (slice_set_parse(spec, (unsigned)cfg->slices, &set, why,
                                sizeof(why)) != 0) {
                snprintf(err, errlen, "%s: nodes: node %s: %s: %s", file,
                         nd->name, stages[s], why);
                goto out;
            }
            for (i = 0; s < 3 && i < set.n; i++) {
                if (set.on[i] && seen[s][i]) {
                    snprintf(err, errlen, "%s: nodes: slice %u of %s has two "
                             "owners (node %s and an earlier node)",
                             file, i, stages[s], nd->name);
                    slice_set_free(&set);
                    goto out;
                }
                seen[s][i] |= set.on[i];
            }
            slice_set_free(&set);
        }
    }
    rc = 0;
out:
    free(seen[0]);
    free(seen[1]);
    free(seen[2]);
    return rc;
}

/*
 * The cluster settings hang together: every node is named once, validly;
 * takeover_after leaves the holder lease_time + lease_margin to notice
 * that it lost its lease (lease.h); this node is one of them, and its
 * slices are what the stages serve (delivery_slices and process_slices
 * would contradict them, so they are refused).
 */
static int check_nodes(struct mmq_config *cfg, int explicit_slices,
                       const char *file, char *err, size_t errlen)
{
    const struct mmq_node *me;
    size_t k, j;

    for (k = 0; k < cfg->nnodes; k++) {
        struct mmq_node *nd = &cfg->nodes[k];

        if (!config_valid_node(nd->name)) {
            snprintf(err, errlen, "%s: nodes: \"%s\" is not a valid node name "
                     "(1-63 of A-Z a-z 0-9 . - _)", file, nd->name);
            return -1;
        }
        for (j = 0; j < k; j++)
            if (strcmp(cfg->nodes[j].name, nd->name) == 0) {
                snprintf(err, errlen, "%s: nodes: node %s is listed twice",
                         file, nd->name);
                return -1;
            }
        if (nd->takeover_after == 0)
            nd->takeover_after = cfg->lease_time + 2 * cfg->lease_margin;
        if (nd->takeover_after < cfg->lease_time + cfg->lease_margin) {
            snprintf(err, errlen, "%s: nodes: node %s: takeover_after = %d is "
                     "below lease_time + lease_margin (%d): a holder could "
                     "still be working when it takes over",
                     file, nd->name, nd->takeover_after,
                     cfg->lease_time + cfg->lease_margin);
            return -1;
        }
    }
    if (explicit_slices) {
        snprintf(err, errlen, "%s: delivery_slices and process_slices cannot "
                 "be used with nodes: give each node's slices there", file);
        return -1;
    }
    if (check_node_sets(cfg, file, err, errlen) != 0)
        return -1;
    if (!(me = config_node(cfg, cfg->node))) {
        snprintf(err, errlen, "%s: this node, \"%s\", is not in nodes (set "
                 "node = \"NAME\" or add it)", file, cfg->node);
        return -1;
    }
    free(cfg->delivery_slices);
    free(cfg->process_slices);
    cfg->delivery_slices = strdup(me->deliver);
    cfg->process_slices = strdup(me->process);
    if (!cfg->delivery_slices || !cfg->process_slices) {
        snprintf(err, errlen, "%s: out of memory", file);
        return -1;
    }
    return 0;
}

int config_parse_file(config_t *lc, const char *path, const char *include_dir,
                      char *err, size_t errlen)
{
    struct stat st;
    FILE *fp;
    int ok, fd;

    /* Open it ourselves so the error names the real reason (ENOENT,
     * EACCES), and refuse anything but a regular file: libconfig's
     * scanner exit()s the whole process when reading fails.  O_NONBLOCK:
     * a FIFO in its place must not block us in open(). */
    if ((fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)) < 0) {
        snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "%s: not a regular file", path);
        close(fd);
        return -1;
    }
    if (st.st_mode & S_IWOTH) {
        /* anyone could have chosen the spool, the relay, the members */
        snprintf(err, errlen,
                 "%s: world-writable (mode %04o): refusing a file anyone "
                 "could have written (chmod o-w)",
                 path, (unsigned)(st.st_mode & 07777));
        close(fd);
        return -1;
    }
    if (!(fp = fdopen(fd, "r"))) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    config_init(lc);
    if (include_dir) {
        config_set_include_dir(lc, include_dir);
    } else {
        /* @include paths are relative to the file, not to the cwd. */
        char *dir = xstrdup_or_null(path), *slash;
        if (dir && (slash = strrchr(dir, '/')) != NULL) {
            *slash = 0;
            config_set_include_dir(lc, dir[0] ? dir : "/");
        }
        free(dir);
    }
    ok = config_read(lc, fp);
    fclose(fp);
    if (!ok) {
        snprintf(err, errlen, "%s:%d: %s",
                 config_error_file(lc) ? config_error_file(lc) : path,
                 config_error_line(lc), config_error_text(lc));
        config_destroy(lc);
        return -1;
    }
    return 0;
}

int config_load(const char *path, struct mmq_config *cfg, char *err,
                size_t errlen)
{
    config_t lc;
    config_setting_t *root;
    int i, n, rc = -1, explicit_slices = 0;

    if (!path)
        path = config_default_path();
    if (config_defaults(cfg) != 0 || !(cfg->path = strdup(path))) {
        snprintf(err, errlen, "%s: out of memory", path);
        return -1;
    }
    if (config_parse_file(&lc, path, NULL, err, errlen) != 0)
        return -1;
    root = config_root_setting(&lc);
    n = config_setting_length(root);
    for (i = 0; i < n; i++) {
        config_setting_t *cs = config_setting_get_elem(root, i);
        const char *name = config_setting_name(cs);
        const struct setting *st = name ? find_setting(name) : NULL;
        const char *file = config_setting_source_file(cs)
                               ? config_setting_source_file(cs)
                               : path;

        if (name && strcmp(name, "nodes") == 0) {
            if (cfg->nodes) {
                snprintf(err, errlen, "%s:%d: nodes given twice", file,
                         config_setting_source_line(cs));
                goto out;
            }
            if (parse_nodes(cfg, cs, file, err, errlen) != 0)
                goto out;
            continue;
        }
        if (name && (strcmp(name, "delivery_slices") == 0 ||
                     strcmp(name, "process_slices") == 0))
            explicit_slices = 1;
        if (!st) {
            snprintf(err, errlen, "%s:%d: unknown setting \"%s\"", file,
                     config_setting_source_line(cs), name ? name : "?");
            goto out;
        }
        if (apply(cfg, st, cs, file, err, errlen) != 0)
            goto out;
    }
    rc = check_values(cfg, path, err, errlen);
    if (rc == 0 && cfg->nnodes)
        rc = check_nodes(cfg, explicit_slices, path, err, errlen);
out:
    config_destroy(&lc);
    return rc;
}
