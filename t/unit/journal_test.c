/*
 * journal_test - the per-entry journal of journal.h, through the queue
 * interface that every reader uses: queue_claim_read() drops the settled
 * recipients, a torn last line and records naming another recipient are
 * ignored, queue_rewrite() folds the journal, queue_done() removes it,
 * in/ entries never read one, and journal_clean() removes only orphans.
 */
#include "autoconf.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "config.h"
#include "envelope.h"
#include "journal.h"
#include "log.h"
#include "queue.h"
#include "tap.h"

static char tmpdir[] = "/tmp/mmq-journal-test.XXXXXX";
static char spooldir[sizeof(tmpdir) + 16];
static struct mmq_config cfg;
static struct spool sp;
static pid_t main_pid;

static const char *const rcpts[] = {"r0@example.org", "r1@example.org",
                                    "r 2@example.org", "r3@example.org",
                                    "r4@example.org"};
#define NR (sizeof(rcpts) / sizeof(rcpts[0]))

static void cleanup(void)
{
    char cmd[sizeof(tmpdir) + 16];

    if (getpid() != main_pid)
        return;
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", tmpdir);
}

/* An entry of queue with the five recipients; name receives NAME. */
static void enqueue(const char *queue, char *name)
{
    struct envelope env;
    struct queue_file *qf;
    struct timeval tv;
    char err[QUEUE_ERR_MAX];
    size_t i;

    envelope_init(&env);
    gettimeofday(&tv, NULL);
    env.arrival_sec = tv.tv_sec;
    env.arrival_usec = (int32_t)tv.tv_usec;
    if (envelope_set(&env.list, "announce") ||
        envelope_set(&env.sender, "list-bounces@example.org"))
        bail_out("out of memory");
    for (i = 0; i < NR; i++)
        if (envelope_add_rcpt(&env, rcpts[i], NULL) != 0)
            bail_out("out of memory");
    if (!(qf = queue_file_create(&sp, queue, err, sizeof(err))) ||
        queue_file_begin(qf, &env) != 0 || queue_file_write(qf, "hi\n", 3) ||
        queue_file_commit(qf, name, err, sizeof(err)) != 0)
        bail_out("enqueue: %s", err);
    envelope_free(&env);
}

static void claim(const char *queue, const char *name, struct claim *c,
                  struct envelope *env)
{
    char err[QUEUE_ERR_MAX];
    off_t off;

    if (queue_claim(&sp, queue, name, c, err, sizeof(err)) != 0)
        bail_out("claim %s: %s", name, err);
    if (queue_claim_read(c, env, &off, err, sizeof(err)) != 0)
        bail_out("claim_read %s: %s", name, err);
}

static int journal_exists(const char *name)
{
    char rel[256];
    struct stat st;

    snprintf(rel, sizeof(rel), "journal/%.2s/%s", name + 18, name);
    return fstatat(sp.fd, rel, &st, 0) == 0;
}

/* Append raw text to the journal of name (a torn line, garbage). */
static void append_raw(const char *name, const char *text)
{
    char rel[256];
    int fd;

    snprintf(rel, sizeof(rel), "journal/%.2s/%s", name + 18, name);
    fd = openat(sp.fd, rel, O_WRONLY | O_APPEND);
    if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text))
        bail_out("append to %s: %s", rel, strerror(errno));
    close(fd);
}

static char *rcpt_list(const struct envelope *env)
{
    static char out[512];
    size_t i;

    out[0] = 0;
    for (i = 0; i < env->nrcpt; i++)
        snprintf(out + strlen(out), sizeof(out) - strlen(out), "%s%s",
                 i ? "," : "", env->rcpt[i].addr);
    return out;
}

static void test_apply_fold_done(void)
{
    char name[QNAME_LEN + 1], err[QUEUE_ERR_MAX];
    struct journal j;
    struct envelope env;
    struct claim c;

    enqueue("out", name);
    claim("out", name, &c, &env);
    is_int(c.journal, 0, "no journal before the first record");
    is_int((long long)env.nrcpt, NR, "all five recipients");
    journal_init(&j);
    ok(journal_open(&sp, name, &j, err, sizeof(err)) == 0,
       "journal_open creates the journal: %s", err);
    ok(journal_append(&j, 1, rcpts[1]) == 0 &&
           journal_append(&j, 2, rcpts[2]) == 0 && journal_sync(&j) == 0,
       "two records appended and synced");
    /* a record for the wrong recipient, one out of range, garbage, and a
     * torn last line naming recipient 4 */
    append_raw(name, "3 r0@example.org\n99 r0@example.org\nxyz\n4 r4@examp");
    journal_close(&j);
    envelope_free(&env);
    queue_claim_close(&c);

    /* a second reader (recovery, mmqctl) on the same claim file */
    {
        off_t off;
        c.fd = openat(sp.fd, c.path, O_RDONLY);
        ok(queue_claim_read(&c, &env, &off, err, sizeof(err)) == 0,
           "the entry reads with its journal: %s", err);
    }
    is_int(c.journal, 1, "a journal was found");
    is_int((long long)c.settled, 2, "two recipients settled");
    is_str(rcpt_list(&env), "r0@example.org,r3@example.org,r4@example.org",
           "settled recipients dropped; stale, garbage and torn records "
           "ignored");
    ok(queue_rewrite(&c, &env, err, sizeof(err)) == 0, "rewrite: %s", err);
    ok(!journal_exists(name), "the rewrite folded the journal (removed)");
    envelope_free(&env);
    {
        off_t off;
        ok(queue_claim_read(&c, &env, &off, err, sizeof(err)) == 0 &&
               c.journal == 0 && env.nrcpt == 3,
           "after the fold: three recipients in the entry, no journal");
    }
    envelope_free(&env);
    /* a journal left by a crash between rewrite and removal: positions
     * 1 and 2 now hold r3 and r4, so the old records name nobody */
    journal_init(&j);
    if (journal_open(&sp, name, &j, err, sizeof(err)) != 0 ||
        journal_append(&j, 1, rcpts[1]) != 0 ||
        journal_append(&j, 2, rcpts[2]) != 0)
        bail_out("journal: %s", err);
    journal_close(&j);
    {
        off_t off;
        ok(queue_claim_read(&c, &env, &off, err, sizeof(err)) == 0 &&
               c.settled == 0 && env.nrcpt == 3,
           "a stale journal drops nobody");
    }
    envelope_free(&env);
    ok(queue_done(&c, err, sizeof(err)) == 0, "done: %s", err);
    ok(!journal_exists(name), "queue_done removed the journal");
}

