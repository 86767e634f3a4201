/*
 * envelope - format and parse the spool entry envelope.  See envelope.h
 * and mmq-spool(5).  The parser is written for hostile input: it never
 * reads past len, bounds every line and count, and rejects rather than
 * guesses.
 */
#include "autoconf.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "envelope.h"

#define ENVELOPE_MAX_RCPT 10000000

static const char *const roles[] = {"post",    "bounces", "owner",  "request",
                                     "join",    "leave",   "confirm"};

const char *role_name(enum mmq_role role)
{
    if ((unsigned)role < sizeof(roles) / sizeof(roles[0]))
        return roles[role];
    return "?";
}

int role_parse(const char *s, enum mmq_role *role)
{
    unsigned i;

    for (i = 0; i < sizeof(roles) / sizeof(roles[0]); i++)
        if (strcmp(s, roles[i]) == 0) {
            *role = (enum mmq_role)i;
            return 0;
        }
    return -1;
}

void envelope_init(struct envelope *env)
{
    memset(env, 0, sizeof(*env));
    env->version = ENVELOPE_VERSION;
    buf_init(&env->extra);
}

int64_t envelope_life_start(const struct envelope *env)
{
    return env->arrival_sec + env->held;
}

void envelope_free(struct envelope *env)
{
    size_t i;

    free(env->list);
    free(env->sender);
    free(env->last_error);
    free(env->mbox_from);
    free(env->mta_queue_id);
    free(env->member_header);
    for (i = 0; i < env->nrcpt; i++) {
        free(env->rcpt[i].addr);
        free(env->rcpt[i].extra);
    }
    free(env->rcpt);
    buf_free(&env->extra);
    envelope_init(env);
}

int envelope_set(char **field, const char *value)
{
    char *copy = NULL;

    if (value && !(copy = strdup(value)))
        return -1;
    free(*field);
    *field = copy;
    return 0;
}

int envelope_add_rcpt(struct envelope *env, const char *addr, const char *extra)
{
    struct envelope_rcpt r = {NULL, NULL};

    if (env->nrcpt >= ENVELOPE_MAX_RCPT)
        return -1;
    if (env->nrcpt == env->rcpt_cap) {
        size_t cap = env->rcpt_cap ? env->rcpt_cap * 2 : 8;
        struct envelope_rcpt *p = realloc(env->rcpt, cap * sizeof(*p));
        if (!p)
            return -1;
        env->rcpt = p;
        env->rcpt_cap = cap;
    }
    if (!(r.addr = strdup(addr)) || (extra && !(r.extra = strdup(extra)))) {
        free(r.addr);
        return -1;
    }
    env->rcpt[env->nrcpt++] = r;
    return 0;
}

void envelope_remove_rcpt(struct envelope *env, size_t i)
{
    if (i >= env->nrcpt)
        return;
    free(env->rcpt[i].addr);
    free(env->rcpt[i].extra);
    memmove(&env->rcpt[i], &env->rcpt[i + 1],
            (env->nrcpt - i - 1) * sizeof(env->rcpt[0]));
    env->nrcpt--;
}

/* ---------------------------------------------------------------- format */

static int must_encode(unsigned char c)
{
    return c < 0x21 || c > 0x7e || c == '%';
}

int envelope_encode(struct buf *out, const char *value)
{
    static const char hex[] = "0123456789ABCDEF";
    const unsigned char *p;
    size_t n = 0;
    char *w;

    for (p = (const unsigned char *)value; *p; p++)
        n += must_encode(*p) ? 3 : 1;
    if (buf_reserve(out, n) != 0)
        return -1;
    w = out->data + out->len;
    for (p = (const unsigned char *)value; *p; p++) {
        if (must_encode(*p)) {
            *w++ = '%';
            *w++ = hex[*p >> 4];
            *w++ = hex[*p & 15];
        } else {
            *w++ = (char)*p;
        }
    }
    out->len += n;
    out->data[out->len] = 0;
    return 0;
}

