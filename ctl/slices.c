/*
 * slices - `mmqctl slices`: the slice map of a cluster.  For each stage
 * (list stage, delivery, bounce processing) and slice: the node the
 * configuration makes its owner, the agent holding its lease now, the lease
 * generation and state, how long ago the holder last renewed (by the holder's
 * clock: the only figure here that a clock offset between nodes can distort),
 * and the entries waiting in the slice (in/ for the list stage; out/ and
 * deferred/ for delivery; bounces/ for bounce processing).  On a single node
 * (no nodes configured: no leases) the text form is a short summary per stage
 * instead: the slices the node serves, those a runner of ours holds locked, and
 * the entries waiting.  Read-only: it takes part in no lease.
 */
#include "autoconf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>

#include "lease.h"
#include "log.h"
#include "qcheck.h"
#include "slices.h"

/* Entries of queue per slice, added to depth[]. */
static int count_depth(struct spool *sp, const char *queue, unsigned n,
                       unsigned long *depth)
{
    struct qlist l = {NULL, 0, 0};
    char err[QUEUE_ERR_MAX];
    size_t i;

    if (queue_list(sp, queue, NULL, QL_READY | QL_CLAIMED, 0, &l, err,
                   sizeof(err)) != 0) {
        log_error("%s", err);
        qlist_free(&l);
        return -1;
    }
    for (i = 0; i < l.n; i++)
        depth[slice_of(l.v[i].key, n)]++;
    qlist_free(&l);
    return 0;
}

/* A JSON string of text that came from the spool (hostile). */
static void json_str(const char *s)
{
    putchar('"');
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;

        if (c == '"' || c == '\\')
            printf("\\%c", c);
        else if (c < 0x20 || c > 0x7e)
            printf("\\u%04x", c);
        else
            putchar(c);
    }
    putchar('"');
}

/* Printable text only, for a terminal. */
static const char *plain(const char *s, char *buf, size_t len)
{
    size_t i;

    for (i = 0; s[i] && i + 1 < len; i++)
        buf[i] = s[i] > 0x20 && s[i] < 0x7f ? s[i] : '?';
    buf[i] = 0;
    return i ? buf : "-";
}

static void show_slice(const char *stage, unsigned i,
                       const struct mmq_config *cfg,
                       const struct lease_info *li, unsigned long depth,
                       int json, time_t now)
{
    const struct mmq_node *owner = config_slice_owner(cfg, stage, i);
    const char *state = li->gen == 0 ? "none" : li->free ? "free" : "held";
    long long ago =
        li->hb_wall && !li->free ? (long long)now - li->hb_wall : -1;
    char node[64], ago_text[32];

    if (li->hb_wall && !li->free && ago < 0)
        ago = 0; /* renewed after we looked at the clock */

    if (json) {
        printf("{\"stage\":\"%s\",\"slice\":%u,\"owner\":", stage, i);
        if (owner)
            json_str(owner->name);
        else
            fputs("null", stdout);
        fputs(",\"holder\":", stdout);
        if (li->gen && !li->free)
            json_str(li->node);
        else
            fputs("null", stdout);
        printf(",\"generation\":%llu,\"state\":\"%s\",\"renewed_ago\":",
               (unsigned long long)li->gen, state);
        if (ago >= 0)
            printf("%lld", ago);
        else
            fputs("null", stdout);
        printf(",\"depth\":%lu}\n", depth);
        return;
    }
    if (ago >= 0)
        snprintf(ago_text, sizeof(ago_text), "%llds", ago);
    else
        snprintf(ago_text, sizeof(ago_text), "-");
    printf("%-8s %5u  %-16s %-16s %6llu  %-5s %9s %8lu\n", stage, i,
           owner ? owner->name : "-",
           li->gen && !li->free ? plain(li->node, node, sizeof(node)) : "-",
           (unsigned long long)li->gen, state, ago_text, depth);
}

/* Single node: one line per stage. */
static void summary(struct spool *sp, const char *stage, const char *spec,
                    const unsigned long *depth)
{
    const struct mmq_config *cfg = sp->cfg;
    unsigned n = (unsigned)cfg->slices, i;
    struct slice_set set, idle = {0, NULL};
    unsigned long waiting = 0;
    char why[128], served[512], missing[512];
    unsigned nidle = 0;

    for (i = 0; i < n; i++)
        waiting += depth[i];
    if (slice_set_parse(spec, n, &set, why, sizeof(why)) != 0 ||
        slice_set_parse("none", n, &idle, why, sizeof(why)) != 0) {
        printf("%s: slices \"%s\": %s\n", stage, spec, why);
        slice_set_free(&set);
        return;
    }
    for (i = 0; i < n; i++)
        if (set.on[i] && !qcheck_slice_running(sp, stage, i))
            idle.on[i] = 1, nidle++;
    slice_set_format(&set, served, sizeof(served));
    printf("%-8s slices %s of %u: ", stage, served, n);
    if (nidle == 0)
        printf("mmq-%s runs for all of them", stage);
    else
        printf("no mmq-%s runs for %s", stage,
               slice_set_format(&idle, missing, sizeof(missing)));
    printf("; %lu waiting in %s\n", waiting,
           strcmp(stage, "process") == 0   ? "in/"
           : strcmp(stage, "deliver") == 0 ? "out/ and deferred/"
                                           : "bounces/");
    slice_set_free(&idle);
    slice_set_free(&set);
}

int ctl_slices(struct spool *sp, int json)
{
    static const char *const stages[] = {"process", "deliver", "bounce"};
    const struct mmq_config *cfg = sp->cfg;
    unsigned n = (unsigned)cfg->slices, i, s;
    struct lease_info *li = calloc(n, sizeof(*li));
    unsigned long *depth = calloc(n, sizeof(*depth));
    char err[QUEUE_ERR_MAX];
    time_t now = time(NULL);
    int rc = EX_OK;

    if (!li || !depth) {
        log_error("out of memory");
        free(li);
        free(depth);
        return EX_OSERR;
    }
    if (!json && cfg->nnodes == 0)
        printf("node %s, %u slices, no cluster (no nodes in %s: slices are "
               "not leased)\n",
               cfg->node, n, cfg->path);
    else if (!json)
        printf("%-8s %5s  %-16s %-16s %6s  %-5s %9s %8s\n", "stage", "slice",
               "owner", "holder", "gen", "state", "renewed", "depth");
    for (s = 0; s < 3; s++) {
        memset(depth, 0, n * sizeof(*depth));
        if ((s == 0 && count_depth(sp, "in", n, depth) != 0) ||
            (s == 1 && (count_depth(sp, "out", n, depth) != 0 ||
                        count_depth(sp, "deferred", n, depth) != 0)) ||
            (s == 2 && count_depth(sp, "bounces", n, depth) != 0))
            rc = EX_TEMPFAIL;
        if (lease_info(sp, stages[s], li, err, sizeof(err)) != 0) {
            log_error("%s", err);
            rc = EX_TEMPFAIL;
            continue;
        }
        now = time(NULL);
        if (!json && cfg->nnodes == 0) {
            /* mmq-bounce serves every slice unless told otherwise (-s) */
            summary(sp, stages[s],
                    s == 0   ? cfg->process_slices
                    : s == 1 ? cfg->delivery_slices
                             : "all",
                    depth);
            continue;
        }
        for (i = 0; i < n; i++)
            show_slice(stages[s], i, cfg, &li[i], depth[i], json, now);
    }
    free(li);
    free(depth);
    return rc;
}
