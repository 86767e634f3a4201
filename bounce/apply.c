/*
 * apply - one bounces/ entry through the parser into member events, and
 * the steps those events make due (disable, warn, probe, remove).
 *
 * Who a bounce is about, in this order: the VERP address the entry was
 * sent to (LIST-bounces+local=domain@...: the envelope names the member,
 * the parser only says failed, delayed or policy; a probe's own address
 * LIST-bounces+probe.KEY.eN.pK@... names the probe), else the recipients
 * bounce_parse() names.  A recipient that is not a member is counted and
 * ignored: its state would be dropped anyway (member.h).
 *
 * Crash rule: each recipient's event is made (member_record(), named from
 * the entry's digest and the recipient's index) before the entry is
 * removed; a rerun after a crash finds the events already made and makes
 * the rest, then takes the same steps (each one a deterministically named
 * event, made once).  Notices go out as member.h describes.  An entry
 * nobody can be found in is forwarded to the owners (name derived from the
 * entry: a rerun replaces the copy still queued) or, without owners or
 * with bounce_unrecognized_goes_to_list_owner = false, moved to hold/.
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
#include <sys/stat.h>
#include <unistd.h>

#include "bounce.h"
#include "buf.h"
#include "counters.h"
#include "log.h"

/* ------------------------------------------------------------- lists */

struct blist *bounce_list(struct bounce_ctx *bc, const char *name)
{
    struct blist *bl = NULL, *nl;
    char err[QUEUE_ERR_MAX];
    size_t i;

    for (i = 0; i < bc->nlists; i++)
        if (strcmp(bc->lists[i].ld.name, name) == 0)
            bl = &bc->lists[i];
    if (!bl) {
        if (!(nl = realloc(bc->lists, (bc->nlists + 1) * sizeof(*nl))))
            return NULL;
        bc->lists = nl;
        bl = &bc->lists[bc->nlists];
        memset(bl, 0, sizeof(*bl));
        bl->ms.fd = -1;
        if (listdef_load(bc->cfg, name, &bl->ld, err, sizeof(err)) != 0) {
            log_error("list %s: %s", name, err);
            return NULL;
        }
        bc->nlists++;
    } else {
        /* the definition is re-read for every entry, as mmq-process does */
        struct listdef fresh;
        if (listdef_load(bc->cfg, name, &fresh, err, sizeof(err)) != 0) {
            log_error("list %s: %s", name, err);
            return NULL;
        }
        listdef_free(&bl->ld);
        bl->ld = fresh;
    }
    if (members_load(&bl->m, bl->ld.members_path, err, sizeof(err)) != 0) {
        log_error("list %s: members: %s", name, err);
        return NULL;
    }
    if (bl->ms.fd < 0 &&
        member_store_open(&bl->ms, bc->cfg->spool, bl->ld.name, bc->cfg->node,
                          1, err, sizeof(err)) != 0) {
        log_error("list %s: member state: %s", name, err);
        return NULL;
    }
    return bl;
}

void bounce_ctx_free(struct bounce_ctx *bc)
{
    size_t i;

    for (i = 0; i < bc->nlists; i++) {
        listdef_free(&bc->lists[i].ld);
        members_free(&bc->lists[i].m);
        member_store_close(&bc->lists[i].ms);
    }
    free(bc->lists);
    bc->lists = NULL;
    bc->nlists = 0;
}

/* ------------------------------------------------------------- steps */

static void owners_notice(struct bounce_ctx *bc, struct blist *bl,
                          const struct member_info *mi,
                          const struct member_pending *p, const char *what)
{
    char tag[200], subject[400], sender[LIST_NAME_MAX + 300];
    struct buf body;

    if (bl->ld.nowners == 0)
        return;
    snprintf(tag, sizeof(tag), "%s/%s.%c.%s.owners", bl->ld.name, mi->key,
             p->kind, p->id);
    snprintf(subject, sizeof(subject), "%s: %s %s (bounces)", bl->ld.name,
             mi->address, what);
    snprintf(sender, sizeof(sender), "%s-bounces@%s", bl->ld.name,
             bl->ld.domain);
    buf_init(&body);
    buf_printf(&body,
               "The member %s of the list %s@%s has been %s because mail to\n"
               "it keeps bouncing.\n\n"
               "    bounce score: %d (threshold %g)\n"
               "    last bounce status: %s\n"
               "    last diagnostic: %s\n\n"
               "See \"mmqctl members %s\" and \"mmqctl bounces %s\".\n",
               mi->address, bl->ld.name, bl->ld.domain, what, mi->score,
               bl->ld.bounce.threshold,
               mi->last_status[0] ? mi->last_status : "unknown",
               mi->reason[0] ? mi->reason : "none", bl->ld.name, bl->ld.name);
    notice_queue(bc, &bl->ld, p->when, tag, sender, bl->ld.owners,
                 bl->ld.nowners, subject, body.data ? body.data : "");
    buf_free(&body);
}

