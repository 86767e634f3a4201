/*
 * slice_test - the slice arithmetic of slice.h, checked against an
 * independent reference (64x64->128 multiply done with 32-bit halves, no
 * __int128), for n = 1..64: every key in exactly one slice, contiguous and
 * disjoint ranges covering 0..UINT64_MAX, buckets, slice sets, keys.
 */
#include "autoconf.h"

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "queue.h"
#include "slice.h"
#include "tap.h"

#define MAX_N 64
#define NRANDOM 100000

/* ------------------------------------------------------------ reference */

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

/* splitmix64: deterministic, good enough to spread keys everywhere. */
static uint64_t rnd(void)
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* High 64 bits of a * b, schoolbook on 32-bit halves. */
static uint64_t mulhi(uint64_t a, uint64_t b)
{
    uint64_t a0 = a & 0xffffffffu, a1 = a >> 32;
    uint64_t b0 = b & 0xffffffffu, b1 = b >> 32;
    uint64_t p00 = a0 * b0, p01 = a0 * b1, p10 = a1 * b0, p11 = a1 * b1;
    uint64_t mid = (p00 >> 32) + (p01 & 0xffffffffu) + (p10 & 0xffffffffu);

    return p11 + (p01 >> 32) + (p10 >> 32) + (mid >> 32);
}

/* floor(k * n / 2^64) */
static unsigned ref_slice(uint64_t k, unsigned n)
{
    return (unsigned)mulhi(k, n);
}

/* -------------------------------------------------------------- checks */

static uint64_t lo[MAX_N], hi[MAX_N];

/* Ranges of n: contiguous, disjoint, non-empty, 0..UINT64_MAX. */
static void check_ranges(unsigned n)
{
    unsigned i;
    int bad = 0;

    for (i = 0; i < n; i++) {
        lo[i] = slice_lower(i, n);
        hi[i] = slice_upper(i, n);
    }
    if (lo[0] != 0) {
        diag("n=%u: slice 0 starts at %" PRIu64, n, lo[0]);
        bad = 1;
    }
    if (hi[n - 1] != UINT64_MAX) {
        diag("n=%u: slice %u ends at %" PRIu64, n, n - 1, hi[n - 1]);
        bad = 1;
    }
    for (i = 0; i < n && !bad; i++) {
        if (lo[i] > hi[i]) {
            diag("n=%u: slice %u is empty or inverted: [%" PRIu64 ", %" PRIu64
                 "]",
                 n, i, lo[i], hi[i]);
            bad = 1;
        } else if (i > 0 && lo[i] != hi[i - 1] + 1) {
            diag("n=%u: slice %u starts at %" PRIu64 ", slice %u ends at "
                 "%" PRIu64,
                 n, i, lo[i], i - 1, hi[i - 1]);
            bad = 1;
        } else if (ref_slice(lo[i], n) != i ||
                   (i > 0 && ref_slice(lo[i] - 1, n) != i - 1)) {
            /* lower(i) must be the smallest k with floor(k*n/2^64) == i */
            diag("n=%u: slice_lower(%u) = %" PRIu64
                 " is not ceil(i * 2^64 / n)",
                 n, i, lo[i]);
            bad = 1;
        }
    }
    ok(!bad, "n=%u: %u ranges are contiguous, disjoint, cover 0..2^64-1", n, n);
}

/* Every key: exactly one slice contains it, and slice_of names that one. */
static void check_keys(unsigned n, const uint64_t *keys, size_t nkeys)
{
    size_t j;
    unsigned i;
    int bad = 0;

    for (j = 0; j < nkeys && !bad; j++) {
        uint64_t k = keys[j];
        unsigned s = slice_of(k, n), owners = 0, owner = 0;

        for (i = 0; i < n; i++)
            if (lo[i] <= k && k <= hi[i]) {
                owners++;
                owner = i;
            }
        if (s >= n || owners != 1 || owner != s || s != ref_slice(k, n) ||
            !(lo[s] <= k && k <= hi[s])) {
            diag("n=%u key %" PRIu64 ": slice_of %u, %u ranges contain it "
                 "(last %u), reference %u",
                 n, k, s, owners, owner, ref_slice(k, n));
            bad = 1;
        }
    }
    ok(!bad, "n=%u: each of %zu keys lies in exactly one slice, slice_of's", n,
       nkeys);
}

