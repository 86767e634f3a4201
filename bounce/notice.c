/*
 * notice - the mail mmq-bounce sends: notices to members and owners,
 * probes, and unrecognised bounces forwarded to the owners.
 *
 * Every one is ordinary list-generated mail: an out/ entry whose envelope
 * sender is the list's bounce address (or a probe's VERP address under
 * it), never a member's or a poster's, so that its own bounce comes back
 * to us.  Names are derived from what caused the notice (the member event,
 * the bounces/ entry), so a rerun after a crash replaces a notice that is
 * still queued instead of adding a second (member.h says when one can be
 * sent twice).  They go into out/ by the list mail's one path,
 * listmail_enqueue() (shared/listmail.c), which makes the entry durable
 * before it is visible; their headers (From: LIST-owner, Auto-Submitted:
 * auto-generated: a notice, not a reply) are written here.
 */
#include "autoconf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bounce.h"
#include "buf.h"
#include "digest.h"
#include "dsn.h"
#include "listmail.h"
#include "log.h"

/* "SSSSSSSSSS.000000+" and the digest of tag: a valid, repeatable name. */
static void notice_name(int64_t when, const char *tag, char *out)
{
    snprintf(out, QNAME_LEN + 1, "%010lld.000000+", (long long)when);
    digest_hex_of(tag, strlen(tag), out + 18);
}

/* Through the list mail's one path into out/ (listmail.h). */
static int queue_msg(struct bounce_ctx *bc, const struct listdef *ld,
                     int64_t when, const char *tag, const char *sender,
                     char **to, size_t nto, const struct buf *msg)
{
    char name[QNAME_LEN + 1], err[QUEUE_ERR_MAX];

    notice_name(when, tag, name);
    if (listmail_enqueue(bc->sp, ld, sender, bc->now(), to, nto, msg, name, err,
                         sizeof(err)) != 0) {
        log_error("list %s: notice %s: %s", ld->name, tag, err);
        return -1;
    }
    log_info("list %s: queued %s (%s) to %zu recipient%s", ld->name, name, tag,
             nto, nto == 1 ? "" : "s");
    return 0;
}

static void head(struct buf *b, const struct listdef *ld, const char *to,
                 const char *subject, const char *tag)
{
    char date[64], hex[DIGEST_HEX_LEN + 1];

    if (dsn_date((int64_t)time(NULL), date, sizeof(date)) != 0)
        snprintf(date, sizeof(date), "Thu, 01 Jan 1970 00:00:00 +0000");
    digest_hex_of(tag, strlen(tag), hex);
    buf_printf(b,
               "From: %s-owner@%s\r\nTo: %s\r\nSubject: %s\r\nDate: %s\r\n"
               "Message-ID: <%s.bounce@%s>\r\nAuto-Submitted: auto-generated"
               "\r\nPrecedence: list\r\nList-Id: <%s.%s>\r\n"
               "MIME-Version: 1.0\r\n",
               ld->name, ld->domain, to, subject, date, hex, ld->domain,
               ld->name, ld->domain);
}

/* Body text with LF turned into CRLF. */
static void crlf(struct buf *b, const char *text)
{
    for (; *text; text++) {
        if (*text == '\n')
            buf_append(b, "\r", 1);
        buf_append(b, text, 1);
    }
}

int notice_queue(struct bounce_ctx *bc, const struct listdef *ld, int64_t when,
                 const char *tag, const char *sender, char **to, size_t nto,
                 const char *subject, const char *body)
{
    struct buf msg;
    char toh[600];
    int rc;

    if (nto == 0)
        return 0;
    if (nto == 1)
        snprintf(toh, sizeof(toh), "<%s>", to[0]);
    else
        snprintf(toh, sizeof(toh), "%s-owner@%s", ld->name, ld->domain);
    buf_init(&msg);
    head(&msg, ld, toh, subject, tag);
    buf_puts(&msg, "Content-Type: text/plain; charset=us-ascii\r\n\r\n");
    crlf(&msg, body);
    rc = queue_msg(bc, ld, when, tag, sender, to, nto, &msg);
    buf_free(&msg);
    return rc;
}

int notice_forward(struct bounce_ctx *bc, const struct listdef *ld,
                   const char *entry, const char *msg, size_t len)
{
    struct buf b;
    char sender[LIST_NAME_MAX + 300], tag[QNAME_LEN + 16], to[300];
    char boundary[64], hex[DIGEST_HEX_LEN + 1];
    int rc;

    snprintf(sender, sizeof(sender), "%s-bounces@%s", ld->name, ld->domain);
    snprintf(tag, sizeof(tag), "%s.fwd", entry);
    snprintf(to, sizeof(to), "%s-owner@%s", ld->name, ld->domain);
    digest_hex_of(tag, strlen(tag), hex);
    snprintf(boundary, sizeof(boundary), "=_mmq_%.24s", hex);
    buf_init(&b);
    head(&b, ld, to, "Unrecognised bounce", tag);
    buf_printf(&b,
               "%s: %s\r\nContent-Type: multipart/mixed; "
               "boundary=\"%s\"\r\n\r\n--%s\r\nContent-Type: text/plain; "
               "charset=us-ascii\r\n\r\n",
               BOUNCE_FORWARD_MARK, ld->name, boundary, boundary);
    crlf(&b, "This message came to the list's bounce address, but mmq-bounce\n"
             "could not tell which member it is about.  It is attached\n"
             "as received.  No member's state was changed.\n");
    buf_printf(&b, "\r\n--%s\r\nContent-Type: message/rfc822\r\n\r\n",
               boundary);
    buf_append(&b, msg, len);
    buf_printf(&b, "\r\n--%s--\r\n", boundary);
    /* a sender header the MTA may show; the entry's name makes it unique */
    rc = queue_msg(bc, ld, bc->now(), tag, sender, ld->owners, ld->nowners, &b);
    buf_free(&b);
    return rc;
}