static int member_notice(struct bounce_ctx *bc, struct blist *bl,
                         const struct member_info *mi,
                         const struct member_pending *p)
{
    char tag[200], subject[400], sender[LIST_NAME_MAX + 300];
    char *to = (char *)mi->address;
    struct buf body;
    int rc;

    snprintf(tag, sizeof(tag), "%s/%s.%c.%s", bl->ld.name, mi->key, p->kind,
             p->id);
    snprintf(sender, sizeof(sender), "%s-bounces@%s", bl->ld.name,
             bl->ld.domain);
    buf_init(&body);
    if (p->kind == 'Q') {
        /* the probe: its own VERP address, so that only its bounce counts */
        snprintf(sender, sizeof(sender), "%s-bounces+probe.%s.%s@%s",
                 bl->ld.name, mi->key, p->id, bl->ld.domain);
        snprintf(subject, sizeof(subject), "%s mailing list probe message",
                 bl->ld.name);
        buf_printf(&body,
                   "This is a probe from the mailing list %s@%s.\n\n"
                   "Mail to your address has bounced recently.  If you can\n"
                   "read this, nothing needs to be done: the list keeps\n"
                   "sending to you.\n",
                   bl->ld.name, bl->ld.domain);
    } else {
        int k = 1;
        const char *w = strstr(p->id, ".w");
        if (w)
            k = atoi(w + 2);
        snprintf(subject, sizeof(subject),
                 "Your membership in %s has been disabled", bl->ld.name);
        buf_printf(&body,
                   "Delivery of the mailing list %s@%s to your address\n"
                   "%s has been disabled because mail to it kept bouncing\n"
                   "(last status: %s).\n\n"
                   "You are still a member.  To have delivery enabled again,\n"
                   "write to %s-owner@%s.\n\n"
                   "This is notice %d of %d; without an answer the address is\n"
                   "removed from the list after the last one.\n",
                   bl->ld.name, bl->ld.domain, mi->address,
                   mi->last_status[0] ? mi->last_status : "unknown",
                   bl->ld.name, bl->ld.domain, k, bl->ld.bounce.warnings);
    }
    rc = notice_queue(bc, &bl->ld, p->when, tag, sender, &to, 1, subject,
                      body.data ? body.data : "");
    buf_free(&body);
    return rc;
}

/* Queue the notices of a pending action, then its q marker. */
static int finish_action(struct bounce_ctx *bc, struct blist *bl,
                         const struct member_info *mi,
                         const struct member_pending *p)
{
    const struct member_policy *pol = &bl->ld.bounce;
    char id[MEMBER_ID_MAX + 2], err[QUEUE_ERR_MAX];

    switch (p->kind) {
    case 'D':
        if (pol->notify_disable)
            owners_notice(bc, bl, mi, p, "disabled");
        break;
    case 'R':
        if (pol->notify_removal)
            owners_notice(bc, bl, mi, p, "removed");
        break;
    default: /* W, Q */
        if (member_notice(bc, bl, mi, p) != 0)
            return -1; /* no marker: tried again at the next look */
    }
    snprintf(id, sizeof(id), "%c%s", p->kind, p->id);
    if (member_record(&bl->ms, mi->address, 'q', p->when, id, NULL, NULL, err,
                      sizeof(err)) < 0) {
        log_error("list %s: %s", bl->ld.name, err);
        return -1;
    }
    return 0;
}

