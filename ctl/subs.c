/*
 * subs - the admin's subscriptions and the pending requests.  See subs.h.
 */
#include "autoconf.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "listdef.h"
#include "listmail.h"
#include "log.h"
#include "member.h"
#include "queue.h"
#include "subs.h"
#include "token.h"

static int open_list(const struct mmq_config *cfg, const char *list,
                     struct listdef *ld, struct member_store *ms)
{
    char err[QUEUE_ERR_MAX];

    if (listdef_load(cfg, list, ld, err, sizeof(err)) != 0) {
        log_error("%s", err);
        return errno == ENOENT ? EX_NOINPUT : EX_CONFIG;
    }
    if (member_store_open(ms, cfg->spool, ld->name, cfg->node, 1, err,
                          sizeof(err)) != 0) {
        log_error("list %s: %s", list, err);
        listdef_free(ld);
        return EX_TEMPFAIL;
    }
    return EX_OK;
}

int ctl_members_add(const struct mmq_config *cfg, const char *list,
                    char **addrs, int naddrs)
{
    struct listdef ld;
    char err[QUEUE_ERR_MAX];
    size_t added;
    int i;

    if (naddrs == 0) {
        log_error("members add: give one or more addresses");
        return EX_USAGE;
    }
    for (i = 0; i < naddrs; i++)
        if (!members_plausible(addrs[i]) || strpbrk(addrs[i], "\"<>()")) {
            log_error("members add: \"%s\" is not an address", addrs[i]);
            return EX_DATAERR;
        }
    if (listdef_load(cfg, list, &ld, err, sizeof(err)) != 0) {
        log_error("%s", err);
        return errno == ENOENT ? EX_NOINPUT : EX_CONFIG;
    }
    if (members_file_add(ld.members_path, addrs, (size_t)naddrs, &added, err,
                         sizeof(err)) != 0) {
        log_error("list %s: %s", ld.name, err);
        listdef_free(&ld);
        return EX_TEMPFAIL;
    }
    printf("%s: %zu added, %zu already members\n", ld.name, added,
           (size_t)naddrs - added);
    log_info("list %s: members add by the admin: %zu added", ld.name, added);
    listdef_free(&ld);
    return EX_OK;
}

int ctl_members_notify(struct spool *sp, const struct mmq_config *cfg,
                       const char *list, int welcome, char **addrs,
                       int naddrs)
{
    struct listdef ld;
    struct members m;
    char err[QUEUE_ERR_MAX], cause[128];
    int i, rc = EX_OK;

    if (naddrs == 0)
        return EX_OK; /* the edit itself says what is missing */
    for (i = 0; i < naddrs; i++)
        if (!members_plausible(addrs[i]) || strpbrk(addrs[i], "\"<>()")) {
            log_error("members: \"%s\" is not an address", addrs[i]);
            return EX_DATAERR;
        }
    if (listdef_load(cfg, list, &ld, err, sizeof(err)) != 0) {
        log_error("%s", err);
        return errno == ENOENT ? EX_NOINPUT : EX_CONFIG;
    }
    memset(&m, 0, sizeof(m));
    if (members_load(&m, ld.members_path, err, sizeof(err)) != 0) {
        log_error("list %s: %s", ld.name, err);
        members_free(&m);
        listdef_free(&ld);
        return EX_TEMPFAIL;
    }
    /* unique to this run: the admin's messages are not retried by anyone */
    snprintf(cause, sizeof(cause), "mmqctl/%s/%ld/%lld", cfg->node,
             (long)getpid(), (long long)time(NULL));
    for (i = 0; i < naddrs && rc == EX_OK; i++) {
        if (members_contains(&m, addrs[i]) == welcome)
            continue; /* nothing changes for it: no message */
        if (listmail_greet(sp, cfg, &ld, addrs[i], welcome, NULL, cause,
                           (unsigned)i, err, sizeof(err)) < 0) {
            log_error("list %s: %s message to %s: %s", ld.name,
                      welcome ? "welcome" : "goodbye", addrs[i], err);
            rc = EX_TEMPFAIL;
        }
    }
    members_free(&m);
    listdef_free(&ld);
    return rc;
}

static const char *waiting_for(char action)
{
    return action == TOKEN_SUBSCRIBE     ? "subscribe (subscriber)"
           : action == TOKEN_UNSUBSCRIBE ? "unsubscribe (member)"
                                         : "subscribe (owner approval)";
}