static int put_kv(struct buf *out, const char *key, const char *value)
{
    if (buf_puts(out, key) || buf_append(out, " ", 1) ||
        envelope_encode(out, value) || buf_append(out, "\n", 1))
        return -1;
    return 0;
}

int envelope_format(const struct envelope *env, struct buf *out,
                    size_t *size_off)
{
    size_t i, start = out->len;
    const char *p, *nl, *end;

    if (!env->list || env->size < 0)
        return -1;
    if (buf_printf(out, "MMQ %d\n", ENVELOPE_VERSION) ||
        put_kv(out, "list", env->list) ||
        put_kv(out, "role", role_name(env->role)) ||
        put_kv(out, "sender", env->sender ? env->sender : "") ||
        buf_printf(out, "arrival %" PRId64 ".%06" PRId32 "\n", env->arrival_sec,
                   env->arrival_usec) ||
        buf_printf(out,
                   "attempts %d\nnext-attempt %" PRId64 "\nrecoveries %d\n",
                   env->attempts, env->next_attempt, env->recoveries))
        return -1;
    if (env->last_error && put_kv(out, "last-error", env->last_error))
        return -1;
    if (env->mbox_from && put_kv(out, "mbox-from", env->mbox_from))
        return -1;
    if (env->mta_queue_id && put_kv(out, "mta-queue-id", env->mta_queue_id))
        return -1;
    if (env->member_header && put_kv(out, "member-header", env->member_header))
        return -1;
    /* flags: written only when set, so common entries stay short */
    if ((env->verp && buf_printf(out, "verp %d\n", env->verp)) ||
        (env->approved && buf_printf(out, "approved %d\n", env->approved)) ||
        (env->expanded && buf_printf(out, "expanded %d\n", env->expanded)) ||
        (env->held && buf_printf(out, "held %" PRId64 "\n", env->held)))
        return -1;
    if (buf_puts(out, "size "))
        return -1;
    if (size_off)
        *size_off = out->len;
    if (buf_printf(out, "%0*" PRId64 "\n", ENVELOPE_SIZE_DIGITS, env->size))
        return -1;
    for (i = 0; i < env->nrcpt; i++) {
        if (buf_puts(out, "rcpt ") || envelope_encode(out, env->rcpt[i].addr))
            return -1;
        if (env->rcpt[i].extra &&
            (buf_append(out, " ", 1) || buf_puts(out, env->rcpt[i].extra)))
            return -1;
        if (buf_append(out, "\n", 1))
            return -1;
    }
    if (buf_append(out, env->extra.data ? env->extra.data : "",
                   env->extra.len) ||
        buf_append(out, "\n", 1))
        return -1;
    /* Never write what envelope_parse() would refuse to read back. */
    end = out->data + out->len;
    for (p = out->data + start; p < end; p = nl + 1)
        if (!(nl = memchr(p, '\n', (size_t)(end - p))) ||
            (size_t)(nl - p) > ENVELOPE_MAX_LINE ||
            out->len - start > ENVELOPE_MAX_BYTES) {
            out->len = start;
            out->data[start] = 0;
            return -1;
        }
    return 0;
}

/* ----------------------------------------------------------------- parse */

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* Decode p[0..n) into a new string; NULL if malformed (or out of memory). */
static char *decode(const char *p, size_t n)
{
    char *out = malloc(n + 1), *w = out;
    size_t i;

    if (!out)
        return NULL;
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c == '%') {
            int hi, lo;
            if (i + 2 >= n) /* needs two hex digits after '%' */
                goto bad;
            hi = hexval(p[i + 1]);
            lo = hexval(p[i + 2]);
            if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
                goto bad;
            *w++ = (char)(hi << 4 | lo);
            i += 2;
        } else if (c < 0x21 || c > 0x7e) {
            goto bad;
        } else {
            *w++ = (char)c;
        }
    }
    *w = 0;
    return out;
bad:
    free(out);
    return NULL;
}

