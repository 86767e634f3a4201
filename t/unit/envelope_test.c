/*
 * envelope_test - the spool entry envelope of envelope.h: format/parse round
 * trips with hostile values, rejection of malformed input, envelope_read()
 * on real files, and a deterministic mutation fuzz loop (the suite also runs
 * under ASan/UBSan, where any out-of-bounds read shows up as a crash).
 *
 * Every parse is done on a heap copy of exactly len bytes (no NUL after
 * it), so a parser that reads one byte too far is caught by ASan.
 */
#include "autoconf.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "envelope.h"
#include "tap.h"

#define S(lit) lit, sizeof(lit) - 1
#define FUZZ_ITERATIONS 200000

static uint64_t rng_state = 20241122;

static uint64_t rnd(void)
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static size_t rnd_below(size_t n)
{
    return n ? (size_t)(rnd() % n) : 0;
}

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);

    if (!p)
        bail_out("out of memory");
    return p;
}

/* envelope_parse on an exact-size heap copy of data[0..len). */
static int parse(const char *data, size_t len, struct envelope *env,
                 size_t *consumed, char *err, size_t errlen)
{
    char *copy = xmalloc(len);
    int rc;

    if (len)
        memcpy(copy, data, len);
    err[0] = 0;
    rc = envelope_parse(copy, len, env, consumed, err, errlen);
    free(copy);
    return rc;
}

/* 1 if env is in the envelope_init() state. */
static int is_empty(const struct envelope *env)
{
    return env->list == NULL && env->sender == NULL &&
           env->last_error == NULL && env->mbox_from == NULL &&
           env->nrcpt == 0 && env->rcpt == NULL && env->extra.len == 0 &&
           env->size == 0 && env->arrival_sec == 0 && env->attempts == 0 &&
           env->recoveries == 0 && env->next_attempt == 0;
}

static int str_eq(const char *a, const char *b)
{
    return (a == NULL && b == NULL) || (a && b && strcmp(a, b) == 0);
}

/* Compare every field; on a difference say which one (in diag) and
 * return 0. */
static int env_equal(const struct envelope *a, const struct envelope *b)
{
    size_t i;

#define DIFF(what)                                                             \
    do {                                                                       \
        diag("envelopes differ in %s", what);                                  \
        return 0;                                                              \
    } while (0)
    if (a->version != b->version)
        DIFF("version");
    if (!str_eq(a->list, b->list))
        DIFF("list");
    if (a->role != b->role)
        DIFF("role");
    if (!str_eq(a->sender ? a->sender : "", b->sender ? b->sender : ""))
        DIFF("sender");
    if (a->arrival_sec != b->arrival_sec || a->arrival_usec != b->arrival_usec)
        DIFF("arrival");
    if (a->attempts != b->attempts)
        DIFF("attempts");
    if (a->next_attempt != b->next_attempt)
        DIFF("next-attempt");
    if (a->recoveries != b->recoveries)
        DIFF("recoveries");
    if (!str_eq(a->last_error, b->last_error))
        DIFF("last-error");
    if (!str_eq(a->mbox_from, b->mbox_from))
        DIFF("mbox-from");
    if (!str_eq(a->mta_queue_id, b->mta_queue_id))
        DIFF("mta-queue-id");
    if (!str_eq(a->member_header, b->member_header))
        DIFF("member-header");
    if (a->size != b->size)
        DIFF("size");
    if (a->nrcpt != b->nrcpt)
        DIFF("the number of recipients");
    for (i = 0; i < a->nrcpt; i++) {
        if (!str_eq(a->rcpt[i].addr, b->rcpt[i].addr)) {
            diag("recipient %zu differs", i);
            return 0;
        }
        if (!str_eq(a->rcpt[i].extra, b->rcpt[i].extra)) {
            diag("recipient %zu's extra text differs", i);
            return 0;
        }
    }
    if (a->extra.len != b->extra.len ||
        (a->extra.len && memcmp(a->extra.data, b->extra.data, a->extra.len)))
        DIFF("the unknown lines");
#undef DIFF
    return 1;
}

/* -------------------------------------------------------------- fixtures */

/* Every byte 0x01..0xff once, as a C string. */
static void all_bytes(char *out)
{
    int c;

    for (c = 1; c < 256; c++)
        out[c - 1] = (char)c;
    out[255] = 0;
}

static void base_env(struct envelope *env)
{
    envelope_init(env);
    if (envelope_set(&env->list, "announce") ||
        envelope_set(&env->sender, "alice@example.org") ||
        envelope_add_rcpt(env, "bob@example.org", NULL))
        bail_out("out of memory");
    env->role = ROLE_POST;
    env->arrival_sec = 1732312345;
    env->arrival_usec = 123456;
    env->size = 1234;
}

