/*
 * token - confirmation tokens (HMAC-SHA256), pending requests, once-only
 * use and the daily reply marks.  See token.h.
 *
 * Why HMAC() and not EVP_MAC: the one-shot HMAC() is part of OpenSSL 3's
 * API and is not deprecated; it computes the same MAC with less code.
 */
#include "autoconf.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "token.h"

static const char hexd[] = "0123456789abcdef";

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* ------------------------------------------------------------- secret */

int token_secret_create(const char *spool, uid_t uid, gid_t gid, char *err,
                        size_t errlen)
{
    char path[PATH_MAX], text[2 * TOKEN_SECRET_LEN + 2];
    unsigned char k[TOKEN_SECRET_LEN];
    int fd, i;

    snprintf(path, sizeof(path), "%s/secret", spool);
    if (RAND_bytes(k, sizeof(k)) != 1)
        return err_set(err, errlen, EIO, "%s: no random bytes", path);
    for (i = 0; i < TOKEN_SECRET_LEN; i++) {
        text[2 * i] = hexd[k[i] >> 4];
        text[2 * i + 1] = hexd[k[i] & 15];
    }
    text[2 * TOKEN_SECRET_LEN] = '\n';
    OPENSSL_cleanse(k, sizeof(k));
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
              0640);
    if (fd < 0) {
        if (errno == EEXIST)
            return 1;
        return err_set(err, errlen, errno, "%s: %s", path, strerror(errno));
    }
    /* mode 0640 whatever the umask; group: the spool's, so mmq reads it */
    if (fchmod(fd, 0640) != 0 ||
        ((uid != (uid_t)-1 || gid != (gid_t)-1) && fchown(fd, uid, gid)) ||
        write(fd, text, sizeof(text) - 1) != (ssize_t)(sizeof(text) - 1) ||
        fsync(fd) != 0) {
        int e = errno ? errno : EIO;
        close(fd);
        unlink(path);
        return err_set(err, errlen, e, "%s: %s", path, strerror(e));
    }
    close(fd);
    return 0;
}