/* Strict unsigned decimal of p[0..n) into *v, at most max. */
static int parse_u64(const char *p, size_t n, uint64_t max, uint64_t *v)
{
    uint64_t x = 0;
    size_t i;

    if (n == 0 || n > 20)
        return -1;
    for (i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return -1;
        if (x > (UINT64_MAX - 9) / 10)
            return -1;
        x = x * 10 + (uint64_t)(p[i] - '0');
    }
    if (x > max)
        return -1;
    *v = x;
    return 0;
}

enum seen_bit {
    SEEN_LIST = 1 << 0,
    SEEN_ROLE = 1 << 1,
    SEEN_SENDER = 1 << 2,
    SEEN_ARRIVAL = 1 << 3,
    SEEN_ATTEMPTS = 1 << 4,
    SEEN_NEXT = 1 << 5,
    SEEN_RECOV = 1 << 6,
    SEEN_LASTERR = 1 << 7,
    SEEN_MBOX = 1 << 8,
    SEEN_SIZE = 1 << 9,
    SEEN_VERP = 1 << 10,
    SEEN_APPROVED = 1 << 11,
    SEEN_EXPANDED = 1 << 12,
    SEEN_HELD = 1 << 13,
    SEEN_MTAID = 1 << 14,
    SEEN_MEMBERHDR = 1 << 15,
};
#define SEEN_REQUIRED                                                          \
    (SEEN_LIST | SEEN_ROLE | SEEN_SENDER | SEEN_ARRIVAL | SEEN_SIZE)

static int valid_key(const char *k, size_t n)
{
    size_t i;

    if (n == 0 || n > 64 || k[0] < 'a' || k[0] > 'z')
        return 0;
    for (i = 1; i < n; i++)
        if (!((k[i] >= 'a' && k[i] <= 'z') || (k[i] >= '0' && k[i] <= '9') ||
              k[i] == '-'))
            return 0;
    return 1;
}

static int key_is(const char *k, size_t n, const char *name)
{
    return strlen(name) == n && memcmp(k, name, n) == 0;
}

static int parse_arrival(const char *v, size_t n, struct envelope *env)
{
    const char *dot = memchr(v, '.', n);
    uint64_t s, us;

    if (!dot || parse_u64(v, (size_t)(dot - v), INT64_MAX / 2, &s) ||
        (size_t)(v + n - dot - 1) != 6 || parse_u64(dot + 1, 6, 999999, &us))
        return -1;
    env->arrival_sec = (int64_t)s;
    env->arrival_usec = (int32_t)us;
    return 0;
}