/* The R event is made: take the address out of the file, drop its state. */
static int finish_removal(struct bounce_ctx *bc, struct blist *bl,
                          const char *address)
{
    char err[QUEUE_ERR_MAX], *a = (char *)address;
    size_t removed = 0;

    (void)bc;
    if (members_file_remove(bl->ld.members_path, &a, 1, &removed, err,
                            sizeof(err)) != 0) {
        log_error("list %s: removing %s: %s (the member stays disabled; "
                  "tried again at the next sweep)",
                  bl->ld.name, address, err);
        return -1;
    }
    if (member_forget(&bl->ms, address, err, sizeof(err)) != 0) {
        log_error("list %s: %s", bl->ld.name, err);
        return -1;
    }
    log_info("list %s: %s removed from %s after bounces (%zu line%s)",
             bl->ld.name, address, bl->ld.members_path, removed,
             removed == 1 ? "" : "s");
    members_load(&bl->m, bl->ld.members_path, err, sizeof(err));
    return 0;
}

/* The event a due step makes: kind, deterministic time and ID. */
static void step_event(const struct member_info *mi,
                       const struct member_policy *pol, enum member_step s,
                       char *kind, int64_t *when, char *id)
{
    switch (s) {
    case STEP_DISABLE:
        *kind = 'D';
        *when =
            mi->last_bounce > mi->last_event ? mi->last_bounce : mi->last_event;
        snprintf(id, MEMBER_ID_MAX, "e%u", mi->epoch);
        return;
    case STEP_PROBE:
        *kind = 'Q';
        *when = mi->last_bounce;
        snprintf(id, MEMBER_ID_MAX, "e%u.p%d", mi->epoch, mi->probes + 1);
        return;
    case STEP_WARN:
        *kind = 'W';
        *when = mi->warnings ? mi->last_warning + pol->interval
                             : mi->disabled_since;
        snprintf(id, MEMBER_ID_MAX, "e%u.w%d", mi->epoch, mi->warnings + 1);
        return;
    default: /* STEP_REMOVE */
        *kind = 'R';
        *when = mi->warnings ? mi->last_warning + pol->interval
                             : mi->disabled_since;
        snprintf(id, MEMBER_ID_MAX, "e%u", mi->epoch);
        return;
    }
}

static void count_step(struct bounce_ctx *bc, char kind)
{
    if (kind == 'D')
        bc->counts.disabled++;
    else if (kind == 'W')
        bc->counts.warnings++;
    else if (kind == 'Q')
        bc->counts.probes++;
    else if (kind == 'R')
        bc->counts.removed++;
}

int bounce_member_step(struct bounce_ctx *bc, struct blist *bl,
                       const char *address)
{
    const struct member_policy *pol = &bl->ld.bounce;
    struct member_info mi;
    char err[QUEUE_ERR_MAX], id[MEMBER_ID_MAX], kind;
    int64_t now = bc->now(), when;
    int round, rc;
    size_t i;

    for (round = 0; round < 12; round++) {
        enum member_step s;
        if (member_load(&bl->ms, address, pol, now, &mi, err, sizeof(err))) {
            log_error("list %s: %s", bl->ld.name, err);
            return -1;
        }
        if (!members_contains(&bl->m, address)) {
            /* not (or no longer) a member: its state is dropped */
            return member_forget(&bl->ms, address, err, sizeof(err)) ? -1 : 0;
        }
        for (i = 0; i < mi.npending; i++)
            finish_action(bc, bl, &mi, &mi.pending[i]);
        if (member_index_sync(&bl->ms, &mi, err, sizeof(err)) != 0)
            log_error("list %s: %s", bl->ld.name, err);
        if (mi.state == MEMBER_REMOVED)
            return finish_removal(bc, bl, address);
        if ((s = member_next(&mi, pol, now)) == STEP_NONE)
            return 0;
        step_event(&mi, pol, s, &kind, &when, id);
        rc = member_record(&bl->ms, address, kind, when, id, NULL, NULL, err,
                           sizeof(err));
        if (rc < 0) {
            log_error("list %s: %s", bl->ld.name, err);
            return -1;
        }
        if (rc == 0) {
            count_step(bc, kind);
            log_info("list %s: %s: %s (score %d, event %c.%s)", bl->ld.name,
                     address,
                     kind == 'D'   ? "delivery disabled"
                     : kind == 'W' ? "disabled warning sent"
                     : kind == 'Q' ? "probe sent"
                                   : "removed",
                     mi.score, kind, id);
        }
    }
    log_error("list %s: %s: too many steps at once", bl->ld.name, address);
    return -1;
}

/* ------------------------------------------------------------- entries */

struct entry {
    struct bounce_ctx *bc;
    struct claim c;
    struct envelope env;
    off_t body_off;
    struct buf msg;
    char id[QNAME_LEN + 1];
    int retry;
};

