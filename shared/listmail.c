/*
 * listmail - the list's own mail into out/.  See listmail.h.
 */
#include "autoconf.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "digest.h"
#include "dsn.h"
#include "envelope.h"
#include "listmail.h"
#include "log.h"
#include "member.h"

#define TEXT_MAX 16384

void listmail_name(const char *stamp_of, const char *cause, const char *what,
                   unsigned idx, char *out)
{
    char input[QNAME_LEN + 300];
    struct timeval tv;
    int n;

    if (stamp_of && strlen(stamp_of) >= 18) {
        memcpy(out, stamp_of, 18); /* "SSSSSSSSSS.UUUUUU+" */
    } else {
        gettimeofday(&tv, NULL);
        snprintf(out, 19, "%010lld.%06d+", (long long)tv.tv_sec,
                 (int)tv.tv_usec);
    }
    n = snprintf(input, sizeof(input), "%s/%s/%u", cause, what, idx);
    if (n < 0 || (size_t)n >= sizeof(input))
        n = (int)sizeof(input) - 1;
    digest_hex_of(input, (size_t)n, out + 18);
    out[QNAME_LEN] = 0;
}

/* Text with LF as CRLF, lines starting with "." kept as they are (the
 * delivery agent dot-stuffs). */
static void crlf(struct buf *b, const char *text)
{
    const char *p;

    for (p = text; *p; p++) {
        if (*p == '\n' && (p == text || p[-1] != '\r'))
            buf_append(b, "\r", 1);
        buf_append(b, p, 1);
    }
}

int listmail_enqueue(struct spool *sp, const struct listdef *ld,
                     const char *sender, int64_t arrival, char **rcpt, size_t n,
                     const struct buf *msg, const char *name, char *err,
                     size_t errlen)
{
    char bounces[LIST_NAME_MAX + 300];
    struct envelope env;
    struct queue_file *qf;
    size_t i;
    int rc = -1;

    snprintf(bounces, sizeof(bounces), "%s-bounces@%s", ld->name, ld->domain);
    envelope_init(&env);
    env.role = ROLE_POST;
    env.arrival_sec = arrival;
    env.size = (int64_t)msg->len;
    if (envelope_set(&env.list, ld->name) ||
        envelope_set(&env.sender, sender ? sender : bounces)) {
        err_set(err, errlen, ENOMEM, "out of memory");
        goto out;
    }
    for (i = 0; i < n; i++)
        if (envelope_add_rcpt(&env, rcpt[i], NULL) != 0) {
            err_set(err, errlen, ENOMEM, "out of memory");
            goto out;
        }
    if (!(qf = queue_file_create(sp, "out", err, errlen)))
        goto out;
    if (queue_file_begin(qf, &env) != 0 ||
        queue_file_write(qf, msg->data, msg->len) != 0) {
        snprintf(err, errlen, "%s", queue_file_error(qf));
        queue_file_abort(qf);
        goto out;
    }
    if (queue_file_commit_as(qf, name, err, errlen) != 0)
        goto out;
    rc = 0;
out:
    envelope_free(&env);
    return rc;
}

int listmail_queue(struct spool *sp, const struct listdef *ld, char **rcpt,
                   size_t n, const struct listmail *m, const char *name,
                   char *err, size_t errlen)
{
    char date[64];
    struct buf msg;
    int rc;

    if (dsn_date((int64_t)time(NULL), date, sizeof(date)) != 0)
        snprintf(date, sizeof(date), "Thu, 01 Jan 1970 00:00:00 +0000");
    buf_init(&msg);
    /* the Message-ID from the entry name: a rerun makes the same one */
    buf_printf(&msg,
               "From: %s-request@%s\r\nTo: %s\r\nSubject: %s\r\nDate: %s\r\n"
               "Message-ID: <%s.command@%s>\r\n",
               ld->name, ld->domain, m->to, m->subject, date, name + 18,
               ld->domain);
    if (m->reply_to)
        buf_printf(&msg, "Reply-To: %s\r\n", m->reply_to);
    if (m->in_reply_to && strlen(m->in_reply_to) < 250 &&
        m->in_reply_to[0] == '<' && !strpbrk(m->in_reply_to, "\r\n"))
        buf_printf(&msg, "In-Reply-To: %s\r\nReferences: %s\r\n",
                   m->in_reply_to, m->in_reply_to);
    buf_printf(&msg,
               "Auto-Submitted: auto-replied\r\nX-Loop: %s-request@%s\r\n"
               "MIME-Version: 1.0\r\nContent-Type: text/plain; "
               "charset=us-ascii\r\nContent-Transfer-Encoding: 7bit\r\n\r\n",
               ld->name, ld->domain);
    crlf(&msg, m->text);
    rc = listmail_enqueue(sp, ld, NULL, (int64_t)time(NULL), rcpt, n, &msg,
                          name, err, errlen);
    buf_free(&msg);
    return rc;
}

