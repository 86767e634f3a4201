/*
 * member_test - the member state of member.h: the fold of event names
 * (score per day, stale reset, epochs, warnings, probes, pending
 * notices), member_next(), and on a real directory member_record()'s
 * exactly-once creation, the index, member_forget() and the removal from
 * a members file that keeps every other line.
 */
#include "autoconf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "member.h"
#include "tap.h"

#define DAY 86400
#define T0 1767268800LL /* 2026-01-01 12:00:00 UTC */

static char key[MEMBER_KEY_LEN + 1];
static char *names[64];
static size_t n;

static void ev(int64_t t, char kind, const char *id)
{
    char buf[160];

    snprintf(buf, sizeof(buf), "%s.%010lld.%c.%s", key, (long long)t, kind,
             id);
    names[n++] = strdup(buf);
}

static void reset(void)
{
    while (n > 0)
        free(names[--n]);
}

static void fold(struct member_info *mi, int64_t now)
{
    struct member_policy pol;

    member_policy_default(&pol);
    member_fold_names(key, names, n, &pol, now, mi);
}

static void test_fold(void)
{
    struct member_policy pol;
    struct member_info mi;
    int d;

    member_policy_default(&pol);
    member_key("Alice@Example.ORG", key);
    {
        char k2[MEMBER_KEY_LEN + 1];
        member_key("alice@example.org", k2);
        is_str(key, k2, "the key ignores case");
    }
    ev(T0, 'F', "q1-0");
    ev(T0 + 3600, 'F', "q2-0");
    ev(T0 + 7200, 'T', "q3-0");
    ev(T0 + 7300, 'P', "q4-0");
    names[n++] = strdup("0000000000000000.0000000001.F.other-0"); /* other key */
    names[n++] = strdup("garbage");
    fold(&mi, T0 + 8000);
    is_int(mi.score, 1, "two failures on one day score 1");
    ok(mi.failed == 2 && mi.delayed == 1 && mi.policy == 1,
       "counts per kind (%u/%u/%u)", mi.failed, mi.delayed, mi.policy);
    is_int(mi.last_kind, 'P', "the last bounce's kind");
    for (d = 1; d < 4; d++) {
        char id[16];
        snprintf(id, sizeof(id), "d%d-0", d);
        ev(T0 + d * DAY, 'F', id);
    }
    fold(&mi, T0 + 3 * DAY);
    is_int(mi.score, 4, "four days: score 4");
    is_int(member_next(&mi, &pol, T0 + 3 * DAY), STEP_NONE, "below 5: nothing");
    ev(T0 + 4 * DAY, 'F', "d4-0");
    fold(&mi, T0 + 4 * DAY);
    is_int(member_next(&mi, &pol, T0 + 4 * DAY), STEP_DISABLE, "5: disable");
    pol.threshold = 5.5;
    is_int(member_next(&mi, &pol, T0 + 4 * DAY), STEP_NONE,
           "a decimal threshold of 5.5 is not reached by 5");
    pol.threshold = 5;
    pol.probe = 1;
    is_int(member_next(&mi, &pol, T0 + 4 * DAY), STEP_PROBE, "probe mode: probe");
    pol.probe = 0;
    ev(T0 + 4 * DAY, 'D', "e0");
    fold(&mi, T0 + 4 * DAY);
    ok(mi.state == MEMBER_DISABLED && mi.disabled_by == 'D' &&
           mi.disabled_since == T0 + 4 * DAY,
       "D e0 disables at its time");
    is_int(mi.score, 5, "the bounce of the same second counts before the D");
    ok(mi.npending == 1 && mi.pending[0].kind == 'D', "D pending notices");
    ev(T0 + 4 * DAY, 'q', "De0");
    fold(&mi, T0 + 4 * DAY);
    is_int((long long)mi.npending, 0, "the q marker clears it");
    is_int(member_next(&mi, &pol, T0 + 4 * DAY), STEP_WARN, "warning 1 due at once");
    ev(T0 + 4 * DAY, 'W', "e0.w1");
    fold(&mi, T0 + 10 * DAY);
    is_int(member_next(&mi, &pol, T0 + 10 * DAY), STEP_NONE, "not before a week");
    is_int(member_next(&mi, &pol, T0 + 11 * DAY), STEP_WARN, "warning 2 a week later");
    ev(T0 + 11 * DAY, 'W', "e0.w2");
    ev(T0 + 18 * DAY, 'W', "e0.w3");
    ev(T0 + 18 * DAY, 'W', "e0.w3"); /* a duplicate name changes nothing */
    fold(&mi, T0 + 20 * DAY);
    is_int(mi.warnings, 3, "3 warnings");
    is_int(member_next(&mi, &pol, T0 + 20 * DAY), STEP_NONE, "no removal yet");
    is_int(member_next(&mi, &pol, T0 + 25 * DAY), STEP_REMOVE, "removal a week after the last");
    ev(T0 + 30 * DAY, 'E', "admin-x");
    fold(&mi, T0 + 30 * DAY);
    ok(mi.state == MEMBER_ENABLED && mi.score == 0 && mi.warnings == 0 &&
           mi.epoch == 1,
       "E: enabled, score and warnings 0, epoch 1");
    ev(T0 + 31 * DAY, 'D', "e0"); /* a late decision of the old epoch */
    fold(&mi, T0 + 31 * DAY);
    is_int(mi.state, MEMBER_ENABLED, "a D of an old epoch does not count");
    ev(T0 + 31 * DAY, 'F', "late-0");
    fold(&mi, T0 + 31 * DAY);
    is_int(mi.score, 1, "bounces after E score from 1");
    fold(&mi, T0 + 39 * DAY);
    is_int(mi.score, 0, "stale after 7 days: shown as 0");
    ev(T0 + 39 * DAY, 'F', "later-0");
    fold(&mi, T0 + 39 * DAY);
    is_int(mi.score, 1, "a bounce after a stale gap starts at 1");
    ev(T0 + 40 * DAY, 'X', "admin-y");
    fold(&mi, T0 + 40 * DAY);
    ok(mi.state == MEMBER_DISABLED && mi.disabled_by == 'X', "X: disabled by the admin");
    is_int(member_next(&mi, &pol, T0 + 90 * DAY), STEP_NONE,
           "an admin's disable is never warned or removed");
    pol.processing = 0;
    is_int(member_next(&mi, &pol, T0 + 90 * DAY), STEP_NONE, "bounce_processing false");
    reset();
}

