/*
 * members - mmqctl members, mmqctl bounces, and the bounce parts of stats
 * and check.  See members.h.
 */
#include "autoconf.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "counters.h"
#include "listdef.h"
#include "log.h"
#include "member.h"
#include "members.h"

/* ------------------------------------------------------------- output */

static void json_str(const char *s)
{
    putchar('"');
    for (; s && *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            printf("\\%c", c);
        else if (c < 0x20 || c == 0x7f)
            printf("\\u%04x", c);
        else
            putchar(c);
    }
    putchar('"');
}

static void iso_time(char *out, size_t len, int64_t t)
{
    time_t tt = (time_t)t;
    struct tm tm;

    if (!t) {
        snprintf(out, len, "-");
        return;
    }
    gmtime_r(&tt, &tm);
    strftime(out, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static void json_time(int64_t t)
{
    char s[32];

    if (!t) {
        fputs("null", stdout);
        return;
    }
    iso_time(s, sizeof(s), t);
    json_str(s);
}

/* Why the member is in its state, or what it last bounced with. */
static void reason_of(const struct member_info *mi, char *out, size_t len)
{
    if (mi->state != MEMBER_ENABLED && mi->disabled_by == 'X')
        snprintf(out, len, "disabled by the admin");
    else if (!mi->last_event)
        out[0] = 0;
    else
        snprintf(out, len, "%s%s%s%s",
                 mi->last_kind == 'T'   ? "delayed"
                 : mi->last_kind == 'P' ? "policy"
                                        : "failed",
                 mi->last_status[0] ? " " : "", mi->last_status,
                 mi->reason[0] ? ": " : "");
    if (mi->reason[0] &&
        !(mi->state != MEMBER_ENABLED && mi->disabled_by == 'X'))
        snprintf(out + strlen(out), len - strlen(out), "%s", mi->reason);
}

/* ------------------------------------------------------- state in memory */

struct infos {
    struct member_info *v;
    size_t n, cap;
};

static int collect(void *arg, const struct member_info *mi)
{
    struct infos *in = arg;

    if (in->n == in->cap) {
        size_t cap = in->cap ? in->cap * 2 : 64;
        struct member_info *nv = realloc(in->v, cap * sizeof(*nv));
        if (!nv)
            return -1;
        in->v = nv;
        in->cap = cap;
    }
    in->v[in->n++] = *mi;
    return 0;
}

static int cmp_info(const void *a, const void *b)
{
    return strcmp(((const struct member_info *)a)->key,
                  ((const struct member_info *)b)->key);
}

static const struct member_info *find_info(const struct infos *in,
                                           const char *address)
{
    struct member_info k;

    if (in->n == 0)
        return NULL;
    member_key(address, k.key);
    return bsearch(&k, in->v, in->n, sizeof(k), cmp_info);
}

struct listctx {
    struct listdef ld;
    struct members m;
    struct member_store ms;
    int have_state;
};

static int open_list(const struct mmq_config *cfg, const char *list,
                     struct listctx *lc, int create)
{
    char err[QUEUE_ERR_MAX];
    int rc;

    memset(lc, 0, sizeof(*lc));
    lc->ms.fd = -1;
    if (listdef_load(cfg, list, &lc->ld, err, sizeof(err)) != 0) {
        log_error("%s", err);
        return errno == ENOENT ? EX_NOINPUT : EX_CONFIG;
    }
    if (members_load(&lc->m, lc->ld.members_path, err, sizeof(err)) != 0) {
        log_error("list %s: %s", list, err);
        listdef_free(&lc->ld);
        return EX_NOINPUT;
    }
    rc = member_store_open(&lc->ms, cfg->spool, lc->ld.name, cfg->node, create,
                           err, sizeof(err));
    if (rc < 0) {
        log_error("list %s: %s", list, err);
        members_free(&lc->m);
        listdef_free(&lc->ld);
        return EX_TEMPFAIL;
    }
    lc->have_state = rc == 0;
    return EX_OK;
}

static void close_list(struct listctx *lc)
{
    member_store_close(&lc->ms);
    members_free(&lc->m);
    listdef_free(&lc->ld);
}

static int scan_list(struct listctx *lc, struct infos *in)
{
    char err[QUEUE_ERR_MAX];

    memset(in, 0, sizeof(*in));
    if (!lc->have_state)
        return EX_OK;
    if (member_scan(&lc->ms, &lc->ld.bounce, (int64_t)time(NULL), collect, in,
                    err, sizeof(err)) != 0) {
        log_error("list %s: %s", lc->ld.name, err);
        return EX_TEMPFAIL;
    }
    if (in->n)
        qsort(in->v, in->n, sizeof(*in->v), cmp_info);
    return EX_OK;
}

/* --------------------------------------------------------- the listing */

static void show_member(const char *address, const struct member_info *mi,
                        int json, int first)
{
    char reason[MEMBER_DIAG_MAX + 64] = "", when[32];
    const char *state = mi ? member_state_name(mi->state) : "enabled";

    if (mi)
        reason_of(mi, reason, sizeof(reason));
    if (json) {
        printf("%s{\"address\":", first ? "" : ",\n");
        json_str(address);
        printf(",\"state\":\"%s\",\"score\":%d,\"last_bounce\":",
               mi && mi->state == MEMBER_REMOVED ? "disabled" : state,
               mi ? mi->score : 0);
        json_time(mi ? mi->last_event : 0);
        fputs(",\"reason\":", stdout);
        if (reason[0])
            json_str(reason);
        else
            fputs("null", stdout);
        printf(",\"disabled_since\":");
        json_time(mi ? mi->disabled_since : 0);
        printf(",\"warnings\":%d,\"failed\":%u,\"delayed\":%u,\"policy\":%u}",
               mi ? mi->warnings : 0, mi ? mi->failed : 0, mi ? mi->delayed : 0,
               mi ? mi->policy : 0);
        return;
    }
    iso_time(when, sizeof(when), mi ? mi->last_event : 0);
    printf("%-40s %-8s %5d  %-20s  %s\n", address, state, mi ? mi->score : 0,
           when, reason[0] ? reason : "-");
}

static int list_members(const struct mmq_config *cfg, const char *list,
                        int json)
{
    struct listctx lc;
    struct infos in;
    size_t i;
    int rc = open_list(cfg, list, &lc, 0);

    if (rc != EX_OK)
        return rc;
    if ((rc = scan_list(&lc, &in)) == EX_OK) {
        if (json)
            putchar('[');
        else
            printf("%-40s %-8s %5s  %-20s  %s\n", "address", "state", "score",
                   "last bounce", "reason");
        for (i = 0; i < lc.m.n; i++)
            show_member(lc.m.addr[i], find_info(&in, lc.m.addr[i]), json,
                        i == 0);
        if (json)
            puts("]");
    }
    free(in.v);
    close_list(&lc);
    return rc;
}

/* ------------------------------------------------------------ the edits */

static int edit_one(const struct mmq_config *cfg, struct listctx *lc,
                    const char *action, const char *address, unsigned n)
{
    char err[QUEUE_ERR_MAX], id[MEMBER_ID_MAX];
    struct member_info mi;
    int64_t now = (int64_t)time(NULL);
    size_t removed;

    if (!members_contains(&lc->m, address)) {
        log_error("list %s: %s is not a member", lc->ld.name, address);
        return EX_NOUSER;
    }
    if (strcmp(action, "remove") == 0) {
        char *a = (char *)address;
        if (members_file_remove(lc->ld.members_path, &a, 1, &removed, err,
                                sizeof(err)) != 0 ||
            member_forget(&lc->ms, address, err, sizeof(err)) != 0) {
            log_error("list %s: %s", lc->ld.name, err);
            return EX_TEMPFAIL;
        }
        printf("%s: %s removed\n", lc->ld.name, address);
        return EX_OK;
    }
    /* after every event already there, so that it is what counts */
    if (member_load(&lc->ms, address, &lc->ld.bounce, now, &mi, err,
                    sizeof(err)) != 0) {
        log_error("list %s: %s", lc->ld.name, err);
        return EX_TEMPFAIL;
    }
    if (mi.newest >= now)
        now = mi.newest + 1;
    /* unique: the admin's events are not retried by anyone */
    snprintf(id, sizeof(id), "admin-%s-%ld-%lld-%u", cfg->node, (long)getpid(),
             (long long)now, n);
    if (member_record(&lc->ms, address, action[0] == 'e' ? 'E' : 'X', now, id,
                      NULL, NULL, err, sizeof(err)) < 0 ||
        member_load(&lc->ms, address, &lc->ld.bounce, now, &mi, err,
                    sizeof(err)) != 0 ||
        member_index_sync(&lc->ms, &mi, err, sizeof(err)) != 0) {
        log_error("list %s: %s", lc->ld.name, err);
        return EX_TEMPFAIL;
    }
    printf("%s: %s %s\n", lc->ld.name, address, member_state_name(mi.state));
    return EX_OK;
}

int ctl_members(const struct mmq_config *cfg, const char *list, int json,
                const char *action, char **addrs, int naddrs)
{
    struct listctx lc;
    int i, rc, first = EX_OK;

    if (!action)
        return list_members(cfg, list, json);
    if (strcmp(action, "enable") && strcmp(action, "disable") &&
        strcmp(action, "remove")) {
        log_error("members: unknown action \"%s\" (enable, disable, remove)",
                  action);
        return EX_USAGE;
    }
    if (naddrs == 0 || json) {
        log_error("members %s: give one or more addresses", action);
        return EX_USAGE;
    }
    if ((rc = open_list(cfg, list, &lc, 1)) != EX_OK)
        return rc;
    for (i = 0; i < naddrs; i++) {
        rc = edit_one(cfg, &lc, action, addrs[i], (unsigned)i);
        if (rc != EX_OK && first == EX_OK)
            first = rc;
        if (strcmp(action, "remove") == 0) {
            char err[QUEUE_ERR_MAX];
            members_load(&lc.m, lc.ld.members_path, err, sizeof(err));
        }
    }
    close_list(&lc);
    return first;
}

/* ------------------------------------------------------------- bounces */

static int bounces_of(const struct mmq_config *cfg, const char *list, int json,
                      int *first)
{
    struct listctx lc;
    struct infos in;
    size_t i;
    int rc = open_list(cfg, list, &lc, 0);

    if (rc != EX_OK)
        return rc;
    if ((rc = scan_list(&lc, &in)) == EX_OK)
        for (i = 0; i < in.n; i++) {
            const struct member_info *mi = &in.v[i];
            char when[32];
            if (!mi->last_event || !members_contains(&lc.m, mi->address))
                continue;
            iso_time(when, sizeof(when), mi->last_event);
            if (json) {
                printf("%s{\"list\":", *first ? "" : ",\n");
                json_str(lc.ld.name);
                fputs(",\"address\":", stdout);
                json_str(mi->address);
                printf(",\"state\":\"%s\",\"score\":%d,\"failed\":%u,"
                       "\"delayed\":%u,\"policy\":%u,\"last_bounce\":",
                       mi->state == MEMBER_ENABLED ? "enabled" : "disabled",
                       mi->score, mi->failed, mi->delayed, mi->policy);
                json_time(mi->last_event);
                fputs(",\"last_status\":", stdout);
                json_str(mi->last_status);
                fputs(",\"diagnostic\":", stdout);
                json_str(mi->reason);
                putchar('}');
            } else {
                printf("%-16s %-32s %-8s %5d %3u/%u/%u  %-20s %-7s %s\n",
                       lc.ld.name, mi->address, member_state_name(mi->state),
                       mi->score, mi->failed, mi->delayed, mi->policy, when,
                       mi->last_status[0] ? mi->last_status : "-",
                       mi->reason[0] ? mi->reason : "-");
            }
            *first = 0;
        }
    free(in.v);
    close_list(&lc);
    return rc;
}

int ctl_bounces(const struct mmq_config *cfg, const char *list, int json)
{
    char path[PATH_MAX];
    struct dirent *de;
    DIR *d;
    int first = 1, rc = EX_OK, r;

    if (json)
        putchar('[');
    else
        printf("%-16s %-32s %-8s %5s %-7s  %-20s %-7s %s\n", "list", "address",
               "state", "score", "f/d/p", "last bounce", "status",
               "diagnostic");
    if (list) {
        rc = bounces_of(cfg, list, json, &first);
    } else {
        snprintf(path, sizeof(path), "%s/members", cfg->spool);
        if ((d = opendir(path)) != NULL) {
            while ((de = readdir(d)) != NULL)
                if (de->d_name[0] != '.' && list_name_valid(de->d_name) &&
                    (r = bounces_of(cfg, de->d_name, json, &first)) != EX_OK &&
                    rc == EX_OK)
                    rc = r;
            closedir(d);
        }
    }
    if (json)
        puts("]");
    return rc;
}

/* ---------------------------------------------------------- stats, check */

static const char *const count_names[] = {
    "entries",    "failed",       "delayed",    "policy",
    "not_bounce", "unrecognised", "not_member", "disabled",
    "warnings",   "probes",       "removed",    NULL};

static void sum_node(void *arg, const char *node, const uint64_t v[CNT_N])
{
    uint64_t *sum = arg;

    (void)node;
    for (int k = CNT_B_ENTRIES; k <= CNT_B_REMOVED; k++)
        sum[k - CNT_B_ENTRIES] += v[k];
}

void ctl_bounce_stats(struct spool *sp, int json)
{
    uint64_t sum[CNT_B_REMOVED - CNT_B_ENTRIES + 1] = {0};
    char err[QUEUE_ERR_MAX];
    size_t k;

    if (counters_read(sp, sum_node, sum, err, sizeof(err)) != 0)
        log_warn("%s", err);
    if (json) {
        printf(",\"bounces\":{");
        for (k = 0; count_names[k]; k++)
            printf("%s\"%s\":%" PRIu64, k ? "," : "", count_names[k], sum[k]);
        putchar('}');
        return;
    }
    printf("\nbounces processed (mmq-bounce, all nodes and runs)\n");
    for (k = 0; count_names[k]; k++)
        printf("  %-14s %10" PRIu64 "\n", count_names[k], sum[k]);
}

void ctl_bounce_check(struct spool *sp, qcheck_report report, void *arg)
{
    struct qlist l = {NULL, 0, 0};
    char err[QUEUE_ERR_MAX], text[512];
    size_t i, held = 0;

    /* (a bounces/ backlog is reported by mmqctl's check_attention) */
    if (queue_list(sp, "hold", NULL, QL_READY, 0, &l, err, sizeof(err)) == 0)
        for (i = 0; i < l.n; i++)
            held += strcmp(l.v[i].origin, "@bounces") == 0;
    qlist_free(&l);
    if (held) {
        snprintf(text, sizeof(text),
                 "hold/: %zu unrecognised bounce%s waiting for the owners "
                 "(mmqctl queue hold)",
                 held, held == 1 ? "" : "s");
        report(arg, QC_PROBLEM, text);
    }
}
