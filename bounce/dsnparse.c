/*
 * dsnparse - the fields of one RFC 3464 message/delivery-status body.
 *
 * The body is a per-message block, then one block per recipient,
 * separated by blank lines; fields may be folded.  Generators differ:
 * some leave out the blank lines, so a second Final-Recipient also starts
 * a new block.  Per recipient: Original-Recipient (the ORCPT we gave, so
 * the address we sent to) is preferred over Final-Recipient when it is an
 * rfc822 address; Action decides failed or delayed (delivered, relayed
 * and expanded name nobody); Status is the RFC 3463 code, and with
 * Diagnostic-Code it decides whether a failure is a policy refusal.
 * Field values are cut to fixed buffers: a hostile field costs its length
 * in time and nothing in memory.
 */
#include "autoconf.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "bpint.h"

struct dsn_block {
    char action[32];
    char status[BOUNCE_STATUS_MAX];
    char final[BP_ADDR_MAX + 32];
    char orig[BP_ADDR_MAX + 32];
    char diag[BP_DIAG_MAX];
    int fields;
};

struct dsn_state {
    const struct bp_self *self;
    struct bounce_report *r;
    int seen, unnamed;
    enum bounce_action unnamed_action;
    char unnamed_status[BOUNCE_STATUS_MAX];
};

/* RFC 3461 xtext: "+XX" stands for '+', '=' and bytes outside 33..126.
 * Only "+2B" and "+3D" are decoded: the others could not be in an rfc822
 * address anyway, so that a literal "+AB" (user+AB@...) is kept. */
static void xtext_decode(char *s)
{
    char *w = s;
    const char *r = s;

    while (*r) {
        if (r[0] == '+' && isxdigit((unsigned char)r[1]) &&
            isxdigit((unsigned char)r[2]) && !islower((unsigned char)r[1]) &&
            !islower((unsigned char)r[2])) {
            char hex[3] = {r[1], r[2], 0};
            int c = (int)strtol(hex, NULL, 16);

            if (c == '+' || c == '=') {
                *w++ = (char)c;
                r += 3;
                continue;
            }
        }
        *w++ = *r++;
    }
    *w = 0;
}

/* The address of a recipient field of type rfc822 (or utf-8, or untyped). */
static int recipient_address(const char *value, char *out, size_t outlen)
{
    const char *semi = strchr(value, ';');

    if (semi != NULL) {
        size_t tl = (size_t)(semi - value);

        while (tl > 0 && value[tl - 1] == ' ')
            tl--;
        if (!((tl == 6 && strncasecmp(value, "rfc822", 6) == 0) ||
              (tl == 5 && strncasecmp(value, "utf-8", 5) == 0)))
            return 0;
    }
    /* the whole value must be the address: "junk a@b" names nobody */
    {
        const char *v = semi ? semi + 1 : value;
        size_t n;

        while (*v == ' ' || *v == '\t')
            v++;
        n = strlen(v);
        while (n > 0 && (v[n - 1] == ' ' || v[n - 1] == '\t'))
            n--;
        if (n >= 2 && v[0] == '<' && v[n - 1] == '>') {
            v++;
            n -= 2;
        }
        if (n == 0 || n >= outlen)
            return 0;
        memcpy(out, v, n);
        out[n] = 0;
    }
    xtext_decode(out);
    return bp_address_ok(out);
}

static int block_end(struct dsn_state *st, struct dsn_block *b)
{
    char addr[BP_ADDR_MAX], dcode[BOUNCE_STATUS_MAX];
    enum bp_hint hint = BP_HINT_NONE;
    enum bounce_action action;
    int have, rc;
    size_t al;

    if (b->fields == 0 || (!b->final[0] && !b->orig[0] && !b->action[0]))
        goto out; /* the per-message block, or nothing */
    st->seen++;
    for (al = 0; b->action[al] && !isspace((unsigned char)b->action[al]) &&
                 b->action[al] != '(' && b->action[al] != ';';
         al++)
        b->action[al] = (char)tolower((unsigned char)b->action[al]);
    b->action[al] = 0;
    if (strcmp(b->action, "failed") == 0)
        hint = BP_HINT_FAILED;
    else if (strcmp(b->action, "delayed") == 0)
        hint = BP_HINT_DELAYED;
    else if (b->action[0] != 0)
        goto out; /* delivered, relayed, expanded: names no failure */
    bp_status_find(b->diag, strlen(b->diag), dcode);
    if (!bp_classify(hint, b->status, b->diag, strlen(b->diag), &action))
        goto out;
    /* "5.0.0" with "550 5.1.1 ..." in the diagnostic (Exim): the
     * server's own code says more */
    if (strcmp(b->status + 1, ".0.0") == 0 && dcode[0] == b->status[0] &&
        strcmp(dcode + 1, ".0.0") != 0)
        memcpy(b->status, dcode, sizeof(dcode));
    if (action == BOUNCE_FAILED &&
        (strncmp(dcode, "5.7.", 4) == 0 || strncmp(dcode, "4.7.", 4) == 0))
        action = BOUNCE_POLICY;
    have = (b->orig[0] && recipient_address(b->orig, addr, sizeof(addr))) ||
           (b->final[0] && recipient_address(b->final, addr, sizeof(addr)));
    rc = have ? bp_add(st->r, st->self, addr, action, b->status, b->diag,
                       strlen(b->diag))
              : 0;
    if (rc < 0)
        return -1;
    if (rc == 0) { /* no usable address, or only ours: nobody named */
        if (st->unnamed++ == 0) {
            st->unnamed_action = action;
            memcpy(st->unnamed_status, b->status, sizeof(b->status));
        }
    }
out:
    memset(b, 0, sizeof(*b));
    return 0;
}

