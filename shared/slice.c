/*
 * slice - hash-space slicing.  See slice.h for the arithmetic and its
 * promises; t/unit/slice_test.c checks them for n = 1..64.
 */
#include "autoconf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "slice.h"

typedef unsigned __int128 u128;

int slice_key(const char *hex, uint64_t *key)
{
    uint64_t k = 0;
    int i;

    for (i = 0; i < 16; i++) {
        char c = hex[i];
        unsigned v;

        if (c >= '0' && c <= '9')
            v = (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v = (unsigned)(c - 'a' + 10);
        else
            return -1; /* also stops at a NUL: never reads past it */
        k = k << 4 | v;
    }
    *key = k;
    return 0;
}

unsigned slice_of(uint64_t key, unsigned n)
{
    return (unsigned)(((u128)key * n) >> 64);
}

/* ceil(i * 2^64 / n) as a 128-bit value (2^64 for i == n). */
static u128 lower128(unsigned i, unsigned n)
{
    return (((u128)i << 64) + n - 1) / n;
}

uint64_t slice_lower(unsigned i, unsigned n)
{
    return (uint64_t)lower128(i, n);
}

uint64_t slice_upper(unsigned i, unsigned n)
{
    return (uint64_t)(lower128(i + 1, n) - 1);
}

unsigned slice_bucket(uint64_t key)
{
    return (unsigned)(key >> 56);
}

void slice_buckets(unsigned i, unsigned n, unsigned *first, unsigned *last)
{
    *first = slice_bucket(slice_lower(i, n));
    *last = slice_bucket(slice_upper(i, n));
}

int slice_set_all(unsigned n, struct slice_set *set)
{
    set->n = n;
    if (!(set->on = malloc(n ? n : 1)))
        return -1;
    memset(set->on, 1, n);
    return 0;
}

static int parse_num(const char **p, unsigned *v)
{
    unsigned long x = 0;
    const char *s = *p;

    if (*s < '0' || *s > '9')
        return -1;
    while (*s >= '0' && *s <= '9') {
        x = x * 10 + (unsigned long)(*s - '0');
        if (x > 1000000)
            return -1;
        s++;
    }
    *v = (unsigned)x;
    *p = s;
    return 0;
}

int slice_set_parse(const char *spec, unsigned n, struct slice_set *set,
                    char *err, unsigned errlen)
{
    const char *p = spec;

    if (strcmp(spec, "all") == 0)
        return slice_set_all(n, set);
    set->n = n;
    if (!(set->on = calloc(n ? n : 1, 1))) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (strcmp(spec, "none") == 0)
        return 0;
    for (;;) {
        unsigned a, b, i;

        if (parse_num(&p, &a))
            goto bad;
        b = a;
        if (*p == '-') {
            p++;
            if (parse_num(&p, &b))
                goto bad;
        }
        if (b < a || b >= n) {
            snprintf(err, errlen, "slice set \"%s\": %u-%u is not within 0-%u",
                     spec, a, b, n - 1);
            slice_set_free(set);
            return -1;
        }
        for (i = a; i <= b; i++)
            set->on[i] = 1;
        if (*p == 0)
            return 0;
        if (*p++ != ',')
            goto bad;
    }
bad:
    snprintf(err, errlen,
             "slice set \"%s\": expected \"all\", \"none\" or a list like 0-3,5", spec);
    slice_set_free(set);
    return -1;
}

int slice_set_has(const struct slice_set *set, uint64_t key)
{
    return set->on[slice_of(key, set->n)] != 0;
}

void slice_set_free(struct slice_set *set)
{
    free(set->on);
    set->on = NULL;
    set->n = 0;
}

char *slice_set_format(const struct slice_set *set, char *out, size_t outlen)
{
    size_t len = 0;
    unsigned i, j;

    if (outlen == 0)
        return out;
    out[0] = 0;
    for (i = 0; i < set->n; i = j) {
        int m;

        if (!set->on[i]) {
            j = i + 1;
            continue;
        }
        for (j = i; j < set->n && set->on[j]; j++)
            ;
        m = j - 1 == i
                ? snprintf(out + len, outlen - len, "%s%u", len ? "," : "", i)
                : snprintf(out + len, outlen - len, "%s%u-%u", len ? "," : "",
                           i, j - 1);
        if (m < 0 || (size_t)m >= outlen - len)
            return out; /* cut */
        len += (size_t)m;
    }
    if (len == 0)
        snprintf(out, outlen, "none");
    return out;
}
