/*
 * name_test - entry names (queue.h): two processes enqueue the very same
 * message with the very same envelope (same arrival time) through the real
 * writer API into one spool, and every entry must get its own name and
 * file; then qname_parse() on ready, "@origin" and claimed names and on
 * junk.
 *
 * MMQ_NAME_TEST_COUNT overrides the number of entries per process
 * (default 10000).
 */
#include "autoconf.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "config.h"
#include "envelope.h"
#include "queue.h"
#include "tap.h"

#define WRITERS 2

static char tmpdir[] = "/tmp/mmq-name-test.XXXXXX";
static char spooldir[sizeof(tmpdir) + 16];
static struct mmq_config cfg;

static const char message[] = "From: alice@example.org\n"
                              "To: announce@example.org\n"
                              "Subject: the same message every time\n"
                              "\n"
                              "Identical bytes, identical envelope.\n";

static double seconds(const struct timeval *a, const struct timeval *b)
{
    return (double)(b->tv_sec - a->tv_sec) +
           (double)(b->tv_usec - a->tv_usec) / 1e6;
}

static void make_env(struct envelope *env)
{
    envelope_init(env);
    if (envelope_set(&env->list, "announce") ||
        envelope_set(&env->sender, "alice@example.org") ||
        envelope_add_rcpt(env, "announce@example.org", NULL))
        bail_out("out of memory");
    env->role = ROLE_POST;
    env->arrival_sec = 1732312345;
    env->arrival_usec = 123456;
}

