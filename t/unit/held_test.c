/*
 * held_test - the decision on a held post (shared/held.h) on a temporary
 * spool: where the post is (ready, claimed, gone), one claimer wins (also
 * among 8 racing processes), a release marks the post approved and moves
 * it to in/, and the decision record is written, replaced and read back.
 */
#include "autoconf.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "held.h"
#include "tap.h"

static char dir[] = "/tmp/held_test.XXXXXX";
static char spooldir[300];
static struct mmq_config cfg;
static struct spool sp;

static void cleanup(void)
{
    char cmd[400];

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "cannot remove %s\n", dir);
}

/* A post of list dev held from in/ as hold/BB/NAME@in; name filled. */
static void held_post(char *name)
{
    static const char msg[] = "From: s@example.net\r\nSubject: x\r\n\r\nhi\r\n";
    char err[QUEUE_ERR_MAX];
    struct envelope env;
    struct queue_file *qf;
    struct claim c;

    envelope_init(&env);
    env.role = ROLE_POST;
    env.arrival_sec = 1764763200;
    env.size = (int64_t)strlen(msg);
    if (envelope_set(&env.list, "dev") ||
        envelope_set(&env.sender, "s@example.net") ||
        envelope_add_rcpt(&env, "dev@example.org", NULL) ||
        !(qf = queue_file_create(&sp, "in", err, sizeof(err))) ||
        queue_file_begin(qf, &env) || queue_file_write(qf, msg, strlen(msg)) ||
        queue_file_commit(qf, name, err, sizeof(err)) ||
        queue_claim(&sp, "in", name, &c, err, sizeof(err)) ||
        queue_move(&c, "hold", err, sizeof(err)))
        bail_out("cannot make a held post: %s", err);
    queue_claim_close(&c);
    envelope_free(&env);
}

static enum held_where where(const char *name)
{
    char err[QUEUE_ERR_MAX];
    enum held_where w;

    if (held_find(&sp, name, &w, err, sizeof(err)) != 0)
        bail_out("held_find: %s", err);
    return w;
}

static void claims(void)
{
    char name[QNAME_LEN + 1], err[QUEUE_ERR_MAX], path[600];
    struct claim c, c2;
    struct envelope env;
    off_t off;

    held_post(name);
    is_int(where(name), HELD_READY, "a held post is ready in hold/");
    is_int(held_claim(&sp, name, &c, err, sizeof(err)), 0, "claimed");
    is_int(where(name), HELD_CLAIMED, "then it is claimed");
    is_int(held_claim(&sp, name, &c2, err, sizeof(err)), 1,
           "a second claimer finds nothing to claim");
    is_int(held_release(&c, err, sizeof(err)), 0, "released (%s)", err);
    queue_claim_close(&c);
    is_int(where(name), HELD_GONE, "then it is gone from hold/");
    snprintf(path, sizeof(path), "%s/in/%.2s/%s", spooldir, name + 18, name);
    ok(access(path, F_OK) == 0, "released into in/ under its own name");
    if (queue_claim(&sp, "in", name, &c, err, sizeof(err)) != 0 ||
        queue_claim_read(&c, &env, &off, err, sizeof(err)) != 0)
        bail_out("cannot read the released post: %s", err);
    ok(env.approved == 1, "released from in/: approved");
    envelope_free(&env);
    queue_done(&c, err, sizeof(err));
    queue_claim_close(&c);
    is_int(held_claim(&sp, name, &c, err, sizeof(err)), 1,
           "a post no longer held cannot be claimed");
    is_int(where("1764763200.000001+0123456789abcdef0123456789abcdef01234567"),
           HELD_GONE, "a post never held: gone");
}

static void race(void)
{
    char name[QNAME_LEN + 1], err[QUEUE_ERR_MAX];
    int i, st, wins = 0;
    pid_t kids[8];

    held_post(name);
    for (i = 0; i < 8; i++) {
        if ((kids[i] = fork()) == 0) {
            struct claim c;
            if (spool_set_identity(&sp) != 0)
                _exit(3);
            _exit(held_claim(&sp, name, &c, err, sizeof(err)) == 0 ? 0 : 1);
        }
    }
    for (i = 0; i < 8; i++)
        if (waitpid(kids[i], &st, 0) == kids[i] && WIFEXITED(st) &&
            WEXITSTATUS(st) == 0)
            wins++;
    is_int(wins, 1, "8 racing claimers: exactly one wins");
}

static void decisions(void)
{
    struct member_store ms;
    struct held_decision d, got;
    char err[QUEUE_ERR_MAX];
    const char *name =
        "1764763200.000001+0123456789abcdef0123456789abcdef01234567";

    if (member_store_open(&ms, spooldir, "dev", "node1", 1, err, sizeof(err)) !=
        0)
        bail_out("member_store_open: %s", err);
    is_int(held_decision_read(&ms, name, &got), 1, "no decision yet");
    memset(&d, 0, sizeof(d));
    snprintf(d.by, sizeof(d.by), "1764763201.000000+entry");
    snprintf(d.action, sizeof(d.action), "reject");
    snprintf(d.poster, sizeof(d.poster), "s@example.net");
    snprintf(d.subject, sizeof(d.subject), "two\nlines\r");
    is_int(held_decision_write(&ms, name, &d, err, sizeof(err)), 0,
           "a decision is written (%s)", err);
    ok(held_decision_read(&ms, name, &got) == 0 && !strcmp(got.by, d.by) &&
           !strcmp(got.action, "reject") &&
           !strcmp(got.poster, "s@example.net") &&
           !strcmp(got.subject, "two lines "),
       "and read back, on one line each (%s|%s|%s|%s)", got.by, got.action,
       got.poster, got.subject);
    memset(&d, 0, sizeof(d));
    snprintf(d.by, sizeof(d.by), "mmqctl.node1.123");
    snprintf(d.action, sizeof(d.action), "release");
    is_int(held_decision_write(&ms, name, &d, err, sizeof(err)), 0,
           "the next claimer's decision replaces a dead one's");
    ok(held_decision_read(&ms, name, &got) == 0 &&
           !strcmp(got.by, "mmqctl.node1.123") &&
           !strcmp(got.action, "release") && !strcmp(got.poster, "-"),
       "read back: the new decider (%s %s)", got.by, got.action);
    ok(held_decision_write(&ms, "../x", &d, err, sizeof(err)) == -1 &&
           held_decision_read(&ms, "short", &got) == -1,
       "a name that is not an entry's is refused");
    member_store_close(&ms);
}

int main(void)
{
    char err[QUEUE_ERR_MAX];

    if (!mkdtemp(dir))
        bail_out("mkdtemp: %s", strerror(errno));
    atexit(cleanup);
    snprintf(spooldir, sizeof(spooldir), "%s/spool", dir);
    if (spool_init(spooldir, (uid_t)-1, (gid_t)-1, err, sizeof(err)) != 0 ||
        config_defaults(&cfg) != 0)
        bail_out("spool_init: %s", err);
    free(cfg.spool);
    free(cfg.node);
    cfg.spool = strdup(spooldir);
    cfg.node = strdup("node1");
    if (spool_open(&sp, &cfg, err, sizeof(err)) != 0)
        bail_out("spool_open: %s", err);
    claims();
    race();
    decisions();
    spool_close(&sp);
    return done_testing();
}