int ctl_members_pending(const struct mmq_config *cfg, const char *list,
                        int json)
{
    struct listdef ld;
    struct member_store ms;
    struct token_pending *v;
    char err[QUEUE_ERR_MAX];
    size_t n, i, shown = 0;
    int rc = open_list(cfg, list, &ld, &ms);

    if (rc != EX_OK)
        return rc;
    if (token_pending_list(&ms, (int64_t)time(NULL), &v, &n, err,
                           sizeof(err)) != 0) {
        log_error("list %s: %s", ld.name, err);
        rc = EX_TEMPFAIL;
        goto out;
    }
    if (json)
        putchar('[');
    else
        printf("%-40s %-28s %s\n", "address", "awaiting", "expires");
    for (i = 0; i < n; i++) {
        char when[32];
        time_t t = (time_t)v[i].expiry;
        struct tm tm;

        if (TOKEN_IS_HOLD(v[i].action))
            continue; /* a held post's, not a subscription's */

        gmtime_r(&t, &tm);
        strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
        if (json)
            /* addresses in pending files passed addr_ok(): no quotes */
            printf("%s{\"address\":\"%s\",\"action\":\"%s\","
                   "\"awaiting\":\"%s\",\"expires\":\"%s\"}",
                   shown++ ? ",\n" : "", v[i].address,
                   v[i].action == TOKEN_UNSUBSCRIBE ? "unsubscribe"
                                                    : "subscribe",
                   v[i].action == TOKEN_APPROVE ? "owner" : "confirmation",
                   when);
        else
            printf("%-40s %-28s %s\n", v[i].address, waiting_for(v[i].action),
                   when);
    }
    if (json)
        puts("]");
    token_pending_free(v);
out:
    member_store_close(&ms);
    listdef_free(&ld);
    return rc;
}

/* Approve or reject the owner-approval requests of one address. */
static int decide(struct spool *sp, const struct mmq_config *cfg,
                  struct listdef *ld, struct member_store *ms,
                  struct token_pending *v, size_t n, int approve,
                  const char *address)
{
    char err[QUEUE_ERR_MAX], by[128];
    size_t i, added;
    int found = 0, rc;

    snprintf(by, sizeof(by), "mmqctl.%s.%ld.%lld", cfg->node, (long)getpid(),
             (long long)time(NULL));
    for (i = 0; i < n; i++) {
        char *a = v[i].address;

        if (strcasecmp(a, address) != 0 || v[i].action != TOKEN_APPROVE)
            continue;
        found = 1;
        if ((rc = token_use(ms, v[i].token, by, a, err, sizeof(err))) < 0) {
            log_error("list %s: %s", ld->name, err);
            return EX_TEMPFAIL;
        }
        if (rc == 1) {
            printf("%s: %s: decided already (by an owner's reply)\n",
                   ld->name, a);
            continue;
        }
        /* a subscription by mail completes: welcome first (listmail.h) */
        if (approve && listmail_greet(sp, cfg, ld, a, 1, NULL, by, (unsigned)i,
                                      err, sizeof(err)) < 0) {
            log_error("list %s: welcome message to %s: %s", ld->name, a, err);
            return EX_TEMPFAIL;
        }
        if (approve && members_file_add(ld->members_path, &a, 1, &added, err,
                                        sizeof(err)) != 0) {
            log_error("list %s: %s", ld->name, err);
            return EX_TEMPFAIL;
        }
        token_pending_remove(ms, v[i].token);
        printf("%s: %s %s\n", ld->name, a, approve ? "approved" : "rejected");
        log_info("list %s: subscription of %s %s by the admin", ld->name, a,
                 approve ? "approved" : "rejected");
    }
    if (!found) {
        log_error("list %s: no subscription of %s awaits approval", ld->name,
                  address);
        return EX_NOUSER;
    }
    return EX_OK;
}

int ctl_members_approve(struct spool *sp, const struct mmq_config *cfg,
                        const char *list, int approve, char **addrs,
                        int naddrs)
{
    struct listdef ld;
    struct member_store ms;
    struct token_pending *v;
    char err[QUEUE_ERR_MAX];
    size_t n;
    int i, rc = open_list(cfg, list, &ld, &ms), first = EX_OK;

    if (rc != EX_OK)
        return rc;
    if (naddrs == 0) {
        log_error("members %s: give one or more addresses",
                  approve ? "approve" : "reject");
        first = EX_USAGE;
    } else if (token_pending_list(&ms, (int64_t)time(NULL), &v, &n, err,
                                  sizeof(err)) != 0) {
        log_error("list %s: %s", ld.name, err);
        first = EX_TEMPFAIL;
    } else {
        for (i = 0; i < naddrs; i++)
            if ((rc = decide(sp, cfg, &ld, &ms, v, n, approve, addrs[i])) !=
                    EX_OK &&
                first == EX_OK)
                first = rc;
        token_pending_free(v);
    }
    member_store_close(&ms);
    listdef_free(&ld);
    return first;
}