/* Child: enqueue count entries, write their names to namefile. */
static int writer(int count, const char *namefile)
{
    struct spool sp;
    struct envelope env;
    char err[QUEUE_ERR_MAX], name[QNAME_LEN + 1];
    FILE *out;
    int i;

    if (spool_open(&sp, &cfg, err, sizeof(err)) != 0) {
        fprintf(stderr, "spool_open: %s\n", err);
        return 1;
    }
    if (!(out = fopen(namefile, "w")))
        return 2;
    make_env(&env);
    for (i = 0; i < count; i++) {
        struct queue_file *qf = queue_file_create(&sp, "in", err, sizeof(err));

        if (!qf) {
            fprintf(stderr, "queue_file_create: %s\n", err);
            return 3;
        }
        if (queue_file_begin(qf, &env) != 0 ||
            queue_file_write(qf, message, sizeof(message) - 1) != 0) {
            fprintf(stderr, "write: %s\n", queue_file_error(qf));
            queue_file_abort(qf);
            return 4;
        }
        memset(name, 0, sizeof(name));
        if (queue_file_commit(qf, name, err, sizeof(err)) != 0) {
            fprintf(stderr, "queue_file_commit: %s\n", err);
            return 5;
        }
        fprintf(out, "%s\n", name);
    }
    envelope_free(&env);
    spool_close(&sp);
    return fclose(out) == 0 ? 0 : 6;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Names reported by the writers. */
static char **read_names(int count, size_t *n)
{
    char **v = calloc((size_t)WRITERS * (size_t)count + 1, sizeof(*v));
    char line[256], path[sizeof(tmpdir) + 32];
    int w;

    if (!v)
        bail_out("out of memory");
    *n = 0;
    for (w = 0; w < WRITERS; w++) {
        FILE *f;

        snprintf(path, sizeof(path), "%s/names.%d", tmpdir, w);
        if (!(f = fopen(path, "r")))
            continue;
        while (fgets(line, sizeof(line), f) &&
               *n < (size_t)WRITERS * (size_t)count) {
            line[strcspn(line, "\n")] = 0;
            if (!(v[(*n)++] = strdup(line)))
                bail_out("out of memory");
        }
        fclose(f);
        unlink(path);
    }
    return v;
}

/* Every file in in/BB/, checked and collected. */
static char **list_in(size_t *n, size_t *misplaced, size_t *unparsable)
{
    size_t cap = 1024;
    char **v = malloc(cap * sizeof(*v));
    char dir[sizeof(spooldir) + 16];
    int b;

    if (!v)
        bail_out("out of memory");
    *n = *misplaced = *unparsable = 0;
    for (b = 0; b < SLICE_BUCKETS; b++) {
        struct dirent *de;
        DIR *d;

        snprintf(dir, sizeof(dir), "%s/in/%02x", spooldir, b);
        if (!(d = opendir(dir)))
            bail_out("opendir %s: %s", dir, strerror(errno));
        while ((de = readdir(d))) {
            struct qname qn;
            char want[4];

            if (de->d_name[0] == '.')
                continue;
            if (qname_parse(de->d_name, &qn) != 0 || qn.kind != QN_READY ||
                qn.sec != 1732312345 || qn.usec != 123456) {
                if (!(*unparsable)++)
                    diag("unexpected file in/%02x/%s", b, de->d_name);
                continue;
            }
            snprintf(want, sizeof(want), "%02x", b);
            if (strncmp(qn.hash, want, 2) != 0 && !(*misplaced)++)
                diag("in/%02x/%s is in the wrong bucket", b, de->d_name);
            if (*n == cap && !(v = realloc(v, (cap *= 2) * sizeof(*v))))
                bail_out("out of memory");
            if (!(v[(*n)++] = strdup(de->d_name)))
                bail_out("out of memory");
        }
        closedir(d);
    }
    return v;
}

static size_t count_dups(char **v, size_t n)
{
    size_t i, dups = 0;

    qsort(v, n, sizeof(*v), cmp_str);
    for (i = 1; i < n; i++)
        if (strcmp(v[i - 1], v[i]) == 0 && !dups++)
            diag("duplicate name %s", v[i]);
    return dups;
}

static void test_uniqueness(int count)
{
    pid_t pids[WRITERS];
    char path[sizeof(tmpdir) + 32];
    struct timeval t0, t1;
    char **reported, **present;
    size_t nrep, npres, misplaced, unparsable, i, missing = 0;
    int w, failed = 0;
    DIR *d;

    gettimeofday(&t0, NULL);
    tap_fork_prepare();
    for (w = 0; w < WRITERS; w++) {
        pids[w] = fork();
        if (pids[w] < 0)
            bail_out("fork: %s", strerror(errno));
        if (pids[w] == 0) {
            snprintf(path, sizeof(path), "%s/names.%d", tmpdir, w);
            _exit(writer(count, path));
        }
    }
    for (w = 0; w < WRITERS; w++) {
        int status;

        if (waitpid(pids[w], &status, 0) != pids[w])
            bail_out("waitpid: %s", strerror(errno));
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            diag("writer %d: status 0x%x", w, status);
            failed = 1;
        }
    }
    gettimeofday(&t1, NULL);
    diag("%d processes x %d entries in %.1f s", WRITERS, count,
         seconds(&t0, &t1));
    ok(!failed, "%d writers each committed %d identical entries", WRITERS,
       count);

    reported = read_names(count, &nrep);
    is_int((long long)nrep, (long long)WRITERS * count,
           "the writers reported a name for every entry");
    is_int((long long)count_dups(reported, nrep), 0,
           "no name was reported twice");

    present = list_in(&npres, &misplaced, &unparsable);
    is_int((long long)npres, (long long)WRITERS * count,
           "in/ holds %d entry files", WRITERS * count);
    is_int((long long)unparsable, 0,
           "every file in in/ is a ready entry with the envelope's arrival");
    is_int((long long)misplaced, 0, "every entry is in its hash's bucket");
    is_int((long long)count_dups(present, npres), 0,
           "no two files share a name");
    /* reported and present are both sorted now: every reported is there */
    for (i = 0; i < nrep; i++)
        if (!bsearch(&reported[i], present, npres, sizeof(*present), cmp_str) &&
            !missing++)
            diag("reported entry %s is not in in/", reported[i]);
    is_int((long long)missing, 0, "every reported name is a file in in/");

    /* Nothing is left behind in tmp/. */
    snprintf(path, sizeof(path), "%s/tmp", spooldir);
    if ((d = opendir(path))) {
        struct dirent *de;
        int left = 0;

        while ((de = readdir(d)))
            if (de->d_name[0] != '.')
                left++;
        closedir(d);
        is_int(left, 0, "tmp/ is empty after the commits");
    }

    /* One entry's content: the envelope (size patched in) and the
     * message, byte for byte. */
    if (npres > 0) {
        struct envelope env;
        struct buf want;
        char file[sizeof(spooldir) + QFILE_MAX + 16], got[4096];
        ssize_t n = -1;
        int fd;

        make_env(&env);
        env.size = (int64_t)sizeof(message) - 1;
        buf_init(&want);
        envelope_format(&env, &want, NULL);
        buf_append(&want, message, sizeof(message) - 1);
        snprintf(file, sizeof(file), "%s/in/%.2s/%s", spooldir, present[0] + 18,
                 present[0]);
        if ((fd = open(file, O_RDONLY)) >= 0) {
            n = read(fd, got, sizeof(got));
            close(fd);
        }
        is_mem(got, n < 0 ? 0 : (size_t)n, want.data, want.len,
               "an entry holds exactly envelope and message");
        buf_free(&want);
        envelope_free(&env);
    }

    for (i = 0; i < nrep; i++)
        free(reported[i]);
    free(reported);
    for (i = 0; i < npres; i++)
        free(present[i]);
    free(present);
}

/* ------------------------------------------------------------ qname_parse */

#define HASH "0123456789abcdef0123456789abcdef01234567"
#define NAME "1732312345.123456+" HASH

