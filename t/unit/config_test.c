/*
 * config_test - mmq.conf loading (config.h): defaults, every setting,
 * unknown settings, types, ranges, syntax errors with file:line, missing
 * files, the libconfig 1.5 integer quirk, paths and node names.
 */
#include "autoconf.h"

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "config.h"
#include "tap.h"

static char tmpdir[] = "/tmp/mmq-config-test.XXXXXX";
static char conf[sizeof(tmpdir) + 32];

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");

    if (!f || fputs(text, f) == EOF || fclose(f) != 0)
        bail_out("cannot write %s: %s", path, strerror(errno));
}

/* Write text as the config file and load it. */
static int load(const char *text, struct mmq_config *cfg, char *err)
{
    write_text(conf, text);
    memset(err, 'X', CONFIG_ERR_MAX);
    err[CONFIG_ERR_MAX - 1] = 0;
    return config_load(conf, cfg, err, CONFIG_ERR_MAX);
}

static int starts_with(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* The text loads. */
static void good(const char *text, const char *what)
{
    struct mmq_config cfg;
    char err[CONFIG_ERR_MAX];
    int rc = load(text, &cfg, err);

    if (!ok(rc == 0, "accepts %s", what))
        diag("%s", err);
    config_free(&cfg);
}

/* The text is refused with "CONF:LINE: ..." containing needle. */
static void bad(const char *text, int line, const char *needle,
                const char *what)
{
    struct mmq_config cfg;
    char err[CONFIG_ERR_MAX], prefix[sizeof(conf) + 32];
    int rc = load(text, &cfg, err);

    if (line > 0)
        snprintf(prefix, sizeof(prefix), "%s:%d: ", conf, line);
    else
        snprintf(prefix, sizeof(prefix), "%s: ", conf);
    if (!ok(rc == -1 && starts_with(err, prefix) && strstr(err, needle),
            "refuses %s", what)) {
        diag("rc %d, err: %s", rc, err);
        diag("wanted \"%s...%s...\"", prefix, needle);
    }
    config_free(&cfg);
}

static void test_defaults(void)
{
    struct mmq_config cfg;
    char err[CONFIG_ERR_MAX];
    char host[256] = "";
    char *dot;

    is_str(config_default_path(), MMQ_CONFIG_FILE, "config_default_path");
    ok(config_defaults(&cfg) == 0, "config_defaults");
    is_str(cfg.spool, MMQ_SPOOL_DIR, "default spool");
    is_str(cfg.lists_dir, MMQ_LISTS_DIR, "default lists_dir");
    ok(cfg.spool_user == NULL, "default spool_user: none");
    ok(cfg.path == NULL, "defaults come from no file");
    is_int(cfg.slices, 16, "default slices");
    is_int(cfg.max_message_size, 40 * 1024 * 1024, "default max_message_size");
    is_int(cfg.max_recoveries, 3, "default max_recoveries");
    is_int(cfg.tmp_max_age, 86400, "default tmp_max_age");
    is_int(cfg.filter_timeout, 900, "default filter_timeout");
    is_int(cfg.verbose, 0, "default verbose");
    gethostname(host, sizeof(host) - 1);
    if ((dot = strchr(host, '.')))
        *dot = 0;
    if (config_valid_node(host))
        is_str(cfg.node, host, "default node: the short host name");
    else
        is_str(cfg.node, "localhost", "default node: localhost");
    config_free(&cfg);

    /* An empty file (and one of only comments) gives the defaults. */
    ok(load("", &cfg, err) == 0 && cfg.slices == 16 &&
           strcmp(cfg.spool, MMQ_SPOOL_DIR) == 0 && cfg.path &&
           strcmp(cfg.path, conf) == 0,
       "an empty file gives the defaults and records its path");
    config_free(&cfg);
    ok(load("# comment\n// another\n/* and\n another */\n", &cfg, err) == 0 &&
           cfg.max_recoveries == 3,
       "a file of comments gives the defaults");
    config_free(&cfg);
}

static void test_every_setting(void)
{
    struct mmq_config cfg;
    char err[CONFIG_ERR_MAX];
    int rc;

    rc = load("spool = \"/srv/mmq/spool\";\n"
              "node = \"mx-1.example_net\";\n"
              "lists_dir = \"/srv/mmq/lists\";\n"
              "spool_user = \"list\";\n"
              "slices = 7;\n"
              "max_message_size = 5000000000L;\n"
              "max_recoveries = 0;\n"
              "tmp_max_age = 120;\n"
              "filter_timeout = 30;\n"
              "verbose = true;\n",
              &cfg, err);
    if (!ok(rc == 0, "a file setting everything loads"))
        diag("%s", err);
    is_str(cfg.spool, "/srv/mmq/spool", "spool");
    is_str(cfg.node, "mx-1.example_net", "node");
    is_str(cfg.lists_dir, "/srv/mmq/lists", "lists_dir");
    is_str(cfg.spool_user, "list", "spool_user");
    is_int(cfg.slices, 7, "slices");
    is_int(cfg.max_message_size, 5000000000LL, "max_message_size (int64)");
    is_int(cfg.max_recoveries, 0, "max_recoveries");
    is_int(cfg.tmp_max_age, 120, "tmp_max_age");
    is_int(cfg.filter_timeout, 30, "filter_timeout");
    is_int(cfg.verbose, 1, "verbose");
    config_free(&cfg);

    rc = load("max_message_size = 1000;\nverbose = false;\nslices : 3\n", &cfg,
              err);
    ok(rc == 0 && cfg.max_message_size == 1000 && cfg.verbose == 0 &&
           cfg.slices == 3,
       "an int64 setting takes a plain int; ':' and no ';' are libconfig "
       "syntax too");
    config_free(&cfg);

    /* The delivery settings (mmq-deliver). */
    rc = load("relay_host = \"mx.example.org\";\n"
              "relay_port = 2525;\n"
              "helo_name = \"out.example.org\";\n"
              "delivery_slices = \"0-3,5\";\n"
              "recipients_per_transaction = 50;\n"
              "connections = 8;\n"
              "transactions_per_connection = 10;\n"
              "smtp_timeout = 60;\n"
              "session_time_limit = 600;\n"
              "retry_min = 60;\n"
              "retry_max = 7200;\n"
              "max_lifetime = 86400;\n"
              "scan_interval = 5;\n"
              "tls = \"required\";\n"
              "tls_ca_file = \"/etc/ssl/ca.pem\";\n"
              "auth_file = \"/etc/mmq/auth\";\n"
              "postmaster = \"postmaster@example.org\";\n",
              &cfg, err);
    if (!ok(rc == 0, "a file setting every delivery setting loads"))
        diag("%s", err);
    is_str(cfg.relay_host, "mx.example.org", "relay_host");
    is_int(cfg.relay_port, 2525, "relay_port");
    is_str(cfg.helo_name, "out.example.org", "helo_name");
    is_str(cfg.delivery_slices, "0-3,5", "delivery_slices");
    is_int(cfg.recipients_per_transaction, 50, "recipients_per_transaction");
    is_int(cfg.connections, 8, "connections");
    is_int(cfg.transactions_per_connection, 10, "transactions_per_connection");
    is_int(cfg.smtp_timeout, 60, "smtp_timeout");
    is_int(cfg.session_time_limit, 600, "session_time_limit");
    is_int(cfg.retry_min, 60, "retry_min");
    is_int(cfg.retry_max, 7200, "retry_max");
    is_int(cfg.max_lifetime, 86400, "max_lifetime");
    is_int(cfg.scan_interval, 5, "scan_interval");
    is_str(cfg.tls, "required", "tls");
    is_str(cfg.tls_ca_file, "/etc/ssl/ca.pem", "tls_ca_file");
    is_str(cfg.auth_file, "/etc/mmq/auth", "auth_file");
    is_str(cfg.postmaster, "postmaster@example.org", "postmaster");
    config_free(&cfg);

    /* The documented "none" defaults of the delivery settings. */
    config_defaults(&cfg);
    ok(cfg.tls_ca_file == NULL && cfg.auth_file == NULL &&
           cfg.postmaster == NULL && cfg.tls && strcmp(cfg.tls, "off") == 0 &&
           cfg.retry_min <= cfg.retry_max,
       "delivery defaults: no CA file, no auth, no postmaster, tls off");
    config_free(&cfg);

    good("tls = \"off\";", "tls = off");
    good("tls = \"opportunistic\";", "tls = opportunistic");
    good("retry_min = 600; retry_max = 600;", "retry_min = retry_max");
}

/* Every integer setting and its range (as in config.c and mmq.conf(5)). */
static const struct {
    const char *name;
    long long min, max;
} ints[] = {
    {"slices", 1, 65536},
    {"max_message_size", 1, 1LL << 40},
    {"max_recoveries", 0, 1000},
    {"tmp_max_age", 60, 365 * 86400},
    {"filter_timeout", 1, 86400},
    {"relay_port", 1, 65535},
    {"recipients_per_transaction", 1, 100000},
    {"connections", 1, 256},
    {"transactions_per_connection", 1, 100000},
    {"smtp_timeout", 1, 3600},
    {"session_time_limit", 10, 86400},
    {"retry_min", 1, 86400},
    {"retry_max", 1, 7 * 86400},
    {"max_lifetime", 0, 365 * 86400},
    {"scan_interval", 1, 3600},
    {"lease_time", 2, 3600},
    {"lease_margin", 1, 3600},
};

/* Every integer setting: its range ends are accepted, one beyond is not. */
static void test_ranges(void)
{
    char text[256], what[128];
    size_t i;

    for (i = 0; i < sizeof(ints) / sizeof(ints[0]); i++) {
        const char *n = ints[i].name;
        /* retry_min must not exceed retry_max: move the other one along */
        const char *pre = strcmp(n, "retry_min") == 0   ? "retry_max = 86400;"
                          : strcmp(n, "retry_max") == 0 ? "retry_min = 1;"
                                                        : "";

        snprintf(text, sizeof(text), "%s %s = %lld%s;", pre, n, ints[i].min,
                 ints[i].min > 2147483647 ? "L" : "");
        snprintf(what, sizeof(what), "%s = %lld", n, ints[i].min);
        good(text, what);
        snprintf(text, sizeof(text), "%s %s = %lld%s;", pre, n, ints[i].max,
                 ints[i].max > 2147483647 ? "L" : "");
        snprintf(what, sizeof(what), "%s = %lld", n, ints[i].max);
        good(text, what);
        snprintf(text, sizeof(text), "%s\n%s = %lld%s;", pre, n,
                 ints[i].min - 1, ints[i].min - 1 > 2147483647 ? "L" : "");
        snprintf(what, sizeof(what), "%s = %lld", n, ints[i].min - 1);
        bad(text, 2, "out of range", what);
        snprintf(text, sizeof(text), "%s\n%s = %lld%s;", pre, n,
                 ints[i].max + 1, ints[i].max + 1 > 2147483647 ? "L" : "");
        snprintf(what, sizeof(what), "%s = %lld", n, ints[i].max + 1);
        bad(text, 2, "out of range", what);
    }
    bad("tls = \"yes\";", 0, "tls", "tls = yes");
    bad("tls = \"Required\";", 0, "tls", "tls = Required");
    bad("retry_min = 601; retry_max = 600;", 0, "retry_min",
        "retry_min above retry_max");
}

/*
 * config_load(path) in a child process: it must return -1 with an error
 * naming path, not end the process (libconfig's flex scanner calls exit(2)
 * when reading its input fails, e.g. on a directory).
 */
static void config_load_isolated(const char *path, const char *what)
{
    int status = 0;
    pid_t pid;

    tap_fork_prepare();
    pid = fork();
    if (pid < 0)
        bail_out("fork: %s", strerror(errno));
    if (pid == 0) {
        struct mmq_config cfg;
        char err[CONFIG_ERR_MAX];
        int rc;

        /* The child's stdout is not TAP: silence whatever libconfig says. */
        if (!freopen("/dev/null", "w", stdout) ||
            !freopen("/dev/null", "w", stderr))
            _exit(100);
        rc = config_load(path, &cfg, err, sizeof(err));
        config_free(&cfg);
        _exit(rc == -1 && starts_with(err, path) ? 0 : 101);
    }
    if (waitpid(pid, &status, 0) != pid)
        bail_out("waitpid: %s", strerror(errno));
    if (!ok(WIFEXITED(status) && WEXITSTATUS(status) == 0, "%s", what)) {
        if (WIFSIGNALED(status))
            diag("config_load(\"%s\") killed the process with signal %d", path,
                 WTERMSIG(status));
        else if (WEXITSTATUS(status) == 101)
            diag("config_load(\"%s\") did not return -1 with \"%s: ...\"", path,
                 path);
        else
            diag("config_load(\"%s\") ended the process with exit status %d",
                 path, WEXITSTATUS(status));
    }
}

static void test_errors(void)
{
    struct mmq_config cfg;
    char err[CONFIG_ERR_MAX], path[sizeof(tmpdir) + 32];
    int rc;

    /* Unknown settings. */
    bad("slices = 4;\n\nspoool = \"/x\";\n", 3, "unknown setting \"spoool\"",
        "an unknown setting, with file:line");
    bad("Slices = 4;\n", 1, "unknown setting", "a setting in the wrong case");
    bad("\nlists = { a = 1; };\n", 2, "unknown setting", "an unknown group");
    bad("slices = 4;\nslices = 5;\n", 2, "", "a setting given twice");

    /* Wrong types. */
    bad("slices = \"7\";\n", 1, "slices: expected an integer",
        "a string for an integer");
    bad("\nslices = 7.0;\n", 2, "slices: expected an integer",
        "a float for an integer");
    bad("slices = true;\n", 1, "expected an integer", "a bool for an integer");
    bad("slices = [1, 2];\n", 1, "expected an integer",
        "an array for an integer");
    bad("max_message_size = \"1M\";\n", 1, "expected an integer",
        "a string for an int64");
    bad("spool = 5;\n", 1, "spool: expected a string",
        "an integer for a "
        "string");
    bad("node = [\"a\"];\n", 1, "node: expected a string",
        "an array for a string");
    bad("verbose = 1;\n", 1, "verbose: expected true or false",
        "an integer for a bool");
    bad("verbose = \"yes\";\n", 1, "verbose: expected true or false",
        "a string for a bool");

    /* Out of range (the ends of every range: test_ranges). */
    bad("max_message_size = -5L;\n", 1, "out of range",
        "a negative max_message_size");
    bad("slices = 5000000000L;\n", 1, "out of range",
        "an int64 too large for an int setting");
    bad("max_recoveries = 4294967298L;\n", 1, "out of range",
        "an int64 that would wrap to 2 in an int");

    /* Syntax errors name file and line. */
    bad("slices = 4;\nslices = ;\n", 2, "", "a syntax error (missing value)");
    bad("# ok\n\n\nspool = \"/x\"\n  = 3;\n", 5, "",
        "a syntax error on line 5");
    bad("spool = \"/x;\n", 2, "", "an unterminated string (seen at EOF)");
    bad("slices = 4; }\n", 1, "", "a stray brace");

    /* A missing file. */
    snprintf(path, sizeof(path), "%s/no-such.conf", tmpdir);
    rc = config_load(path, &cfg, err, sizeof(err));
    ok(rc == -1 && starts_with(err, path) && strstr(err, strerror(ENOENT)),
       "a missing file is an error naming it and the reason (%s)", err);
    config_free(&cfg);
    snprintf(path, sizeof(path), "%s/no-such-dir/x.conf", tmpdir);
    rc = config_load(path, &cfg, err, sizeof(err));
    ok(rc == -1 && starts_with(err, path), "a file in a missing directory");
    config_free(&cfg);
    config_load_isolated(tmpdir, "a directory is refused as a config file "
                                 "(and does not end the process)");
    if (geteuid() != 0) {
        write_text(conf, "slices = 4;\n");
        chmod(conf, 0);
        rc = config_load(conf, &cfg, err, sizeof(err));
        ok(rc == -1 && strstr(err, strerror(EACCES)),
           "an unreadable file is an error naming the reason");
        config_free(&cfg);
        chmod(conf, 0600);
    } else {
        skip(1, "root can read a mode 000 file");
    }

    /* A short error buffer is truncated, still NUL-terminated. */
    write_text(conf, "no_such_setting_with_a_long_name = 1;\n");
    memset(err, 'X', sizeof(err));
    rc = config_load(conf, &cfg, err, 16);
    ok(rc == -1 && strlen(err) == 15, "the error fits errlen");
    config_free(&cfg);
}

/*
 * libconfig 1.5 reads an integer literal without the L suffix as a 32-bit
 * int and silently wraps it: 3000000000 becomes -1294967296, 4294967303
 * becomes 7.  Whatever libconfig does, config_load must never hand out a
 * value other than the one written: it either loads the written value or
 * refuses the file with file:line and a reason that shows the value written
 * or asks for the L suffix (not a wrapped number the user never wrote).
 */
/* 1 if text shows number on its own (not as part of another number, such
 * as the "-2147483648" that 2147483648 wraps to). */
static int shows_number(const char *text, const char *number)
{
    const char *p;
    size_t n = strlen(number);

    for (p = strstr(text, number); p; p = strstr(p + 1, number)) {
        char before = p == text ? ' ' : p[-1], after = p[n];

        if (before != '-' && !(before >= '0' && before <= '9') &&
            !(after >= '0' && after <= '9'))
            return 1;
    }
    return 0;
}

static void big_literal(const char *setting, const char *literal,
                        long long written)
{
    struct mmq_config cfg;
    char err[CONFIG_ERR_MAX], text[256];
    long long got = 0;
    int rc;

    snprintf(text, sizeof(text), "\n%s = %s;\n", setting, literal);
    rc = load(text, &cfg, err);
    if (rc == 0) {
        if (strcmp(setting, "max_message_size") == 0)
            got = cfg.max_message_size;
        else if (strcmp(setting, "slices") == 0)
            got = cfg.slices;
        else if (strcmp(setting, "max_recoveries") == 0)
            got = cfg.max_recoveries;
        else if (strcmp(setting, "filter_timeout") == 0)
            got = cfg.filter_timeout;
    }
    if (!ok(rc == 0
                ? got == written
                : strstr(err, ":2: ") != NULL &&
                      (shows_number(err, literal) || strstr(err, "L suffix")),
            "%s = %s is loaded as written or refused saying why", setting,
            literal)) {
        if (rc == 0)
            diag("loaded as %lld, the file says %lld", got, written);
        else
            diag("the error neither shows %s nor asks for the L suffix",
                 literal);
    }
    if (rc != 0)
        diag("%s = %s: %s", setting, literal, err);
    config_free(&cfg);
}

static void test_big_literals(void)
{
    struct mmq_config cfg;
    char err[CONFIG_ERR_MAX];
    int rc;

    ok(load("max_message_size = 3000000000L;\n", &cfg, err) == 0 &&
           cfg.max_message_size == 3000000000LL,
       "max_message_size = 3000000000L loads as 3000000000");
    config_free(&cfg);
    rc = load("\nmax_message_size = 3000000000;\n", &cfg, err);
    ok(rc == -1 && strstr(err, ":2: ") && strstr(err, "out of range"),
       "max_message_size = 3000000000 (no L) is refused, as mmq.conf(5) "
       "CAVEATS says (%s)",
       err);
    config_free(&cfg);

    /* libconfig 1.5 wraps integers written without L; config.c reads the
     * literal back and refuses such a value. */
    big_literal("max_message_size", "3000000000", 3000000000LL);
    big_literal("max_message_size", "2147483648", 2147483648LL);
    big_literal("max_message_size", "4294968296", 4294968296LL);
    big_literal("max_message_size", "0x100000400", 0x100000400LL);
    big_literal("slices", "4294967303", 4294967303LL);
    big_literal("max_recoveries", "4294967298", 4294967298LL);
    big_literal("max_recoveries", "-4294967295", -4294967295LL);
    big_literal("filter_timeout", "99999999999999999999", 0);
}

static void test_paths_and_nodes(void)
{
    static const char *const good_nodes[] = {
        "a",
        "mx1",
        "mx-1.example.org",
        "Node_2",
        "0",
        "9abc",
        "abcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghij123",
    };
    static const char *const bad_nodes[] = {
        "",
        ".a",
        "-a",
        "a b",
        "a/b",
        "a#b",
        "a@b",
        "a:b",
        "a\nb",
        "\xc3\xa4",
        "abcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghij1234",
    };
    char text[256];
    size_t i;

    bad("spool = \"var/spool/mmq\";\n", 0, "must be an absolute path",
        "a relative spool path");
    bad("spool = \"\";\n", 0, "must be an absolute path",
        "an empty spool "
        "path");
    bad("lists_dir = \"lists\";\n", 0, "must be an absolute path",
        "a relative lists_dir");
    good("spool = \"/\";\n", "spool = \"/\"");

    for (i = 0; i < sizeof(good_nodes) / sizeof(good_nodes[0]); i++) {
        ok(config_valid_node(good_nodes[i]), "valid node name \"%s\"",
           good_nodes[i]);
        snprintf(text, sizeof(text), "node = \"%s\";\n", good_nodes[i]);
        good(text, "a valid node name in the file");
    }
    for (i = 0; i < sizeof(bad_nodes) / sizeof(bad_nodes[0]); i++) {
        ok(!config_valid_node(bad_nodes[i]), "invalid node name \"%s\"",
           bad_nodes[i]);
        if (strchr(bad_nodes[i], '\n'))
            continue; /* not a valid libconfig string anyway */
        snprintf(text, sizeof(text), "node = \"%s\";\n", bad_nodes[i]);
        bad(text, 0, "is not a valid node name",
            "an invalid node name in the file");
    }
}

/* The default of an integer setting, as config_defaults() sets it. */
static int int_default(const struct mmq_config *c, const char *name,
                       long long *v)
{
    static const struct {
        const char *name;
        size_t off;
        int is64;
    } f[] = {
        {"slices", offsetof(struct mmq_config, slices), 0},
        {"max_message_size", offsetof(struct mmq_config, max_message_size), 1},
        {"max_recoveries", offsetof(struct mmq_config, max_recoveries), 0},
        {"tmp_max_age", offsetof(struct mmq_config, tmp_max_age), 0},
        {"filter_timeout", offsetof(struct mmq_config, filter_timeout), 0},
        {"relay_port", offsetof(struct mmq_config, relay_port), 0},
        {"recipients_per_transaction",
         offsetof(struct mmq_config, recipients_per_transaction), 0},
        {"connections", offsetof(struct mmq_config, connections), 0},
        {"transactions_per_connection",
         offsetof(struct mmq_config, transactions_per_connection), 0},
        {"smtp_timeout", offsetof(struct mmq_config, smtp_timeout), 0},
        {"session_time_limit", offsetof(struct mmq_config, session_time_limit),
         0},
        {"retry_min", offsetof(struct mmq_config, retry_min), 0},
        {"retry_max", offsetof(struct mmq_config, retry_max), 0},
        {"max_lifetime", offsetof(struct mmq_config, max_lifetime), 0},
        {"scan_interval", offsetof(struct mmq_config, scan_interval), 0},
        {"lease_time", offsetof(struct mmq_config, lease_time), 0},
        {"lease_margin", offsetof(struct mmq_config, lease_margin), 0},
    };
    size_t i;

    for (i = 0; i < sizeof(f) / sizeof(f[0]); i++)
        if (strcmp(f[i].name, name) == 0) {
            const char *p = (const char *)c + f[i].off;
            *v = f[i].is64 ? *(const int64_t *)(const void *)p
                           : *(const int *)(const void *)p;
            return 0;
        }
    return -1;
}

/*
 * mmq.conf(5) documents each integer setting as
 *     .TP / .B NAME / TYPE, default / .B[R] VALUE ... / ... MIN to MAX.
 * The documented default and range must be the code's.
 */
static void test_manual(void)
{
    const char *top = getenv("top_srcdir");
    char path[4096], *text = NULL, *lines[4096];
    struct mmq_config def;
    size_t nlines = 0, len = 0, i, k;
    FILE *f;

    snprintf(path, sizeof(path), "%s/man/mmq.conf.5", top ? top : "..");
    if (!top || !(f = fopen(path, "r"))) {
        skip((int)(sizeof(ints) / sizeof(ints[0])),
             "mmq.conf(5) not found (run from make check)");
        return;
    }
    if (getdelim(&text, &len, 0, f) < 0)
        bail_out("cannot read %s", path);
    fclose(f);
    for (lines[nlines++] = strtok(text, "\n"); nlines < 4096;)
        if (!(lines[nlines] = strtok(NULL, "\n")))
            break;
        else
            nlines++;
    config_defaults(&def);
    for (k = 0; k < sizeof(ints) / sizeof(ints[0]); k++) {
        char head[96];
        long long want_def = 0, doc_def = -1, doc_min = -1, doc_max = -1;
        int found = 0;

        snprintf(head, sizeof(head), ".B %s", ints[k].name);
        int_default(&def, ints[k].name, &want_def);
        for (i = 1; i + 2 < nlines && !found; i++) {
            size_t j;

            if (strcmp(lines[i], head) != 0 || strcmp(lines[i - 1], ".TP"))
                continue;
            found = 1;
            if (!strstr(lines[i + 1], "default"))
                break;
            /* ".B 900" or ".BR 16 ," */
            sscanf(lines[i + 2] + strcspn(lines[i + 2], "0123456789"), "%lld",
                   &doc_def);
            /* "MIN to MAX" on one of the next lines */
            for (j = i + 2; j < i + 5 && j < nlines; j++) {
                const char *t = strstr(lines[j], " to ");
                const char *p = t;

                if (!t)
                    continue;
                while (p > lines[j] && p[-1] >= '0' && p[-1] <= '9')
                    p--;
                if (sscanf(p, "%lld to %lld", &doc_min, &doc_max) == 2)
                    break;
            }
        }
        if (found && doc_min == -1 && doc_max == -1) {
            /* no range in the manual: check the default only */
            diag("mmq.conf(5) gives no range for %s (the code: %lld to %lld)",
                 ints[k].name, ints[k].min, ints[k].max);
            doc_min = ints[k].min;
            doc_max = ints[k].max;
        }
        if (!ok(found && doc_def == want_def && doc_min == ints[k].min &&
                    doc_max == ints[k].max,
                "mmq.conf(5) documents %s as the code has it", ints[k].name))
            diag("manual: %s, default %lld, %lld to %lld; code: default "
                 "%lld, %lld to %lld",
                 found ? "found" : "not found", doc_def, doc_min, doc_max,
                 want_def, ints[k].min, ints[k].max);
    }
    config_free(&def);
    free(text);
}

/* @include is relative to the file, and errors inside an included file
 * name that file and its line. */
static void test_include(void)
{
    struct mmq_config cfg;
    char err[CONFIG_ERR_MAX], inc[sizeof(tmpdir) + 32], want[sizeof(inc) + 8];
    char cwd[4096];
    int rc;

    snprintf(inc, sizeof(inc), "%s/inc.conf", tmpdir);
    write_text(inc, "slices = 9;\n");
    if (!getcwd(cwd, sizeof(cwd)) || chdir("/") != 0)
        bail_out("chdir: %s", strerror(errno));
    rc = load("@include \"inc.conf\"\nverbose = true;\n", &cfg, err);
    ok(rc == 0 && cfg.slices == 9 && cfg.verbose == 1,
       "@include is found relative to the file, not the cwd");
    if (rc != 0)
        diag("%s", err);
    config_free(&cfg);

    write_text(inc, "# line 1\n\nbogus = 1;\n");
    rc = load("\n\n\n\n\n\n@include \"inc.conf\"\n", &cfg, err);
    snprintf(want, sizeof(want), "%s:3: ", inc);
    if (!ok(rc == -1 &&
                (starts_with(err, want) || starts_with(err, "inc.conf:3: ")),
            "an unknown setting in an included file names that file:line"))
        diag("rc %d, err: %s", rc, err);
    config_free(&cfg);

    write_text(inc, "# line 1\nslices = = 1;\n");
    rc = load("@include \"inc.conf\"\n", &cfg, err);
    snprintf(want, sizeof(want), "%s:2: ", inc);
    if (!ok(rc == -1 &&
                (starts_with(err, want) || starts_with(err, "inc.conf:2: ")),
            "a syntax error in an included file names that file:line"))
        diag("rc %d, err: %s", rc, err);
    config_free(&cfg);
    if (chdir(cwd) != 0)
        bail_out("chdir back: %s", strerror(errno));
    unlink(inc);
}

/* The nodes list: each node's slices, standby and takeover time, and
 * every way of getting it wrong. */
static void test_nodes(void)
{
    static const char two[] =
        "node = \"b\"; slices = 8;\n"
        "nodes = (\n"
        "  { name = \"a\"; process = \"0-3\"; deliver = \"0-3\"; "
        "standby = \"4-7\"; },\n"
        "  { name = \"b\"; process = \"4-7\"; deliver = \"4-5\"; "
        "standby = \"0-3\"; takeover_after = 99; }\n"
        ");\n";
    struct mmq_config cfg;
    char err[CONFIG_ERR_MAX];
    const struct mmq_node *a, *o;

    if (!ok(load(two, &cfg, err) == 0, "accepts a two-node cluster"))
        diag("%s", err);
    a = config_node(&cfg, "a");
    ok(cfg.nnodes == 2 && a && strcmp(a->standby, "4-7") == 0,
       "both nodes are read, with their standby slices");
    ok(a && a->takeover_after == 30 + 2 * 10,
       "takeover_after defaults to lease_time + 2 x lease_margin");
    ok(strcmp(cfg.delivery_slices, "4-5") == 0 &&
           strcmp(cfg.process_slices, "4-7") == 0,
       "this node's slices become delivery_slices and process_slices");
    o = config_slice_owner(&cfg, "deliver", 6);
    ok(o == NULL, "a slice nobody delivers has no owner");
    o = config_slice_owner(&cfg, "process", 6);
    ok(o && strcmp(o->name, "b") == 0, "the owner of a slice is found");
    config_free(&cfg);

    good("node = \"a\"; nodes = ( { name = \"a\"; } );",
         "a node with no slices (\"none\" by default)");
    good("node = \"a\"; nodes = ( { name = \"a\"; deliver = \"none\"; "
         "process = \"all\"; } );",
         "\"none\" and \"all\"");
    bad("node = \"c\"; nodes = ( { name = \"a\"; } );", 0,
        "\"c\", is not in nodes", "a node that is not in nodes");
    bad("node = \"a\"; nodes = ( { name = \"a\"; }, { name = \"a\"; } );", 0,
        "listed twice", "a node listed twice");
    bad("node = \"a\"; slices = 4; nodes = ( { name = \"a\"; deliver = "
        "\"0-2\"; }, { name = \"b\"; deliver = \"2-3\"; } );",
        0, "slice 2 of deliver has two owners", "overlapping slices");
    bad("node = \"a\"; slices = 4; nodes = ( { name = \"a\"; process = "
        "\"0-4\"; } );",
        0, "not within 0-3", "a slice beyond slices");
    bad("node = \"a\";\nnodes = ( { name = \"a\"; takeover_after = 35; } );",
        0, "below lease_time + lease_margin",
        "takeover_after shorter than lease_time + lease_margin");
    bad("node = \"a\";\nnodes = ( { name = \"a\";\n colour = \"red\"; } );",
        3, "unknown setting \"colour\"", "an unknown node setting");
    bad("node = \"a\";\nnodes = ( { name = \"a\";\n deliver = 3; } );", 3,
        "expected a string", "a number for a slice set");
    bad("node = \"a\";\nnodes = ( { deliver = \"0\"; } );", 2,
        "without a name", "a node without a name");
    bad("node = \"a\";\nnodes = { a = 1; };", 2, "expected a list",
        "nodes as a group");
    bad("node = \"a\";\nnodes = ( 1 );", 2, "not a group",
        "a node that is not a group");
    bad("node = \"a\"; nodes = ( { name = \"a/b\"; } );", 0,
        "not a valid node name", "a node name with a slash");
    bad("node = \"a\"; delivery_slices = \"0\";\n"
        "nodes = ( { name = \"a\"; } );",
        0, "cannot be used with nodes", "delivery_slices beside nodes");
}

int main(void)
{
    if (!mkdtemp(tmpdir))
        bail_out("mkdtemp: %s", strerror(errno));
    snprintf(conf, sizeof(conf), "%s/mmq.conf", tmpdir);

    test_defaults();
    test_every_setting();
    test_ranges();
    test_errors();
    test_big_literals();
    test_paths_and_nodes();
    test_include();
    test_nodes();
    test_manual();

    unlink(conf);
    if (rmdir(tmpdir) != 0)
        diag("rmdir %s: %s", tmpdir, strerror(errno));
    return done_testing();
}