/* One line "key value" (without its LF). */
static int parse_line(struct envelope *env, const char *line, size_t n,
                      unsigned *seen, const char **why)
{
    const char *sp = memchr(line, ' ', n);
    const char *k = line, *v;
    size_t kn, vn;
    uint64_t u;
    unsigned bit = 0;
    char **strfield = NULL;

    if (!sp) {
        *why = "line without a space";
        return -1;
    }
    kn = (size_t)(sp - line);
    v = sp + 1;
    vn = n - kn - 1;
    if (!valid_key(k, kn)) {
        *why = "invalid key";
        return -1;
    }
    if (key_is(k, kn, "rcpt")) {
        const char *sp2 = memchr(v, ' ', vn);
        size_t an = sp2 ? (size_t)(sp2 - v) : vn;
        char *addr = decode(v, an), *extra = NULL;
        int rc;

        /* not strndup(): the line is not NUL-terminated, and strndup may
         * look one byte past n */
        if (sp2 && (extra = malloc(vn - an)) != NULL) {
            memcpy(extra, sp2 + 1, vn - an - 1);
            extra[vn - an - 1] = 0;
        }
        if (!addr || (sp2 && !extra)) {
            free(addr);
            free(extra);
            *why = "malformed recipient";
            return -1;
        }
        rc = envelope_add_rcpt(env, addr, extra);
        free(addr);
        free(extra);
        if (rc != 0)
            *why = "too many recipients or out of memory";
        return rc;
    }
    if (key_is(k, kn, "list"))
        bit = SEEN_LIST, strfield = &env->list;
    else if (key_is(k, kn, "sender"))
        bit = SEEN_SENDER, strfield = &env->sender;
    else if (key_is(k, kn, "last-error"))
        bit = SEEN_LASTERR, strfield = &env->last_error;
    else if (key_is(k, kn, "mbox-from"))
        bit = SEEN_MBOX, strfield = &env->mbox_from;
    else if (key_is(k, kn, "mta-queue-id"))
        bit = SEEN_MTAID, strfield = &env->mta_queue_id;
    else if (key_is(k, kn, "member-header"))
        bit = SEEN_MEMBERHDR, strfield = &env->member_header;
    else if (key_is(k, kn, "role"))
        bit = SEEN_ROLE;
    else if (key_is(k, kn, "arrival"))
        bit = SEEN_ARRIVAL;
    else if (key_is(k, kn, "attempts"))
        bit = SEEN_ATTEMPTS;
    else if (key_is(k, kn, "next-attempt"))
        bit = SEEN_NEXT;
    else if (key_is(k, kn, "recoveries"))
        bit = SEEN_RECOV;
    else if (key_is(k, kn, "size"))
        bit = SEEN_SIZE;
    else if (key_is(k, kn, "verp"))
        bit = SEEN_VERP;
    else if (key_is(k, kn, "approved"))
        bit = SEEN_APPROVED;
    else if (key_is(k, kn, "expanded"))
        bit = SEEN_EXPANDED;
    else if (key_is(k, kn, "held"))
        bit = SEEN_HELD;

    if (bit == 0) { /* unknown: keep verbatim for the next writer */
        if (buf_append(&env->extra, line, n) ||
            buf_append(&env->extra, "\n", 1)) {
            *why = "out of memory";
            return -1;
        }
        return 0;
    }
    if (*seen & bit) {
        *why = "duplicate key";
        return -1;
    }
    *seen |= bit;
    if (strfield) {
        if (!(*strfield = decode(v, vn))) {
            *why = "malformed value";
            return -1;
        }
        return 0;
    }
    *why = "malformed number";
    switch (bit) {
    case SEEN_ROLE: {
        char tmp[16];
        if (vn >= sizeof(tmp))
            break;
        memcpy(tmp, v, vn);
        tmp[vn] = 0;
        if (role_parse(tmp, &env->role) == 0)
            return 0;
        *why = "unknown role";
        break;
    }
    case SEEN_ARRIVAL:
        return parse_arrival(v, vn, env);
    case SEEN_ATTEMPTS:
        if (parse_u64(v, vn, 1000000, &u))
            break;
        env->attempts = (int)u;
        return 0;
    case SEEN_NEXT:
        if (parse_u64(v, vn, INT64_MAX / 2, &u))
            break;
        env->next_attempt = (int64_t)u;
        return 0;
    case SEEN_RECOV:
        if (parse_u64(v, vn, 1000000, &u))
            break;
        env->recoveries = (int)u;
        return 0;
    case SEEN_SIZE:
        if (parse_u64(v, vn, INT64_MAX / 2, &u))
            break;
        env->size = (int64_t)u;
        return 0;
    case SEEN_VERP:
    case SEEN_APPROVED:
        if (parse_u64(v, vn, 1, &u))
            break;
        *(bit == SEEN_VERP ? &env->verp : &env->approved) = (int)u;
        return 0;
    case SEEN_EXPANDED:
        if (parse_u64(v, vn, 10000000, &u))
            break;
        env->expanded = (int)u;
        return 0;
    case SEEN_HELD:
        if (parse_u64(v, vn, INT64_MAX / 2, &u))
            break;
        env->held = (int64_t)u;
        return 0;
    }
    return -1;
}

static int parse_magic(const char *line, size_t n, struct envelope *env,
                       const char **why)
{
    uint64_t v;

    if (n < 5 || memcmp(line, "MMQ ", 4) != 0 ||
        parse_u64(line + 4, n - 4, 1000, &v) || v < 1) {
        *why = "not an mmq spool entry (bad first line)";
        return -1;
    }
    if (v > ENVELOPE_VERSION) {
        *why = "envelope format version newer than this program";
        return -1;
    }
    env->version = (int)v;
    return 0;
}

