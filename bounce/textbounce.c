/*
 * textbounce - the bounces that carry no message/delivery-status part:
 * qmail's QSBMF, Yahoo's variant of it, Postfix and Exim plain text,
 * sendmail's "permanent fatal errors", Exchange/Outlook NDRs (2003 to
 * Office 365), Gmail's texts, and the "user unknown" lines of older MTAs.
 *
 * Each detector is keyed on the sentence its MTA writes before the
 * recipients (the formats are documented by qmail's QSBMF, the Postfix
 * bounce(5) templates, Exim's bounce message, and were studied in real
 * bounces), and reads the recipients in the shape that MTA gives them.
 * Only the bounce's own text is read: bp_text_cut() stops before the
 * returned message, whose addresses must never be named.  The catch-all
 * for older MTAs runs only when the header looks like a bounce and names
 * an address only on a line (or an SMTP exchange) that says the mailbox
 * does not exist.
 */
#include "autoconf.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "bpint.h"

enum shape {
    S_ANGLE,  /* "<addr>: reason" or "<addr>:" + reason lines (qmail) */
    S_LIST,   /* a list of address lines, each with indented reasons */
    S_INLINE, /* "...prefix ADDR suffix..." in a sentence */
};

struct detector {
    const char *marker;
    const char *format;
    enum bp_hint hint;
    enum shape shape;
    const char *suffix; /* S_INLINE: what follows the address */
};

static const struct detector detectors[] = {
    {"I'm afraid I wasn't able to deliver your message", "qmail",
     BP_HINT_FAILED, S_ANGLE, NULL},
    {"This is the qmail-send program", "qmail", BP_HINT_FAILED, S_ANGLE, NULL},
    {"unable to deliver your message to the following address", "yahoo",
     BP_HINT_FAILED, S_ANGLE, NULL},
    {"THIS IS A WARNING ONLY", "postfix", BP_HINT_DELAYED, S_ANGLE, NULL},
    {"This is the mail system at host", "postfix", BP_HINT_FAILED, S_ANGLE,
     NULL},
    {"The following address(es) failed:", "exim", BP_HINT_FAILED, S_LIST, NULL},
    {"The following addresses failed:", "exim", BP_HINT_FAILED, S_LIST, NULL},
    {"has not yet been delivered is:", "exim", BP_HINT_DELAYED, S_LIST, NULL},
    {"have not yet been delivered are:", "exim", BP_HINT_DELAYED, S_LIST, NULL},
    {"Delivery has failed to these recipients or groups:", "exchange",
     BP_HINT_FAILED, S_LIST, NULL},
    {"The following recipient(s) cannot be reached:", "exchange",
     BP_HINT_FAILED, S_LIST, NULL},
    {"The following recipient(s) could not be reached:", "exchange",
     BP_HINT_FAILED, S_LIST, NULL},
    {"Your message to ", "exchange", BP_HINT_FAILED, S_INLINE,
     " couldn't be delivered"},
    {"Delivery to the following recipient failed permanently:", "gmail",
     BP_HINT_FAILED, S_LIST, NULL},
    {"Delivery to the following recipients failed permanently:", "gmail",
     BP_HINT_FAILED, S_LIST, NULL},
    {"Delivery to the following recipient has been delayed:", "gmail",
     BP_HINT_DELAYED, S_LIST, NULL},
    {"Delivery to the following recipients have been delayed:", "gmail",
     BP_HINT_DELAYED, S_LIST, NULL},
    {"Your message wasn't delivered to ", "gmail", BP_HINT_FAILED, S_INLINE,
     " because"},
    {"There was a temporary problem delivering your message to ", "gmail",
     BP_HINT_DELAYED, S_INLINE, "."},
    {"The following addresses had permanent fatal errors", "sendmail",
     BP_HINT_FAILED, S_LIST, NULL},
    {"The following addresses had transient non-fatal errors", "sendmail",
     BP_HINT_DELAYED, S_LIST, NULL},
    {NULL, NULL, BP_HINT_NONE, S_ANGLE, NULL}};

/* Lines after which the returned message starts. */
static const char *const cut_markers[] = {
    "--- Below this line is a copy of the message",
    "------ This is a copy of the message",
    "------ This is a copy of your message",
    "----- Original message -----",
    "-----Original Message-----",
    "----- Unsent message follows -----",
    "----- Original message follows -----",
    "--- Original message follows",
    "------ Original message ------",
    "Original message headers:",
    "The header of the original message is following",
    "--- The header of the original message is following",
    NULL};

