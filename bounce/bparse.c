/*
 * bparse - recognise a bounce and name the recipients that failed (see
 * bparse.h for the contract).
 *
 * The story of bounce_parse(): walk the MIME tree once (mime.c, bounded),
 * noting the message/delivery-status parts (parsed by dsnparse.c), a
 * message/disposition-notification (a read receipt) and the first text
 * part; nothing inside a returned message/rfc822 counts, since the
 * original message is not the report.  Then, in order:
 *   1. a DSN part that names failed or delayed recipients decides;
 *   2. a DSN whose recipients were all delivered, or an MDN: not a bounce;
 *   3. a message that does not look like a bounce (not from a mailer
 *      daemon, no bounce subject, no empty Return-Path) and says it is a
 *      challenge or an auto-reply: not a bounce;
 *   4. in a message that looks like a bounce, the text detectors
 *      (textbounce.c) over the first text part;
 *   5. a bounce that named nobody: anonymous, with the action its status
 *      or words give (a VERP bounce needs no more);
 *   6. otherwise unknown, for the owners.
 * The bounce's own From, To, Reply-To and Sender are never named, nor are
 * mailer-daemon and postmaster.
 */
#include "autoconf.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "bpint.h"
#include "mime.h"

struct parse {
    struct bounce_report *r;
    struct bp_self self;
    int dsn_parts, dsn_seen, dsn_unnamed;
    enum bounce_action dsn_action;
    char dsn_status[BOUNCE_STATUS_MAX];
    int mdn;
    int nomem;
    struct mime_part text, html;
    int have_text, have_html;
};

const char *bounce_action_name(enum bounce_action action)
{
    switch (action) {
    case BOUNCE_FAILED:
        return "failed";
    case BOUNCE_DELAYED:
        return "delayed";
    case BOUNCE_POLICY:
        return "policy";
    }
    return "failed";
}

void bounce_report_free(struct bounce_report *report)
{
    size_t i;

    if (report == NULL)
        return;
    for (i = 0; i < report->nrcpt; i++) {
        free(report->rcpt[i].address);
        free(report->rcpt[i].diagnostic);
    }
    free(report->rcpt);
    report->rcpt = NULL;
    report->nrcpt = 0;
}

/* --------------------------------------------------------- the walk */

static int on_leaf(const struct mime_part *part, void *ctx)
{
    struct parse *ps = ctx;

    if (part->in_message)
        return 0;
    if (strcmp(part->ctype, "message/delivery-status") == 0 ||
        strcmp(part->ctype, "message/global-delivery-status") == 0) {
        size_t n;
        char *text = mime_decode(part, BP_TEXT_MAX, &n);
        int seen = 0, unnamed = 0, rc;
        enum bounce_action ua = BOUNCE_FAILED;
        char us[BOUNCE_STATUS_MAX] = "";

        if (text == NULL) {
            ps->nomem = 1;
            return 1;
        }
        rc = bp_dsn_parse(text, n, &ps->self, ps->r, &seen, &unnamed, &ua, us);
        free(text);
        if (rc < 0) {
            ps->nomem = 1;
            return 1;
        }
        ps->dsn_parts++;
        ps->dsn_seen += seen;
        if (unnamed > 0 && ps->dsn_unnamed++ == 0) {
            ps->dsn_action = ua;
            memcpy(ps->dsn_status, us, sizeof(us));
        }
    } else if (strcmp(part->ctype, "message/disposition-notification") == 0) {
        ps->mdn = 1;
    } else if (strcmp(part->ctype, "text/plain") == 0 && !ps->have_text) {
        ps->text = *part;
        ps->have_text = 1;
    } else if (strcmp(part->ctype, "text/html") == 0 && !ps->have_html) {
        ps->html = *part;
        ps->have_html = 1;
    }
    return 0;
}

/* ------------------------------------------------------- the header */

