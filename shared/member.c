/*
 * member - durable per-member state: event files, their fold, the disabled
 * index, removal from the members file.  See member.h for the contract and
 * the crash windows.
 */
#include "autoconf.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "fsutil.h"
#include "digest.h"
#include "listdef.h"
#include "log.h"
#include "member.h"

#define DAY 86400
#define TMP_MAX_AGE 3600 /* a temporary file older than this is an orphan */

void member_policy_default(struct member_policy *pol)
{
    pol->processing = 1;
    pol->threshold = 5.0;
    pol->stale_after = 7 * DAY;
    pol->warnings = 3;
    pol->interval = 7 * DAY;
    pol->probe = 0;
    pol->notify_disable = 1;
    pol->notify_removal = 1;
    pol->forward_unknown = 1;
}

const char *member_state_name(enum member_state s)
{
    return s == MEMBER_ENABLED    ? "enabled"
           : s == MEMBER_DISABLED ? "disabled"
                                  : "removed";
}

void member_key(const char *address, char *key)
{
    char low[MEMBER_ADDR_MAX], hex[DIGEST_HEX_LEN + 1];
    size_t i;

    for (i = 0; address[i] && i < sizeof(low) - 1; i++)
        low[i] = (char)tolower((unsigned char)address[i]);
    digest_hex_of(low, i, hex);
    memcpy(key, hex, MEMBER_KEY_LEN);
    key[MEMBER_KEY_LEN] = 0;
}

/* ------------------------------------------------------------- the fold */

struct ev {
    int64_t t;
    char kind;
    const char *id;
    const char *name;
};

/* "KEY.TTTTTTTTTT.K.ID": 0 and *e filled, -1 if it is not one. */
static int parse_name(const char *name, struct ev *e)
{
    size_t i;

    if (strlen(name) < MEMBER_KEY_LEN + 15 || name[MEMBER_KEY_LEN] != '.')
        return -1;
    e->t = 0;
    for (i = MEMBER_KEY_LEN + 1; i < MEMBER_KEY_LEN + 11; i++) {
        if (!isdigit((unsigned char)name[i]))
            return -1;
        e->t = e->t * 10 + (name[i] - '0');
    }
    if (name[i] != '.' || !name[i + 1] || name[i + 2] != '.' || !name[i + 3])
        return -1;
    e->kind = name[i + 1];
    e->id = name + i + 3;
    e->name = name;
    return 0;
}

/* Bounces before the actions of the same second: an action's time is
 * that of the bounce that caused it. */
static int rank(char kind)
{
    return strchr("FTPB", kind) ? 0 : 1;
}

static int cmp_ev(const void *a, const void *b)
{
    const struct ev *x = a, *y = b;

    if (x->t != y->t)
        return x->t < y->t ? -1 : 1;
    if (rank(x->kind) != rank(y->kind))
        return rank(x->kind) - rank(y->kind);
    return strcmp(x->name, y->name);
}

/* "eN" or "eN.<c>K": the epoch N and (if tag) the number K. */
static int parse_epoch_id(const char *id, char tag, unsigned *n, int *k)
{
    char *end;
    unsigned long v;

    if (id[0] != 'e' || !isdigit((unsigned char)id[1]))
        return -1;
    v = strtoul(id + 1, &end, 10);
    *n = (unsigned)v;
    if (!tag)
        return *end == 0 ? 0 : -1;
    if (end[0] != '.' || end[1] != tag || !isdigit((unsigned char)end[2]))
        return -1;
    *k = (int)strtol(end + 2, &end, 10);
    return *end == 0 ? 0 : -1;
}

static int epoch_is(const char *id, char tag, unsigned epoch, int *k)
{
    unsigned n;
    int kk = 0;

    if (parse_epoch_id(id, tag, &n, &kk) != 0 || n != epoch)
        return 0;
    if (k)
        *k = kk;
    return 1;
}

static void fold_bounce(struct member_info *mi, const struct ev *e,
                        const struct member_policy *pol)
{
    mi->last_event = e->t;
    mi->last_kind = e->kind;
    if (e->kind == 'T') {
        mi->delayed++;
        return;
    }
    if (e->kind == 'P') {
        mi->policy++;
        return;
    }
    mi->failed++;
    if (mi->state != MEMBER_ENABLED)
        return; /* a disabled member's bounces do not score */
    if (mi->last_bounce && e->t - mi->last_bounce > pol->stale_after)
        mi->score = 0; /* the old bounce information is stale */
    if (!mi->last_bounce || e->t / DAY != mi->last_bounce / DAY)
        mi->score++; /* one per day, however many that day */
    mi->last_bounce = e->t;
}