/* slice_buckets(i, n) is exactly the set of buckets the range overlaps. */
static void check_buckets(unsigned n)
{
    unsigned i, b, first, last;
    unsigned char covered[SLICE_BUCKETS];
    int bad = 0;

    memset(covered, 0, sizeof(covered));
    for (i = 0; i < n && !bad; i++) {
        slice_buckets(i, n, &first, &last);
        if (first > last || last >= SLICE_BUCKETS) {
            diag("n=%u slice %u: buckets %u..%u", n, i, first, last);
            bad = 1;
            break;
        }
        for (b = 0; b < SLICE_BUCKETS; b++) {
            uint64_t blo = (uint64_t)b << 56;
            uint64_t bhi = blo | (((uint64_t)1 << 56) - 1);
            int overlaps = blo <= hi[i] && lo[i] <= bhi;
            int listed = b >= first && b <= last;

            if (overlaps != listed) {
                diag("n=%u slice %u [%016" PRIx64 ", %016" PRIx64
                     "]: bucket %02x overlaps=%d but listed=%d (%u..%u)",
                     n, i, lo[i], hi[i], b, overlaps, listed, first, last);
                bad = 1;
                break;
            }
            if (listed)
                covered[b] = 1;
        }
    }
    for (b = 0; b < SLICE_BUCKETS && !bad; b++)
        if (!covered[b]) {
            diag("n=%u: bucket %02x is in no slice's bucket range", n, b);
            bad = 1;
        }
    ok(!bad, "n=%u: slice_buckets() lists exactly the overlapping buckets", n);
}

/* Structural properties that tie different n together. */
static void check_across_n(const uint64_t *keys, size_t nkeys)
{
    size_t j;
    unsigned n;
    int bad_nest = 0, bad_mono = 0, bad_bucket = 0;

    for (j = 0; j < nkeys; j++) {
        uint64_t k = keys[j];

        if (slice_bucket(k) != (unsigned)(k >> 56) && !bad_bucket) {
            diag("slice_bucket(%016" PRIx64 ") = %02x", k, slice_bucket(k));
            bad_bucket = 1;
        }
        for (n = 1; 2 * n <= MAX_N; n++)
            if (slice_of(k, 2 * n) / 2 != slice_of(k, n) && !bad_nest) {
                diag("key %016" PRIx64 ": slice_of(k,%u)=%u, slice_of(k,%u)=%u",
                     k, 2 * n, slice_of(k, 2 * n), n, slice_of(k, n));
                bad_nest = 1;
            }
        if (j > 0 && keys[j - 1] <= k && !bad_mono)
            for (n = 1; n <= MAX_N; n++)
                if (slice_of(keys[j - 1], n) > slice_of(k, n)) {
                    diag("slice_of is not monotonic at n=%u", n);
                    bad_mono = 1;
                    break;
                }
    }
    ok(!bad_bucket, "slice_bucket(k) is the top 8 bits of k");
    ok(!bad_nest, "slice i of n is the union of slices 2i, 2i+1 of 2n");
    ok(!bad_mono, "slice_of is monotonic in the key");
}

/* ----------------------------------------------------------- slice sets */

static void set_ok(const char *spec, unsigned n, const char *want_on)
{
    struct slice_set set = {0, NULL};
    char err[256] = "";
    char got[MAX_N + 1];
    unsigned i;
    int rc = slice_set_parse(spec, n, &set, err, sizeof(err));

    if (!ok(rc == 0, "slice_set_parse(\"%s\", %u) accepted", spec, n)) {
        diag("error: %s", err);
        return;
    }
    for (i = 0; i < n && i < MAX_N; i++)
        got[i] = set.on[i] ? '1' : '0';
    got[i] = 0;
    is_int(set.n, n, "slice_set_parse(\"%s\", %u): set->n", spec, n);
    is_str(got, want_on, "slice_set_parse(\"%s\", %u): slices on", spec, n);
    /* slice_set_has agrees with on[] for keys of every slice */
    {
        int bad = 0;

        for (i = 0; i < n; i++) {
            uint64_t mid = slice_lower(i, n) / 2 + slice_upper(i, n) / 2;
            if (slice_set_has(&set, slice_lower(i, n)) != (want_on[i] == '1') ||
                slice_set_has(&set, slice_upper(i, n)) != (want_on[i] == '1') ||
                slice_set_has(&set, mid) != (want_on[i] == '1'))
                bad = 1;
        }
        ok(!bad, "slice_set_has(\"%s\", %u) follows the slices on", spec, n);
    }
    slice_set_free(&set);
    ok(set.on == NULL && set.n == 0, "slice_set_free clears the set");
}

