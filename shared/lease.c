/*
 * lease - slice leases between nodes sharing a spool.  See lease.h for
 * the files, the timing argument and the contract.
 *
 * Every decision here is taken from files read in this round; the only
 * state carried between rounds is what we observed and when (on our own
 * monotonic clock), and which generation we hold.
 */
#include "autoconf.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "digest.h"
#include "lease.h"
#include "log.h"
#include "proc.h"

#define LEASE_DIR "lease"
#define LEASE_FILE_MAX 512
#define LEASE_GEN_MAX 10000000000ULL /* ten digits */

double lease_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---------------------------------------------------------------- files */

/* SPOOL/lease, made on first use (spools made before leases existed lack
 * it) and held to the same rules as the queues: ours, not world-writable. */
static int open_dir(struct spool *sp, char *err, size_t errlen)
{
    struct stat st, top;
    int fd;

    if (mkdirat(sp->fd, LEASE_DIR, S_ISGID | 0770) != 0 && errno != EEXIST)
        return err_set(err, errlen, errno, "mkdir %s/%s: %s", sp->path,
                       LEASE_DIR, strerror(errno));
    fd = openat(sp->fd, LEASE_DIR,
                O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return err_set(err, errlen, errno, "%s/%s: %s", sp->path, LEASE_DIR,
                       strerror(errno));
    if (fstat(fd, &st) != 0 || fstat(sp->fd, &top) != 0 ||
        (st.st_mode & S_IWOTH) || st.st_uid != top.st_uid) {
        close(fd);
        return err_set(err, errlen, EPERM,
                       "%s/%s: unsafe: world-writable or not owned by the "
                       "spool's owner",
                       sp->path, LEASE_DIR);
    }
    return fd;
}

/* Read a small regular file into buf (NUL-terminated).  Bytes, or -1. */
static ssize_t read_small(int dfd, const char *name, char *buf, size_t len)
{
    struct stat st;
    ssize_t n;
    int fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);

    if (fd < 0)
        return -1;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        errno = EINVAL;
        return -1;
    }
    n = read(fd, buf, len - 1);
    close(fd);
    if (n < 0)
        return -1;
    buf[n] = 0;
    return n;
}

/* The value after "key " on a line of buf, copied to out. 0, or -1. */
static int field(const char *buf, const char *key, char *out, size_t outlen)
{
    size_t k = strlen(key), n;
    const char *p = buf;

    while (p && *p) {
        if (strncmp(p, key, k) == 0 && p[k] == ' ') {
            p += k + 1;
            n = strcspn(p, "\n");
            /* a value not ended by its newline may be cut (a read racing a
             * write on a shared filesystem): not taken */
            if (n == 0 || n >= outlen || p[n] != '\n')
                return -1;
            memcpy(out, p, n);
            out[n] = 0;
            for (size_t i = 0; i < n; i++)
                if ((unsigned char)out[i] < 0x20 || out[i] == '/')
                    return -1;
            return 0;
        }
        p = strchr(p, '\n');
        if (p)
            p++;
    }
    return -1;
}

static void gen_name(char *out, size_t len, const char *stage, unsigned i,
                     uint64_t gen)
{
    snprintf(out, len, "%s.%u.%010" PRIu64, stage, i, gen);
}

/* "NODE PID START" -> the heartbeat file name of that agent. */
static int hb_name(char *out, size_t len, const char *stage, const char *holder)
{
    char node[64];
    long pid;
    unsigned long long start;

    if (sscanf(holder, "%63s %ld %llu", node, &pid, &start) != 3 || pid <= 0 ||
        !config_valid_node(node))
        return -1;
    snprintf(out, len, "hb.%s.%s.%ld.%llu", stage, node, pid, start);
    return 0;
}

/* The sequence number (and wall time) of a heartbeat's text buf, -1 if
 * it has none. */
static long long hb_parse_seq(const char *buf, long long *wall)
{
    char v[32];
    long long seq;

    if (wall)
        *wall = 0;
    if (field(buf, "seq", v, sizeof(v)) != 0 || sscanf(v, "%lld", &seq) != 1)
        return -1;
    if (wall && field(buf, "wall", v, sizeof(v)) == 0)
        sscanf(v, "%lld", wall);
    return seq;
}

/* The heartbeat counter in file name, -1 if missing or unreadable. */
static long long hb_seq(int dfd, const char *name, long long *wall)
{
    char buf[LEASE_FILE_MAX];

    if (wall)
        *wall = 0;
    if (read_small(dfd, name, buf, sizeof(buf)) < 0)
        return -1;
    return hb_parse_seq(buf, wall);
}