/* One pass over the lines: a marker counts at the start of a line (after
 * blanks), where every MTA writes it. */
size_t bp_text_cut(const char *text, size_t n)
{
    const char *p = text, *end = text + n, *line;
    size_t len;

    while (bp_line(&p, end, &line, &len)) {
        size_t i = 0;
        int k;

        while (i < len && (line[i] == ' ' || line[i] == '\t'))
            i++;
        if (i == len || !strchr("-OoTt", line[i]))
            continue;
        for (k = 0; cut_markers[k]; k++) {
            size_t ml = strlen(cut_markers[k]);

            if (len - i >= ml && bp_find(line + i, ml, cut_markers[k]))
                return (size_t)(line - text);
        }
    }
    return n;
}

struct scan {
    const char *text, *end;
    int bouncy;
    const struct bp_self *self;
    struct bounce_report *r;
    const struct detector *d;
    int named;
};

static int is_blank(const char *line, size_t len)
{
    size_t i;

    for (i = 0; i < len; i++)
        if (!isspace((unsigned char)line[i]))
            return 0;
    return 1;
}

/*
 * Name addr with the status found in reason (or, failing that, near a
 * later mention of the address in the text, e.g. Exchange's "Diagnostic
 * information for administrators").
 */
static int name(struct scan *s, const char *addr, enum bp_hint hint,
                const char *reason, size_t rlen, int last)
{
    char status[BOUNCE_STATUS_MAX];
    enum bounce_action action;
    int rc;

    if (!bp_status_find(reason, rlen, status)) {
        const char *q =
            bp_find(reason + rlen, (size_t)(s->end - (reason + rlen)), addr);

        if (q != NULL) {
            size_t w = (size_t)(s->end - q) < 600 ? (size_t)(s->end - q) : 600;

            bp_status_find(q, w, status);
        }
    }
    /* the last (or only) recipient: its code may follow the list, as in
     * Gmail's "Technical details of permanent failure" */
    if (!status[0] && last) {
        const char *t = reason + rlen;
        size_t w = (size_t)(s->end - t) < 1500 ? (size_t)(s->end - t) : 1500;

        bp_status_find(t, w, status);
    }
    /* the server's words are near the address: the policy words are
     * looked for in the first BP_REASON_MAX bytes */
    if (!bp_classify(hint, status, reason,
                     rlen < BP_REASON_MAX ? rlen : BP_REASON_MAX, &action))
        return 0;
    rc = bp_add(s->r, s->self, addr, action, status, reason, rlen);
    if (rc > 0)
        s->named++;
    return rc < 0 ? -1 : 0;
}

/* ------------------------------------------------------- S_ANGLE */

/* "<addr>" at the start of a line, maybe "(expanded from <orig>)", ':' */
static int angle_line(const char *line, size_t len, char *addr, size_t alen,
                      size_t *rest)
{
    const char *gt, *p, *e = line + len;

    if (len < 3 || line[0] != '<' || (gt = memchr(line, '>', len)) == NULL)
        return 0;
    if (!bp_address_take(line, (size_t)(gt - line + 1), addr, alen))
        return 0;
    p = gt + 1;
    while (p < e && *p == ' ')
        p++;
    if (e - p > 15 && strncasecmp(p, "(expanded from ", 15) == 0) {
        const char *close = memchr(p, ')', (size_t)(e - p));
        char orig[BP_ADDR_MAX];

        if (close == NULL)
            return 0;
        /* the alias we sent to, not what it expanded to */
        if (bp_address_take(p + 15, (size_t)(close - p - 15), orig,
                            sizeof(orig)))
            snprintf(addr, alen, "%s", orig);
        p = close + 1;
        while (p < e && *p == ' ')
            p++;
    }
    if (p >= e || *p != ':')
        return 0;
    *rest = (size_t)(p + 1 - line);
    return 1;
}

static int scan_angle(struct scan *s, const char *from)
{
    const char *p = from, *line;
    size_t len;

    while (bp_line(&p, s->end, &line, &len)) {
        char addr[BP_ADDR_MAX];
        const char *rs, *q = p, *l2;
        size_t rest, l2len;

        if (!angle_line(line, len, addr, sizeof(addr), &rest))
            continue;
        /* the reason: the rest of the line and what follows up to a
         * blank line or the next recipient */
        rs = line + rest;
        while (bp_line(&q, s->end, &l2, &l2len)) {
            size_t dummy;
            char a2[BP_ADDR_MAX];

            if (is_blank(l2, l2len) ||
                angle_line(l2, l2len, a2, sizeof(a2), &dummy))
                break;
            p = q;
        }
        if (name(s, addr, s->d->hint, rs, (size_t)(p - rs), 0) < 0)
            return -1;
    }
    return 0;
}