/* Format, parse back, compare, format again: identical bytes. */
static void round_trip(const struct envelope *env, const char *what)
{
    struct buf a, b, msg;
    struct envelope back;
    char err[512];
    size_t consumed = 0, size_off = 0;
    int rc;

    buf_init(&a);
    buf_init(&b);
    buf_init(&msg);
    if (!ok(envelope_format(env, &a, &size_off) == 0, "%s: formats", what))
        goto out;
    {
        char digits[ENVELOPE_SIZE_DIGITS + 1];

        snprintf(digits, sizeof(digits), "%0*" PRId64, ENVELOPE_SIZE_DIGITS,
                 env->size);
        ok(size_off + ENVELOPE_SIZE_DIGITS < a.len &&
               memcmp(a.data + size_off, digits, ENVELOPE_SIZE_DIGITS) == 0 &&
               a.data[size_off + ENVELOPE_SIZE_DIGITS] == '\n',
           "%s: size_off points at the 20 size digits", what);
    }
    /* The message follows: the parser must stop at the empty line. */
    if (buf_append(&msg, a.data, a.len) ||
        buf_puts(&msg, "From: x\n\nbody\n\n\nMMQ 1\n"))
        bail_out("out of memory");
    rc = parse(msg.data, msg.len, &back, &consumed, err, sizeof(err));
    if (!ok(rc == 0, "%s: parses back", what)) {
        diag("rc %d: %s", rc, err);
        goto out;
    }
    is_int((long long)consumed, (long long)a.len,
           "%s: consumed is the envelope's length", what);
    ok(env_equal(env, &back), "%s: parse(format(env)) has the same fields",
       what);
    if (envelope_format(&back, &b, NULL) != 0)
        bail_out("envelope_format failed on a parsed envelope");
    is_mem(b.data, b.len, a.data, a.len,
           "%s: format(parse(format(env))) is byte-identical", what);
    envelope_free(&back);
out:
    buf_free(&a);
    buf_free(&b);
    buf_free(&msg);
}

static void test_round_trips(void)
{
    struct envelope env;
    char bytes[256];
    char *big;
    size_t i;

    base_env(&env);
    round_trip(&env, "plain envelope");
    envelope_free(&env);

    /* Every role. */
    for (i = 0; i <= ROLE_CONFIRM; i++) {
        char what[64];

        base_env(&env);
        env.role = (enum mmq_role)i;
        snprintf(what, sizeof(what), "role %s", role_name(env.role));
        round_trip(&env, what);
        envelope_free(&env);
    }

    /* The null sender. */
    base_env(&env);
    envelope_set(&env.sender, "");
    round_trip(&env, "null sender");
    envelope_free(&env);

    /* Hostile bytes in every string field. */
    all_bytes(bytes);
    base_env(&env);
    envelope_set(&env.list, bytes);
    envelope_set(&env.sender, "a b\r\nrcpt evil@x\n\nMMQ 1 %00 %zz % \xff\x80");
    envelope_set(&env.last_error, bytes);
    envelope_set(&env.mbox_from, "From alice@example.org  Sat Nov 23 "
                                 "12:00:00 2024\r\n\t%");
    envelope_set(&env.mta_queue_id, "4XyZ 1k2\n%");
    envelope_set(&env.member_header, bytes);
    envelope_add_rcpt(&env, bytes, NULL);
    envelope_add_rcpt(&env, "%41 %", NULL);
    envelope_add_rcpt(&env, "", NULL);
    round_trip(&env, "bytes 0x01-0xff, CR, LF, space, %% in values");
    envelope_free(&env);

    /* Extreme numbers. */
    base_env(&env);
    env.arrival_sec = INT64_MAX / 2;
    env.arrival_usec = 999999;
    env.attempts = 1000000;
    env.recoveries = 1000000;
    env.next_attempt = INT64_MAX / 2;
    env.size = INT64_MAX / 2;
    round_trip(&env, "largest numbers");
    envelope_free(&env);
    base_env(&env);
    env.arrival_sec = 0;
    env.arrival_usec = 0;
    env.size = 0;
    round_trip(&env, "zero numbers");
    envelope_free(&env);

    /* Very long values: 300,000 bytes that each encode to 3 (900 kB, still
     * within ENVELOPE_MAX_LINE), and a 64 kB plain one. */
    big = xmalloc(300001);
    memset(big, 0xff, 300000);
    big[300000] = 0;
    base_env(&env);
    envelope_set(&env.last_error, big);
    memset(big, 'a', 65536);
    big[65536] = 0;
    envelope_set(&env.sender, big);
    envelope_add_rcpt(&env, big, "extra");
    round_trip(&env, "very long values");
    envelope_free(&env);
    free(big);

    /* Many recipients, some with extra text (kept verbatim). */
    base_env(&env);
    for (i = 0; i < 20000; i++) {
        char addr[64], extra[64];

        snprintf(addr, sizeof(addr), "user%zu@example.org", i);
        snprintf(extra, sizeof(extra), "orcpt=rfc822;%zu  two spaces", i);
        if (envelope_add_rcpt(&env, addr, i % 3 ? NULL : extra))
            bail_out("out of memory");
    }
    envelope_add_rcpt(&env, "empty-extra@x", "");
    round_trip(&env, "20001 recipients, some with extra text");
    envelope_free(&env);

    /* Unknown keys, set as parsed lines would be. */
    base_env(&env);
    buf_puts(&env.extra, "x-future some value  with  spaces \xe4\n"
                         "zz 1\n"
                         "a-b-c %00%zz%\n");
    round_trip(&env, "unknown lines");
    envelope_free(&env);
}

/* An over-long value must not produce an envelope that cannot be read:
 * either envelope_format refuses it, or parse gives it back. */
