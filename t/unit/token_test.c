/*
 * token_test - confirmation tokens (shared/token.h): shape, MAC, expiry,
 * forgery of every field, the secret file, pending requests, once-only
 * use (a rerun of the same user goes on, another is refused), racing
 * users (exactly one wins), the daily reply marks.
 */
#include "autoconf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tap.h"
#include "token.h"

static char dir[] = "/tmp/token_test.XXXXXX";

static void tokens(const struct token_key *k)
{
    char t[TOKEN_LEN + 1], u[TOKEN_LEN + 1], a;
    int64_t e;
    struct token_key other = *k;

    token_make(k, "dev", "Bob@Example.org", TOKEN_SUBSCRIBE, 2000000000, t);
    is_int((long long)strlen(t), TOKEN_LEN, "41 characters");
    ok(t[0] == 's' && strspn(t + 1, "0123456789abcdef") == TOKEN_LEN - 1,
       "action letter and lower-case hex");
    ok(token_parse(t, &a, &e) == 0 && a == 's' && e == 2000000000,
       "parse: action and expiry");
    is_int(token_check(k, "dev", "bob@example.org", t, 1999999999), TOKEN_OK,
           "valid for the address in any case, before expiry");
    is_int(token_check(k, "dev", "bob@example.org", t, 2000000001),
           TOKEN_EXPIRED, "expired after its expiry");
    is_int(token_check(k, "dev", "eve@example.org", t, 0), TOKEN_FORGED,
           "another address: forged");
    is_int(token_check(k, "announce", "bob@example.org", t, 0), TOKEN_FORGED,
           "another list: forged");
    memcpy(u, t, sizeof(u));
    u[0] = 'u';
    is_int(token_check(k, "dev", "bob@example.org", u, 0), TOKEN_FORGED,
           "another action: forged");
    memcpy(u, t, sizeof(u));
    u[8] = u[8] == 'f' ? 'e' : 'f'; /* a later expiry */
    is_int(token_check(k, "dev", "bob@example.org", u, 0), TOKEN_FORGED,
           "a changed expiry: forged");
    memcpy(u, t, sizeof(u));
    u[40] = u[40] == '0' ? '1' : '0';
    is_int(token_check(k, "dev", "bob@example.org", u, 0), TOKEN_FORGED,
           "one MAC digit changed: forged");
    other.k[0] ^= 1;
    is_int(token_check(&other, "dev", "bob@example.org", t, 0), TOKEN_FORGED,
           "another installation's secret: forged");
    for (size_t i = 0; t[i]; i++)
        u[i] = (char)(t[i] >= 'a' && t[i] <= 'f' ? t[i] - 32 : t[i]);
    u[TOKEN_LEN] = 0;
    is_int(token_check(k, "dev", "bob@example.org", u, 0), TOKEN_OK,
           "upper case (an MTA folded it): still valid");
    {
        /* a held post's tokens: the "address" is its entry name */
        static const char held[] =
            "1764763200.000001+0123456789abcdef0123456789abcdef01234567";
        static const char acts[] = {TOKEN_HOLD_APPROVE, TOKEN_HOLD_REJECT,
                                    TOKEN_HOLD_DISCARD};
        char h[3][TOKEN_LEN + 1];
        for (size_t i = 0; i < 3; i++) {
            token_make(k, "dev", held, acts[i], 2000000000, h[i]);
            ok(token_parse(h[i], &a, &e) == 0 && a == acts[i] &&
                   TOKEN_IS_HOLD(a),
               "held post token '%c': parsed", acts[i]);
            is_int(token_check(k, "dev", held, h[i], 0), TOKEN_OK,
                   "held post token '%c': valid for its entry", acts[i]);
        }
        ok(strcmp(h[0] + 1, h[1] + 1) && strcmp(h[1] + 1, h[2] + 1),
           "held post: the three actions have different MACs");
        memcpy(u, h[0], sizeof(u));
        u[0] = TOKEN_HOLD_REJECT;
        is_int(token_check(k, "dev", held, u, 0), TOKEN_FORGED,
               "held post: an approve token turned into a reject: forged");
        is_int(token_check(k, "dev",
                           "1764763200.000002+0123456789abcdef0123456789abcdef01234567",
                           h[0], 0),
               TOKEN_FORGED, "held post: another entry's token: forged");
        ok(!TOKEN_IS_HOLD(TOKEN_APPROVE) && !TOKEN_IS_HOLD(TOKEN_SUBSCRIBE),
           "subscription tokens are not held-post tokens");
    }
    {
        static const char *const bad[] = {"", "s", "x1234567890", "s0000",
                                          "z0123456789abcdef0123456789abcdef01234567",
                                          "s0123456789abcdef0123456789abcdef0123456g",
                                          "s0123456789abcdef0123456789abcdef012345678"};
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
            is_int(token_check(k, "dev", "b@x", bad[i], 0), TOKEN_MALFORMED,
                   "malformed: \"%s\"", bad[i]);
    }
}