static int give_back(struct entry *e, const char *why)
{
    char err[QUEUE_ERR_MAX];

    log_error("%s: %s (entry kept in bounces/, will retry)", e->id, why);
    if (queue_unclaim(&e->c, err, sizeof(err)) != 0)
        log_error("%s: cannot give the entry back: %s", e->id, err);
    e->retry = 1;
    return -1;
}

static int finish(struct entry *e, const char *what)
{
    char err[QUEUE_ERR_MAX];

    if (queue_done(&e->c, err, sizeof(err)) != 0)
        return give_back(e, err);
    e->bc->counts.entries++;
    log_info("%s: %s", e->id, what);
    return 0;
}

static int read_message(struct entry *e)
{
    size_t len = (size_t)e->env.size;
    ssize_t n;

    if (buf_reserve(&e->msg, len) != 0)
        return -1;
    n = pread(e->c.fd, e->msg.data, len, e->body_off);
    if (n < 0 || (size_t)n != len)
        return -1;
    e->msg.len = len;
    e->msg.data[len] = 0;
    return 0;
}

/* The VERP detail of the envelope recipient ("" when none). */
static void verp_detail(const struct envelope *env, char *out, size_t outlen)
{
    const char *r = env->nrcpt ? env->rcpt[0].addr : "";
    const char *plus = strchr(r, '+'), *at = strrchr(r, '@');

    out[0] = 0;
    if (plus && at && plus < at && (size_t)(at - plus - 1) < outlen)
        snprintf(out, outlen, "%.*s", (int)(at - plus - 1), plus + 1);
}

/* "local=domain" -> "local@domain" (the last '='). */
static int verp_member(const char *detail, char *addr, size_t len)
{
    const char *eq = strrchr(detail, '=');

    if (!eq || eq == detail || !eq[1] || strlen(detail) >= len)
        return -1;
    snprintf(addr, len, "%.*s@%s", (int)(eq - detail), detail, eq + 1);
    return members_plausible(addr) ? 0 : -1;
}

/* A probe's bounce: "probe.KEY.eN.pK" -> the member (from its Q event). */
static int probe_member(struct blist *bl, const char *detail, char *addr,
                        size_t len, char *probe_id)
{
    char key[MEMBER_KEY_LEN + 1];
    const char *id;
    size_t i;

    if (strncmp(detail, "probe.", 6) != 0 ||
        strlen(detail) < 6 + MEMBER_KEY_LEN + 5 ||
        detail[6 + MEMBER_KEY_LEN] != '.')
        return -1;
    snprintf(key, sizeof(key), "%.*s", MEMBER_KEY_LEN, detail + 6);
    id = detail + 7 + MEMBER_KEY_LEN;
    if (strlen(id) >= MEMBER_ID_MAX)
        return -1;
    memcpy(probe_id, id, strlen(id) + 1);
    for (i = 0; i < bl->m.n; i++) { /* only at a probe's bounce: rare */
        char k[MEMBER_KEY_LEN + 1];
        member_key(bl->m.addr[i], k);
        if (strcmp(k, key) == 0) {
            snprintf(addr, len, "%s", bl->m.addr[i]);
            return 0;
        }
    }
    return -1;
}

static char kind_of(enum bounce_action a)
{
    return a == BOUNCE_FAILED ? 'F' : a == BOUNCE_DELAYED ? 'T' : 'P';
}

static void count_action(struct bounce_ctx *bc, enum bounce_action a)
{
    if (a == BOUNCE_FAILED)
        bc->counts.failed++;
    else if (a == BOUNCE_DELAYED)
        bc->counts.delayed++;
    else
        bc->counts.policy++;
}

/* Record one recipient's bounce and take its steps: 0, or -1 (retry). */
static int apply_one(struct entry *e, struct blist *bl, const char *addr,
                     size_t idx, enum bounce_action a, const char *status,
                     const char *diag, const char *probe_id)
{
    char id[MEMBER_ID_MAX], err[QUEUE_ERR_MAX];
    char kind = kind_of(a);
    int rc;

    if (!members_contains(&bl->m, addr)) {
        e->bc->counts.not_member++;
        log_info("%s: list %s: %s bounce for %s, not a member: ignored", e->id,
                 bl->ld.name, bounce_action_name(a), addr);
        return 0;
    }
    count_action(e->bc, a);
    if (probe_id && a == BOUNCE_FAILED) {
        kind = 'B';
        snprintf(id, sizeof(id), "%s", probe_id);
    } else {
        snprintf(id, sizeof(id), "%s-%zu", e->c.qn.hash, idx);
    }
    rc = member_record(&bl->ms, addr, kind, e->env.arrival_sec, id, status,
                       diag, err, sizeof(err));
    if (rc < 0) {
        give_back(e, err);
        return -1;
    }
    log_info("%s: list %s: %s %s%s%s%s", e->id, bl->ld.name,
             bounce_action_name(a), addr, status && status[0] ? " " : "",
             status ? status : "", rc == 1 ? " (already counted)" : "");
    if (bl->ld.bounce.processing && bounce_member_step(e->bc, bl, addr) != 0) {
        give_back(e, "a member step failed");
        return -1;
    }
    return 0;
}