static void test_unwritable_value(void)
{
    struct envelope env, back;
    struct buf b;
    char err[256];
    size_t consumed;
    char *big = xmalloc(ENVELOPE_MAX_LINE + 1);
    int rc;

    memset(big, 'x', ENVELOPE_MAX_LINE);
    big[ENVELOPE_MAX_LINE] = 0;
    base_env(&env);
    envelope_set(&env.last_error, big);
    buf_init(&b);
    rc = envelope_format(&env, &b, NULL);
    if (rc != 0) {
        ok(1, "format refuses a value longer than ENVELOPE_MAX_LINE");
    } else {
        int prc = parse(b.data, b.len, &back, &consumed, err, sizeof(err));
        if (!ok(prc == 0 && env_equal(&env, &back),
                "format output with a %u-byte value can be parsed back",
                ENVELOPE_MAX_LINE)) {
            diag("envelope_format wrote it, envelope_parse says: rc %d %s", prc,
                 err);
        }
        if (prc == 0)
            envelope_free(&back);
    }
    buf_free(&b);
    envelope_free(&env);
    free(big);
}

/* ------------------------------------------------------------ rejection */

#define HEAD "MMQ 1\n"
#define LIST "list announce\n"
#define ROLE "role post\n"
#define SENDER "sender alice@example.org\n"
#define ARRIVAL "arrival 1732312345.123456\n"
#define SIZE "size 00000000000000001234\n"
#define RCPT "rcpt bob@example.org\n"
#define VALID HEAD LIST ROLE SENDER ARRIVAL SIZE RCPT

static void reject(const char *data, size_t len, const char *what)
{
    struct envelope env;
    char err[512];
    size_t consumed = 0;
    int rc;

    memset(err, 'X', sizeof(err));
    rc = parse(data, len, &env, &consumed, err, sizeof(err));
    if (!ok(rc == -1, "rejects %s", what)) {
        diag("rc %d", rc);
        if (rc == 0)
            envelope_free(&env);
        return;
    }
    ok(is_empty(&env) && err[0] != 0 && err[0] != 'X' &&
           memchr(err, 0, sizeof(err)) != NULL,
       "  ... leaving env empty and giving a reason (%.60s)",
       memchr(err, 0, sizeof(err)) ? err : "?");
}

static void accepts(const char *data, size_t len, const char *what,
                    struct envelope *env)
{
    char err[512];
    size_t consumed = 0;
    int rc = parse(data, len, env, &consumed, err, sizeof(err));

    if (!ok(rc == 0 && consumed == len, "accepts %s", what)) {
        diag("rc %d consumed %zu of %zu: %s", rc, consumed, len, err);
        if (rc == 0)
            envelope_free(env);
        envelope_init(env);
    }
}

static void test_accepts(void)
{
    struct envelope env;

    accepts(S(VALID "\n"), "the reference envelope", &env);
    ok(str_eq(env.list, "announce") && env.role == ROLE_POST &&
           str_eq(env.sender, "alice@example.org") &&
           env.arrival_sec == 1732312345 && env.arrival_usec == 123456 &&
           env.size == 1234 && env.nrcpt == 1 &&
           str_eq(env.rcpt[0].addr, "bob@example.org") &&
           env.rcpt[0].extra == NULL && env.attempts == 0 &&
           env.next_attempt == 0 && env.recoveries == 0 &&
           env.last_error == NULL && env.mbox_from == NULL && env.version == 1,
       "the reference envelope's fields");
    envelope_free(&env);

    accepts(S(HEAD "sender \nsize 0\nrole owner\narrival 0.000000\nlist l\n\n"),
            "the null sender, any order, short size", &env);
    ok(str_eq(env.sender, "") && env.size == 0 && env.role == ROLE_OWNER &&
           env.nrcpt == 0,
       "  ... with sender \"\", no recipients");
    envelope_free(&env);

    accepts(S(HEAD LIST ROLE SENDER ARRIVAL SIZE
              "attempts 7\nnext-attempt 1732400000\nrecoveries 2\n"
              "last-error 4.4.1%20connection%20refused\n"
              "mbox-from From%20a@b%20Sat\n\n"),
            "all optional keys", &env);
    ok(env.attempts == 7 && env.next_attempt == 1732400000 &&
           env.recoveries == 2 &&
           str_eq(env.last_error, "4.4.1 connection refused") &&
           str_eq(env.mbox_from, "From a@b Sat"),
       "  ... decoded");
    envelope_free(&env);

    accepts(S(HEAD LIST ROLE "sender %7e%7E%25%c3%A4\n" ARRIVAL SIZE
                             "rcpt a%40b extra text  here \nrcpt c\n\n"),
            "lower- and upper-case %-escapes, recipient extra text", &env);
    ok(str_eq(env.sender, "~~%\xc3\xa4") && env.nrcpt == 2 &&
           str_eq(env.rcpt[0].addr, "a@b") &&
           str_eq(env.rcpt[0].extra, "extra text  here ") &&
           str_eq(env.rcpt[1].addr, "c") && env.rcpt[1].extra == NULL,
       "  ... decoded, extra verbatim");
    envelope_free(&env);

    accepts(S(HEAD "x-new 1 2 3\n" LIST ROLE SENDER ARRIVAL SIZE
                   "future-key \xe4\xff%zz\n" RCPT "z0 \n\n"),
            "unknown keys anywhere", &env);
    is_mem(env.extra.data, env.extra.len,
           S("x-new 1 2 3\nfuture-key \xe4\xff%zz\nz0 \n"),
           "  ... kept verbatim, in order");
    envelope_free(&env);

    accepts(S("MMQ 01\n" LIST ROLE SENDER ARRIVAL SIZE "\n"),
            "version written with a leading zero", &env);
    envelope_free(&env);
}