/* Write content to our own temporary name; fsync when asked. */
static int write_tmp(struct lease_set *ls, const char *tmp, const char *text,
                     int sync)
{
    size_t len = strlen(text);
    int fd =
        openat(ls->dfd, tmp,
               O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0640);

    if (fd < 0)
        return -1;
    if (write(fd, text, len) != (ssize_t)len || (sync && fsync(fd) != 0)) {
        int e = errno ? errno : EIO;
        close(fd);
        unlinkat(ls->dfd, tmp, 0);
        errno = e;
        return -1;
    }
    return close(fd);
}

/*
 * Make generation gen of slice i with our name on it.  0: it is ours;
 * 1: somebody made it first; -1: error.  link(2) never replaces a name,
 * which is the whole point: rename(2) onto a shared name can "succeed"
 * for two clients at once on GlusterFS.
 */
static int make_gen(struct lease_set *ls, unsigned i, uint64_t gen,
                    int free_state, char *err, size_t errlen)
{
    char tmp[256], name[128], text[LEASE_FILE_MAX];
    int rc = 0;

    snprintf(tmp, sizeof(tmp), ".tmp.%s", ls->hb + 3);
    gen_name(name, sizeof(name), ls->stage, i, gen);
    snprintf(text, sizeof(text),
             "mmq-lease 1\nholder %s\nstate %s\nwall %lld\n", ls->me,
             free_state ? "free" : "held", (long long)time(NULL));
    /* fsync: a file server that restarts must not forget a generation,
     * or somebody could make it a second time. */
    if (write_tmp(ls, tmp, text, 1) != 0)
        return err_set(err, errlen, errno, "%s/lease/%s: %s", ls->sp->path, tmp,
                       strerror(errno));
    if (linkat(ls->dfd, tmp, ls->dfd, name, 0) != 0) {
        if (errno == EEXIST)
            rc = 1;
        else
            rc = err_set(err, errlen, errno, "link %s/lease/%s: %s",
                         ls->sp->path, name, strerror(errno));
    }
    unlinkat(ls->dfd, tmp, 0);
    if (rc == 0 && fsync(ls->dfd) != 0)
        log_warn("fsync %s/lease: %s", ls->sp->path, strerror(errno));
    return rc;
}

struct gen_info {
    char holder[160];
    char node[64];
    int free;
    int readable;
};

static void read_gen(int dfd, const char *stage, unsigned i, uint64_t gen,
                     struct gen_info *g)
{
    char name[128], buf[LEASE_FILE_MAX], state[16];

    memset(g, 0, sizeof(*g));
    gen_name(name, sizeof(name), stage, i, gen);
    if (read_small(dfd, name, buf, sizeof(buf)) < 0 ||
        strncmp(buf, "mmq-lease 1\n", 12) != 0 ||
        field(buf, "holder", g->holder, sizeof(g->holder)) != 0 ||
        field(buf, "state", state, sizeof(state)) != 0 ||
        sscanf(g->holder, "%63s", g->node) != 1)
        return; /* unreadable: judged by its (absent) heartbeat */
    g->free = strcmp(state, "free") == 0;
    g->readable = 1;
}

/* Does generation gen of slice i exist? */
static int gen_exists(int dfd, const char *stage, unsigned i, uint64_t gen)
{
    char name[128];
    struct stat st;

    gen_name(name, sizeof(name), stage, i, gen);
    return fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0;
}

/* Highest generation of every slice: from a listing (which may be stale
 * on a shared file system, but only ever too low), then probed upward by
 * name, which asks the server. */
static int scan_gens(int dfd, const char *stage, unsigned n, uint64_t *gen,
                     char *err, size_t errlen)
{
    size_t sl = strlen(stage);
    struct dirent *de;
    DIR *d;
    int fd = openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);

    if (fd < 0 || !(d = fdopendir(fd))) {
        if (fd >= 0)
            close(fd);
        return err_set(err, errlen, errno, "lease/: %s", strerror(errno));
    }
    while ((de = readdir(d)) != NULL) {
        unsigned i;
        uint64_t g;
        char tail;

        if (strncmp(de->d_name, stage, sl) != 0 || de->d_name[sl] != '.' ||
            strlen(de->d_name + sl + 1) > 40 ||
            sscanf(de->d_name + sl + 1, "%u.%" SCNu64 "%c", &i, &g, &tail) !=
                2 ||
            i >= n || g >= LEASE_GEN_MAX)
            continue; /* not a generation of ours (or absurd) */
        if (g > gen[i])
            gen[i] = g;
    }
    closedir(d);
    for (unsigned i = 0; i < n; i++)
        while (gen[i] + 1 < LEASE_GEN_MAX &&
               gen_exists(dfd, stage, i, gen[i] + 1))
            gen[i]++;
    return 0;
}