static void fold_one(struct member_info *mi, const struct ev *e,
                     const struct member_policy *pol)
{
    int k = 0;

    switch (e->kind) {
    case 'F':
    case 'T':
    case 'P':
        fold_bounce(mi, e, pol);
        break;
    case 'B': /* a probe's own bounce */
        if (epoch_is(e->id, 'p', mi->epoch, NULL))
            mi->probe_bounced = 1;
        mi->last_event = e->t;
        mi->last_kind = 'F';
        mi->failed++;
        break;
    case 'E':
        mi->epoch++;
        mi->state = MEMBER_ENABLED;
        mi->disabled_by = 0;
        mi->disabled_since = 0;
        mi->score = 0;
        mi->last_bounce = 0;
        mi->warnings = mi->probes = mi->probe_bounced = 0;
        mi->last_warning = mi->last_probe = 0;
        break;
    case 'X':
        if (mi->state == MEMBER_ENABLED) {
            mi->state = MEMBER_DISABLED;
            mi->disabled_by = 'X';
            mi->disabled_since = e->t;
        }
        break;
    case 'D':
        if (epoch_is(e->id, 0, mi->epoch, NULL) &&
            mi->state == MEMBER_ENABLED) {
            mi->state = MEMBER_DISABLED;
            mi->disabled_by = 'D';
            mi->disabled_since = e->t;
        }
        break;
    case 'W':
        if (epoch_is(e->id, 'w', mi->epoch, &k) && k > mi->warnings) {
            mi->warnings = k;
            mi->last_warning = e->t;
        }
        break;
    case 'Q':
        if (epoch_is(e->id, 'p', mi->epoch, &k) && k > mi->probes) {
            mi->probes = k;
            mi->last_probe = e->t;
            mi->score = 0; /* the probe decides; scoring starts again */
            mi->last_bounce = 0;
        }
        break;
    case 'R':
        if (epoch_is(e->id, 0, mi->epoch, NULL) && mi->disabled_by == 'D')
            mi->state = MEMBER_REMOVED;
        break;
    default:
        break;
    }
}

/* Action events of the current epoch with no q marker among evs. */
static void find_pending(struct member_info *mi, const struct ev *evs,
                         size_t n)
{
    size_t i, j;

    for (i = 0; i < n; i++) {
        const struct ev *a = &evs[i];
        int k, marked = 0;
        if (!strchr("DWQR", a->kind) ||
            !(epoch_is(a->id, 0, mi->epoch, NULL) ||
              epoch_is(a->id, 'w', mi->epoch, &k) ||
              epoch_is(a->id, 'p', mi->epoch, &k)))
            continue;
        for (j = 0; j < n && !marked; j++)
            marked = evs[j].kind == 'q' && evs[j].id[0] == a->kind &&
                     strcmp(evs[j].id + 1, a->id) == 0;
        if (!marked && mi->npending < sizeof(mi->pending) / sizeof(mi->pending[0])) {
            struct member_pending *p = &mi->pending[mi->npending++];
            p->kind = a->kind;
            p->when = a->t;
            snprintf(p->id, sizeof(p->id), "%s", a->id);
        }
    }
}

void member_fold_names(const char *key, char **names, size_t n,
                       const struct member_policy *pol, int64_t now,
                       struct member_info *mi)
{
    struct ev *evs = n ? calloc(n, sizeof(*evs)) : NULL;
    size_t i, m = 0;

    memset(mi, 0, sizeof(*mi));
    snprintf(mi->key, sizeof(mi->key), "%s", key);
    mi->state = MEMBER_ENABLED;
    for (i = 0; evs && i < n; i++)
        if (strncmp(names[i], key, MEMBER_KEY_LEN) == 0 &&
            parse_name(names[i], &evs[m]) == 0)
            m++;
    if (m)
        qsort(evs, m, sizeof(*evs), cmp_ev);
    for (i = 0; i < m; i++) {
        fold_one(mi, &evs[i], pol);
        if (evs[i].t > mi->newest)
            mi->newest = evs[i].t;
    }
    find_pending(mi, evs, m);
    if (mi->state == MEMBER_ENABLED && mi->last_bounce &&
        now - mi->last_bounce > pol->stale_after)
        mi->score = 0; /* shown as reset; the next bounce starts at 1 */
    free(evs);
}

enum member_step member_next(const struct member_info *mi,
                             const struct member_policy *pol, int64_t now)
{
    if (!pol->processing || mi->state == MEMBER_REMOVED)
        return STEP_NONE;
    if (mi->state == MEMBER_ENABLED) {
        if (pol->probe && mi->probe_bounced)
            return STEP_DISABLE;
        if ((double)mi->score >= pol->threshold)
            return pol->probe ? STEP_PROBE : STEP_DISABLE;
        return STEP_NONE;
    }
    if (mi->disabled_by != 'D')
        return STEP_NONE; /* the admin's: no warnings, no removal */
    if (mi->warnings < pol->warnings)
        return mi->warnings == 0 || now >= mi->last_warning + pol->interval
                   ? STEP_WARN
                   : STEP_NONE;
    if (mi->warnings == 0 || now >= mi->last_warning + pol->interval)
        return STEP_REMOVE;
    return STEP_NONE;
}

