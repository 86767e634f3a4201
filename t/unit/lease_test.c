/*
 * lease_test - slice leases (lease.h) between two nodes, "a" and "b", on
 * one temporary spool, driven round by round: first leases, a standby
 * that waits takeover_after before taking a silent holder's slices and
 * not a moment less, the fenced holder, hand-back to the returning owner,
 * release at close, hostile files in lease/, and several processes racing
 * for one generation (exactly one wins).
 */
#include "autoconf.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "config.h"
#include "lease.h"
#include "log.h"
#include "queue.h"
#include "tap.h"

static char tmpdir[] = "/tmp/mmq-lease-test.XXXXXX";

struct node {
    struct mmq_config cfg;
    struct spool sp;
    struct lease_set ls;
};

/* Load a config for node name and open the shared spool. */
static void node_open(struct node *nd, const char *name)
{
    char path[256], err[512];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s.conf", tmpdir, name);
    if (!(f = fopen(path, "w")))
        bail_out("%s: %s", path, strerror(errno));
    fprintf(f,
            "spool = \"%s/spool\";\nlists_dir = \"%s\";\nnode = \"%s\";\n"
            "slices = 4;\nlease_time = 2;\nlease_margin = 1;\n"
            "nodes = (\n"
            " { name = \"a\"; deliver = \"0-1\"; standby = \"2-3\"; "
            "takeover_after = 3; },\n"
            " { name = \"b\"; deliver = \"2-3\"; standby = \"0-1\"; "
            "takeover_after = 3; },\n"
            " { name = \"c\"; standby = \"0-3\"; takeover_after = 3; },\n"
            " { name = \"d\"; standby = \"0-3\"; takeover_after = 3; }\n);\n",
            tmpdir, tmpdir, name);
    fclose(f);
    if (config_load(path, &nd->cfg, err, sizeof(err)) != 0)
        bail_out("config: %s", err);
    if (spool_open(&nd->sp, &nd->cfg, err, sizeof(err)) != 0)
        bail_out("spool_open: %s", err);
}

static void node_lease(struct node *nd)
{
    struct slice_set all, own, standby;
    char err[512];

    if (slice_set_all(4, &all) != 0 ||
        lease_split(&nd->cfg, "deliver", &all, &own, &standby, err,
                    sizeof(err)) != 0 ||
        lease_open(&nd->ls, &nd->sp, "deliver", &own, &standby, err,
                   sizeof(err)) != 0)
        bail_out("lease: %s", err);
    slice_set_free(&all);
    slice_set_free(&own);
    slice_set_free(&standby);
}

static void node_close(struct node *nd)
{
    lease_close(&nd->ls);
    spool_close(&nd->sp);
    config_free(&nd->cfg);
}

/* One round; returns the slices gained as a bit mask. */
static unsigned tick(struct node *nd)
{
    struct slice_set gained;
    char err[512];
    unsigned i, mask = 0;

    if (lease_tick(&nd->ls, NULL, NULL, &gained, err, sizeof(err)) < 0)
        diag("lease_tick: %s", err);
    for (i = 0; i < gained.n; i++)
        mask |= (unsigned)(gained.on[i] != 0) << i;
    slice_set_free(&gained);
    return mask;
}

/* Slices we may work on, as a bit mask. */
static unsigned active(const struct node *nd)
{
    struct slice_set s;
    unsigned i, mask = 0;

    if (lease_active(&nd->ls, &s) != 0)
        bail_out("lease_active");
    for (i = 0; i < s.n; i++)
        mask |= (unsigned)(s.on[i] != 0) << i;
    slice_set_free(&s);
    return mask;
}

static void holders(struct node *nd, char *out, size_t len)
{
    struct lease_info li[4];
    char err[256];
    size_t n = 0;
    unsigned i;

    if (lease_info(&nd->sp, "deliver", li, err, sizeof(err)) != 0)
        bail_out("lease_info: %s", err);
    out[0] = 0;
    for (i = 0; i < 4; i++)
        n += (size_t)snprintf(out + n, len - n, "%s%s", i ? " " : "",
                              li[i].gen == 0 ? "none"
                              : li[i].free   ? "free"
                                             : li[i].node);
}