/* ----------------------------------------------------------------- open */

int lease_split(const struct mmq_config *cfg, const char *stage,
                const struct slice_set *sel, struct slice_set *own,
                struct slice_set *standby, char *err, size_t errlen)
{
    const struct mmq_node *me = config_node(cfg, cfg->node);
    unsigned i, n = (unsigned)cfg->slices;

    own->on = standby->on = NULL;
    if (!me)
        return err_set(err, errlen, EINVAL, "node %s is not in nodes",
                       cfg->node);
    if (slice_set_parse(strcmp(stage, "process") == 0  ? me->process
                        : strcmp(stage, "bounce") == 0 ? me->bounce
                                                       : me->deliver,
                        n, own, err, (unsigned)errlen) != 0)
        return -1;
    if (slice_set_parse(me->standby, n, standby, err, (unsigned)errlen) != 0) {
        slice_set_free(own);
        return -1;
    }
    for (i = 0; i < n; i++) {
        int in = i < sel->n && sel->on[i];
        own->on[i] = own->on[i] && in;
        standby->on[i] = standby->on[i] && in && !own->on[i];
    }
    return 0;
}

/* ------------------------------------------------------------- identity */

int lease_host_id(char *out, size_t len)
{
    char buf[128];
    int fd = open("/proc/sys/kernel/random/boot_id", O_RDONLY | O_CLOEXEC);
    ssize_t n = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : -1;

    if (fd >= 0)
        close(fd);
    if (n <= 0) {
        snprintf(out, len, "unknown");
        return -1;
    }
    buf[n] = 0;
    buf[strcspn(buf, "\n ")] = 0;
    snprintf(out, len, "%s", buf);
    return 0;
}

static int cmp_node(const void *a, const void *b)
{
    return strcmp((*(const struct mmq_node *const *)a)->name,
                  (*(const struct mmq_node *const *)b)->name);
}

/* Append the set spec as a bitmap of n slices ('0'/'1'). */
static int put_set(char *out, size_t len, size_t *o, const char *spec,
                   unsigned n)
{
    struct slice_set set;
    char why[128];
    unsigned i;

    if (slice_set_parse(spec, n, &set, why, sizeof(why)) != 0)
        return -1;
    for (i = 0; i < n && *o + 2 < len; i++)
        out[(*o)++] = set.on[i] ? '1' : '0';
    out[(*o)++] = ';';
    slice_set_free(&set);
    return 0;
}

int lease_map_digest(const struct mmq_config *cfg, char *hex)
{
    const struct mmq_node **v = calloc(cfg->nnodes + 1, sizeof(*v));
    unsigned n = (unsigned)cfg->slices;
    size_t k, o = 0, len = 64 + (cfg->nnodes + 1) * (3 * (n + 1) + 80);
    char *text = malloc(len);
    int rc = -1;

    if (!v || !text)
        goto out;
    for (k = 0; k < cfg->nnodes; k++)
        v[k] = &cfg->nodes[k];
    qsort(v, cfg->nnodes, sizeof(*v), cmp_node);
    o = (size_t)snprintf(text, len, "slices %u;", n);
    for (k = 0; k < cfg->nnodes; k++) {
        o += (size_t)snprintf(text + o, len - o, "%s:", v[k]->name);
        if (put_set(text, len, &o, v[k]->process, n) != 0 ||
            put_set(text, len, &o, v[k]->deliver, n) != 0 ||
            put_set(text, len, &o, v[k]->standby, n) != 0)
            goto out;
    }
    digest_hex_of(text, o, hex);
    rc = 0;
out:
    free(v);
    free(text);
    return rc;
}