/* -------------------------------------------------------- S_LIST */

/* A line that is nothing but an address: "addr", "<addr>", "Name
 * (addr)", "Name <addr>", "addr on DATE" (Exchange 2003), "addr:". */
static int address_line(const char *line, size_t len, char *addr, size_t alen)
{
    const char *p = line, *e = line + len, *at, *w;
    size_t words = 0;

    while (p < e && isspace((unsigned char)*p))
        p++;
    if (p == e || (at = memchr(p, '@', (size_t)(e - p))) == NULL)
        return 0;
    if (!bp_address_take(p, (size_t)(e - p), addr, alen))
        return 0;
    /* the first word must hold the address, or the line end with it */
    for (w = p; w < e && !isspace((unsigned char)*w); w++)
        ;
    if (memchr(p, '@', (size_t)(w - p)) != NULL) {
        const char *q = w;

        while (q < e && isspace((unsigned char)*q))
            q++;
        return q == e || *q == ':' ||
               (e - q > 3 && strncmp(q, "on ", 3) == 0) || *q == '(' ||
               *q == '<';
    }
    /* "Display Name (addr)" / "Display Name <addr>": ends with it */
    while (e > p && isspace((unsigned char)e[-1]))
        e--;
    if (e[-1] != ')' && e[-1] != '>')
        return 0;
    for (w = p; w < e; w++)
        if (*w == ' ')
            words++;
    return words < 8;
}

static int indented(const char *line, size_t len)
{
    return len > 0 && (line[0] == ' ' || line[0] == '\t');
}

static int scan_list(struct scan *s, const char *from)
{
    const char *p = from, *line;
    size_t len;
    char addr[BP_ADDR_MAX];
    const char *rs = NULL, *stop = s->end;
    int have = 0, blank = 0, any = 0, before = 0;

    /* the rest of the marker's line */
    bp_line(&p, s->end, &line, &len);
    while (bp_line(&p, s->end, &line, &len)) {
        char a2[BP_ADDR_MAX];

        if (is_blank(line, len)) {
            blank = 1;
            continue;
        }
        if (address_line(line, len, a2, sizeof(a2))) {
            if (have &&
                name(s, addr, s->d->hint, rs, (size_t)(line - rs), 0) < 0)
                return -1;
            snprintf(addr, sizeof(addr), "%s", a2);
            rs = line;
            have = any = 1;
            blank = 0;
            continue;
        }
        /* a reason line belongs to the address above it; after a blank
         * line only an indented one does, and a list that has not
         * started yet may still be preceded by text */
        if (!any) {
            /* the list starts right after the sentence, or after one
             * line (Exim's "The address ... is:"): not further down */
            if (++before > 2)
                break;
            continue;
        }
        if (blank && !indented(line, len)) {
            stop = line;
            break;
        }
        blank = 0;
    }
    if (have) {
        if (name(s, addr, s->d->hint, rs, (size_t)(stop - rs), 1) < 0)
            return -1;
    }
    return 0;
}

/* ------------------------------------------------------ S_INLINE */

static int scan_inline(struct scan *s, const char *from)
{
    const char *a = from + strlen(s->d->marker), *sfx;
    size_t win =
        (size_t)(s->end - a) < BP_ADDR_MAX ? (size_t)(s->end - a) : BP_ADDR_MAX;
    char addr[BP_ADDR_MAX];

    if (a >= s->end)
        return 0;
    sfx = bp_find(a, win, s->d->suffix);
    if (sfx == NULL) /* the address may end the sentence: "...to a@b." */
        sfx = a + win;
    while (a < sfx && isspace((unsigned char)*a))
        a++;
    {
        const char *w = a, *e = sfx;

        while (e > a && isspace((unsigned char)e[-1]))
            e--;
        while (w < e && !isspace((unsigned char)*w))
            w++;
        if (w != e && strcmp(s->d->suffix, ".") != 0)
            return 0; /* more than one word before the suffix */
        if (!bp_address_take(a, (size_t)(w - a), addr, sizeof(addr)))
            return 0;
    }
    return name(s, addr, s->d->hint, a, (size_t)(s->end - a), 0);
}

/* ---------------------------------------------------- catch-all */