static void test_takeover_and_handback(void)
{
    struct node a, b;
    char h[128];
    double t0, gained_at = 0;
    unsigned got = 0, m;

    node_open(&a, "a");
    node_open(&b, "b");
    node_lease(&a);
    node_lease(&b);

    is_int(tick(&a), 0x3, "a takes its own slices 0-1 at once");
    is_int(tick(&b), 0xc, "b takes its own slices 2-3 at once");
    is_int(active(&a), 0x3, "a may work on 0-1");
    is_int(active(&b), 0xc, "b may work on 2-3");
    holders(&a, h, sizeof(h));
    is_str(h, "a a b b", "lease_info shows the holders");

    /* a falls silent; b must wait takeover_after (3 s) and no less. */
    t0 = lease_now();
    while (lease_now() - t0 < 8 && got != 0x3) {
        m = tick(&b);
        if (m && !gained_at)
            gained_at = lease_now() - t0;
        got |= m;
        usleep(100000);
    }
    is_int(got, 0x3, "b takes over a's slices once a stops renewing");
    ok(gained_at >= 2.9 && gained_at < 4.5,
       "... after takeover_after, not before (%.2f s)", gained_at);
    ok(active(&a) == 0, "a's own clock already stopped its work (lease_time)");
    holders(&a, h, sizeof(h));
    is_str(h, "b b b b", "b holds every slice");

    /* a wakes up: it sees the new generation and asks for its slices back */
    is_int(tick(&a), 0, "a, awake, takes nothing by force");
    is_int(active(&a), 0, "a works on nothing");
    t0 = lease_now();
    got = 0;
    while (lease_now() - t0 < 6 && got != 0x3) {
        tick(&b);
        got |= tick(&a);
        usleep(100000);
    }
    is_int(got, 0x3, "b hands slices 0-1 back to their owner");
    is_int(active(&b), 0xc, "b works on its own slices only");
    is_int(active(&a), 0x3, "a works on its own again");
    holders(&a, h, sizeof(h));
    is_str(h, "a a b b", "the holders are as configured");

    node_close(&a);
    holders(&b, h, sizeof(h));
    is_str(h, "free free b b", "a's close released its leases");
    t0 = lease_now();
    got = 0;
    while (lease_now() - t0 < 6 && got != 0x3) {
        got |= tick(&b);
        usleep(100000);
    }
    is_int(got, 0x3, "b takes the released slices");
    node_close(&b);
}

/* Garbage in lease/ is ignored or treated as a dead holder. */
static void test_hostile_files(void)
{
    static const struct {
        const char *name, *text;
    } junk[] = {
        {"deliver.0.99999999999", "mmq-lease 1\nholder x 1 1\nstate held\n"},
        {"deliver.0.xyz", "garbage"},
        {"deliver.9.0000000001", "mmq-lease 1\nholder x 1 1\nstate held\n"},
        {"deliver.1.0000000100", "mmq-lease 1\nholder ../../etc 1 1\n"
                                 "state held\n"},
        {"hb.deliver.x.1.1", "seq \x01\x02\n"},
        {"want.deliver.1", "holder \xff\xfe 1 1\n"},
    };
    char path[512], h[128];
    struct node a;
    unsigned got = 0;
    double t0;
    size_t i;

    for (i = 0; i < sizeof(junk) / sizeof(junk[0]); i++) {
        FILE *f;
        snprintf(path, sizeof(path), "%s/spool/lease/%s", tmpdir, junk[i].name);
        if (!(f = fopen(path, "w")) || fputs(junk[i].text, f) == EOF ||
            fclose(f) != 0)
            bail_out("%s: %s", path, strerror(errno));
    }
    node_open(&a, "a");
    node_lease(&a);
    got = tick(&a);
    ok((got & 1) == 1, "slice 0: an absurd generation number is ignored");
    t0 = lease_now();
    while (lease_now() - t0 < 6 && !(got & 2)) {
        got |= tick(&a);
        usleep(100000);
    }
    ok(got & 2, "slice 1: an unreadable holder is treated as a dead one");
    holders(&a, h, sizeof(h));
    ok(strncmp(h, "a a ", 4) == 0, "a holds its slices (%s)", h);
    node_close(&a);
}