static void parses(const char *f, const char *what)
{
    struct qname qn;

    if (!ok(qname_parse(f, &qn) == 0, "qname_parse accepts %s", what))
        diag("name: %s", f);
}

static void refuses(const char *f, const char *what)
{
    struct qname qn;
    size_t n = strlen(f) + 1;
    char *copy = malloc(n); /* exact size: ASan sees a read past the end */
    int rc;

    if (!copy)
        bail_out("out of memory");
    memcpy(copy, f, n);
    rc = qname_parse(copy, &qn);
    free(copy);
    if (!ok(rc == -1, "qname_parse refuses %s", what))
        diag("name: %s", f);
}

static void test_qname_parse(void)
{
    struct qname qn;
    char buf[512], bucket[64];
    int i;

    ok(qname_parse(NAME, &qn) == 0, "a ready name parses");
    is_str(qn.name, NAME, "  its name");
    is_str(qn.hash, HASH, "  its hash");
    ok(qn.key == 0x0123456789abcdefULL, "  its key is the first 16 digits");
    is_int(qn.sec, 1732312345, "  its seconds");
    is_int(qn.usec, 123456, "  its microseconds");
    is_str(qn.origin, "", "  no origin");
    ok(qn.kind == QN_READY, "  ready");
    is_int((long long)strlen(NAME), QNAME_LEN, "QNAME_LEN is a name's length");

    ok(qname_parse(NAME "@in", &qn) == 0 && strcmp(qn.origin, "in") == 0 &&
           qn.kind == QN_READY && strcmp(qn.name, NAME) == 0,
       "NAME@in: ready, origin in");
    for (i = 0; queue_names[i]; i++) {
        snprintf(buf, sizeof(buf), "%s@%s", NAME, queue_names[i]);
        ok(qname_parse(buf, &qn) == 0 && strcmp(qn.origin, queue_names[i]) == 0,
           "origin @%s", queue_names[i]);
    }
    ok(qname_parse(NAME "#mx-1.example#4242#987654321", &qn) == 0 &&
           qn.kind == QN_CLAIMED && strcmp(qn.node, "mx-1.example") == 0 &&
           qn.pid == 4242 && qn.start == 987654321ULL &&
           strcmp(qn.name, NAME) == 0 && qn.origin[0] == 0,
       "NAME#node#pid#start: claimed, node, pid and start");
    ok(qname_parse(NAME "@deferred#n#1#0", &qn) == 0 && qn.kind == QN_CLAIMED &&
           strcmp(qn.origin, "deferred") == 0 && qn.pid == 1 && qn.start == 0,
       "NAME@origin#node#pid#start: claimed with origin");
    ok(qname_parse(NAME "#n#2147483647#18446744073709551615", &qn) == 0 &&
           qn.pid == 2147483647 && qn.start == 18446744073709551615ULL,
       "largest pid and start time");
    ok(qname_parse("0000000000.000000+0000000000000000000000000000000000000000",
                   &qn) == 0 &&
           qn.sec == 0 && qn.key == 0,
       "the smallest name");
    ok(qname_parse("9999999999.999999+ffffffffffffffffffffffffffffffffffffffff",
                   &qn) == 0 &&
           qn.sec == 9999999999LL && qn.usec == 999999 && qn.key == UINT64_MAX,
       "the largest name");

    parses(NAME "#localhost#1#1", "a claim by localhost");
    parses(NAME "#Node_2.x-y#123#0", "a node with upper case, _ . and -");
    parses(NAME "@hold#n#1#1", "a held entry, claimed");
    parses(NAME "#n#0001#1", "a pid with leading zeros");

    /* The length bound: QFILE_MAX characters in all. */
    snprintf(buf, sizeof(buf), "%s#%s#1#", NAME,
             "abcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghij123");
    while (strlen(buf) < QFILE_MAX - 1)
        strcat(buf, "0");
    strcat(buf, "7");
    ok(strlen(buf) == QFILE_MAX && qname_parse(buf, &qn) == 0 && qn.start == 7,
       "a claimed name of QFILE_MAX characters");
    strcat(buf, "0");
    refuses(buf, "a name longer than QFILE_MAX");

    qname_bucket("in", NAME, bucket, sizeof(bucket));
    is_str(bucket, "in/01", "qname_bucket");

    /* Junk. */
    refuses("", "the empty string");
    refuses("1732312345.123456+0123456789abcdef0123456789abcdef0123456",
            "a name one digit short");
    refuses("1732312345.123456+0123456789abcdef", "a short name");
    refuses("1732312345", "seconds only");
    refuses("1732312345.123456+0123456789ABCDEF0123456789abcdef01234567",
            "upper-case hex");
    refuses("1732312345.123456+0123456789abcdeg0123456789abcdef01234567",
            "a non-hex digit");
    refuses("1732312345.123456-0123456789abcdef0123456789abcdef01234567",
            "'-' instead of '+'");
    refuses("1732312345-123456+0123456789abcdef0123456789abcdef01234567",
            "'-' instead of '.'");
    refuses("173231234.5123456+0123456789abcdef0123456789abcdef01234567",
            "the dot one place early");
    refuses("17323123x5.123456+0123456789abcdef0123456789abcdef01234567",
            "a letter in the seconds");
    refuses("1732312345.12 456+0123456789abcdef0123456789abcdef01234567",
            "a space in the microseconds");
    refuses("-732312345.123456+0123456789abcdef0123456789abcdef01234567",
            "a negative time");
    refuses(".1732312345.123456+0123456789abcdef0123456789abcdef0123456",
            "a leading dot");
    refuses(NAME "0", "a name one digit too long");
    refuses(NAME "x", "trailing garbage");
    refuses(NAME " ", "a trailing space");
    refuses(NAME "\n", "a trailing LF");
    refuses(NAME "@", "an empty origin");
    refuses(NAME "@nope", "an unknown origin");
    refuses(NAME "@IN", "an upper-case origin");
    refuses(NAME "@tmp", "origin tmp (not a queue)");
    refuses(NAME "@in@in", "two origins");
    refuses(NAME "@in#", "an origin and an empty claim");
    refuses(NAME "@abcdefghijklmnopq", "a long origin");
    refuses(NAME "#", "an empty claim suffix");
    refuses(NAME "#node", "a claim without pid");
    refuses(NAME "#node#1", "a claim without start");
    refuses(NAME "#node#1#", "a claim with an empty start");
    refuses(NAME "##1#2", "a claim with an empty node");
    refuses(NAME "#.node#1#2", "a claim with an invalid node");
    refuses(NAME "#no de#1#2", "a claim with a space in the node");
    refuses(NAME "#node#0#2", "pid 0");
    refuses(NAME "#node#-1#2", "a negative pid");
    refuses(NAME "#node#+1#2", "a pid with a plus sign");
    refuses(NAME "#node# 1#2", "a pid with a space");
    refuses(NAME "#node#x#2", "a pid that is not a number");
    refuses(NAME "#node#1x#2", "a pid with a letter");
    refuses(NAME "#node#2147483648#2", "a pid above 2^31-1");
    refuses(NAME "#node#99999999999999999999#2", "an overflowing pid");
    refuses(NAME "#node#1#-2", "a negative start time");
    refuses(NAME "#node#1#+2", "a start time with a plus sign");
    refuses(NAME "#node#1#2x", "trailing garbage after the start time");
    refuses(NAME "#node#1#2#3", "a fourth claim field");
    refuses(NAME "#node#1#2 ", "a trailing space after the start time");
    refuses(NAME "#node#1#18446744073709551616", "an overflowing start time");
    refuses(NAME "#node#1#2@in", "an origin after the claim");
    refuses(NAME "#abcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghij"
                 "1234#1#2",
            "a node of 64 characters");
}