static void test_rejects(void)
{
    static const char *const single[] = {
        LIST,
        ROLE,
        SENDER,
        ARRIVAL,
        SIZE,
        "attempts 1\n",
        "next-attempt 1\n",
        "recoveries 1\n",
        "last-error x\n",
        "mbox-from x\n",
        "mta-queue-id x\n",
        "member-header X-Member\n",
    };
    struct buf b;
    size_t i;

    buf_init(&b);
    /* Missing required keys. */
    reject(S(HEAD ROLE SENDER ARRIVAL SIZE "\n"), "a missing list");
    reject(S(HEAD LIST SENDER ARRIVAL SIZE "\n"), "a missing role");
    reject(S(HEAD LIST ROLE ARRIVAL SIZE "\n"), "a missing sender");
    reject(S(HEAD LIST ROLE SENDER SIZE "\n"), "a missing arrival");
    reject(S(HEAD LIST ROLE SENDER ARRIVAL "\n"), "a missing size");
    reject(S(HEAD "\n"), "an envelope of nothing but the magic");

    /* Duplicates of every single-valued key. */
    for (i = 0; i < sizeof(single) / sizeof(single[0]); i++) {
        char what[80];

        buf_reset(&b);
        buf_puts(&b, VALID);
        buf_puts(&b, single[i]);
        buf_puts(&b, single[i]);
        buf_puts(&b, "\n");
        snprintf(what, sizeof(what), "a duplicate %.*s key",
                 (int)strcspn(single[i], " "), single[i]);
        reject(b.data, b.len, what);
    }

    /* Magic and version. */
    reject(S("MMQ 2\n" LIST ROLE SENDER ARRIVAL SIZE "\n"), "version 2");
    reject(S("MMQ 1000\n" LIST ROLE SENDER ARRIVAL SIZE "\n"), "version 1000");
    reject(S("MMQ 0\n" LIST ROLE SENDER ARRIVAL SIZE "\n"), "version 0");
    reject(S("MMQ -1\n" LIST ROLE SENDER ARRIVAL SIZE "\n"), "version -1");
    reject(S("MMQ\n" LIST ROLE SENDER ARRIVAL SIZE "\n"), "magic without "
                                                          "version");
    reject(S("MMQ1\n" LIST ROLE SENDER ARRIVAL SIZE "\n"), "magic \"MMQ1\"");
    reject(S("mmq 1\n" LIST ROLE SENDER ARRIVAL SIZE "\n"), "magic \"mmq 1\"");
    reject(S("MMQ  1\n" LIST ROLE SENDER ARRIVAL SIZE "\n"), "magic with two "
                                                             "spaces");
    reject(S("MMQ 1 \n" LIST ROLE SENDER ARRIVAL SIZE "\n"), "magic with a "
                                                             "trailing space");
    reject(S("MMQ 1\r\n" LIST ROLE SENDER ARRIVAL SIZE "\n"), "magic with CR");
    reject(S("XMQ 1\n" LIST ROLE SENDER ARRIVAL SIZE "\n"), "magic \"XMQ 1\"");
    reject(S("\n" LIST ROLE SENDER ARRIVAL SIZE "\n"), "an empty first line");
    reject(S(LIST ROLE SENDER ARRIVAL SIZE "\n"), "no magic line at all");
    reject(S("MMQ 1\0\n" LIST ROLE SENDER ARRIVAL SIZE "\n"), "NUL in magic");
    reject(S("MMQ 18446744073709551617\n" LIST ROLE SENDER ARRIVAL SIZE "\n"),
           "an overflowing version");

    /* Numbers. */
    reject(S(HEAD LIST ROLE SENDER "arrival 1732312345\n" SIZE "\n"),
           "arrival without a dot");
    reject(S(HEAD LIST ROLE SENDER "arrival 1732312345.12345\n" SIZE "\n"),
           "arrival with 5 microsecond digits");
    reject(S(HEAD LIST ROLE SENDER "arrival 1732312345.1234567\n" SIZE "\n"),
           "arrival with 7 microsecond digits");
    reject(S(HEAD LIST ROLE SENDER "arrival .123456\n" SIZE "\n"),
           "arrival without seconds");
    reject(S(HEAD LIST ROLE SENDER "arrival -1.123456\n" SIZE "\n"),
           "a negative arrival");
    reject(S(HEAD LIST ROLE SENDER "arrival +1.123456\n" SIZE "\n"),
           "arrival with a plus sign");
    reject(S(HEAD LIST ROLE SENDER "arrival 1.12345x\n" SIZE "\n"),
           "arrival with a letter");
    reject(S(HEAD LIST ROLE SENDER "arrival 1.123.456\n" SIZE "\n"),
           "arrival with two dots");
    reject(S(HEAD LIST ROLE SENDER "arrival 99999999999999999999.000000\n" SIZE
                                   "\n"),
           "an overflowing arrival");
    reject(S(HEAD LIST ROLE SENDER "arrival \n" SIZE "\n"), "an empty arrival");
    reject(S(HEAD LIST ROLE SENDER ARRIVAL "size -5\n\n"), "a negative size");
    reject(S(HEAD LIST ROLE SENDER ARRIVAL "size 12a\n\n"), "a size with a "
                                                            "letter");
    reject(S(HEAD LIST ROLE SENDER ARRIVAL "size 0x10\n\n"), "a hex size");
    reject(S(HEAD LIST ROLE SENDER ARRIVAL "size \n\n"), "an empty size");
    reject(S(HEAD LIST ROLE SENDER ARRIVAL "size 1 \n\n"),
           "a size with a trailing space");
    reject(S(HEAD LIST ROLE SENDER ARRIVAL "size  1\n\n"),
           "a size with a leading space");
    reject(S(HEAD LIST ROLE SENDER ARRIVAL "size 000000000000000000001\n\n"),
           "a size of 21 digits");
    reject(S(HEAD LIST ROLE SENDER ARRIVAL "size 18446744073709551616\n\n"),
           "a size of 2^64");
    reject(S(HEAD LIST ROLE SENDER ARRIVAL "size 9223372036854775807\n\n"),
           "a size of INT64_MAX (above the INT64_MAX/2 limit)");
    reject(S(VALID "attempts -1\n\n"), "negative attempts");
    reject(S(VALID "attempts 1000001\n\n"), "attempts above 1000000");
    reject(S(VALID "attempts 4294967297\n\n"), "attempts that wrap an int");
    reject(S(VALID "attempts\n\n"), "attempts without a value");
    reject(S(VALID "recoveries 1000001\n\n"), "recoveries above 1000000");
    reject(S(VALID "recoveries 1e3\n\n"), "recoveries 1e3");
    reject(S(VALID "next-attempt 9223372036854775807\n\n"),
           "next-attempt above INT64_MAX/2");
    reject(S(VALID "next-attempt -1\n\n"), "a negative next-attempt");

    /* Roles. */
    reject(S(HEAD LIST "role POST\n" SENDER ARRIVAL SIZE "\n"), "role POST");
    reject(S(HEAD LIST "role poster\n" SENDER ARRIVAL SIZE "\n"),
           "role poster");
    reject(S(HEAD LIST "role \n" SENDER ARRIVAL SIZE "\n"), "an empty role");
    reject(S(HEAD LIST "role bounce\n" SENDER ARRIVAL SIZE "\n"),
           "role bounce");
    reject(S(HEAD LIST "role post post\n" SENDER ARRIVAL SIZE "\n"),
           "role with two words");
    reject(
        S(HEAD LIST "role postpostpostpostpostpost\n" SENDER ARRIVAL SIZE "\n"),
        "a long role");

    /* Escapes and raw bytes in values. */
    reject(S(HEAD LIST ROLE "sender a%00b\n" ARRIVAL SIZE "\n"), "%00");
    reject(S(HEAD LIST ROLE "sender ab%\n" ARRIVAL SIZE "\n"), "a lone %");
    reject(S(HEAD LIST ROLE "sender ab%4\n" ARRIVAL SIZE "\n"),
           "% with one digit at the end");
    reject(S(HEAD LIST ROLE "sender %4\n" ARRIVAL SIZE "\n"),
           "a value of % and one digit");
    reject(S(HEAD LIST ROLE "sender a%G1\n" ARRIVAL SIZE "\n"), "%G1");
    reject(S(HEAD LIST ROLE "sender a%1g\n" ARRIVAL SIZE "\n"), "%1g");
    reject(S(HEAD LIST ROLE "sender a%%41\n" ARRIVAL SIZE "\n"), "%%");
    reject(S(HEAD LIST ROLE "sender a% 1\n" ARRIVAL SIZE "\n"), "% space");
    reject(S(HEAD LIST ROLE "sender a%-1\n" ARRIVAL SIZE "\n"), "%-1");
    reject(S(HEAD LIST ROLE "sender a b\n" ARRIVAL SIZE "\n"),
           "a raw space in a value");
    reject(S(HEAD LIST ROLE "sender a\tb\n" ARRIVAL SIZE "\n"),
           "a raw tab in a value");
    reject(S(HEAD LIST ROLE "sender a\xe4"
                            "b\n" ARRIVAL SIZE "\n"),
           "a raw 8-bit byte in a value");
    reject(S(HEAD LIST ROLE "sender a\x7f\n" ARRIVAL SIZE "\n"),
           "a raw DEL in a value");
    reject(S(HEAD "list a%00\n" ROLE SENDER ARRIVAL SIZE "\n"),
           "%00 in the list");
    reject(S(VALID "last-error a%0\n\n"), "a bad escape in last-error");
    reject(S(VALID "mbox-from a%zz\n\n"), "a bad escape in mbox-from");
    reject(S(VALID "rcpt a%00b\n\n"), "%00 in a recipient");
    reject(S(VALID "rcpt a%ZZ extra\n\n"), "a bad escape in a recipient");
    reject(S(VALID "rcpt a\xff\n\n"), "a raw 8-bit byte in a recipient");

    /* Control characters and line structure. */
    reject(S(HEAD LIST ROLE "sender a\0b\n" ARRIVAL SIZE "\n"),
           "NUL in a value");
    reject(S(VALID "x-unknown a\0b\n\n"), "NUL in an unknown line");
    reject(S(VALID "rcpt a extra\0text\n\n"), "NUL in a recipient's extra");
    reject(S(HEAD LIST ROLE SENDER "arrival 1.000000\r\n" SIZE "\n"),
           "CRLF line ends");
    reject(S(VALID "x-unknown a\rb\n\n"), "CR in an unknown line");
    reject(S(VALID "\r\n\n"), "a line of only CR");
    reject(S(VALID "list\n\n"), "a line without a space");
    reject(S(VALID "List x\n\n"), "an upper-case key");
    reject(S(VALID "1ist x\n\n"), "a key starting with a digit");
    reject(S(VALID "-x x\n\n"), "a key starting with a dash");
    reject(S(VALID "li_st x\n\n"), "a key with an underscore");
    reject(S(VALID " list x\n\n"), "a line starting with a space");
    reject(S(VALID "\xe4 x\n\n"), "an 8-bit key");
    /* Keys: at most 64 characters. */
    for (i = 64; i <= 65; i++) {
        struct envelope env;

        buf_reset(&b);
        buf_puts(&b, VALID "k");
        while (b.len < strlen(VALID) + i)
            buf_append(&b, "-", 1);
        buf_puts(&b, " v\n\n");
        if (i == 64) {
            accepts(b.data, b.len, "an unknown key of 64 characters", &env);
            envelope_free(&env);
        } else {
            reject(b.data, b.len, "a key of 65 characters");
        }
    }
    reject(S(VALID "MMQ 1\n\n"), "a second magic line");
    buf_free(&b);
}