int lease_open(struct lease_set *ls, struct spool *sp, const char *stage,
               const struct slice_set *own, const struct slice_set *standby,
               char *err, size_t errlen)
{
    const struct mmq_node *me = config_node(sp->cfg, sp->cfg->node);
    unsigned i;

    memset(ls, 0, sizeof(*ls));
    ls->dfd = -1;
    ls->sp = sp;
    ls->cfg = sp->cfg;
    ls->n = own->n;
    snprintf(ls->stage, sizeof(ls->stage), "%s", stage);
    ls->takeover_after = me ? me->takeover_after
                            : sp->cfg->lease_time + 2 * sp->cfg->lease_margin;
    snprintf(ls->me, sizeof(ls->me), "%s %ld %llu", sp->cfg->node,
             (long)sp->pid, sp->start);
    snprintf(ls->hb, sizeof(ls->hb), "hb.%s.%s.%ld.%llu", stage, sp->cfg->node,
             (long)sp->pid, sp->start);
    if ((ls->dfd = open_dir(sp, err, errlen)) < 0)
        return -1;
    lease_host_id(ls->host, sizeof(ls->host));
    if (lease_map_digest(sp->cfg, ls->map) != 0)
        snprintf(ls->map, sizeof(ls->map), "unknown");
    ls->s = calloc(ls->n ? ls->n : 1, sizeof(*ls->s));
    ls->shared_len = (ls->n ? ls->n : 1) * sizeof(double);
    ls->shared = mmap(NULL, ls->shared_len, PROT_READ | PROT_WRITE,
                      MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (!ls->s || ls->shared == MAP_FAILED) {
        ls->shared = NULL;
        lease_close(ls);
        return err_set(err, errlen, ENOMEM, "out of memory");
    }
    for (i = 0; i < ls->n; i++) {
        ls->s[i].lock_fd = -1;
        if (own->on[i])
            ls->s[i].role = LEASE_ROLE_OWN;
        else if (standby && i < standby->n && standby->on[i])
            ls->s[i].role = LEASE_ROLE_STANDBY;
    }
    return 0;
}

/* ------------------------------------------------------------ the round */

static int write_heartbeat(struct lease_set *ls)
{
    char tmp[256], text[256];

    snprintf(tmp, sizeof(tmp), ".tmp.%s", ls->hb + 3);
    snprintf(text, sizeof(text), "seq %lld\nwall %lld\nhost %s\nmap %s\n",
             ++ls->seq, (long long)time(NULL), ls->host, ls->map);
    /* No fsync: a heartbeat lost in a crash is only a missed renewal. */
    if (write_tmp(ls, tmp, text, 0) != 0)
        return -1;
    if (renameat(ls->dfd, tmp, ls->dfd, ls->hb) != 0) {
        int e = errno;
        unlinkat(ls->dfd, tmp, 0);
        errno = e;
        return -1;
    }
    return 0;
}

static void drop(struct lease_set *ls, unsigned i)
{
    struct lease_slice *s = &ls->s[i];

    s->mine = 0;
    s->read_gen = 0;
    s->handing_back = 0;
    s->valid_until = 0;
    s->obs_set = 0;
    ls->shared[i] = 0;
    if (s->role == LEASE_ROLE_STANDBY && s->lock_fd >= 0) {
        close(s->lock_fd); /* let another agent of this node have it */
        s->lock_fd = -1;
    }
}

/* The configured owner of a slice we hold asks for it back, and its
 * heartbeat has moved since we first saw the request: hand it back. */
static int owner_wants(struct lease_set *ls, unsigned i)
{
    struct lease_slice *s = &ls->s[i];
    const struct mmq_node *owner = config_slice_owner(ls->cfg, ls->stage, i);
    char name[128], buf[LEASE_FILE_MAX], holder[160], hb[200], node[64];
    long long seq;

    if (!owner || strcmp(owner->name, ls->cfg->node) == 0)
        return 0;
    snprintf(name, sizeof(name), "want.%s.%u", ls->stage, i);
    if (read_small(ls->dfd, name, buf, sizeof(buf)) < 0 ||
        field(buf, "holder", holder, sizeof(holder)) != 0 ||
        sscanf(holder, "%63s", node) != 1 || strcmp(node, owner->name) != 0 ||
        hb_name(hb, sizeof(hb), ls->stage, holder) != 0)
        return 0;
    seq = hb_seq(ls->dfd, hb, NULL);
    if (seq < 0)
        return 0;
    if (strcmp(hb, s->want_hb) != 0) {
        snprintf(s->want_hb, sizeof(s->want_hb), "%s", hb);
        s->want_seq = seq;
        return 0;
    }
    return seq != s->want_seq;
}

static void ask_back(struct lease_set *ls, unsigned i)
{
    char name[128], tmp[256], text[256];

    if (ls->s[i].want_written)
        return;
    snprintf(name, sizeof(name), "want.%s.%u", ls->stage, i);
    snprintf(tmp, sizeof(tmp), ".want.%s", ls->hb + 3);
    snprintf(text, sizeof(text), "holder %s\nwall %lld\n", ls->me,
             (long long)time(NULL));
    /* Only the configured owner writes this name. */
    if (write_tmp(ls, tmp, text, 0) != 0 ||
        renameat(ls->dfd, tmp, ls->dfd, name) != 0) {
        log_warn("lease %s %u: cannot ask for it back: %s", ls->stage, i,
                 strerror(errno));
        unlinkat(ls->dfd, tmp, 0);
        return;
    }
    ls->s[i].want_written = 1;
    log_info("lease %s %u: asking its holder to hand it back", ls->stage, i);
}

static void clear_want(struct lease_set *ls, unsigned i)
{
    char name[128], buf[LEASE_FILE_MAX], holder[160];

    snprintf(name, sizeof(name), "want.%s.%u", ls->stage, i);
    if (read_small(ls->dfd, name, buf, sizeof(buf)) >= 0 &&
        field(buf, "holder", holder, sizeof(holder)) == 0 &&
        strcmp(holder, ls->me) == 0)
        unlinkat(ls->dfd, name, 0);
    ls->s[i].want_written = 0;
}

/* A slice we hold: renew, or notice we lost it, or hand it back. */
static void tend_mine(struct lease_set *ls, unsigned i, uint64_t top, double t0,
                      int renewed, int (*busy)(void *, unsigned), void *arg)
{
    struct lease_slice *s = &ls->s[i];
    struct gen_info g;
    char err[QUEUE_ERR_MAX];

    /* A generation file is written once (made by link(2), never changed
     * in place), so once we read it naming us it names us for good: what
     * can take the slice from us is a newer generation (top > s->gen),
     * which scan_gens() finds.  Reading it again each round cost four
     * round trips per held slice on GlusterFS. */
    memset(&g, 0, sizeof(g));
    if (s->read_gen != s->gen || top > s->gen)
        read_gen(ls->dfd, ls->stage, i, s->gen, &g);
    else {
        g.readable = 1;
        snprintf(g.holder, sizeof(g.holder), "%s", ls->me);
    }
    if (top > s->gen || !g.readable || strcmp(g.holder, ls->me) != 0) {
        s->read_gen = 0;
        log_warn("lease %s %u: lost (generation %" PRIu64 " is not ours): "
                 "stopping work on it",
                 ls->stage, i, top);
        drop(ls, i);
        s->gen = top;
        return;
    }
    s->read_gen = s->gen;
    if (t0 >= s->valid_until) {
        /* We were not renewed in time; somebody may be taking over.
         * Never resume on a lapsed lease: take a new generation. */
        log_warn("lease %s %u: expired before it was renewed", ls->stage, i);
        drop(ls, i);
        return;
    }
    if (renewed)
        s->valid_until = t0 + ls->cfg->lease_time;
    if (!s->handing_back && owner_wants(ls, i)) {
        s->handing_back = 1;
        log_info("lease %s %u: its owner is back; handing it back", ls->stage,
                 i);
    }
    if (s->handing_back && !(busy && busy(arg, i))) {
        if (make_gen(ls, i, s->gen + 1, 1, err, sizeof(err)) == 0) {
            log_info("lease %s %u: handed back (generation %" PRIu64 ")",
                     ls->stage, i, s->gen + 1);
            s->gen++;
        }
        drop(ls, i);
    }
}

/* How long someone else's lease must look unchanged before we take it. */
static double patience(const struct lease_set *ls, unsigned i,
                       const struct gen_info *g, uint64_t gen)
{
    if (ls->s[i].role == LEASE_ROLE_OWN && (gen == 0 || g->free))
        return 0; /* ours, and nobody holds it */
    return ls->takeover_after;
}

/* A slice someone else holds (or nobody): observe, and take it when the
 * holder has been silent long enough. */
static int tend_other(struct lease_set *ls, unsigned i, uint64_t top, double t0,
                      char *err, size_t errlen)
{
    struct lease_slice *s = &ls->s[i];
    struct gen_info g = {"", "", 0, 0};
    char hb[200];
    long long seq = -2; /* no lease at all */
    int dead_here = 0, rc;

    if (top > 0) {
        read_gen(ls->dfd, ls->stage, i, top, &g);
        seq = -1;
        if (g.free)
            seq = -3;
        else if (g.readable &&
                 hb_name(hb, sizeof(hb), ls->stage, g.holder) == 0) {
            long pid;
            unsigned long long start;
            seq = hb_seq(ls->dfd, hb, NULL);
            /* A holder on this node can be asked directly whether it
             * lives: a restarted agent need not wait for its own old
             * lease to expire. */
            if (strcmp(g.node, ls->cfg->node) == 0 &&
                sscanf(g.holder, "%*s %ld %llu", &pid, &start) == 2 &&
                !proc_alive((pid_t)pid, start))
                dead_here = 1;
            /* Our own generation, dropped because it lapsed or could not
             * be read: never resume it, take the next one (our heartbeat
             * keeps moving, so nobody else would ever take it). */
            if (strcmp(g.holder, ls->me) == 0)
                dead_here = 1;
        }
    }
    if (!s->obs_set || s->obs_gen != top || s->obs_seq != seq) {
        s->obs_set = 1;
        s->obs_gen = top;
        s->obs_seq = seq;
        s->obs_since = t0;
    }
    s->gen = top;
    if (s->role == LEASE_ROLE_OWN && top > 0 && !g.free && seq >= 0 &&
        !dead_here)
        ask_back(ls, i);
    if (!dead_here && t0 - s->obs_since < patience(ls, i, &g, top))
        return 0;
    if (s->role == LEASE_ROLE_STANDBY && s->lock_fd < 0) {
        /* another agent of this node may serve this slice already */
        if (spool_lock_slice(ls->sp, ls->stage, i, &s->lock_fd, err, errlen))
            return 0;
    }
    rc = make_gen(ls, i, top + 1, 0, err, errlen);
    if (rc != 0) {
        if (rc < 0)
            log_error("lease %s %u: %s", ls->stage, i, err);
        return 0; /* somebody else was faster: observe them next round */
    }
    s->gen = top + 1;
    s->mine = 1;
    s->valid_until = t0 + ls->cfg->lease_time;
    s->obs_set = 0;
    /* An owner's request counts only if its heartbeat moves after this:
     * a request left by an owner that died must not bounce the slice
     * back and forth between us and nobody. */
    s->want_hb[0] = 0;
    if (s->role == LEASE_ROLE_OWN)
        clear_want(ls, i);
    log_info("lease %s %u: acquired generation %" PRIu64 " (%s)", ls->stage, i,
             s->gen,
             top == 0    ? "first lease"
             : g.free    ? "released by its holder"
             : dead_here ? "its holder on this node is gone or lapsed"
                         : "its holder stopped renewing");
    return 1;
}

/* ---------------------------------------------------------------- peers */

/* "hb.STAGE.NODE.PID.START" (NODE may hold dots) into p. 0, or -1. */
static int parse_hb_name(const char *name, struct lease_peer *p)
{
    const char *s = name + 3, *dot = strchr(s, '.'), *r1, *r2;
    size_t n;

    if (strncmp(name, "hb.", 3) != 0 || !dot || (size_t)(dot - s) >= 16 ||
        strlen(name) >= sizeof(p->name))
        return -1;
    memcpy(p->stage, s, (size_t)(dot - s));
    p->stage[dot - s] = 0;
    if (!(r2 = strrchr(dot + 1, '.')) || r2 == dot + 1)
        return -1;
    for (r1 = r2 - 1; r1 > dot && *r1 != '.'; r1--)
        ;
    n = (size_t)(r1 - dot - 1);
    if (r1 == dot || n == 0 || n >= sizeof(p->node))
        return -1;
    memcpy(p->node, dot + 1, n);
    p->node[n] = 0;
    memcpy(p->name, name, strlen(name) + 1);
    return config_valid_node(p->node) ? 0 : -1;
}

static int read_peers(int dfd, struct lease_peer *out, size_t max)
{
    struct dirent *de;
    size_t k = 0;
    DIR *d;
    int fd = openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);

    if (fd < 0 || !(d = fdopendir(fd))) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    while (k < max && (de = readdir(d)) != NULL) {
        struct lease_peer *p = &out[k];
        char buf[LEASE_FILE_MAX];

        memset(p, 0, sizeof(*p));
        if (parse_hb_name(de->d_name, p) != 0 ||
            read_small(dfd, de->d_name, buf, sizeof(buf)) < 0)
            continue;
        /* from the text just read: reading the file again cost another
         * open, read and close per heartbeat per round over FUSE */
        p->seq = hb_parse_seq(buf, &p->wall);
        /* only well-formed values count: a boot id (36 characters of hex
         * and '-') and a SHA-1 in hex; anything else is as if absent, so
         * that a damaged heartbeat never makes us refuse to run */
        if (field(buf, "host", p->host, sizeof(p->host)) != 0 ||
            strlen(p->host) != 36 || strspn(p->host, "0123456789abcdef-") != 36)
            p->host[0] = 0;
        if (field(buf, "map", p->map, sizeof(p->map)) != 0 ||
            strlen(p->map) != 40 || strspn(p->map, "0123456789abcdef") != 40)
            p->map[0] = 0;
        k++;
    }
    closedir(d);
    return (int)k;
}