static const char *const dead_phrases[] = {"user unknown",
                                           "unknown user",
                                           "no such user",
                                           "no such mailbox",
                                           "no such recipient",
                                           "mailbox unavailable",
                                           "mailbox not found",
                                           "user not found",
                                           "recipient not found",
                                           "unknown recipient",
                                           "recipient unknown",
                                           "invalid recipient",
                                           "invalid mailbox",
                                           "does not exist",
                                           "doesn't exist",
                                           "no mailbox",
                                           "not a valid mailbox",
                                           "address rejected",
                                           "unrouteable address",
                                           "mailbox is disabled",
                                           "account is disabled",
                                           "account has been disabled",
                                           NULL};

static int dead_line(const char *line, size_t len)
{
    int i;

    for (i = 0; dead_phrases[i]; i++)
        if (bp_find(line, len, dead_phrases[i]) != NULL)
            return 1;
    return 0;
}

/*
 * Older MTAs: "550 <a@b>... User unknown", "a@b: no such user", or an
 * SMTP exchange ">>> RCPT TO:<a@b>" / "<<< 550 5.1.1 ...".  One address
 * per line, and a reply code on the line (or the next one): without it
 * nobody is named.
 */
static int scan_catchall(struct scan *s)
{
    const char *p = s->text, *line, *nline = NULL;
    size_t len, nlen = 0;
    int lines = 0;

    while (bp_line(&p, s->end, &line, &len) && lines++ < 5000) {
        const char *q = p;
        char addr[BP_ADDR_MAX];
        const char *rs = line;
        size_t rlen = len;

        if (memchr(line, '@', len) == NULL)
            continue;
        if (!bp_line(&q, s->end, &nline, &nlen))
            nlen = 0;
        if (bp_find(line, len, "RCPT TO:") != NULL && nlen > 0 &&
            (bp_smtp_class(nline, nlen) || bp_status_find(nline, nlen, addr))) {
            rs = nline;
            rlen = nlen;
        } else if (!dead_line(line, len)) {
            continue;
        }
        /* exactly one address on the line */
        {
            const char *a1 = memchr(line, '@', len);
            const char *a2 = memchr(a1 + 1, '@', len - (size_t)(a1 + 1 - line));
            char other[BP_ADDR_MAX];

            if (a2 != NULL && bp_address_take(a2, len - (size_t)(a2 - line),
                                              other, sizeof(other))) {
                if (!bp_address_take(line, len, addr, sizeof(addr)) ||
                    strcasecmp(addr, other) != 0)
                    continue;
            }
        }
        if (!bp_address_take(line, len, addr, sizeof(addr)))
            continue;
        if (rs == line && !bp_smtp_class(line, len) &&
            !bp_status_find(line, len, (char[BOUNCE_STATUS_MAX]){0})) {
            if (nlen == 0 || !(bp_smtp_class(nline, nlen)))
                continue;
            rlen = (size_t)(nline + nlen - line);
        }
        if (name(s, addr, BP_HINT_NONE, rs, rlen, 0) < 0)
            return -1;
    }
    return 0;
}

int bp_text_scan(const char *text, size_t n, int bouncy,
                 const struct bp_self *self, struct bounce_report *r,
                 const char **format)
{
    struct scan s;
    int i, found = 0;
    size_t win;

    memset(&s, 0, sizeof(s));
    s.text = text;
    s.end = text + bp_text_cut(text, n);
    s.bouncy = bouncy;
    s.self = self;
    s.r = r;
    /* a detector's sentence comes before the recipients, in the first
     * lines of the report: it is looked for in the first BP_MARKER_MAX
     * bytes only (the recipients after it are read to the cut) */
    win = (size_t)(s.end - text) < BP_MARKER_MAX ? (size_t)(s.end - text)
                                                 : BP_MARKER_MAX;
    for (i = 0; detectors[i].marker; i++) {
        const char *hit = bp_find(text, win, detectors[i].marker);
        int rc;

        if (hit == NULL)
            continue;
        s.d = &detectors[i];
        if (!found)
            *format = detectors[i].format;
        found = 1;
        rc = detectors[i].shape == S_ANGLE  ? scan_angle(&s, hit)
             : detectors[i].shape == S_LIST ? scan_list(&s, hit)
                                            : scan_inline(&s, hit);
        if (rc < 0)
            return -1;
        if (s.named > 0) {
            *format = detectors[i].format;
            return 1;
        }
    }
    if (bouncy) {
        if (scan_catchall(&s) < 0)
            return -1;
        if (s.named > 0) {
            *format = "text";
            return 1;
        }
    }
    return found;
}
