/*
 * slice - cutting the hash space into n contiguous slices.
 *
 * An entry's key is the first 64 bits (16 hex digits) of the SHA-1 digest
 * in its name.  Slice i of n owns the keys k with floor(k * n / 2^64) == i,
 * that is the range [ceil(i * 2^64 / n), ceil((i+1) * 2^64 / n)).  These
 * ranges are contiguous, disjoint and cover every key for any n >= 1, and
 * the key of a file never changes, so changing n moves no file: it only
 * changes which runner looks at it.
 *
 * On disk an entry lives in the bucket directory named by the first two hex
 * digits of its digest (256 buckets, "00".."ff").  A runner lists only the
 * buckets that overlap its slice (slice_buckets()), so the cost of a scan
 * is proportional to the slice, not to the queue.
 *
 * A slice set (which slices a runner serves) is written like "0-3,5,9-10"
 * and parsed by slice_set_parse().  No function here allocates except
 * slice_set_parse(), whose result slice_set_free() releases.
 */
#ifndef MMQ_SLICE_H
#define MMQ_SLICE_H

#include <stddef.h>
#include <stdint.h>

#define SLICE_BUCKETS 256

/* Key of a 40-hex-digit digest (at least 16 valid hex digits); 0 if bad. */
int slice_key(const char *hex, uint64_t *key);
unsigned slice_of(uint64_t key, unsigned n);
/* Smallest key of slice i (i < n). */
uint64_t slice_lower(unsigned i, unsigned n);
/* Largest key of slice i (i < n). */
uint64_t slice_upper(unsigned i, unsigned n);
/* Bucket of a key: its top 8 bits. */
unsigned slice_bucket(uint64_t key);
/* First and last bucket overlapping slice i of n. */
void slice_buckets(unsigned i, unsigned n, unsigned *first, unsigned *last);

struct slice_set {
    unsigned n;        /* total slices */
    unsigned char *on; /* on[i] != 0: slice i is in the set */
};

/*
 * Parse "all", "none" or a list like "0-3,5" for n slices.  -1 with a reason in
 * err on a syntax error or a slice >= n.
 */
int slice_set_parse(const char *spec, unsigned n, struct slice_set *set,
                    char *err, unsigned errlen);
int slice_set_all(unsigned n, struct slice_set *set);
int slice_set_has(const struct slice_set *set, uint64_t key);
void slice_set_free(struct slice_set *set);
/* The set written back as "0-3,5" ("none" when empty) into out, cut at
 * outlen - 1 bytes; returns out. */
char *slice_set_format(const struct slice_set *set, char *out, size_t outlen);

#endif
