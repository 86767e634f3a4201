/*
 * qinfo_test - the pure parts of qinfo.h: short IDs (shortest unique
 * prefix, at least QID_MIN), ID lookup (prefixes, full names with
 * suffixes, malformed IDs, ambiguity), the qshape age buckets; and the
 * envelope's "held" key (round trip, lifetime start).
 */
#include "autoconf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "envelope.h"
#include "qinfo.h"
#include "tap.h"

static void add(struct qentries *l, const char *queue, const char *fname)
{
    struct qentry *e;

    l->v = realloc(l->v, (l->n + 1) * sizeof(*l->v));
    if (!l->v)
        abort();
    e = &l->v[l->n++];
    snprintf(e->queue, sizeof(e->queue), "%s", queue);
    if (qname_parse(fname, &e->qn) != 0)
        abort();
}

#define N1 "1732312345.123456+3f07c2a9d5e14b8f0a6b2c4d6e8f00112233aabb"
#define N2 "1732312345.123456+3f07c2a9ffffffff0a6b2c4d6e8f00112233aabb"
#define N3 "1732312399.000001+0000000000000000000000000000000000000000"

static void test_ids(void)
{
    struct qentries l = {NULL, 0, 0};
    size_t first, count;

    add(&l, "out", N1); /* already sorted by name */
    add(&l, "hold", N2 "@in");
    add(&l, "in", N3);
    is_int((long long)qentries_short_len(&l, 0), 27,
           "short ID: one past the prefix shared with the neighbour");
    is_int((long long)qentries_short_len(&l, 1), 27, "short ID: symmetric");
    is_int((long long)qentries_short_len(&l, 2), QID_MIN,
           "short ID: at least QID_MIN");
    ok(qentries_find(&l, N1, &first, &count) == 0 && first == 0 && count == 1,
       "find: full name");
    ok(qentries_find(&l, N2 "@in", &first, &count) == 0 && first == 1 &&
           count == 1,
       "find: name with @origin");
    ok(qentries_find(&l, N1 "#mx1#42#7", &first, &count) == 0 && count == 1,
       "find: name with a claim suffix");
    ok(qentries_find(&l, "1732312345.12", &first, &count) == 0 && count == 2,
       "find: an ambiguous prefix matches both");
    ok(qentries_find(&l, "1732312400", &first, &count) == 0 && count == 0,
       "find: no match");
    ok(qentries_find(&l, "1732312399.000001+0", &first, &count) == 0 &&
           first == 2 && count == 1,
       "find: a unique prefix");
    ok(qentries_find(&l, "", &first, &count) < 0, "find: empty ID refused");
    ok(qentries_find(&l, "17323x", &first, &count) < 0,
       "find: malformed ID refused");
    ok(qentries_find(&l, "../etc/passwd", &first, &count) < 0,
       "find: a path refused");
    ok(qentries_find(&l, N1 "0", &first, &count) < 0, "find: too long refused");
    qentries_free(&l);
}

static void test_qshape(void)
{
    is_int(qshape_bucket(0), 0, "qshape: 0 s in 5m");
    is_int(qshape_bucket(299), 0, "qshape: 299 s in 5m");
    is_int(qshape_bucket(300), 1, "qshape: 300 s in 10m");
    is_int(qshape_bucket(1280 * 60 - 1), 8, "qshape: just under 1280m");
    is_int(qshape_bucket(1280 * 60), 9, "qshape: 1280m+");
    is_str(qshape_label(9), "1280m+", "qshape: last label");
}

static void test_held(void)
{
    struct envelope env, back;
    struct buf b;
    char err[256];
    size_t used;

    envelope_init(&env);
    envelope_set(&env.list, "announce");
    envelope_set(&env.sender, "a@example.org");
    env.arrival_sec = 1000;
    env.held = 3600;
    buf_init(&b);
    ok(envelope_format(&env, &b, NULL) == 0 && strstr(b.data, "\nheld 3600\n"),
       "held: written");
    ok(envelope_parse(b.data, b.len, &back, &used, err, sizeof(err)) == 0 &&
           back.held == 3600,
       "held: read back");
    is_int(envelope_life_start(&back), 4600, "held: lifetime starts later");
    envelope_free(&back);
    env.held = 0;
    buf_reset(&b);
    ok(envelope_format(&env, &b, NULL) == 0 && !strstr(b.data, "held"),
       "held: not written when 0");
    buf_free(&b);
    envelope_free(&env);
}

int main(void)
{
    test_ids();
    test_qshape();
    test_held();
    return done_testing();
}