/* Bounds on line length and total size. */
static void test_bounds(void)
{
    struct envelope env;
    struct buf b;
    char err[256];
    size_t consumed = 0, i;
    int rc;

    /* A line of exactly ENVELOPE_MAX_LINE bytes is accepted ... */
    buf_init(&b);
    buf_puts(&b, VALID "x-long ");
    while (b.len - strlen(VALID) < ENVELOPE_MAX_LINE)
        buf_append(&b, "y", 1);
    buf_puts(&b, "\n\n");
    accepts(b.data, b.len, "a line of ENVELOPE_MAX_LINE bytes", &env);
    envelope_free(&env);

    /* ... one byte more is not, with or without its LF present yet. */
    buf_reset(&b);
    buf_puts(&b, VALID "x-long ");
    while (b.len - strlen(VALID) < ENVELOPE_MAX_LINE + 1)
        buf_append(&b, "y", 1);
    reject(b.data, b.len, "a line of ENVELOPE_MAX_LINE+1 bytes, no LF yet");
    buf_puts(&b, "\n\n");
    reject(b.data, b.len, "a line of ENVELOPE_MAX_LINE+1 bytes");

    /* Total size: complete lines adding up to more than ENVELOPE_MAX_BYTES. */
    buf_reset(&b);
    if (buf_reserve(&b, ENVELOPE_MAX_BYTES + ENVELOPE_MAX_LINE))
        bail_out("out of memory");
    buf_puts(&b, VALID);
    for (i = 0; b.len <= ENVELOPE_MAX_BYTES; i++) {
        buf_printf(&b, "x-pad%zu ", i);
        while (b.len % (ENVELOPE_MAX_LINE / 2) != 0)
            buf_append(&b, "p", 1);
        buf_append(&b, "\n", 1);
    }
    {
        size_t without_end = b.len;

        reject(b.data, without_end,
               "more than ENVELOPE_MAX_BYTES without the empty line");
        buf_puts(&b, "\n");
        rc = parse(b.data, b.len, &env, &consumed, err, sizeof(err));
        if (!ok(rc == -1,
                "rejects a complete envelope of %zu bytes (more "
                "than ENVELOPE_MAX_BYTES)",
                b.len))
            diag("rc %d, consumed %zu", rc, consumed);
        if (rc == 0)
            envelope_free(&env);
    }
    buf_free(&b);
}

