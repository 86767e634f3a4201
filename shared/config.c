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
#include <libconfig.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"

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
        if (type == CONFIG_TYPE_INT) {
            v = config_setting_get_int(cs);
            if (int_literal_wrapped(file, line, st->name, v)) {
                snprintf(err, errlen,
                         "%s:%d: %s is out of range for a plain integer: "
                         "libconfig reads integers without the L suffix as "
                         "32 bits (write e.g. 3000000000L)",
                         file, line, st->name);
                return -1;
            }
        } else if (type == CONFIG_TYPE_INT64)
            v = config_setting_get_int64(cs);
        else
            goto wrong;
        if (v < st->min || v > st->max) {
            snprintf(err, errlen, "%s:%d: %s = %lld is out of range %lld..%lld",
                     file, line, st->name, v, (long long)st->min,
                     (long long)st->max);
            return -1;
        }
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

int config_parse_file(config_t *lc, const char *path, const char *include_dir,
                      char *err, size_t errlen)
{
    struct stat st;
    FILE *fp;
    int ok;

    /* Open it ourselves so the error names the real reason (ENOENT,
     * EACCES), and refuse anything but a regular file: libconfig's
     * scanner exit()s the whole process when reading fails. */
    if (!(fp = fopen(path, "r"))) {
        snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    if (fstat(fileno(fp), &st) != 0 || !S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "%s: not a regular file", path);
        fclose(fp);
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
    int i, n, rc = -1;

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

        if (!st) {
            snprintf(err, errlen, "%s:%d: unknown setting \"%s\"", file,
                     config_setting_source_line(cs), name ? name : "?");
            goto out;
        }
        if (apply(cfg, st, cs, file, err, errlen) != 0)
            goto out;
    }
    rc = check_values(cfg, path, err, errlen);
out:
    config_destroy(&lc);
    return rc;
}