static void self_add(struct parse *ps, const char *hdr, size_t hlen,
                     const char *field)
{
    char v[1024];

    if (ps->self.n < 4 && mime_header(hdr, hlen, field, v, sizeof(v)) &&
        bp_address_take(v, strlen(v), ps->self.addr[ps->self.n], BP_ADDR_MAX))
        ps->self.n++;
}

static int any_of(const char *v, const char *const *words)
{
    int i;

    for (i = 0; words[i]; i++)
        if (bp_find(v, strlen(v), words[i]) != NULL)
            return 1;
    return 0;
}

static const char *const bounce_subjects[] = {"undeliver",
                                              "undelivered",
                                              "returned mail",
                                              "delivery status notif",
                                              "delivery failure",
                                              "delivery failed",
                                              "failure notice",
                                              "mail delivery fail",
                                              "delivery has failed",
                                              "could not be delivered",
                                              "non-delivery",
                                              "nondeliverable",
                                              "non delivery",
                                              "delayed mail",
                                              "delivery delayed",
                                              "delivery notification: delay",
                                              "warning: could not send",
                                              "returned to sender",
                                              "mail system error",
                                              "address not found",
                                              "message not delivered",
                                              NULL};

/* Does the header say this is a delivery report? */
static int bouncy(const char *hdr, size_t hlen)
{
    static const char *const daemons[] = {"mailer-daemon", "postmaster@",
                                          "mail delivery", "mail-daemon", NULL};
    char v[1024];

    if (mime_header(hdr, hlen, "From", v, sizeof(v)) && any_of(v, daemons))
        return 1;
    if (mime_header(hdr, hlen, "Subject", v, sizeof(v)) &&
        any_of(v, bounce_subjects))
        return 1;
    if (mime_header(hdr, hlen, "X-Failed-Recipients", v, sizeof(v)))
        return 1;
    if (mime_header(hdr, hlen, "Return-Path", v, sizeof(v)) &&
        strcmp(v, "<>") == 0)
        return 1;
    if (mime_header(hdr, hlen, "Content-Type", v, sizeof(v)) &&
        bp_find(v, strlen(v), "delivery-status") != NULL)
        return 1;
    return 0;
}

static int challenge(const char *hdr, size_t hlen)
{
    static const char *const systems[] = {
        "tmda",       "boxbe",      "spamarrest", "spam arrest",
        "mailblocks", "bluebottle", "choicemail", NULL};
    static const char *const subjects[] = {
        "please confirm your",    "confirm your message",
        "confirm your e-mail",    "confirm your email",
        "verify your e-mail",     "verify your email",
        "verification required",  "sender verification",
        "authentication request", "challenge",
        "awaiting your approval", NULL};
    char v[1024];

    if (mime_header(hdr, hlen, "X-Delivery-Agent", v, sizeof(v)) &&
        any_of(v, systems))
        return 1;
    if (mime_header(hdr, hlen, "X-Boxbe-Reason", v, sizeof(v)) ||
        mime_header(hdr, hlen, "X-Challenge", v, sizeof(v)))
        return 1;
    if (mime_header(hdr, hlen, "X-Mailer", v, sizeof(v)) && any_of(v, systems))
        return 1;
    if (mime_header(hdr, hlen, "From", v, sizeof(v)) && any_of(v, systems))
        return 1;
    return mime_header(hdr, hlen, "Subject", v, sizeof(v)) &&
           any_of(v, subjects);
}

static const char *const away_words[] = {"out of office",
                                         "out of the office",
                                         "on vacation",
                                         "on holiday",
                                         "away from the office",
                                         "away from my desk",
                                         "limited access to e",
                                         "automatic reply",
                                         "auto-reply",
                                         "autoreply",
                                         "auto reply",
                                         "abwesenheit",
                                         "absence",
                                         "réponse automatique",
                                         "vacation",
                                         NULL};