static void set_bad(const char *spec, unsigned n)
{
    struct slice_set set = {0, NULL};
    char err[256];
    int rc;

    memset(err, 'X', sizeof(err));
    rc = slice_set_parse(spec, n, &set, err, sizeof(err));
    ok(rc == -1 && memchr(err, 0, sizeof(err)) && err[0] != 0 && set.on == NULL,
       "slice_set_parse(\"%s\", %u) rejected with a reason", spec, n);
    if (rc == 0)
        slice_set_free(&set);
    else if (memchr(err, 0, sizeof(err)))
        diag("reason: %s", err);
}

static void test_slice_sets(void)
{
    struct slice_set set = {0, NULL};
    char small[12];

    set_ok("all", 4, "1111");
    set_ok("all", 1, "1");
    set_ok("0-3,5", 8, "11110100");
    set_ok("0-3,5", 6, "111101");
    set_ok("0", 1, "1");
    set_ok("3", 4, "0001");
    set_ok("1-1", 4, "0100");
    set_ok("0-0,2-3", 4, "1011");
    set_ok("5,0", 6, "100001");
    set_ok("63", 64,
           "0000000000000000000000000000000000000000000000000000000"
           "000000001");

    set_bad("3-1", 4);
    set_bad("x", 4);
    set_bad("5", 4);
    set_bad("4", 4);
    set_bad("0-4", 4);
    set_bad("0-3,5", 4);
    set_bad("", 4);
    set_bad("1,", 4);
    set_bad(",1", 4);
    set_bad("1,,2", 4);
    set_bad("1-", 4);
    set_bad("-1", 4);
    set_bad("1--2", 4);
    set_bad("1-2-3", 4);
    set_bad(" 1", 4);
    set_bad("1 ", 4);
    set_bad("1, 2", 4);
    set_bad("all,1", 4);
    set_bad("ALL", 4);
    set_bad("alll", 4);
    set_bad("0x1", 4);
    set_bad("+1", 4);
    set_bad("1.5", 4);
    set_bad("99999999999999999999999", 4);
    set_bad("4294967296", 4); /* 2^32: must not wrap to 0 */
    set_bad("4294967297-1", 4);
    set_bad("0", 0); /* no slice exists at all */

    /* A short error buffer is still NUL-terminated. */
    memset(small, 'X', sizeof(small));
    slice_set_parse("3-1", 4, &set, small, sizeof(small));
    ok(memchr(small, 0, sizeof(small)) != NULL,
       "slice_set_parse truncates its reason to errlen");
    if (set.on)
        slice_set_free(&set);

    ok(slice_set_all(5, &set) == 0 && set.n == 5 && set.on[0] && set.on[4],
       "slice_set_all(5)");
    slice_set_free(&set);
}

/* ----------------------------------------------------------------- keys */

/* slice_key on a heap copy of exactly strlen+1 bytes, so ASan sees any
 * read past the NUL. */
static int key_of(const char *hex, uint64_t *key)
{
    size_t n = strlen(hex) + 1;
    char *copy = malloc(n);
    int rc;

    if (!copy)
        bail_out("out of memory");
    memcpy(copy, hex, n);
    rc = slice_key(copy, key);
    free(copy);
    return rc;
}

static void key_bad(const char *hex)
{
    uint64_t k = 12345;

    ok(key_of(hex, &k) != 0 && k == 12345,
       "slice_key(\"%s\") rejected, key untouched", hex);
}