/* Every proper prefix of a valid envelope asks for more data. */
static void test_truncated(void)
{
    static const char full[] =
        VALID "attempts 3\nlast-error a%20b\nx-unknown z\nrcpt c extra\n\n";
    struct envelope env;
    char err[256];
    size_t len, consumed, bad = 0;

    for (len = 0; len < sizeof(full) - 1; len++) {
        int rc = parse(full, len, &env, &consumed, err, sizeof(err));

        if (rc != 1 || !is_empty(&env)) {
            if (!bad)
                diag("prefix of %zu bytes: rc %d", len, rc);
            bad++;
            if (rc == 0)
                envelope_free(&env);
        }
    }
    ok(bad == 0, "all %zu proper prefixes return 1 (need more) with env empty",
       sizeof(full) - 1);
    accepts(full, sizeof(full) - 1, "the whole of it", &env);
    envelope_free(&env);
}

static void test_api(void)
{
    struct envelope env;
    struct buf b;
    enum mmq_role r = ROLE_POST;

    buf_init(&b);
    envelope_encode(&b, "a b%\xff\r\n~!");
    is_str(b.data, "a%20b%25%FF%0D%0A~!", "envelope_encode");

    ok(role_parse("bounces", &r) == 0 && r == ROLE_BOUNCES &&
           role_parse("request", &r) == 0 && r == ROLE_REQUEST &&
           role_parse("Post", &r) == -1 && role_parse("", &r) == -1,
       "role_parse");
    is_str(role_name(ROLE_OWNER), "owner", "role_name");

    base_env(&env);
    envelope_add_rcpt(&env, "r1", "x");
    envelope_add_rcpt(&env, "r2", NULL);
    envelope_add_rcpt(&env, "r3", NULL);
    envelope_remove_rcpt(&env, 1);
    envelope_remove_rcpt(&env, 99);
    ok(env.nrcpt == 3 && str_eq(env.rcpt[0].addr, "bob@example.org") &&
           str_eq(env.rcpt[1].addr, "r2") && str_eq(env.rcpt[2].addr, "r3"),
       "envelope_remove_rcpt keeps the order of the others");
    envelope_set(&env.last_error, "x");
    envelope_set(&env.last_error, NULL);
    ok(env.last_error == NULL, "envelope_set(NULL) clears");
    envelope_free(&env);
    ok(is_empty(&env), "envelope_free leaves the init state");

    envelope_init(&env);
    buf_reset(&b);
    ok(envelope_format(&env, &b, NULL) == -1, "envelope_format refuses a NULL "
                                              "list");
    buf_free(&b);
}

