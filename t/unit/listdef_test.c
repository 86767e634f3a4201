/*
 * listdef_test - list files and members files (listdef.h) against hostile
 * input: integer literals libconfig wraps to 32 bits (the same range rules
 * as mmq.conf), members files that are FIFOs, devices, binary or
 * world-writable, and the list-file cache: a list file in error is not
 * parsed again (libconfig leaks after some syntax errors) until it
 * changes, and a change of size or mtime is seen.
 */
#include "autoconf.h"

#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "listdef.h"
#include "tap.h"

#if defined(__SANITIZE_ADDRESS__)
/* from <sanitizer/allocator_interface.h>, which gcc does not install */
size_t __sanitizer_get_current_allocated_bytes(void);
/* The one parse of the broken file below leaks in libconfig itself (not
 * ours to fix): what this test checks is that it happens once. */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void)
{
    return "leak:libconfig.so";
}
static size_t heap_in_use(void)
{
    return __sanitizer_get_current_allocated_bytes();
}
#else
static size_t heap_in_use(void)
{
    return mallinfo2().uordblks;
}
#endif

static char tmpdir[] = "/tmp/mmq-listdef-test.XXXXXX";
static struct mmq_config cfg;

static void write_file(const char *name, const char *text, size_t len)
{
    char path[256];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
    if (!(f = fopen(path, "w")) || fwrite(text, 1, len, f) != len ||
        fclose(f) != 0)
        bail_out("cannot write %s: %s", path, strerror(errno));
}

static void write_list(const char *text)
{
    write_file("l.conf", text, strlen(text));
}

/* listdef_load of list "l" fails with err containing needle. */
static void list_refused(const char *text, const char *needle, const char *what)
{
    struct listdef ld;
    char err[512] = "";
    int rc;

    write_list(text);
    rc = listdef_load(&cfg, "l", &ld, err, sizeof(err));
    if (!ok(rc == -1 && strstr(err, needle), "list file: refuses %s", what))
        diag("rc %d, err: %s", rc, err);
    if (rc == 0)
        listdef_free(&ld);
}

static void test_ranges(void)
{
    struct mmq_config c;
    struct listdef ld;
    char err[512], path[256];
    int rc;

    list_refused("domain = \"x.org\";\nrecipients_per_entry = 4294967297;\n",
                 "l.conf:2: recipients_per_entry is out of range for a "
                 "plain integer",
                 "recipients_per_entry = 4294967297 (wraps to 1)");
    list_refused("domain = \"x.org\";\nmax_message_size = 4294967296;\n",
                 "l.conf:2: max_message_size is out of range for a plain "
                 "integer",
                 "max_message_size = 4294967296 (wraps to 0)");
    list_refused("domain = \"x.org\";\nrecipients_per_entry = 0;\n",
                 "l.conf:2: recipients_per_entry = 0 is out of range 1..100000",
                 "recipients_per_entry = 0");
    list_refused("domain = \"x.org\";\nmax_message_size = 1099511627777L;\n",
                 "max_message_size = 1099511627777 is out of range",
                 "max_message_size above 2^40");
    write_list("domain = \"x.org\";\nmax_message_size = 4294967296L;\n");
    rc = listdef_load(&cfg, "l", &ld, err, sizeof(err));
    ok(rc == 0 && ld.max_message_size == 4294967296LL,
       "list file: max_message_size = 4294967296L is 4294967296");
    if (rc == 0)
        listdef_free(&ld);
    /* and mmq.conf refuses the same literal the same way */
    snprintf(path, sizeof(path), "%s/mmq.conf", tmpdir);
    write_file("mmq.conf", "max_message_size = 4294967296;\n", 31);
    rc = config_load(path, &c, err, sizeof(err));
    ok(rc == -1 && strstr(err, "max_message_size is out of range for a "
                               "plain integer"),
       "mmq.conf: the same literal, the same error");
    config_free(&c);
}