static void test_moves_and_in(void)
{
    char name[QNAME_LEN + 1], err[QUEUE_ERR_MAX];
    struct journal j;
    struct envelope env;
    struct claim c;

    enqueue("out", name);
    claim("out", name, &c, &env);
    envelope_free(&env);
    journal_init(&j);
    if (journal_open(&sp, name, &j, err, sizeof(err)) != 0 ||
        journal_append(&j, 0, rcpts[0]) != 0)
        bail_out("journal: %s", err);
    journal_close(&j);
    ok(queue_move(&c, "bad", err, sizeof(err)) == 0, "moved to bad/");
    {
        char fname[QFILE_MAX];
        snprintf(fname, sizeof(fname), "%s@out", name);
        claim("bad", fname, &c, &env);
    }
    is_str(rcpt_list(&env),
           "r1@example.org,r 2@example.org,r3@example.org,r4@example.org",
           "the journal follows the entry into bad/");
    envelope_free(&env);
    ok(queue_done(&c, err, sizeof(err)) == 0, "done");

    /* in/ entries never have journals: one named like it is not read */
    enqueue("in", name);
    journal_init(&j);
    if (journal_open(&sp, name, &j, err, sizeof(err)) != 0 ||
        journal_append(&j, 0, rcpts[0]) != 0)
        bail_out("journal: %s", err);
    journal_close(&j);
    claim("in", name, &c, &env);
    is_int((long long)env.nrcpt, NR, "an in/ entry is read without journal");
    envelope_free(&env);
    ok(queue_done(&c, err, sizeof(err)) == 0, "done");
    ok(journal_exists(name), "queue_done of in/ leaves a journal alone");
}

static void test_clean(void)
{
    char live[QNAME_LEN + 1], orphan[QNAME_LEN + 1], err[QUEUE_ERR_MAX];
    struct journal j;
    unsigned removed = 0;
    struct envelope env;
    struct claim c;

    enqueue("out", live);
    enqueue("out", orphan);
    journal_init(&j);
    if (journal_open(&sp, live, &j, err, sizeof(err)) != 0)
        bail_out("journal: %s", err);
    journal_close(&j);
    if (journal_open(&sp, orphan, &j, err, sizeof(err)) != 0)
        bail_out("journal: %s", err);
    journal_close(&j);
    claim("out", orphan, &c, &env);
    envelope_free(&env);
    /* an entry removed, its journal not (a crash in between) */
    {
        char bucket[64];
        if (queue_remove(&c, bucket, err, sizeof(err)) != 0)
            bail_out("remove: %s", err);
    }
    ok(journal_clean(&sp, 3600, &removed, err, sizeof(err)) == 0 &&
           removed == 0 && journal_exists(orphan),
       "a young orphan is kept (its writer may still run)");
    /* -1: every journal counts as old */
    ok(journal_clean(&sp, -1, &removed, err, sizeof(err)) == 0, "clean: %s",
       err);
    ok(!journal_exists(orphan) && journal_exists(live),
       "the orphan is removed, the journal of a live entry kept");
    is_int(removed, 2, "removed: this orphan and the in/ one above");
}

int main(void)
{
    char err[QUEUE_ERR_MAX];

    log_init("journal_test", LOG_STDERR_ALWAYS);
    umask(022);
    if (!mkdtemp(tmpdir))
        bail_out("mkdtemp: %s", strerror(errno));
    main_pid = getpid();
    atexit(cleanup);
    snprintf(spooldir, sizeof(spooldir), "%s/spool", tmpdir);
    if (spool_init(spooldir, (uid_t)-1, (gid_t)-1, err, sizeof(err)) != 0)
        bail_out("spool_init: %s", err);
    if (config_defaults(&cfg) != 0)
        bail_out("config_defaults failed");
    free(cfg.spool);
    free(cfg.node);
    cfg.spool = strdup(spooldir);
    cfg.node = strdup("journal-test");
    if (!cfg.spool || !cfg.node || spool_open(&sp, &cfg, err, sizeof(err)))
        bail_out("spool_open: %s", err);
    test_apply_fold_done();
    test_moves_and_in();
    test_clean();
    spool_close(&sp);
    config_free(&cfg);
    return done_testing();
}