/* ---------------------------------------------------------- envelope_read */

static char tmpdir[] = "/tmp/mmq-envelope-test.XXXXXX";

static int write_file(const char *path, const char *data, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

    if (fd < 0 || write(fd, data, len) != (ssize_t)len) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return fd;
}

static int read_entry(const char *data, size_t len, struct envelope *env,
                      off_t *body_off, char *err, size_t errlen, int *e)
{
    char path[sizeof(tmpdir) + 16];
    int fd, rc;

    snprintf(path, sizeof(path), "%s/entry", tmpdir);
    if ((fd = write_file(path, data, len)) < 0)
        bail_out("cannot write %s", path);
    close(fd);
    fd = open(path, O_RDONLY);
    if (fd < 0)
        bail_out("cannot open %s", path);
    /* Move the file offset: envelope_read must not depend on it. */
    lseek(fd, 7, SEEK_SET);
    errno = 0;
    err[0] = 0;
    rc = envelope_read(fd, env, body_off, err, errlen);
    *e = errno;
    if (lseek(fd, 0, SEEK_CUR) != 7)
        diag("envelope_read moved the file offset");
    close(fd);
    unlink(path);
    return rc;
}

static void test_read(void)
{
    struct envelope env, got;
    struct buf b;
    off_t body_off = -1;
    char err[512];
    size_t envlen, i;
    int e, rc;

    if (!mkdtemp(tmpdir))
        bail_out("mkdtemp: %s", strerror(errno));

    /* Exact size. */
    buf_init(&b);
    base_env(&env);
    env.size = 11;
    envelope_format(&env, &b, NULL);
    envlen = b.len;
    buf_puts(&b, "hello\nworld");
    rc = read_entry(b.data, b.len, &got, &body_off, err, sizeof(err), &e);
    ok(rc == 0 && body_off == (off_t)envlen && env_equal(&env, &got),
       "envelope_read: size matches, body offset right");
    if (rc == 0)
        envelope_free(&got);
    else
        diag("%s", err);

    /* One byte too many, one too few, no message at all. */
    buf_puts(&b, "!");
    rc = read_entry(b.data, b.len, &got, &body_off, err, sizeof(err), &e);
    ok(rc == -1 && e == EINVAL && err[0] && is_empty(&got),
       "envelope_read: one message byte too many is detected (%s)", err);
    rc = read_entry(b.data, b.len - 2, &got, &body_off, err, sizeof(err), &e);
    ok(rc == -1 && e == EINVAL && err[0] && is_empty(&got),
       "envelope_read: one message byte too few is detected (%s)", err);
    rc = read_entry(b.data, envlen, &got, &body_off, err, sizeof(err), &e);
    ok(rc == -1 && e == EINVAL, "envelope_read: missing message detected");

    /* Truncated inside the envelope, and an empty file. */
    rc = read_entry(b.data, envlen - 1, &got, &body_off, err, sizeof(err), &e);
    ok(rc == -1 && e == EINVAL && err[0] && is_empty(&got),
       "envelope_read: a truncated envelope is detected (%s)", err);
    rc = read_entry("", 0, &got, &body_off, err, sizeof(err), &e);
    ok(rc == -1 && e == EINVAL, "envelope_read: an empty file is refused");
    rc = read_entry(S("MMQ 7\nlist x\n\nbody"), &got, &body_off, err,
                    sizeof(err), &e);
    ok(rc == -1 && e == EINVAL && err[0],
       "envelope_read: a malformed envelope is refused (%s)", err);
    envelope_free(&env);

    /* An envelope larger than one read (64 KiB): many recipients. */
    base_env(&env);
    for (i = 0; i < 10000; i++) {
        char addr[64];

        snprintf(addr, sizeof(addr), "recipient-number-%06zu@example.org", i);
        envelope_add_rcpt(&env, addr, NULL);
    }
    env.size = 100000;
    buf_reset(&b);
    envelope_format(&env, &b, NULL);
    envlen = b.len;
    for (i = 0; i < 100000; i++)
        buf_append(&b, "\n", 1); /* a message of empty lines */
    rc = read_entry(b.data, b.len, &got, &body_off, err, sizeof(err), &e);
    ok(rc == 0 && body_off == (off_t)envlen && env_equal(&env, &got),
       "envelope_read: a %zu-byte envelope over several reads", envlen);
    if (rc == 0)
        envelope_free(&got);
    else
        diag("%s", err);
    envelope_free(&env);
    buf_free(&b);

    /* A descriptor that cannot be read. */
    errno = 0;
    rc = envelope_read(-1, &got, &body_off, err, sizeof(err));
    ok(rc == -1 && errno == EBADF, "envelope_read on a bad descriptor: EBADF");
    rmdir(tmpdir);
}

/* ----------------------------------------------------------------- fuzz */