/* Generations of slice i of deliver that exist, above g0. */
static int gens_above(int i, int g0)
{
    char p[512];
    struct stat st;
    int g, n = 0;

    for (g = g0 + 1; g < g0 + 50; g++) {
        snprintf(p, sizeof(p), "%s/spool/lease/deliver.%d.%010d", tmpdir, i, g);
        n += stat(p, &st) == 0;
    }
    return n;
}

/*
 * Three standby agents of three nodes (a, c, d) race for slice 2, which
 * its owner b released: all see it free from the same moment and try to
 * make the next generation together after takeover_after.  Exactly one
 * may win; the others must then see the winner renewing and keep off.
 */
static void test_race(void)
{
    static const char *const names[] = {"a", "c", "d"};
    struct lease_info li[4];
    pid_t pid[3];
    int i, wins = 0, status, g0;
    char err[256];
    struct node x;

    node_open(&x, "c");
    if (lease_info(&x.sp, "deliver", li, err, sizeof(err)) != 0)
        bail_out("lease_info: %s", err);
    ok(li[2].free, "slice 2 was released by its owner");
    g0 = (int)li[2].gen;
    for (i = 0; i < 3; i++) {
        tap_fork_prepare();
        if ((pid[i] = fork()) == 0) {
            struct node nd;
            double t0;
            unsigned got = 0;

            node_open(&nd, names[i]);
            node_lease(&nd);
            t0 = lease_now();
            while (lease_now() - t0 < 6) {
                got |= tick(&nd) & 0x4;
                usleep(20000);
            }
            _exit(got ? 10 : 0); /* no close: keep what we hold */
        }
    }
    for (i = 0; i < 3; i++)
        if (waitpid(pid[i], &status, 0) == pid[i] && WIFEXITED(status) &&
            WEXITSTATUS(status) == 10)
            wins++;
    is_int(wins, 1, "exactly one of three racing standbys takes slice 2");
    is_int(gens_above(2, g0), 1, "... in exactly one new generation");
    spool_close(&x.sp);
    config_free(&x.cfg);
}

/*
 * The owner asks for its slices back and the standby releases them, but
 * the owner dies before taking them: the standby takes them again after
 * takeover_after and must then keep them (the dead owner's request stays
 * on disk, its heartbeat no longer moves).  Run in a child so that the
 * two nodes have identities of their own.
 */
static int owner_dies_child(void)
{
    struct node a, b;
    double t0;
    unsigned held = 0;
    int k;

    node_open(&a, "a");
    node_open(&b, "b");
    node_lease(&a);
    node_lease(&b);
    for (t0 = lease_now(); lease_now() - t0 < 4.5 && (held & 3) != 3;) {
        held |= tick(&b);
        usleep(100000);
    }
    if ((held & 3) != 3)
        return 1;             /* b did not take 0-1 */
    for (k = 0; k < 2; k++) { /* a asks; its heartbeat moves; b releases */
        tick(&a);
        tick(&b);
    }
    if (active(&b) & 3)
        return 2; /* b did not hand 0-1 back */
    /* a is dead from now on */
    held = 0;
    for (t0 = lease_now(); lease_now() - t0 < 6;) {
        held |= tick(&b);
        usleep(100000);
    }
    if ((held & 3) != 3)
        return 3; /* b did not take 0-1 again */
    if ((active(&b) & 3) != 3)
        return 4; /* ... or gave them back to nobody */
    return 0;
}

static void test_owner_dies_after_asking(void)
{
    int status;
    pid_t pid;

    tap_fork_prepare();
    if ((pid = fork()) == 0)
        _exit(owner_dies_child());
    if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
        bail_out("owner_dies_child did not exit");
    is_int(WEXITSTATUS(status), 0,
           "an owner that dies after asking for its slices back does not "
           "make the standby give them up again");
}

int main(void)
{
    char cmd[256], err[512];

    log_init("lease_test", LOG_STDERR_NEVER);
    if (!mkdtemp(tmpdir))
        bail_out("mkdtemp: %s", strerror(errno));
    snprintf(cmd, sizeof(cmd), "%s/spool", tmpdir);
    if (spool_init(cmd, (uid_t)-1, (gid_t)-1, err, sizeof(err)) != 0)
        bail_out("spool_init: %s", err);
    test_takeover_and_handback();
    test_hostile_files();
    test_race();
    test_owner_dies_after_asking();
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0)
        diag("could not remove %s", tmpdir);
    return done_testing();
}