int token_secret_load(const char *spool, struct token_key *key, char *err,
                      size_t errlen)
{
    char path[PATH_MAX], text[2 * TOKEN_SECRET_LEN + 8];
    ssize_t n;
    int fd, i;

    snprintf(path, sizeof(path), "%s/secret", spool);
    if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) < 0)
        return err_set(err, errlen, errno, "%s: %s (run mmqctl init)", path,
                       strerror(errno));
    n = read(fd, text, sizeof(text));
    close(fd);
    if (n < 2 * TOKEN_SECRET_LEN)
        return err_set(err, errlen, EINVAL, "%s: not 64 hex digits", path);
    for (i = 0; i < TOKEN_SECRET_LEN; i++) {
        int hi = hexval((unsigned char)text[2 * i]);
        int lo = hexval((unsigned char)text[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return err_set(err, errlen, EINVAL, "%s: not 64 hex digits",
                           path);
        key->k[i] = (unsigned char)(hi << 4 | lo);
    }
    OPENSSL_cleanse(text, sizeof(text));
    return 0;
}

/* ------------------------------------------------------------- tokens */

/* The MAC's 32 hex digits for (list, address, action, expiry). */
static void mac_hex(const struct token_key *key, const char *list,
                    const char *address, char action, int64_t expiry,
                    char *out)
{
    char input[LIST_NAME_MAX + MEMBER_ADDR_MAX + 64];
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    size_t i, n;

    /* NUL-separated fields: no two tuples give the same input */
    n = (size_t)snprintf(input, sizeof(input), "mmq-token-1%c%s%c", 0, list,
                         0);
    for (i = 0; address[i] && n < sizeof(input) - 24; i++)
        input[n++] = address[i] >= 'A' && address[i] <= 'Z'
                         ? (char)(address[i] - 'A' + 'a')
                         : address[i];
    n += (size_t)snprintf(input + n, sizeof(input) - n, "%c%c%c%lld", 0,
                          action, 0, (long long)expiry);
    HMAC(EVP_sha256(), key->k, sizeof(key->k), (unsigned char *)input, n, md,
         &mdlen);
    for (i = 0; i < 16; i++) {
        out[2 * i] = hexd[md[i] >> 4];
        out[2 * i + 1] = hexd[md[i] & 15];
    }
    out[32] = 0;
}

void token_make(const struct token_key *key, const char *list,
                const char *address, char action, int64_t expiry, char *out)
{
    out[0] = action;
    snprintf(out + 1, 9, "%08llx", (unsigned long long)expiry & 0xffffffffu);
    mac_hex(key, list, address, action, expiry, out + 9);
}

int token_parse(const char *tok, char *action, int64_t *expiry)
{
    int64_t e = 0;
    int i;
    char a = tok[0] >= 'A' && tok[0] <= 'Z' ? (char)(tok[0] - 'A' + 'a')
                                             : tok[0];

    if (strlen(tok) != TOKEN_LEN ||
        (a != TOKEN_SUBSCRIBE && a != TOKEN_UNSUBSCRIBE && a != TOKEN_APPROVE &&
         !TOKEN_IS_HOLD(a)))
        return -1;
    for (i = 1; i < TOKEN_LEN; i++) {
        int v = hexval((unsigned char)tok[i]);
        if (v < 0)
            return -1;
        if (i <= 8)
            e = e << 4 | v;
    }
    *action = a;
    *expiry = e;
    return 0;
}

enum token_verdict token_check(const struct token_key *key, const char *list,
                               const char *address, const char *tok,
                               int64_t now)
{
    char action, want[33], got[33];
    int64_t expiry;
    int i;

    if (token_parse(tok, &action, &expiry) != 0)
        return TOKEN_MALFORMED;
    mac_hex(key, list, address, action, expiry, want);
    for (i = 0; i < 32; i++) {
        char c = tok[9 + i];
        got[i] = c >= 'A' && c <= 'F' ? (char)(c - 'A' + 'a') : c;
    }
    got[32] = 0;
    if (CRYPTO_memcmp(want, got, 32) != 0)
        return TOKEN_FORGED;
    if (expiry < now)
        return TOKEN_EXPIRED;
    return TOKEN_OK;
}

const char *token_verdict_text(enum token_verdict v)
{
    switch (v) {
    case TOKEN_OK:
        return "valid";
    case TOKEN_MALFORMED:
        return "not a confirmation token";
    case TOKEN_FORGED:
        return "not a token of this list (forged or mistyped)";
    case TOKEN_EXPIRED:
        return "expired";
    }
    return "?";
}

/* Lower-case copy of a token, for file names. */
static int tok_name(const char *tok, char *out)
{
    char a;
    int64_t e;
    int i;

    if (token_parse(tok, &a, &e) != 0) {
        errno = EINVAL;
        return -1;
    }
    for (i = 0; i <= TOKEN_LEN; i++)
        out[i] = tok[i] >= 'A' && tok[i] <= 'Z' ? (char)(tok[i] - 'A' + 'a')
                                                 : tok[i];
    return 0;
}

/* ------------------------------------------------------------ marks */

/* text linked to dir/name by the store's own primitive (member.h):
 * 0 made, 1 existed, -1 error. */
static int mark(struct member_store *ms, const char *dir, const char *name,
                const char *text, char *err, size_t errlen)
{
    char rel[PATH_MAX];

    snprintf(rel, sizeof(rel), "%s/%s", dir, name);
    return member_store_publish(ms, dir, rel, text, strlen(text), err, errlen);
}

/* Read a small file below the store into buf (NUL-terminated). */
static int read_small(struct member_store *ms, const char *rel, char *buf,
                      size_t len)
{
    int fd = openat(ms->fd, rel, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    ssize_t n;

    if (fd < 0)
        return -1;
    n = read(fd, buf, len - 1);
    close(fd);
    if (n < 0)
        return -1;
    buf[n] = 0;
    return 0;
}

/* The value of "key VALUE" in text, into out. */
static int field(const char *text, const char *key, char *out, size_t outlen)
{
    size_t kl = strlen(key);
    const char *p = text;

    for (; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
        if (strncmp(p, key, kl) == 0 && p[kl] == ' ') {
            const char *v = p + kl + 1, *nl = strchr(v, '\n');
            size_t n = nl ? (size_t)(nl - v) : strlen(v);
            if (n >= outlen)
                return -1;
            memcpy(out, v, n);
            out[n] = 0;
            return 0;
        }
    return -1;
}

/* An address fit for one line of a state file. */
static int one_line_ok(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x21 || (unsigned char)*s == 0x7f)
            return 0;
    return 1;
}

int token_pending_add(struct member_store *ms, const char *tok,
                      const char *address, const char *requester, char *err,
                      size_t errlen)
{
    char name[TOKEN_LEN + 1], text[2 * MEMBER_ADDR_MAX + 64];

    if (tok_name(tok, name) != 0 || !one_line_ok(address) ||
        strlen(address) >= MEMBER_ADDR_MAX ||
        strlen(requester) >= MEMBER_ADDR_MAX || !one_line_ok(requester))
        return err_set(err, errlen, EINVAL, "bad pending request");
    snprintf(text, sizeof(text), "address %s\nrequester %s\n", address,
             requester[0] ? requester : "-");
    return mark(ms, "pending", name, text, err, errlen);
}

int token_pending_get(struct member_store *ms, const char *tok, char *address,
                      size_t addrlen, char *err, size_t errlen)
{
    char name[TOKEN_LEN + 1], rel[64], text[2 * MEMBER_ADDR_MAX + 64];

    if (tok_name(tok, name) != 0)
        return 1;
    snprintf(rel, sizeof(rel), "pending/%s", name);
    if (read_small(ms, rel, text, sizeof(text)) != 0) {
        if (errno == ENOENT)
            return 1;
        return err_set(err, errlen, errno, "members/%s/%s: %s", ms->list, rel,
                       strerror(errno));
    }
    if (field(text, "address", address, addrlen) != 0)
        return err_set(err, errlen, EINVAL, "members/%s/%s: no address",
                       ms->list, rel);
    return 0;
}

int token_pending_remove(struct member_store *ms, const char *tok)
{
    char name[TOKEN_LEN + 1], rel[64];

    if (tok_name(tok, name) != 0)
        return -1;
    snprintf(rel, sizeof(rel), "pending/%s", name);
    if (unlinkat(ms->fd, rel, 0) != 0 && errno != ENOENT)
        return -1;
    return 0;
}

static int cmp_pending(const void *a, const void *b)
{
    return strcmp(((const struct token_pending *)a)->token,
                  ((const struct token_pending *)b)->token);
}

int token_pending_list(struct member_store *ms, int64_t now,
                       struct token_pending **out, size_t *n, char *err,
                       size_t errlen)
{
    int d = openat(ms->fd, "pending", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *dir;
    struct dirent *de;
    struct token_pending *v = NULL;
    size_t cap = 0;

    *out = NULL;
    *n = 0;
    if (d < 0)
        return errno == ENOENT
                   ? 0
                   : err_set(err, errlen, errno, "members/%s/pending: %s",
                             ms->list, strerror(errno));
    if (!(dir = fdopendir(d))) {
        close(d);
        return err_set(err, errlen, errno, "members/%s/pending: %s", ms->list,
                       strerror(errno));
    }
    while ((de = readdir(dir)) != NULL) {
        struct token_pending tp;
        char e[256];

        if (token_parse(de->d_name, &tp.action, &tp.expiry) != 0)
            continue;
        memcpy(tp.token, de->d_name, TOKEN_LEN + 1); /* parsed: 41 bytes */
        if (tp.expiry < now) { /* nobody can use it any more */
            unlinkat(d, de->d_name, 0);
            continue;
        }
        if (token_pending_get(ms, tp.token, tp.address, sizeof(tp.address), e,
                              sizeof(e)) != 0)
            continue;
        if (*n == cap) {
            struct token_pending *nv;
            cap = cap ? 2 * cap : 16;
            if (!(nv = realloc(v, cap * sizeof(*v)))) {
                closedir(dir);
                free(v);
                return err_set(err, errlen, ENOMEM, "out of memory");
            }
            v = nv;
        }
        v[(*n)++] = tp;
    }
    closedir(dir);
    if (*n)
        qsort(v, *n, sizeof(*v), cmp_pending);
    *out = v;
    return 0;
}

void token_pending_free(struct token_pending *v)
{
    free(v);
}

int token_used_get(struct member_store *ms, const char *tok, char *by,
                   size_t bylen, char *address, size_t addrlen)
{
    char name[TOKEN_LEN + 1], rel[64], text[2 * MEMBER_ADDR_MAX + 64];

    if (tok_name(tok, name) != 0)
        return 1;
    snprintf(rel, sizeof(rel), "used/%s", name);
    if (read_small(ms, rel, text, sizeof(text)) != 0)
        return errno == ENOENT ? 1 : -1;
    if (field(text, "by", by, bylen) != 0 ||
        field(text, "address", address, addrlen) != 0) {
        errno = EINVAL;
        return -1;
    }
    return 0;
}

int token_use(struct member_store *ms, const char *tok, const char *by,
              const char *address, char *err, size_t errlen)
{
    char name[TOKEN_LEN + 1], text[2 * MEMBER_ADDR_MAX + 64];
    char who[MEMBER_ADDR_MAX], addr[MEMBER_ADDR_MAX];
    int rc;

    if (tok_name(tok, name) != 0 || !one_line_ok(by) || !one_line_ok(address))
        return err_set(err, errlen, EINVAL, "not a token");
    snprintf(text, sizeof(text), "by %s\naddress %s\n", by, address);
    if ((rc = mark(ms, "used", name, text, err, errlen)) != 1)
        return rc;
    /* there already: ours (a rerun after a crash) or another's */
    if (token_used_get(ms, tok, who, sizeof(who), addr, sizeof(addr)) != 0)
        return 1;
    return strcmp(who, by) == 0 ? 0 : 1;
}

/* ------------------------------------------------------------ replies */

int token_rate_take(struct member_store *ms, const char *address,
                    const char *by, int64_t now, int max, char *err,
                    size_t errlen)
{
    char key[MEMBER_KEY_LEN + 1], dir[64], day[16];
    time_t t = (time_t)now;
    struct tm tm;
    struct dirent *de;
    DIR *dp;
    int d, rank = 0;

    if (max <= 0)
        return 0;
    if (strchr(by, '/') || by[0] == '.' || !by[0])
        return err_set(err, errlen, EINVAL, "bad entry name");
    gmtime_r(&t, &tm);
    strftime(day, sizeof(day), "%Y%m%d", &tm);
    member_key(address, key);
    snprintf(dir, sizeof(dir), "replies/%s/%s", day, key);
    if (mark(ms, dir, by, "", err, errlen) < 0)
        return -1;
    if ((d = openat(ms->fd, dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0 ||
        !(dp = fdopendir(d))) {
        if (d >= 0)
            close(d);
        return err_set(err, errlen, errno, "members/%s/%s: %s", ms->list, dir,
                       strerror(errno));
    }
    while ((de = readdir(dp)) != NULL)
        if (de->d_name[0] != '.' && strcmp(de->d_name, by) <= 0)
            rank++;
    closedir(dp);
    return rank <= max ? 1 : 0;
}