/* Nobody found: forward to the owners, or keep it in hold/. */
static void unrecognised(struct entry *e, struct blist *bl, const char *why)
{
    char err[QUEUE_ERR_MAX], what[300];

    e->bc->counts.unrecognised++;
    if (memmem(e->msg.data, e->msg.len, BOUNCE_FORWARD_MARK,
               strlen(BOUNCE_FORWARD_MARK))) {
        finish(e, "unrecognised, and itself the bounce of a forwarded "
                  "bounce: dropped");
        return;
    }
    if (bl->ld.bounce.forward_unknown && bl->ld.nowners > 0) {
        if (notice_forward(e->bc, &bl->ld, e->id, e->msg.data, e->msg.len)) {
            give_back(e, "cannot forward to the owners");
            return;
        }
        snprintf(what, sizeof(what),
                 "unrecognised (%s): forwarded to the "
                 "owners",
                 why);
        finish(e, what);
        return;
    }
    if (queue_move(&e->c, "hold", err, sizeof(err)) != 0) {
        give_back(e, err);
        return;
    }
    e->bc->counts.entries++;
    log_info("%s: unrecognised (%s): kept in hold/ for the owners", e->id, why);
}

static void handle(struct entry *e, struct blist *bl)
{
    struct bounce_report r;
    char detail[512], addr[MEMBER_ADDR_MAX], probe_id[MEMBER_ID_MAX];
    const char *pid = NULL;
    size_t i;
    int verp = 0;

    memset(&r, 0, sizeof(r));
    if (bounce_parse(e->msg.data, e->msg.len, &r) != 0) {
        give_back(e, "out of memory parsing the bounce");
        return;
    }
    verp_detail(&e->env, detail, sizeof(detail));
    if (detail[0] &&
        probe_member(bl, detail, addr, sizeof(addr), probe_id) == 0)
        verp = 1, pid = probe_id;
    else if (detail[0] && verp_member(detail, addr, sizeof(addr)) == 0)
        verp = 1;
    if (r.verdict == BOUNCE_NOT) {
        e->bc->counts.not_bounce++;
        char what[200];
        snprintf(what, sizeof(what), "not a bounce (%s): dropped",
                 r.format ? r.format : "?");
        finish(e, what);
    } else if (verp &&
               (r.verdict == BOUNCE_NAMED || r.verdict == BOUNCE_ANONYMOUS)) {
        /* the envelope names the member; take the report's status for it
         * (or the summary) */
        const char *status = r.status, *diag = NULL;
        enum bounce_action a = r.action;
        for (i = 0; i < r.nrcpt; i++)
            if (strcasecmp(r.rcpt[i].address, addr) == 0 || r.nrcpt == 1) {
                status = r.rcpt[i].status;
                diag = r.rcpt[i].diagnostic;
                a = r.rcpt[i].action;
                break;
            }
        if (apply_one(e, bl, addr, 0, a, status, diag, pid) == 0)
            finish(e, "VERP bounce applied");
    } else if (r.verdict == BOUNCE_NAMED) {
        for (i = 0; i < r.nrcpt; i++)
            if (apply_one(e, bl, r.rcpt[i].address, i, r.rcpt[i].action,
                          r.rcpt[i].status, r.rcpt[i].diagnostic, NULL) != 0)
                break;
        if (i == r.nrcpt)
            finish(e, "bounce applied");
    } else {
        unrecognised(e, bl,
                     r.verdict == BOUNCE_ANONYMOUS ? "a failure naming nobody"
                                                   : "no format matched");
    }
    bounce_report_free(&r);
}