static int autoreply(const char *hdr, size_t hlen, const char *body,
                     size_t blen)
{
    static const char *const fields[] = {"X-Autoreply", "X-Autorespond",
                                         "X-Autoresponder", "X-Vacation", NULL};
    char v[1024];
    int i;

    for (i = 0; fields[i]; i++)
        if (mime_header(hdr, hlen, fields[i], v, sizeof(v)))
            return 1;
    if (mime_header(hdr, hlen, "Auto-Submitted", v, sizeof(v)) &&
        strncasecmp(v, "no", 2) != 0)
        return 1;
    if (mime_header(hdr, hlen, "Precedence", v, sizeof(v)) &&
        bp_find(v, strlen(v), "auto_reply") != NULL)
        return 1;
    if (mime_header(hdr, hlen, "Subject", v, sizeof(v)) &&
        any_of(v, away_words))
        return 1;
    if (body != NULL) {
        size_t n = blen < 4096 ? blen : 4096;

        for (i = 0; away_words[i]; i++)
            if (bp_find(body, n, away_words[i]) != NULL)
                return 1;
    }
    return 0;
}

/* ---------------------------------------------------------- the text */

/* HTML to text, enough for the detectors: tags dropped (block tags give
 * a line break), the common entities decoded.  In place. */
static size_t html_text(char *s, size_t n)
{
    static const char *const breaks[] = {
        "br", "/p", "p", "/div", "div", "/tr", "tr", "/li", "li", "/h", NULL};
    size_t i = 0, o = 0;

    while (i < n) {
        if (s[i] == '<') {
            const char *gt = memchr(s + i, '>', n - i);
            int k, br = 0;

            if (gt == NULL)
                break;
            for (k = 0; breaks[k]; k++) {
                size_t bl = strlen(breaks[k]);

                if (i + 1 + bl <= n &&
                    strncasecmp(s + i + 1, breaks[k], bl) == 0 &&
                    !isalpha((unsigned char)s[i + 1 + bl]))
                    br = 1;
            }
            s[o++] = br ? '\n' : ' ';
            i = (size_t)(gt - s) + 1;
        } else if (s[i] == '&') {
            static const char *const ent[][2] = {
                {"&lt;", "<"},   {"&gt;", ">"},    {"&amp;", "&"},
                {"&nbsp;", " "}, {"&quot;", "\""}, {"&#39;", "'"},
                {"&#x27;", "'"}};
            size_t k, hit = 0;

            for (k = 0; k < sizeof(ent) / sizeof(ent[0]); k++) {
                size_t el = strlen(ent[k][0]);

                if (i + el <= n && strncasecmp(s + i, ent[k][0], el) == 0) {
                    s[o++] = ent[k][1][0];
                    i += el;
                    hit = 1;
                    break;
                }
            }
            if (!hit)
                s[o++] = s[i++];
        } else {
            s[o++] = s[i++];
        }
    }
    s[o] = 0;
    return o;
}

/* The first text part, decoded (HTML as text); NULL when none or ENOMEM
 * (ps->nomem says which). */
static char *body_text(struct parse *ps, size_t *n)
{
    char *t;

    if (ps->have_text) {
        t = mime_decode(&ps->text, BP_TEXT_MAX, n);
    } else if (ps->have_html) {
        t = mime_decode(&ps->html, BP_TEXT_MAX, n);
        if (t != NULL)
            *n = html_text(t, *n);
    } else {
        return NULL;
    }
    if (t == NULL)
        ps->nomem = 1;
    return t;
}