static void set_field(char *dst, size_t dlen, const char *v)
{
    snprintf(dst, dlen, "%s", v);
}

/* One unfolded field "Name: value" (NUL-terminated, cut). */
static int field(struct dsn_state *st, struct dsn_block *b, char *f)
{
    char *colon = strchr(f, ':'), *v;

    if (colon == NULL)
        return 0;
    *colon = 0;
    for (v = colon + 1; *v == ' ' || *v == '\t'; v++)
        ;
    while (colon > f && (colon[-1] == ' ' || colon[-1] == '\t'))
        *--colon = 0;
    if (strcasecmp(f, "Final-Recipient") == 0) {
        if (b->final[0] && block_end(st, b) < 0)
            return -1;
        set_field(b->final, sizeof(b->final), v);
    } else if (strcasecmp(f, "Original-Recipient") == 0) {
        if (b->orig[0] && block_end(st, b) < 0)
            return -1;
        set_field(b->orig, sizeof(b->orig), v);
    } else if (strcasecmp(f, "Action") == 0) {
        /* a second Action without a blank line: the next recipient's */
        if (b->action[0] && block_end(st, b) < 0)
            return -1;
        set_field(b->action, sizeof(b->action), v);
    } else if (strcasecmp(f, "Status") == 0) {
        if (b->status[0] && block_end(st, b) < 0)
            return -1;
        bp_status_find(v, strlen(v), b->status);
    } else if (strcasecmp(f, "Diagnostic-Code") == 0) {
        char *semi = strchr(v, ';');

        set_field(b->diag, sizeof(b->diag), semi ? semi + 1 : v);
    }
    b->fields++;
    return 0;
}

int bp_dsn_parse(const char *text, size_t n, const struct bp_self *self,
                 struct bounce_report *r, int *seen, int *unnamed,
                 enum bounce_action *unnamed_action, char *unnamed_status)
{
    struct dsn_state st;
    struct dsn_block b;
    char f[BP_DIAG_MAX + 64];
    size_t fl = 0, len;
    const char *p = text, *end = text + n, *line;
    int infield = 0;

    memset(&st, 0, sizeof(st));
    memset(&b, 0, sizeof(b));
    st.self = self;
    st.r = r;
    while (bp_line(&p, end, &line, &len)) {
        size_t i;

        if (len > 0 && (line[0] == ' ' || line[0] == '\t') && infield) {
            for (i = 0; i < len && fl + 1 < sizeof(f); i++)
                f[fl++] = (line[i] && line[i] != '\t') ? line[i] : ' ';
            continue;
        }
        if (infield) {
            f[fl] = 0;
            if (field(&st, &b, f) < 0)
                return -1;
            infield = 0;
        }
        while (len > 0 && (line[len - 1] == ' ' || line[len - 1] == '\t'))
            len--;
        if (len == 0) {
            if (block_end(&st, &b) < 0)
                return -1;
            continue;
        }
        for (fl = 0, i = 0; i < len && fl + 1 < sizeof(f); i++)
            f[fl++] = line[i] ? line[i] : ' ';
        infield = 1;
    }
    if (infield) {
        f[fl] = 0;
        if (field(&st, &b, f) < 0)
            return -1;
    }
    if (block_end(&st, &b) < 0)
        return -1;
    *seen = st.seen;
    *unnamed = st.unnamed;
    *unnamed_action = st.unnamed_action;
    memcpy(unnamed_status, st.unnamed_status, BOUNCE_STATUS_MAX);
    return 0;
}