int envelope_parse(const char *data, size_t len, struct envelope *env,
                   size_t *consumed, char *err, size_t errlen)
{
    size_t pos = 0, lineno = 0;
    unsigned seen = 0;
    const char *why = NULL;

    envelope_init(env);
    for (;;) {
        const char *line = data + pos;
        size_t avail = len - pos;
        size_t scan =
            avail < ENVELOPE_MAX_LINE + 1 ? avail : ENVELOPE_MAX_LINE + 1;
        const char *nl = memchr(line, '\n', scan);
        size_t n;

        if (!nl) {
            if (avail > ENVELOPE_MAX_LINE) {
                why = "line too long";
                goto bad;
            }
            if (len >= ENVELOPE_MAX_BYTES) {
                why = "envelope too large";
                goto bad;
            }
            envelope_free(env);
            return 1;
        }
        n = (size_t)(nl - line);
        lineno++;
        pos += n + 1;
        if (pos > ENVELOPE_MAX_BYTES) {
            why = "envelope too large";
            goto bad;
        }
        if (lineno == 1) {
            if (parse_magic(line, n, env, &why))
                goto bad;
            continue;
        }
        if (n == 0)
            break;
        if (memchr(line, 0, n) || memchr(line, '\r', n)) {
            why = "control character in line";
            goto bad;
        }
        if (parse_line(env, line, n, &seen, &why))
            goto bad;
    }
    if ((seen & SEEN_REQUIRED) != SEEN_REQUIRED) {
        why = "a required key (list, role, sender, arrival, size) is missing";
        lineno = 0;
        goto bad;
    }
    *consumed = pos;
    return 0;
bad:
    if (lineno)
        snprintf(err, errlen, "envelope line %zu: %s", lineno, why);
    else
        snprintf(err, errlen, "envelope: %s", why);
    envelope_free(env);
    errno = EINVAL;
    return -1;
}

int envelope_read(int fd, struct envelope *env, off_t *body_off, char *err,
                  size_t errlen)
{
    struct buf b;
    struct stat st;
    size_t consumed = 0, scanned = 0;
    int rc;

    buf_init(&b);
    envelope_init(env);
    if (fstat(fd, &st) != 0) {
        snprintf(err, errlen, "fstat: %s", strerror(errno));
        return -1;
    }
    for (;;) {
        ssize_t got;

        if (buf_reserve(&b, 65536) != 0) {
            snprintf(err, errlen, "out of memory");
            buf_free(&b);
            errno = ENOMEM;
            return -1;
        }
        got = pread(fd, b.data + b.len, 65536, (off_t)b.len);
        if (got < 0) {
            if (errno == EINTR)
                continue;
            snprintf(err, errlen, "read: %s", strerror(errno));
            rc = errno;
            buf_free(&b);
            errno = rc;
            return -1;
        }
        b.len += (size_t)got;
        b.data[b.len] = 0;
        /* Parse only once the empty line is here (or the data ends), so a
         * large envelope costs one parse, not one per read. */
        if (got > 0 && b.len < ENVELOPE_MAX_BYTES &&
            !memmem(b.data + (scanned > 0 ? scanned - 1 : 0),
                    b.len - (scanned > 0 ? scanned - 1 : 0), "\n\n", 2)) {
            scanned = b.len;
            continue;
        }
        scanned = b.len;
        rc = envelope_parse(b.data, b.len, env, &consumed, err, errlen);
        if (rc == 0)
            break;
        if (rc < 0 || got == 0) {
            if (rc > 0)
                snprintf(err, errlen, "envelope: truncated (no empty line)");
            buf_free(&b);
            errno = EINVAL;
            return -1;
        }
    }
    buf_free(&b);
    if ((int64_t)st.st_size - (int64_t)consumed != env->size) {
        snprintf(
            err, errlen, "entry holds %lld message bytes, envelope says %lld",
            (long long)st.st_size - (long long)consumed, (long long)env->size);
        envelope_free(env);
        errno = EINVAL;
        return -1;
    }
    *body_off = (off_t)consumed;
    return 0;
}