int lease_peers(struct spool *sp, struct lease_peer *out, size_t max, char *err,
                size_t errlen)
{
    int n, dfd = openat(sp->fd, LEASE_DIR,
                        O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

    if (dfd < 0)
        return errno == ENOENT ? 0
                               : err_set(err, errlen, errno, "%s/lease: %s",
                                         sp->path, strerror(errno));
    n = read_peers(dfd, out, max);
    close(dfd);
    if (n < 0)
        return err_set(err, errlen, errno, "%s/lease: %s", sp->path,
                       strerror(errno));
    return n;
}

#define PEERS_MAX 256
#define MISMATCH_REPORT_EVERY 3600.0

struct lease_peer_obs {
    char name[200];
    long long seq;
    int alive;       /* its seq moved while we watched */
    double reported; /* when we last logged its map mismatch */
};

/*
 * Watch the other agents' heartbeats: a live one of our node name on
 * another host makes us fatal; a live one with another slice map is
 * logged (see lease.h).  The table is rebuilt from what is there now.
 */
static void check_peers(struct lease_set *ls, double t0)
{
    struct lease_peer *cur = calloc(PEERS_MAX, sizeof(*cur));
    struct lease_peer_obs *obs = calloc(PEERS_MAX, sizeof(*obs));
    int n = cur && obs ? read_peers(ls->dfd, cur, PEERS_MAX) : -1;

    for (int k = 0; k < n; k++) {
        struct lease_peer *p = &cur[k];
        struct lease_peer_obs *o = &obs[k];

        snprintf(o->name, sizeof(o->name), "%s", p->name);
        o->seq = p->seq;
        for (size_t j = 0; j < ls->npeers; j++)
            if (strcmp(ls->peers[j].name, p->name) == 0) {
                o->alive = ls->peers[j].alive || ls->peers[j].seq != p->seq;
                o->reported = ls->peers[j].reported;
            }
        if (strcmp(p->name, ls->hb) == 0 || !o->alive)
            continue;
        if (strcmp(p->node, ls->cfg->node) == 0 && p->host[0] &&
            strcmp(p->host, ls->host) != 0 && !ls->fatal_rounds) {
            ls->fatal_rounds = 1;
            snprintf(ls->fatal_err, sizeof(ls->fatal_err),
                     "node name %.63s is used by another host too (agent "
                     "%.100s runs on the host with boot id %.36s, we on "
                     "%.36s): two hosts "
                     "with one node name recover each other's entries as "
                     "their own; give each host its own node name in "
                     "mmq.conf: refusing to run",
                     p->node, p->name, p->host, ls->host);
        }
        if (p->map[0] && strcmp(p->map, ls->map) != 0 &&
            (o->reported == 0 || t0 - o->reported >= MISMATCH_REPORT_EVERY)) {
            o->reported = t0;
            log_error("slice map mismatch: agent %s of node %s has slice map "
                      "%.12s, we (node %s) have %.12s: the nodes lists of "
                      "their mmq.conf disagree, so both may own the same "
                      "slices; make them equal",
                      p->name, p->node, p->map, ls->cfg->node, ls->map);
        }
    }
    free(cur);
    if (n >= 0) {
        free(ls->peers);
        ls->peers = obs;
        ls->npeers = (size_t)n;
    } else {
        free(obs);
    }
}

int lease_tick(struct lease_set *ls, int (*busy)(void *, unsigned), void *arg,
               struct slice_set *gained, char *err, size_t errlen)
{
    double t0 = lease_now(), tick;
    uint64_t *top;
    int renewed, ngained = 0;
    unsigned i;

    /* the next round is due after lease_time/5 whatever becomes of this
     * one: a failing file system must not turn the caller into a spin */
    tick = ls->cfg->lease_time / 5.0;
    ls->next_tick = t0 + (tick < 0.5 ? 0.5 : tick);
    gained->n = ls->n;
    if (!(gained->on = calloc(ls->n ? ls->n : 1, 1)) ||
        !(top = calloc(ls->n ? ls->n : 1, sizeof(*top))))
        return err_set(err, errlen, ENOMEM, "out of memory");
    for (i = 0; i < ls->n; i++)
        top[i] = ls->s[i].gen;
    renewed = write_heartbeat(ls) == 0;
    if (!renewed)
        log_error("lease %s: cannot renew (%s/lease/%s): %s", ls->stage,
                  ls->sp->path, ls->hb, strerror(errno));
    if (ls->fatal_rounds) /* found in an earlier round: keep beating */
        ls->fatal = ++ls->fatal_rounds > 3;
    else
        check_peers(ls, t0);
    if (ls->fatal_rounds) {
        /* our node name is another host's too: no new work, no leases */
        for (i = 0; i < ls->n; i++)
            ls->shared[i] = 0;
        free(top);
        return 0;
    }
    if (scan_gens(ls->dfd, ls->stage, ls->n, top, err, errlen) != 0) {
        free(top);
        renewed = 0; /* we know nothing: let our leases run out */
        for (i = 0; i < ls->n; i++) {
            if (ls->s[i].mine && t0 >= ls->s[i].valid_until) {
                log_warn("lease %s %u: expired before it was renewed (the "
                         "lease files cannot be read): stopping work on it",
                         ls->stage, i);
                drop(ls, i);
            }
            ls->shared[i] = ls->s[i].mine ? ls->s[i].valid_until : 0;
        }
        return -1;
    }
    /* A round too slow to trust does not renew (see lease.h). */
    if (lease_now() - t0 > ls->cfg->lease_margin / 2.0) {
        if (renewed)
            log_warn("lease %s: renewal round took %.1f s, more than half "
                     "of lease_margin: not counted",
                     ls->stage, lease_now() - t0);
        renewed = 0;
    }
    for (i = 0; i < ls->n; i++) {
        if (!ls->s[i].role)
            continue;
        if (ls->s[i].mine)
            tend_mine(ls, i, top[i], t0, renewed, busy, arg);
        else if (tend_other(ls, i, top[i], t0, err, errlen)) {
            gained->on[i] = 1;
            ngained++;
        }
        ls->shared[i] =
            ls->s[i].mine && !ls->s[i].handing_back ? ls->s[i].valid_until : 0;
    }
    free(top);
    log_debug("lease %s: lease round %.2f ms", ls->stage,
              (lease_now() - t0) * 1000);
    return ngained;
}

int lease_active(const struct lease_set *ls, struct slice_set *out)
{
    double now = lease_now();
    unsigned i;

    out->n = ls->n;
    if (!(out->on = calloc(ls->n ? ls->n : 1, 1)))
        return -1;
    for (i = 0; i < ls->n; i++)
        out->on[i] = ls->shared[i] > now;
    return 0;
}

int lease_key_ok(const struct lease_set *ls, uint64_t key)
{
    struct timespec ts;
    double now;

    clock_gettime(CLOCK_MONOTONIC, &ts); /* async-signal-safe */
    now = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
    return ls->shared[slice_of(key, ls->n)] > now;
}

void lease_close(struct lease_set *ls)
{
    char err[QUEUE_ERR_MAX];
    unsigned i;

    for (i = 0; ls->s && ls->shared && i < ls->n; i++) {
        if (ls->s[i].mine &&
            make_gen(ls, i, ls->s[i].gen + 1, 1, err, sizeof(err)) == 0)
            log_info("lease %s %u: released", ls->stage, i);
        if (ls->s[i].lock_fd >= 0)
            close(ls->s[i].lock_fd);
    }
    if (ls->dfd >= 0) {
        unlinkat(ls->dfd, ls->hb, 0);
        close(ls->dfd);
    }
    if (ls->shared)
        munmap(ls->shared, ls->shared_len);
    free(ls->peers);
    free(ls->s);
    memset(ls, 0, sizeof(*ls));
    ls->dfd = -1;
}

/* ------------------------------------------------------------- reading */

int lease_info(struct spool *sp, const char *stage, struct lease_info *li,
               char *err, size_t errlen)
{
    unsigned i, n = (unsigned)sp->cfg->slices;
    uint64_t *top;
    int dfd = openat(sp->fd, LEASE_DIR,
                     O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

    memset(li, 0, n * sizeof(*li));
    if (dfd < 0)
        return errno == ENOENT ? 0
                               : err_set(err, errlen, errno, "%s/lease: %s",
                                         sp->path, strerror(errno));
    if (!(top = calloc(n, sizeof(*top)))) {
        close(dfd);
        return err_set(err, errlen, ENOMEM, "out of memory");
    }
    if (scan_gens(dfd, stage, n, top, err, errlen) != 0) {
        free(top);
        close(dfd);
        return -1;
    }
    for (i = 0; i < n; i++) {
        struct gen_info g;
        char hb[200];

        li[i].gen = top[i];
        if (top[i] == 0)
            continue;
        read_gen(dfd, stage, i, top[i], &g);
        snprintf(li[i].holder, sizeof(li[i].holder), "%s", g.holder);
        snprintf(li[i].node, sizeof(li[i].node), "%s", g.node);
        li[i].free = g.free;
        if (g.readable && hb_name(hb, sizeof(hb), stage, g.holder) == 0)
            hb_seq(dfd, hb, &li[i].hb_wall);
    }
    free(top);
    close(dfd);
    return 0;
}