/* ------------------------------------------------------------ the store */

static int mkdir_at(int fd, const char *rel)
{
    return mkdirat(fd, rel, 02770) == 0 || errno == EEXIST ? 0 : -1;
}

/* mkdir_at() of rel and of every directory above it (below fd). */
static int mkdirs_at(int fd, const char *rel)
{
    char path[PATH_MAX];

    snprintf(path, sizeof(path), "%s", rel);
    for (size_t i = 1; path[i]; i++)
        if (path[i] == '/') {
            path[i] = 0;
            if (mkdir_at(fd, path) != 0)
                return -1;
            path[i] = '/';
        }
    return mkdir_at(fd, path);
}

/* The member store accepts a file system that cannot fsync a directory
 * (EINVAL), as it always did. */
static int fsync_dirat(int fd, const char *rel)
{
    return fsync_dir_at(fd, rel) == 0 || errno == EINVAL ? 0 : -1;
}

/* A temporary file "NODE.PID.N" of this node whose process is gone. */
static int dead_writer(const char *name, const char *node)
{
    size_t nl = strlen(node);
    long pid;
    char *end;

    if (strncmp(name, node, nl) != 0 || name[nl] != '.')
        return 0;
    pid = strtol(name + nl + 1, &end, 10);
    return *end == '.' && pid > 0 && pid != (long)getpid() &&
           kill((pid_t)pid, 0) != 0 && errno == ESRCH;
}

/* Orphaned temporary files (a crash between write and link): of a dead
 * process of this node, or older than TMP_MAX_AGE (any node). */