int bounce_entry(struct bounce_ctx *bc, const char *fname)
{
    struct entry e;
    struct blist *bl;
    char err[QUEUE_ERR_MAX];
    int rc;

    memset(&e, 0, sizeof(e));
    e.bc = bc;
    buf_init(&e.msg);
    envelope_init(&e.env);
    rc = queue_claim(bc->sp, "bounces", fname, &e.c, err, sizeof(err));
    if (rc != 0) {
        if (rc < 0)
            log_error("%s", err);
        return 0;
    }
    snprintf(e.id, sizeof(e.id), "%s", e.c.qn.name);
    if (queue_claim_read(&e.c, &e.env, &e.body_off, err, sizeof(err)) != 0) {
        log_error("%s: unreadable, moving to bad/: %s", e.id, err);
        queue_move(&e.c, "bad", err, sizeof(err));
        goto out;
    }
    if (!(bl = bounce_list(bc, e.env.list))) {
        give_back(&e, "the list cannot be loaded");
        goto out;
    }
    if (!bl->ld.bounce.processing) {
        /* bounce_processing = false: today's behaviour, the entry stays */
        queue_unclaim(&e.c, err, sizeof(err));
        e.retry = 1;
        goto out;
    }
    if (read_message(&e) != 0) {
        give_back(&e, "cannot read the message");
        goto out;
    }
    handle(&e, bl);
out:
    queue_claim_close(&e.c);
    envelope_free(&e.env);
    buf_free(&e.msg);
    return e.retry;
}

/* ------------------------------------------------------------- sweep */

static int mine(struct bounce_ctx *bc, const char *address)
{
    char key[MEMBER_KEY_LEN + 1];
    uint64_t k;

    if (!bc->lease)
        return 1;
    member_key(address, key);
    return slice_key(key, &k) == 0 && lease_key_ok(bc->lease, k);
}

struct scan_arg {
    struct bounce_ctx *bc;
    struct blist *bl;
};

static int scan_one(void *arg, const struct member_info *mi)
{
    struct scan_arg *sa = arg;

    if (mine(sa->bc, mi->address))
        bounce_member_step(sa->bc, sa->bl, mi->address);
    return 0;
}

static void sweep_list(struct bounce_ctx *bc, const char *name, int full)
{
    struct blist *bl = bounce_list(bc, name);
    char err[QUEUE_ERR_MAX], **v;
    size_t n, i;

    if (!bl)
        return;
    if (full) {
        struct scan_arg sa = {bc, bl};
        if (member_scan(&bl->ms, &bl->ld.bounce, bc->now(), scan_one, &sa, err,
                        sizeof(err)) != 0)
            log_error("list %s: %s", name, err);
        return;
    }
    if (member_index_list(&bl->ms, &v, &n, err, sizeof(err)) != 0) {
        log_error("list %s: %s", name, err);
        return;
    }
    for (i = 0; i < n; i++)
        if (mine(bc, v[i]))
            bounce_member_step(bc, bl, v[i]);
    member_strings_free(v, n);
}

void bounce_sweep(struct bounce_ctx *bc, int full)
{
    char path[PATH_MAX];
    struct dirent *de;
    DIR *d;

    snprintf(path, sizeof(path), "%s/members", bc->cfg->spool);
    if (!(d = opendir(path)))
        return;
    while ((de = readdir(d)) != NULL)
        if (de->d_name[0] != '.' && list_name_valid(de->d_name))
            sweep_list(bc, de->d_name, full);
    closedir(d);
}

/* ------------------------------------------------------------- counts */

void bounce_counts_save(struct bounce_ctx *bc)
{
    struct bounce_counts *c = &bc->counts;
    const unsigned long *from[] = {
        &c->entries,    &c->failed,       &c->delayed,    &c->policy,
        &c->not_bounce, &c->unrecognised, &c->not_member, &c->disabled,
        &c->warnings,   &c->probes,       &c->removed};
    uint64_t delta[CNT_N] = {0};
    char err[QUEUE_ERR_MAX];
    int any = 0;

    for (size_t k = 0; k < sizeof(from) / sizeof(from[0]); k++) {
        delta[CNT_B_ENTRIES + k] = *from[k];
        any |= *from[k] != 0;
    }
    if (!any)
        return;
    /* counted since the last save: added to this node's counters, then
     * zeroed; on an error they are kept for the next save */
    if (counters_add(bc->sp, delta, err, sizeof(err)) != 0) {
        log_warn("counters: %s", err);
        return;
    }
    memset(c, 0, sizeof(*c));
}