static const unsigned char interesting[] = {
    '\n', ' ',  '%',  '0',  '9', 'a', 'f', 'F', 'G', '.', '-',  '\0', '\r',
    '\t', 0x7f, 0x80, 0xff, 'z', '1', '@', '#', 'M', 'Q', '\n', ' ',  '%'};

static void mutate(struct buf *b, const struct buf *seed)
{
    int ops = 1 + (int)rnd_below(4), k;

    buf_reset(b);
    buf_append(b, seed->data, seed->len);
    for (k = 0; k < ops; k++) {
        size_t pos = rnd_below(b->len + 1);
        unsigned char c = rnd_below(2)
                              ? interesting[rnd_below(sizeof(interesting))]
                              : (unsigned char)rnd();

        switch (rnd_below(7)) {
        case 0: /* overwrite */
            if (pos < b->len)
                b->data[pos] = (char)c;
            break;
        case 1: /* insert */
            buf_append(b, "", 1);
            memmove(b->data + pos + 1, b->data + pos, b->len - 1 - pos);
            b->data[pos] = (char)c;
            break;
        case 2: /* delete */
            if (pos < b->len) {
                memmove(b->data + pos, b->data + pos + 1, b->len - pos - 1);
                b->len--;
            }
            break;
        case 3: /* truncate */
            b->len = pos;
            break;
        case 4: { /* duplicate a chunk (repeats lines, keys) */
            size_t n = rnd_below(64), at = rnd_below(b->len + 1);
            char tmp[64];

            if (pos + n > b->len)
                n = b->len - pos;
            memcpy(tmp, b->data + pos, n);
            buf_append(b, tmp, n); /* grow by n */
            memmove(b->data + at + n, b->data + at, b->len - n - at);
            memcpy(b->data + at, tmp, n);
            break;
        }
        case 5: /* flip a bit */
            if (pos < b->len)
                b->data[pos] ^= (char)(1 << rnd_below(8));
            break;
        default: /* insert a run of digits (numbers, escapes) */
        {
            size_t n = 1 + rnd_below(24), j;
            for (j = 0; j < n; j++) {
                buf_append(b, "", 1);
                memmove(b->data + pos + 1, b->data + pos, b->len - 1 - pos);
                b->data[pos] = (char)('0' + rnd_below(10));
            }
            break;
        }
        }
    }
}

static void test_fuzz(void)
{
    struct envelope env, again;
    struct buf seed, in, out;
    char err[256];
    size_t consumed, i;
    unsigned long counts[3] = {0, 0, 0}, bad_rc = 0, bad_state = 0,
                  bad_stable = 0;

    base_env(&env);
    envelope_set(&env.last_error, "4.4.1 connection refused %");
    envelope_set(&env.mbox_from, "From a@b Sat Nov 23");
    envelope_add_rcpt(&env, "c@d", "extra text");
    env.attempts = 3;
    env.next_attempt = 1732400000;
    env.recoveries = 1;
    buf_puts(&env.extra, "x-future v\n");
    buf_init(&seed);
    buf_init(&in);
    buf_init(&out);
    envelope_format(&env, &seed, NULL);
    buf_puts(&seed, "message\n");
    envelope_free(&env);

    for (i = 0; i < FUZZ_ITERATIONS; i++) {
        int rc;

        mutate(&in, &seed);
        memset(err, 'X', sizeof(err));
        rc = parse(in.data, in.len, &env, &consumed, err, sizeof(err));
        if (rc < -1 || rc > 1) {
            if (!bad_rc++)
                diag("iteration %zu: rc %d", i, rc);
            continue;
        }
        counts[rc + 1]++;
        if (rc != 0) {
            if (!is_empty(&env) ||
                (rc == -1 && (!memchr(err, 0, sizeof(err)) || !err[0]))) {
                if (!bad_state++)
                    diag("iteration %zu: rc %d left state or no reason", i, rc);
            }
            continue;
        }
        /* Accepted: the envelope ends in an empty line within the input,
         * and writing it out and reading it back is stable. */
        buf_reset(&out);
        if (consumed < 2 || consumed > in.len ||
            in.data[consumed - 1] != '\n' || in.data[consumed - 2] != '\n' ||
            envelope_format(&env, &out, NULL) != 0 ||
            parse(out.data, out.len, &again, &consumed, err, sizeof(err)) !=
                0) {
            if (!bad_stable++)
                diag("iteration %zu: accepted input not stable", i);
        } else {
            if (!env_equal(&env, &again) && !bad_stable++)
                diag("iteration %zu: reparsed envelope differs", i);
            envelope_free(&again);
        }
        envelope_free(&env);
    }
    diag("fuzz: %lu rejected, %lu accepted, %lu incomplete", counts[0],
         counts[1], counts[2]);
    is_int((long long)bad_rc, 0, "fuzz: envelope_parse returns -1, 0 or 1");
    is_int((long long)bad_state, 0,
           "fuzz: on failure env is empty and -1 comes with a reason");
    is_int((long long)bad_stable, 0,
           "fuzz: accepted mutants format and parse back to the same");
    ok(counts[0] > 1000 && counts[1] > 1000 && counts[2] > 1000,
       "fuzz: the mutations reach all three outcomes");
    buf_free(&seed);
    buf_free(&in);
    buf_free(&out);
}

int main(void)
{
    test_round_trips();
    test_unwritable_value();
    test_accepts();
    test_rejects();
    test_bounds();
    test_truncated();
    test_api();
    test_read();
    test_fuzz();
    return done_testing();
}