/* A bounce that named nobody: what does it report? */
static void anonymous(struct parse *ps, const char *text, size_t n,
                      const char *subject)
{
    static const char *const delay_words[] = {"delayed",
                                              "still being retried",
                                              "will be retried",
                                              "will keep trying",
                                              "will continue to try",
                                              "warning only",
                                              "has not yet been delivered",
                                              "temporary problem",
                                              "temporarily",
                                              NULL};
    struct bounce_report *r = ps->r;
    size_t cut = text ? bp_text_cut(text, n) : 0;
    enum bp_hint hint = BP_HINT_FAILED;

    r->verdict = BOUNCE_ANONYMOUS;
    if (ps->dsn_unnamed > 0) {
        r->action = ps->dsn_action;
        memcpy(r->status, ps->dsn_status, sizeof(r->status));
        return;
    }
    if (text != NULL)
        bp_status_find(text, cut, r->status);
    if (any_of(subject, delay_words) ||
        (text != NULL && r->status[0] != '5' &&
         bp_find(text, cut < 2048 ? cut : 2048, "warning") != NULL) ||
        r->status[0] == '4')
        hint = BP_HINT_DELAYED;
    if (!bp_classify(hint, r->status, text ? text : "",
                     cut < BP_REASON_MAX * 2 ? cut : BP_REASON_MAX * 2,
                     &r->action))
        r->action = BOUNCE_FAILED;
}

static int decide(struct parse *ps, const char *hdr, size_t hlen)
{
    struct bounce_report *r = ps->r;
    char subject[1024];
    char *text;
    size_t n = 0;
    int isbounce = bouncy(hdr, hlen), rc;
    const char *format = NULL;

    mime_header(hdr, hlen, "Subject", subject, sizeof(subject));
    if (r->nrcpt > 0) {
        r->verdict = BOUNCE_NAMED;
        r->format = "dsn";
        return 0;
    }
    if ((ps->dsn_seen > 0 && ps->dsn_unnamed == 0) || ps->mdn) {
        r->verdict = BOUNCE_NOT;
        r->format = "receipt";
        return 0;
    }
    text = body_text(ps, &n);
    if (ps->nomem)
        return -1;
    if (!isbounce && ps->dsn_parts == 0) {
        if (challenge(hdr, hlen)) {
            r->verdict = BOUNCE_NOT;
            r->format = "challenge";
            free(text);
            return 0;
        }
        if (autoreply(hdr, hlen, NULL, 0)) {
            r->verdict = BOUNCE_NOT;
            r->format = "vacation";
            free(text);
            return 0;
        }
    }
    /* the text formats only in what says it is a bounce: a person's
     * "your message to a@b couldn't be delivered" names nobody */
    rc = text && isbounce
             ? bp_text_scan(text, n, isbounce, &ps->self, r, &format)
             : 0;
    if (rc < 0) {
        free(text);
        return -1;
    }
    if (r->nrcpt > 0) {
        r->verdict = BOUNCE_NAMED;
        r->format = format;
    } else if (isbounce || rc > 0 || ps->dsn_parts > 0) {
        anonymous(ps, text, n, subject);
        r->format = format ? format : ps->dsn_parts ? "dsn" : "text";
    } else if (autoreply(hdr, hlen, text, n)) {
        r->verdict = BOUNCE_NOT;
        r->format = "vacation";
    }
    free(text);
    return 0;
}

int bounce_parse(const char *msg, size_t len, struct bounce_report *report)
{
    struct parse ps;
    const char *hdr, *body;
    size_t hlen, blen;

    memset(report, 0, sizeof(*report));
    report->verdict = BOUNCE_UNKNOWN;
    report->format = "unknown";
    memset(&ps, 0, sizeof(ps));
    ps.r = report;
    mime_split(msg, len, &hdr, &hlen, &body, &blen);
    self_add(&ps, hdr, hlen, "From");
    self_add(&ps, hdr, hlen, "To");
    self_add(&ps, hdr, hlen, "Reply-To");
    self_add(&ps, hdr, hlen, "Sender");
    mime_walk(msg, len, on_leaf, &ps);
    if (ps.nomem || decide(&ps, hdr, hlen) < 0) {
        bounce_report_free(report);
        memset(report, 0, sizeof(*report));
        report->verdict = BOUNCE_UNKNOWN;
        report->format = "unknown";
        errno = ENOMEM;
        return -1;
    }
    if (report->nrcpt > 0) {
        report->action = report->rcpt[0].action;
        memcpy(report->status, report->rcpt[0].status, sizeof(report->status));
    }
    return 0;
}