/* Remove the temporary tree however the test ends (bail_out too), but
 * only in the process that made it. */
static pid_t main_pid;

static void cleanup(void)
{
    char cmd[sizeof(tmpdir) + 16];

    if (getpid() != main_pid)
        return;
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", tmpdir);
}

int main(void)
{
    const char *env_count = getenv("MMQ_NAME_TEST_COUNT");
    int count = env_count ? atoi(env_count) : 10000;
    char err[QUEUE_ERR_MAX];
    struct timeval t0, t1;

    if (count < 1)
        count = 1;
    if (!mkdtemp(tmpdir))
        bail_out("mkdtemp: %s", strerror(errno));
    main_pid = getpid();
    atexit(cleanup);
    snprintf(spooldir, sizeof(spooldir), "%s/spool", tmpdir);
    gettimeofday(&t0, NULL);
    if (spool_init(spooldir, (uid_t)-1, (gid_t)-1, err, sizeof(err)) != 0)
        bail_out("spool_init: %s", err);
    gettimeofday(&t1, NULL);
    diag("spool_init: %.1f s", seconds(&t0, &t1));
    if (config_defaults(&cfg) != 0)
        bail_out("config_defaults failed");
    free(cfg.spool);
    free(cfg.node);
    cfg.spool = strdup(spooldir);
    cfg.node = strdup("name-test");
    if (!cfg.spool || !cfg.node)
        bail_out("out of memory");

    test_qname_parse();
    test_uniqueness(count);

    config_free(&cfg);
    {
        char cmd[sizeof(tmpdir) + 16];

        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
        gettimeofday(&t0, NULL);
        if (system(cmd) != 0)
            diag("could not remove %s", tmpdir);
        gettimeofday(&t1, NULL);
        diag("clean-up: %.1f s", seconds(&t0, &t1));
    }
    return done_testing();
}