int listmail_text(const struct mmq_config *cfg, const struct listdef *ld,
                  const char *file, const char *suffix, const char *builtin,
                  struct buf *out)
{
    char path[PATH_MAX], text[TEXT_MAX];
    ssize_t n = -1;
    int fd;

    if (!file) {
        snprintf(path, sizeof(path), "%s/%s.%s", cfg->lists_dir, ld->name,
                 suffix);
        file = path;
    } else if (file[0] != '/') {
        snprintf(path, sizeof(path), "%s/%s", cfg->lists_dir, file);
        file = path;
    }
    if ((fd = open(file, O_RDONLY | O_CLOEXEC)) >= 0) {
        n = read(fd, text, sizeof(text) - 1);
        close(fd);
    }
    if (n >= 0) {
        text[n] = 0;
        buf_puts(out, text);
        return 0;
    }
    buf_puts(out, builtin);
    return 1;
}

#define BUILTIN_WELCOME                                                        \
    "Welcome to the list %s@%s.\n\n"                                           \
    "To post, write to %s@%s.  To leave the list, send a message to\n"         \
    "%s-leave@%s (or \"unsubscribe\" to the -request address).\n"

#define BUILTIN_GOODBYE                                                        \
    "You are no longer a member of the list %s@%s:\n"                          \
    "no more posts to %s@%s will be sent to you.\n\n"                          \
    "To join again, send a message to %s-join@%s.\n"

int listmail_greet(struct spool *sp, const struct mmq_config *cfg,
                   const struct listdef *ld, const char *address, int welcome,
                   const char *stamp_of, const char *cause, unsigned idx,
                   char *err, size_t errlen)
{
    char to[MEMBER_ADDR_MAX + 3], subject[LIST_NAME_MAX + 300];
    char name[QNAME_LEN + 1], *rcpt = (char *)address;
    char builtin[2048];
    struct listmail m;
    struct buf text;
    int rc;

    if (!(welcome ? ld->send_welcome_message : ld->send_goodbye_message))
        return 1;
    if (welcome)
        snprintf(builtin, sizeof(builtin), BUILTIN_WELCOME, ld->name,
                 ld->domain, ld->name, ld->domain, ld->name, ld->domain);
    else
        snprintf(builtin, sizeof(builtin), BUILTIN_GOODBYE, ld->name,
                 ld->domain, ld->name, ld->domain, ld->name, ld->domain);
    buf_init(&text);
    listmail_text(cfg, ld, welcome ? ld->welcome_file : ld->goodbye_file,
                  welcome ? "welcome" : "goodbye", builtin, &text);
    buf_printf(&text,
               "\n-- \nmmq, for the list %s@%s.  Questions: "
               "%s-owner@%s\n",
               ld->name, ld->domain, ld->name, ld->domain);
    snprintf(to, sizeof(to), "<%s>", address);
    snprintf(subject, sizeof(subject), "%s the list %s@%s",
             welcome ? "Welcome to" : "You have left", ld->name, ld->domain);
    memset(&m, 0, sizeof(m));
    m.to = to;
    m.subject = subject;
    m.text = text.data ? text.data : "";
    listmail_name(stamp_of, cause, welcome ? "welcome" : "goodbye", idx, name);
    rc = listmail_queue(sp, ld, &rcpt, 1, &m, name, err, errlen);
    if (rc == 0)
        log_info("list %s: %s message %s queued to %s", ld->name,
                 welcome ? "welcome" : "goodbye", name, address);
    buf_free(&text);
    return rc;
}