static void state(void)
{
    struct member_store ms, ms2;
    struct token_key k;
    struct token_pending *v;
    char err[512], t[TOKEN_LEN + 1], t2[TOKEN_LEN + 1], addr[256], by[256];
    size_t n;
    int wins = 0, i;

    ok(token_secret_load(dir, &k, err, sizeof(err)) == -1,
       "no secret yet: an error naming mmqctl init");
    ok(strstr(err, "mmqctl init") != NULL, "... %s", err);
    is_int(token_secret_create(dir, (uid_t)-1, (gid_t)-1, err, sizeof(err)), 0,
           "secret made");
    is_int(token_secret_create(dir, (uid_t)-1, (gid_t)-1, err, sizeof(err)), 1,
           "secret kept when it exists");
    {
        struct stat st;
        char p[256];
        snprintf(p, sizeof(p), "%s/secret", dir);
        ok(stat(p, &st) == 0 && (st.st_mode & 0777) == 0640, "mode 0640");
    }
    ok(token_secret_load(dir, &k, err, sizeof(err)) == 0, "secret read");
    tokens(&k);

    ok(member_store_open(&ms, dir, "dev", "n1", 1, err, sizeof(err)) == 0 &&
           member_store_open(&ms2, dir, "dev", "n2", 1, err, sizeof(err)) == 0,
       "two stores (two nodes)");
    token_make(&k, "dev", "bob@example.org", 's', 4000000000LL, t);
    token_make(&k, "dev", "old@example.org", 's', 1000, t2);
    is_int(token_pending_add(&ms, t, "bob@example.org", "bob@example.org", err,
                             sizeof(err)),
           0, "pending made");
    is_int(token_pending_add(&ms, t, "bob@example.org", "bob@example.org", err,
                             sizeof(err)),
           1, "pending again (a rerun): existed");
    token_pending_add(&ms, t2, "old@example.org", "-", err, sizeof(err));
    ok(token_pending_get(&ms2, t, addr, sizeof(addr), err, sizeof(err)) == 0 &&
           strcmp(addr, "bob@example.org") == 0,
       "the other node reads the pending address");
    ok(token_pending_add(&ms, t, "a b@x", "-", err, sizeof(err)) == -1,
       "an address with a blank is refused");
    ok(token_pending_list(&ms, 2000, &v, &n, err, sizeof(err)) == 0 &&
           n == 1 && strcmp(v[0].address, "bob@example.org") == 0,
       "list: the expired request is dropped");
    token_pending_free(v);
    is_int(token_pending_get(&ms, t2, addr, sizeof(addr), err, sizeof(err)), 1,
           "... and removed");

    is_int(token_use(&ms, t, "entry-A", "bob@example.org", err, sizeof(err)), 0,
           "first use");
    is_int(token_use(&ms, t, "entry-A", "bob@example.org", err, sizeof(err)), 0,
           "a rerun of the same entry goes on");
    is_int(token_use(&ms2, t, "entry-B", "bob@example.org", err, sizeof(err)),
           1, "another entry, on another node: used already");
    ok(token_used_get(&ms2, t, by, sizeof(by), addr, sizeof(addr)) == 0 &&
           !strcmp(by, "entry-A") && !strcmp(addr, "bob@example.org"),
       "the mark names its user and address");

    /* 8 processes use one token at once: exactly one wins */
    token_make(&k, "dev", "race@example.org", 's', 4000000000LL, t);
    tap_fork_prepare();
    for (i = 0; i < 8; i++) {
        pid_t p = fork();
        if (p == 0) {
            struct member_store m;
            char name[32];
            snprintf(name, sizeof(name), "racer-%d", i);
            if (member_store_open(&m, dir, "dev", name, 1, err, sizeof(err)))
                _exit(3);
            _exit(token_use(&m, t, name, "race@example.org", err,
                            sizeof(err)) == 0
                      ? 0
                      : 1);
        }
    }
    for (i = 0; i < 8; i++) {
        int st;
        if (wait(&st) > 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0)
            wins++;
    }
    is_int(wins, 1, "8 racers for one token: exactly one wins");

    /* the daily reply marks */
    {
        int got = 0;
        for (i = 0; i < 5; i++) {
            char e[32];
            snprintf(e, sizeof(e), "1700000000.00000%d+x", i);
            got += token_rate_take(&ms, "ray@example.org", e, 1700000000, 3,
                                   err, sizeof(err)) == 1;
        }
        is_int(got, 3, "rate: 3 of 5 allowed with max 3");
        is_int(token_rate_take(&ms, "ray@example.org", "1700000000.000001+x",
                               1700000000, 3, err, sizeof(err)),
               1, "rate: a rerun of an allowed entry stays allowed");
        is_int(token_rate_take(&ms, "ray@example.org", "1700000000.000001+x",
                               1700000000 + 86400, 3, err, sizeof(err)),
               1, "rate: the next day starts again");
        is_int(token_rate_take(&ms, "x@example.org", "../evil", 1700000000, 3,
                               err, sizeof(err)),
               -1, "rate: a name with '/' is refused");
    }
    member_store_close(&ms);
    member_store_close(&ms2);
}

int main(void)
{
    char cmd[128];

    if (!mkdtemp(dir))
        return 1;
    state();
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    if (system(cmd) != 0)
        diag("cannot remove %s", dir);
    return done_testing();
}
