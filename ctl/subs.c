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
    size_t n, i;
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

        gmtime_r(&t, &tm);
        strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
        if (json)
            /* addresses in pending files passed addr_ok(): no quotes */
            printf("%s{\"address\":\"%s\",\"action\":\"%s\","
                   "\"awaiting\":\"%s\",\"expires\":\"%s\"}",
                   i ? ",\n" : "", v[i].address,
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
static int decide(const struct mmq_config *cfg, struct listdef *ld,
                  struct member_store *ms, struct token_pending *v, size_t n,
                  int approve, const char *address)
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

int ctl_members_approve(const struct mmq_config *cfg, const char *list,
                        int approve, char **addrs, int naddrs)
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
            if ((rc = decide(cfg, &ld, &ms, v, n, approve, addrs[i])) !=
                    EX_OK &&
                first == EX_OK)
                first = rc;
        token_pending_free(v);
    }
    member_store_close(&ms);
    listdef_free(&ld);
    return first;
}