static void test_store(const char *dir)
{
    struct member_store ms;
    struct member_policy pol;
    struct member_info mi;
    struct member_disabled d;
    char err[512], path[600], **v;
    size_t k, removed;
    FILE *fp;

    member_policy_default(&pol);
    ok(member_store_open(&ms, dir, "Dev", "node1", 0, err, sizeof(err)) == 1,
       "no state yet: 1 without create");
    ok(member_store_open(&ms, dir, "dev", "node1", 1, err, sizeof(err)) == 0,
       "created: %s", err);
    is_int(member_record(&ms, "a@example.org", 'F', T0, "q1-0", "5.1.1",
                         "550 no\nsuch user", err, sizeof(err)),
           0, "an event is made");
    is_int(member_record(&ms, "A@example.org", 'F', T0, "q1-0", "5.1.1", NULL,
                         err, sizeof(err)),
           1, "the same event again: already there");
    is_int(member_record(&ms, "a@example.org", 'F', T0, "../x", NULL, NULL, err,
                         sizeof(err)),
           -1, "an ID with a slash is refused");
    ok(member_load(&ms, "a@example.org", &pol, T0, &mi, err, sizeof(err)) == 0 &&
           mi.failed == 1 && strcmp(mi.last_status, "5.1.1") == 0 &&
           strcmp(mi.reason, "550 no such user") == 0,
       "loaded: status and diagnostic on one line (%s)", mi.reason);
    member_record(&ms, "a@example.org", 'X', T0 + 1, "admin-1", NULL, NULL, err,
                  sizeof(err));
    member_load(&ms, "a@example.org", &pol, T0 + 1, &mi, err, sizeof(err));
    ok(member_index_sync(&ms, &mi, err, sizeof(err)) == 0, "index synced");
    ok(member_disabled_load(&d, dir, "dev", err, sizeof(err)) == 0 &&
           d.n == 1 && member_disabled_has(&d, "A@EXAMPLE.ORG") &&
           !member_disabled_has(&d, "b@example.org"),
       "the disabled set holds a (any case), not b");
    member_disabled_free(&d);
    ok(member_index_list(&ms, &v, &k, err, sizeof(err)) == 0 && k == 1 &&
           strcmp(v[0], "a@example.org") == 0,
       "the index names the address");
    member_strings_free(v, k);
    ok(member_forget(&ms, "a@example.org", err, sizeof(err)) == 0, "forgotten");
    member_load(&ms, "a@example.org", &pol, T0 + 1, &mi, err, sizeof(err));
    ok(mi.failed == 0 && mi.state == MEMBER_ENABLED, "no state left");
    ok(member_disabled_load(&d, dir, "dev", err, sizeof(err)) == 0 && d.n == 0,
       "and no index entry");
    member_disabled_free(&d);
    ok(member_disabled_load(&d, dir, "nolist", err, sizeof(err)) == 0 && d.n == 0,
       "a list without state: empty set");
    member_store_close(&ms);

    snprintf(path, sizeof(path), "%s/m.members", dir);
    fp = fopen(path, "w");
    fputs("# comment a@example.org\na@example.org\n  B@Example.org \r\nc@example.org", fp);
    fclose(fp);
    {
        char *rm[] = {"b@example.org", "c@example.org"};
        char text[256] = "";
        ok(members_file_remove(path, rm, 2, &removed, err, sizeof(err)) == 0 &&
               removed == 2,
           "two lines removed");
        fp = fopen(path, "r");
        text[fread(text, 1, sizeof(text) - 1, fp)] = 0;
        fclose(fp);
        is_str(text, "# comment a@example.org\na@example.org\n",
               "comments and other lines kept");
    }
}

int main(void)
{
    char dir[] = "/tmp/member_test.XXXXXX";

    test_fold();
    if (!mkdtemp(dir))
        return 1;
    test_store(dir);
    {
        char cmd[128];
        snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
        if (system(cmd) != 0)
            diag("could not remove %s", dir);
    }
    return done_testing();
}