/* members_load(path) fails (within 5 s) with err containing needle. */
static void members_refused(const char *path, const char *needle,
                            const char *what)
{
    struct members m;
    char err[512] = "";
    int rc;

    memset(&m, 0, sizeof(m));
    alarm(5); /* a FIFO would block open(): SIGALRM ends the test loudly */
    rc = members_load(&m, path, err, sizeof(err));
    alarm(0);
    if (!ok(rc == -1 && strstr(err, needle), "members: refuses %s", what))
        diag("rc %d (%zu members), err: %s", rc, m.n, err);
    members_free(&m);
}

static void test_members(void)
{
    char path[256];

    snprintf(path, sizeof(path), "%s/fifo.members", tmpdir);
    if (mkfifo(path, 0640) != 0)
        bail_out("mkfifo %s: %s", path, strerror(errno));
    members_refused(path, "fifo.members: not a regular file", "a FIFO");
    members_refused("/dev/zero", "/dev/zero: not a regular file", "/dev/zero");
    write_file("nul.members", "a@example.org\n\0\0\0\0\nb@example.org\n", 34);
    snprintf(path, sizeof(path), "%s/nul.members", tmpdir);
    members_refused(path, "nul.members: a binary file (NUL bytes)",
                    "a file with NUL bytes");
    write_file("ww.members", "a@example.org\n", 14);
    snprintf(path, sizeof(path), "%s/ww.members", tmpdir);
    chmod(path, 0666);
    members_refused(path, "ww.members: world-writable",
                    "a world-writable file");
}

static void set_mtime(const char *name, time_t t)
{
    char path[256];
    struct timespec ts[2] = {{t, 0}, {t, 0}};

    snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
    if (utimensat(AT_FDCWD, path, ts, 0) != 0)
        bail_out("utimensat %s: %s", path, strerror(errno));
}

static void test_cache(void)
{
    struct listdef_cache c = {NULL, 0};
    const struct listdef *ld, *again;
    char err[512], first[512];
    size_t before, grown;
    int i, same = 1;

    /* a syntax error after which libconfig 1.5 leaks (a quoted name) */
    write_list("domain = \"x.org\";\n\"x\" = 1;\n");
    ok(listdef_get(&c, &cfg, "l", first, sizeof(first)) == NULL,
       "cache: a broken list file is an error");
    before = heap_in_use();
    for (i = 0; i < 500; i++) {
        if (listdef_get(&c, &cfg, "l", err, sizeof(err)) != NULL ||
            strcmp(err, first) != 0)
            same = 0;
    }
    grown = heap_in_use() - before;
    ok(same, "cache: the same error 500 times (%s)", first);
    if (!ok(grown < 4096, "cache: the heap did not grow with the retries"))
        diag("grew by %zu bytes over 500 retries", grown);
    /* fixed: a different size */
    write_list("domain = \"x.org\";\nrecipients_per_entry = 7;\n");
    ld = listdef_get(&c, &cfg, "l", err, sizeof(err));
    ok(ld && ld->per_entry == 7, "cache: the fixed file is read");
    again = listdef_get(&c, &cfg, "l", err, sizeof(err));
    ok(again == ld, "cache: an unchanged file is not parsed again");
    /* the same size, another mtime */
    write_list("domain = \"x.org\";\nrecipients_per_entry = 8;\n");
    set_mtime("l.conf", time(NULL) - 3600);
    ld = listdef_get(&c, &cfg, "l", err, sizeof(err));
    ok(ld && ld->per_entry == 8, "cache: a same-size edit is seen");
    ok(listdef_get(&c, &cfg, "nosuch", err, sizeof(err)) == NULL &&
           strstr(err, "nosuch.conf: cannot open"),
       "cache: a missing list file: %s", err);
    listdef_cache_free(&c);
}

int main(void)
{
    char cmd[64];

    signal(SIGALRM, SIG_DFL);
    if (!mkdtemp(tmpdir))
        bail_out("mkdtemp: %s", strerror(errno));
    if (config_defaults(&cfg) != 0)
        bail_out("out of memory");
    free(cfg.lists_dir);
    cfg.lists_dir = strdup(tmpdir);
    test_ranges();
    test_members();
    test_cache();
    config_free(&cfg);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
    if (system(cmd) != 0)
        diag("could not remove %s", tmpdir);
    return done_testing();
}