static void clean_tmp(int fd, const char *node)
{
    int d = openat(fd, "tmp", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *dir = d >= 0 ? fdopendir(d) : NULL;
    struct dirent *de;
    struct stat st;
    time_t now = time(NULL);

    if (!dir) {
        if (d >= 0)
            close(d);
        return;
    }
    while ((de = readdir(dir)) != NULL)
        if (de->d_name[0] != '.' &&
            fstatat(d, de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
            (now - st.st_mtime > TMP_MAX_AGE ||
             dead_writer(de->d_name, node)))
            unlinkat(d, de->d_name, 0);
    closedir(dir);
}

int member_store_open(struct member_store *ms, const char *spool_path,
                      const char *list, const char *node, int create,
                      char *err, size_t errlen)
{
    char path[PATH_MAX];
    int sfd;

    memset(ms, 0, sizeof(*ms));
    ms->fd = -1;
    if (list_name_normalise(list, ms->list) != 0)
        return err_set(err, errlen, EINVAL, "invalid list name \"%s\"", list);
    snprintf(ms->token, sizeof(ms->token), "%s.%ld",
             node && node[0] ? node : "node", (long)getpid());
    if ((sfd = open(spool_path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
        return err_set(err, errlen, errno, "%s: %s", spool_path,
                       strerror(errno));
    snprintf(path, sizeof(path), "members/%s", ms->list);
    if (create && (mkdir_at(sfd, "members") != 0 || mkdir_at(sfd, path) != 0)) {
        err_set(err, errlen, errno, "%s/%s: %s", spool_path, path,
                strerror(errno));
        close(sfd);
        return -1;
    }
    ms->fd = openat(sfd, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
    close(sfd);
    if (ms->fd < 0) {
        if (errno == ENOENT && !create)
            return 1;
        return err_set(err, errlen, errno, "%s/%s: %s", spool_path, path,
                       strerror(errno));
    }
    if (create) {
        if (mkdir_at(ms->fd, "tmp") != 0 || mkdir_at(ms->fd, "disabled") != 0) {
            err_set(err, errlen, errno, "%s/%s: %s", spool_path, path,
                    strerror(errno));
            member_store_close(ms);
            return -1;
        }
        clean_tmp(ms->fd, node && node[0] ? node : "node");
    }
    return 0;
}

void member_store_close(struct member_store *ms)
{
    if (ms->fd >= 0)
        close(ms->fd);
    ms->fd = -1;
}

/* One line of text for a file: printable ASCII, at most max-1 bytes. */
static void one_line(char *out, size_t max, const char *s)
{
    size_t o = 0;

    for (; s && *s && o + 1 < max; s++)
        out[o++] = (unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e
                       ? ' '
                       : *s;
    out[o] = 0;
}

/* member.h: the store's one way to make a file */
int member_store_publish(struct member_store *ms, const char *dir,
                         const char *rel, const char *text, size_t len,
                         char *err, size_t errlen)
{
    char tmp[256];
    int fd, rc, e;

    snprintf(tmp, sizeof(tmp), "tmp/%s.%u", ms->token, ms->seq++);
    fd = openat(ms->fd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0660);
    if (fd < 0)
        return err_set(err, errlen, errno, "members/%s/%s: %s", ms->list, tmp,
                       strerror(errno));
    if (write(fd, text, len) != (ssize_t)len || fsync(fd) != 0) {
        e = errno ? errno : EIO;
        close(fd);
        unlinkat(ms->fd, tmp, 0);
        return err_set(err, errlen, e, "members/%s/%s: %s", ms->list, tmp,
                       strerror(e));
    }
    close(fd);
    rc = linkat(ms->fd, tmp, ms->fd, rel, 0);
    if (rc != 0 && errno == ENOENT && dir && mkdirs_at(ms->fd, dir) == 0)
        rc = linkat(ms->fd, tmp, ms->fd, rel, 0);
    e = errno;
    unlinkat(ms->fd, tmp, 0);
    if (rc != 0 && e == EEXIST)
        return 1;
    if (rc != 0)
        return err_set(err, errlen, e, "members/%s/%s: %s", ms->list, rel,
                       strerror(e));
    if (fsync_dirat(ms->fd, dir ? dir : ".") != 0)
        return err_set(err, errlen, errno, "members/%s/%s: fsync: %s",
                       ms->list, dir ? dir : ".", strerror(errno));
    return 0;
}

static int id_valid(const char *id)
{
    size_t n = strlen(id);

    if (n == 0 || n >= MEMBER_ID_MAX)
        return 0;
    for (; *id; id++)
        if (!isalnum((unsigned char)*id) && !strchr(".-_", *id))
            return 0;
    return 1;
}

int member_record(struct member_store *ms, const char *address, char kind,
                  int64_t when, const char *id, const char *status,
                  const char *diag, char *err, size_t errlen)
{
    char key[MEMBER_KEY_LEN + 1], dir[8], rel[MEMBER_ID_MAX + 48];
    char a[MEMBER_ADDR_MAX], s[32], d[MEMBER_DIAG_MAX];
    struct buf text;
    int rc;

    if (!id_valid(id) || when < 0 || when > 9999999999LL || !isalpha(kind) ||
        !members_plausible(address) || strlen(address) >= MEMBER_ADDR_MAX)
        return err_set(err, errlen, EINVAL, "invalid member event %c %s for %s",
                       kind, id, address);
    member_key(address, key);
    snprintf(dir, sizeof(dir), "%.3s", key);
    snprintf(rel, sizeof(rel), "%s/%s.%010lld.%c.%s", dir, key,
             (long long)when, kind, id);
    one_line(a, sizeof(a), address);
    one_line(s, sizeof(s), status);
    one_line(d, sizeof(d), diag);
    buf_init(&text);
    if (buf_printf(&text, "address %s\nstatus %s\ndiag %s\n", a, s, d) != 0) {
        buf_free(&text);
        return err_set(err, errlen, ENOMEM, "out of memory");
    }
    rc = member_store_publish(ms, dir, rel, text.data, text.len, err, errlen);
    buf_free(&text);
    return rc;
}

static void strings_free(char **v, size_t n)
{
    while (n > 0)
        free(v[--n]);
    free(v);
}

void member_strings_free(char **v, size_t n)
{
    strings_free(v, n);
}

/* The names in dir (relative to fd) starting with prefix (NULL: all). */
static int read_names(int fd, const char *rel, const char *prefix,
                      char ***out, size_t *n)
{
    int d = openat(fd, rel, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *dir = d >= 0 ? fdopendir(d) : NULL;
    struct dirent *de;
    size_t cap = 0, plen = prefix ? strlen(prefix) : 0;
    char **v = NULL;

    *out = NULL;
    *n = 0;
    if (!dir) {
        if (d >= 0)
            close(d);
        return errno == ENOENT ? 0 : -1;
    }
    while ((de = readdir(dir)) != NULL) {
        if (de->d_name[0] == '.' ||
            (prefix && strncmp(de->d_name, prefix, plen) != 0))
            continue;
        if (*n == cap) {
            char **nv = realloc(v, (cap = cap ? cap * 2 : 16) * sizeof(*v));
            if (!nv)
                goto oom;
            v = nv;
        }
        if (!(v[*n] = strdup(de->d_name)))
            goto oom;
        (*n)++;
    }
    closedir(dir);
    *out = v;
    return 0;
oom:
    closedir(dir);
    strings_free(v, *n);
    *n = 0;
    errno = ENOMEM;
    return -1;
}

/* Read "address", "status" and "diag" of one event file. */
static void read_event(struct member_store *ms, const char *rel, char *addr,
                       char *status, char *diag)
{
    char text[MEMBER_ADDR_MAX + MEMBER_DIAG_MAX + 64], *line, *save = NULL;
    int fd = openat(ms->fd, rel, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    ssize_t got = fd >= 0 ? read(fd, text, sizeof(text) - 1) : -1;

    if (fd >= 0)
        close(fd);
    if (got <= 0)
        return;
    text[got] = 0;
    for (line = strtok_r(text, "\n", &save); line;
         line = strtok_r(NULL, "\n", &save)) {
        if (addr && strncmp(line, "address ", 8) == 0)
            snprintf(addr, MEMBER_ADDR_MAX, "%s", line + 8);
        else if (status && strncmp(line, "status ", 7) == 0)
            snprintf(status, 16, "%s", line + 7);
        else if (diag && strncmp(line, "diag ", 5) == 0)
            snprintf(diag, MEMBER_DIAG_MAX, "%s", line + 5);
    }
}

/* Fold the names of one key, then read its newest files. */
static void fold_key(struct member_store *ms, const char *key, char **names,
                     size_t n, const struct member_policy *pol, int64_t now,
                     struct member_info *mi)
{
    char rel[MEMBER_ID_MAX + 64];
    const char *newest = NULL, *last_bounce = NULL;
    size_t i;

    member_fold_names(key, names, n, pol, now, mi);
    for (i = 0; i < n; i++) {
        const char *nm = names[i];
        struct ev e;
        if (strncmp(nm, key, MEMBER_KEY_LEN) != 0 || parse_name(nm, &e) != 0)
            continue;
        if (!newest || strcmp(nm + MEMBER_KEY_LEN, newest + MEMBER_KEY_LEN) > 0)
            newest = nm;
        if (strchr("FTPB", e.kind) &&
            (!last_bounce ||
             strcmp(nm + MEMBER_KEY_LEN, last_bounce + MEMBER_KEY_LEN) > 0))
            last_bounce = nm;
    }
    if (last_bounce) {
        snprintf(rel, sizeof(rel), "%.3s/%s", key, last_bounce);
        read_event(ms, rel, mi->address, mi->last_status, mi->reason);
    }
    if (!mi->address[0] && newest) {
        snprintf(rel, sizeof(rel), "%.3s/%s", key, newest);
        read_event(ms, rel, mi->address, NULL, NULL);
    }
}

int member_load(struct member_store *ms, const char *address,
                const struct member_policy *pol, int64_t now,
                struct member_info *mi, char *err, size_t errlen)
{
    char key[MEMBER_KEY_LEN + 1], dir[8];
    char **names;
    size_t n;

    member_key(address, key);
    snprintf(dir, sizeof(dir), "%.3s", key);
    if (read_names(ms->fd, dir, key, &names, &n) != 0)
        return err_set(err, errlen, errno, "members/%s/%s: %s", ms->list, dir,
                       strerror(errno));
    fold_key(ms, key, names, n, pol, now, mi);
    strings_free(names, n);
    snprintf(mi->address, sizeof(mi->address), "%s", address);
    return 0;
}

int member_index_sync(struct member_store *ms, const struct member_info *mi,
                      char *err, size_t errlen)
{
    char rel[MEMBER_KEY_LEN + 16], text[MEMBER_ADDR_MAX + 2];
    struct stat st;
    int rc;

    snprintf(rel, sizeof(rel), "disabled/%s", mi->key);
    if (mi->state == MEMBER_ENABLED) {
        if (unlinkat(ms->fd, rel, 0) != 0 && errno != ENOENT)
            return err_set(err, errlen, errno, "members/%s/%s: %s", ms->list,
                           rel, strerror(errno));
        return 0;
    }
    if (fstatat(ms->fd, rel, &st, AT_SYMLINK_NOFOLLOW) == 0)
        return 0;
    rc = snprintf(text, sizeof(text), "%s\n", mi->address);
    return member_store_publish(ms, "disabled", rel, text, (size_t)rc, err,
                                errlen) < 0
               ? -1
               : 0;
}

int member_forget(struct member_store *ms, const char *address, char *err,
                  size_t errlen)
{
    char key[MEMBER_KEY_LEN + 1], dir[8], rel[MEMBER_ID_MAX + 64];
    char **names;
    size_t n, i;

    member_key(address, key);
    snprintf(dir, sizeof(dir), "%.3s", key);
    if (read_names(ms->fd, dir, key, &names, &n) != 0)
        return err_set(err, errlen, errno, "members/%s/%s: %s", ms->list, dir,
                       strerror(errno));
    /* the index first: a crash half-way leaves events, which the next
     * rebuild finds and drops again, never an index without events */
    snprintf(rel, sizeof(rel), "disabled/%s", key);
    if (unlinkat(ms->fd, rel, 0) != 0 && errno != ENOENT) {
        strings_free(names, n);
        return err_set(err, errlen, errno, "members/%s/%s: %s", ms->list, rel,
                       strerror(errno));
    }
    for (i = 0; i < n; i++) {
        snprintf(rel, sizeof(rel), "%s/%s", dir, names[i]);
        if (unlinkat(ms->fd, rel, 0) != 0 && errno != ENOENT) {
            err_set(err, errlen, errno, "members/%s/%s: %s", ms->list, rel,
                    strerror(errno));
            strings_free(names, n);
            return -1;
        }
    }
    strings_free(names, n);
    return fsync_dirat(ms->fd, dir) == 0 || errno == ENOENT
               ? 0
               : err_set(err, errlen, errno, "members/%s/%s: fsync: %s",
                         ms->list, dir, strerror(errno));
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int member_scan(struct member_store *ms, const struct member_policy *pol,
                int64_t now,
                int (*fn)(void *arg, const struct member_info *mi),
                void *arg, char *err, size_t errlen)
{
    struct member_info mi;
    char dir[8];
    char **names;
    size_t n, i, j;
    unsigned b;
    int rc = 0;

    for (b = 0; b < 4096 && rc == 0; b++) {
        snprintf(dir, sizeof(dir), "%03x", b);
        if (read_names(ms->fd, dir, NULL, &names, &n) != 0)
            return err_set(err, errlen, errno, "members/%s/%s: %s", ms->list,
                           dir, strerror(errno));
        if (n > 1) /* a key's names together */
            qsort(names, n, sizeof(*names), cmp_str);
        for (i = 0; i < n && rc == 0; i = j) {
            char key[MEMBER_KEY_LEN + 1];
            for (j = i + 1; j < n && strncmp(names[i], names[j],
                                             MEMBER_KEY_LEN) == 0;
                 j++)
                ;
            if (strlen(names[i]) < MEMBER_KEY_LEN)
                continue;
            snprintf(key, sizeof(key), "%.*s", MEMBER_KEY_LEN, names[i]);
            fold_key(ms, key, names + i, j - i, pol, now, &mi);
            if (mi.address[0])
                rc = fn(arg, &mi);
        }
        strings_free(names, n);
    }
    return rc < 0 ? -1 : 0;
}

int member_index_list(struct member_store *ms, char ***out, size_t *n,
                      char *err, size_t errlen)
{
    char **names, rel[MEMBER_KEY_LEN + 16];
    size_t m, i, k = 0;

    if (read_names(ms->fd, "disabled", NULL, &names, &m) != 0)
        return err_set(err, errlen, errno, "members/%s/disabled: %s", ms->list,
                       strerror(errno));
    for (i = 0; i < m; i++) {
        char addr[MEMBER_ADDR_MAX] = "";
        int fd;
        ssize_t got;
        snprintf(rel, sizeof(rel), "disabled/%s", names[i]);
        fd = openat(ms->fd, rel, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        got = fd >= 0 ? read(fd, addr, sizeof(addr) - 1) : -1;
        if (fd >= 0)
            close(fd);
        free(names[i]);
        names[i] = NULL;
        if (got <= 0)
            continue;
        addr[got] = 0;
        addr[strcspn(addr, "\n")] = 0;
        if (members_plausible(addr) && !(names[k++] = strdup(addr))) {
            strings_free(names, k - 1);
            return err_set(err, errlen, ENOMEM, "out of memory");
        }
    }
    *out = names;
    *n = k;
    return 0;
}

/* ----------------------------------------------- the set mmq-process skips */

static int cmp_key(const void *a, const void *b)
{
    return memcmp(a, b, MEMBER_KEY_LEN);
}

int member_disabled_load(struct member_disabled *d, const char *spool_path,
                         const char *list, char *err, size_t errlen)
{
    char path[PATH_MAX], low[LIST_NAME_MAX + 1];
    char **names;
    size_t n, i;
    int fd;

    memset(d, 0, sizeof(*d));
    if (list_name_normalise(list, low) != 0)
        return err_set(err, errlen, EINVAL, "invalid list name \"%s\"", list);
    snprintf(path, sizeof(path), "%s/members/%s", spool_path, low);
    if ((fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
        return errno == ENOENT
                   ? 0
                   : err_set(err, errlen, errno, "%s: %s", path,
                             strerror(errno));
    if (read_names(fd, "disabled", NULL, &names, &n) != 0) {
        err_set(err, errlen, errno, "%s/disabled: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    close(fd);
    if (n && !(d->keys = malloc(n * sizeof(*d->keys)))) {
        strings_free(names, n);
        return err_set(err, errlen, ENOMEM, "out of memory");
    }
    for (i = 0; i < n; i++)
        if (strlen(names[i]) == MEMBER_KEY_LEN)
            memcpy(d->keys[d->n++], names[i], MEMBER_KEY_LEN + 1);
    strings_free(names, n);
    if (d->n)
        qsort(d->keys, d->n, sizeof(*d->keys), cmp_key);
    return 0;
}

int member_disabled_has(const struct member_disabled *d, const char *address)
{
    char key[MEMBER_KEY_LEN + 1];

    if (d->n == 0)
        return 0;
    member_key(address, key);
    return bsearch(key, d->keys, d->n, sizeof(*d->keys), cmp_key) != NULL;
}

void member_disabled_free(struct member_disabled *d)
{
    free(d->keys);
    memset(d, 0, sizeof(*d));
}

/* ---------------------------------------------------- the members file */

static int line_matches(const char *s, size_t len, char **addrs, size_t n)
{
    size_t i;

    while (len && (*s == ' ' || *s == '\t'))
        s++, len--;
    while (len && isspace((unsigned char)s[len - 1]))
        len--;
    for (i = 0; i < n; i++)
        if (strlen(addrs[i]) == len && strncasecmp(s, addrs[i], len) == 0)
            return 1;
    return 0;
}

static int read_whole(const char *path, struct buf *b, struct stat *st)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    ssize_t got;

    if (fd < 0 || fstat(fd, st) != 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    b->len = 0;
    if (buf_reserve(b, (size_t)st->st_size) != 0) {
        close(fd);
        return -1;
    }
    got = read(fd, b->data, (size_t)st->st_size);
    close(fd);
    if (got != st->st_size) {
        errno = EIO;
        return -1;
    }
    b->len = (size_t)got;
    return 0;
}

static int same_file(const struct stat *a, const struct stat *b)
{
    return a->st_ino == b->st_ino && a->st_dev == b->st_dev &&
           a->st_size == b->st_size &&
           a->st_mtim.tv_sec == b->st_mtim.tv_sec &&
           a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

/* Write out to a temporary file beside path and rename it over path if
 * path is unchanged since st: 0 done, 1 changed meanwhile, -1 error. */
static int replace_if_unchanged(const char *path, const struct stat *st,
                                const struct buf *out)
{
    char tmp[PATH_MAX], dir[PATH_MAX], *slash;
    struct stat now;
    int fd;

    /* one name, not one per pid: only the holder of members_lock() writes
     * it, and a file a writer killed before its rename left behind is
     * truncated and renamed away by the next writer instead of staying
     * beside the members file for ever (t/command-kill.sh) */
    snprintf(tmp, sizeof(tmp), "%s.mmq-tmp", path);
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW,
              st->st_mode & 0777);
    if (fd < 0)
        return -1;
    if (fchown(fd, st->st_uid, st->st_gid) != 0) {
        /* not ours to give away: the file keeps our ownership */
    }
    if (write(fd, out->data, out->len) != (ssize_t)out->len || fsync(fd) != 0) {
        close(fd);
        unlink(tmp);
        return -1;
    }
    close(fd);
    if (stat(path, &now) != 0 || !same_file(&now, st)) {
        unlink(tmp);
        return 1;
    }
    if (rename(tmp, path) != 0) {
        unlink(tmp);
        return -1;
    }
    snprintf(dir, sizeof(dir), "%s", path);
    if ((slash = strrchr(dir, '/')))
        *slash = 0;
    (void)fsync_dir_at(AT_FDCWD, slash ? dir : "."); /* as before: best effort */
    return 0;
}

/* Write kept lines to tmp and rename over path if path is unchanged:
 * 0 done, 1 changed meanwhile, -1 error. */
static int rewrite_members(const char *path, const struct buf *in,
                           const struct stat *st, char **addrs, size_t n,
                           size_t *removed)
{
    const char *p = in->data, *end = in->data + in->len;
    struct buf out;
    int rc = -1;

    buf_init(&out);
    *removed = 0;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t len = nl ? (size_t)(nl + 1 - p) : (size_t)(end - p);
        if (line_matches(p, nl ? len - 1 : len, addrs, n))
            (*removed)++;
        else if (buf_append(&out, p, len) != 0)
            goto out;
        p += len;
    }
    rc = *removed == 0 ? 0 : replace_if_unchanged(path, st, &out);
out:
    buf_free(&out);
    return rc;
}

/*
 * Lock the members file against the other writers (flock(2), which
 * GlusterFS enforces across mounts): an open descriptor of the file that
 * path names, locked; -1 on error or after about 10 s of waiting (EAGAIN:
 * the caller gives its work back and retries later, never blocks for
 * ever).  Why: "rename only if unchanged" alone is a check then an act:
 * two writers (two nodes, or mmq-process and mmq-bounce) can both find the
 * file unchanged and both rename, and the first one's change is lost.
 * The lock is on the inode, and a writer replaces the inode: so once
 * locked, the path must still name the locked file, else try again.
 */
static int members_lock(const char *path)
{
    struct stat a, b;
    int fd, i, e;

    for (i = 0; i < 1000; i++) {
        if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) < 0) {
            /* GlusterFS: a file another node just renamed over can give
             * ESTALE once; the next lookup finds the new one
             * (t/command-gluster.sh) */
            if (errno == ESTALE && i < 999) {
                usleep(10000);
                continue;
            }
            return -1;
        }
        if (flock(fd, LOCK_EX | LOCK_NB) == 0) {
            if (fstat(fd, &a) == 0 && stat(path, &b) == 0 &&
                a.st_ino == b.st_ino && a.st_dev == b.st_dev)
                return fd;
            e = errno;
            close(fd);
            if (e == ENOENT)
                return -1;
            continue; /* replaced meanwhile: lock the new one */
        }
        e = errno;
        close(fd);
        if (e != EWOULDBLOCK && e != EINTR) {
            errno = e;
            return -1;
        }
        usleep(10000);
    }
    errno = EAGAIN;
    return -1;
}

/* An edit of the members file's lines (rewrite_members, append_members):
 * 0 done, 1 changed meanwhile, -1 error. */
typedef int members_edit_fn(const char *path, const struct buf *in,
                            const struct stat *st, char **addrs, size_t n,
                            size_t *count);

/* Lock the file, then read, edit and replace it until it was unchanged
 * meanwhile (5 tries): the loop both writers share. */
static int members_file_edit(const char *path, members_edit_fn *edit,
                             char **addrs, size_t n, size_t *count, char *err,
                             size_t errlen)
{
    struct buf in;
    struct stat st;
    int tries, rc = 1, lock;

    *count = 0;
    if ((lock = members_lock(path)) < 0)
        return err_set(err, errlen, errno, "%s: cannot lock: %s", path,
                       strerror(errno));
    buf_init(&in);
    for (tries = 0; tries < 5 && rc == 1; tries++) {
        if (read_whole(path, &in, &st) != 0) {
            rc = -1;
            break;
        }
        rc = edit(path, &in, &st, addrs, n, count);
    }
    buf_free(&in);
    close(lock); /* after the rename: the next writer reads our file */
    if (rc == 1)
        return err_set(err, errlen, EAGAIN,
                       "%s: changed while being rewritten, 5 times", path);
    if (rc < 0)
        return err_set(err, errlen, errno, "%s: %s", path, strerror(errno));
    return 0;
}

int members_file_remove(const char *path, char **addrs, size_t n,
                        size_t *removed, char *err, size_t errlen)
{
    return members_file_edit(path, rewrite_members, addrs, n, removed, err,
                             errlen);
}

/* The file with the lines of the addresses not in it yet appended:
 * 0 done, 1 changed meanwhile, -1 error. */
static int append_members(const char *path, const struct buf *in,
                          const struct stat *st, char **addrs, size_t n,
                          size_t *added)
{
    const char *p, *end = in->data + in->len;
    struct buf out;
    size_t i, k;
    int rc = -1;

    buf_init(&out);
    *added = 0;
    if (buf_append(&out, in->data, in->len) != 0)
        goto out;
    if (out.len && out.data[out.len - 1] != '\n' && buf_puts(&out, "\n"))
        goto out;
    for (i = 0; i < n; i++) {
        int seen = 0;
        for (p = in->data; p < end && !seen;) {
            const char *nl = memchr(p, '\n', (size_t)(end - p));
            size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
            seen = line_matches(p, len, &addrs[i], 1);
            p += len + 1;
        }
        for (k = 0; k < i && !seen; k++) /* twice in addrs */
            seen = strcasecmp(addrs[k], addrs[i]) == 0;
        if (seen)
            continue;
        if (buf_printf(&out, "%s\n", addrs[i]) != 0)
            goto out;
        (*added)++;
    }
    rc = *added == 0 ? 0 : replace_if_unchanged(path, st, &out);
out:
    buf_free(&out);
    return rc;
}

int members_file_add(const char *path, char **addrs, size_t n, size_t *added,
                     char *err, size_t errlen)
{
    size_t i;

    *added = 0;
    for (i = 0; i < n; i++)
        if (!members_plausible(addrs[i]))
            return err_set(err, errlen, EINVAL, "\"%.80s\": not an address",
                           addrs[i]);
    return members_file_edit(path, append_members, addrs, n, added, err,
                             errlen);
}