static void test_keys(void)
{
    uint64_t k = 0;
    int i, bad = 0;

    ok(key_of("0123456789abcdef0123456789abcdef01234567", &k) == 0 &&
           k == 0x0123456789abcdefULL,
       "slice_key: first 16 hex digits, big-endian");
    ok(key_of("0000000000000000000000000000000000000000", &k) == 0 && k == 0,
       "slice_key: all zero");
    ok(key_of("ffffffffffffffffffffffffffffffffffffffff", &k) == 0 &&
           k == UINT64_MAX,
       "slice_key: all f is UINT64_MAX");
    ok(key_of("fedcba9876543210", &k) == 0 && k == 0xfedcba9876543210ULL,
       "slice_key: exactly 16 digits are enough");
    ok(key_of("8000000000000000zzzz", &k) == 0 && k == 0x8000000000000000ULL,
       "slice_key: only the first 16 digits are read");
    key_bad("");
    key_bad("0123456789abcde");
    key_bad("0");
    key_bad("0123456789ABCDEF0123456789abcdef01234567");
    key_bad("0123456789abcdeg0123456789abcdef01234567");
    key_bad("g123456789abcdef0123456789abcdef01234567");
    key_bad(" 123456789abcdef0123456789abcdef01234567");
    key_bad("-123456789abcdef0123456789abcdef01234567");
    key_bad("0x23456789abcdef0123456789abcdef01234567");
    key_bad("0123456789abcd\xe4"
            "f0123456789abcdef01234567");

    /* The key of a name is a function of the name only: the same for every
     * slice count (so changing n moves no file), and what qname_parse
     * reports. */
    for (i = 0; i < 2000 && !bad; i++) {
        char name[QNAME_LEN + 1];
        struct qname qn;
        uint64_t want = rnd(), lowbits = rnd(), kk[2];
        unsigned n;

        snprintf(name, sizeof(name),
                 "%010u.%06u+%016" PRIx64 "%016" PRIx64 "%08" PRIx32,
                 (unsigned)(1700000000u + (unsigned)i), (unsigned)i % 1000000u,
                 want, lowbits, (uint32_t)lowbits);
        if (key_of(name + 18, &kk[0]) != 0 || kk[0] != want ||
            qname_parse(name, &qn) != 0 || qn.key != want) {
            diag("%s: key %016" PRIx64 " / qname %016" PRIx64
                 ", want %016" PRIx64,
                 name, kk[0], qn.key, want);
            bad = 1;
            break;
        }
        for (n = 1; n <= MAX_N; n++) {
            /* re-derive the key (as a runner with n slices would) */
            if (key_of(name + 18, &kk[1]) != 0 || kk[1] != kk[0] ||
                slice_of(kk[1], n) != ref_slice(want, n)) {
                diag("%s: n=%u key changed or slice wrong", name, n);
                bad = 1;
                break;
            }
        }
    }
    ok(!bad, "an entry's key depends on its name only, not on n");
}

/* slice_set_format() writes back what slice_set_parse() reads. */
static void format_ok(const char *spec, unsigned n, const char *want)
{
    struct slice_set set;
    char err[128], out[64];

    if (!ok(slice_set_parse(spec, n, &set, err, sizeof(err)) == 0,
            "format: \"%s\" parsed", spec))
        return;
    is_str(slice_set_format(&set, out, sizeof(out)), want,
           "slice_set_format of \"%s\" of %u", spec, n);
    slice_set_free(&set);
}

static void test_format(void)
{
    struct slice_set set;
    char err[128], small[8];

    format_ok("all", 16, "0-15");
    format_ok("none", 16, "none");
    format_ok("0", 1, "0");
    format_ok("5,0-3", 16, "0-3,5");
    format_ok("0,2,4", 8, "0,2,4");
    format_ok("14,15,1-2,8", 16, "1-2,8,14-15");
    if (slice_set_parse("0,2,4,6,8,10", 16, &set, err, sizeof(err)) == 0) {
        slice_set_format(&set, small, sizeof(small));
        ok(strlen(small) < sizeof(small) && strncmp(small, "0,2,4", 5) == 0,
           "slice_set_format cuts at outlen (\"%s\")", small);
        slice_set_free(&set);
    }
}

int main(void)
{
    static uint64_t keys[NRANDOM + 64 * 66 * 4 + 16];
    size_t nkeys = 0, j;
    unsigned n, i;

    keys[nkeys++] = 0;
    keys[nkeys++] = 1;
    keys[nkeys++] = UINT64_MAX;
    keys[nkeys++] = UINT64_MAX - 1;
    keys[nkeys++] = (uint64_t)1 << 63;
    keys[nkeys++] = ((uint64_t)1 << 63) - 1;
    for (n = 1; n <= MAX_N; n++)
        for (i = 0; i < n; i++) {
            uint64_t l = slice_lower(i, n), u = slice_upper(i, n);
            keys[nkeys++] = l;
            keys[nkeys++] = l - 1; /* wraps to UINT64_MAX for i == 0 */
            keys[nkeys++] = u;
            keys[nkeys++] = u + 1;
        }
    for (j = 0; j < NRANDOM; j++)
        keys[nkeys++] = rnd();

    for (n = 1; n <= MAX_N; n++) {
        check_ranges(n);
        check_keys(n, keys, nkeys);
        check_buckets(n);
    }
    check_across_n(keys, nkeys);
    test_slice_sets();
    test_keys();
    test_format();
    return done_testing();
}
