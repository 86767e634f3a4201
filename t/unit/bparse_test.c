/*
 * bparse_test - the bounce parser (bounce/bparse.h) through its interface:
 * verdicts and formats (named, anonymous, not a bounce with its kind,
 * unknown), the recipient fields (address, action, status, diagnostic),
 * Original-Recipient over Final-Recipient with xtext, policy outcomes,
 * the bounce's own addresses never named, the returned message never
 * read, and hostile input: MIME nesting 1,000 deep, a 30 MB part, NULs,
 * no boundary, a boundary that never occurs, unterminated input, folded
 * fields 100 KB long, 5,000 recipients (capped), and a freed report being
 * freed again.  The table test of real samples is t/bounce-parse.sh.
 */
#include "autoconf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bparse.h"
#include "bpint.h"
#include "buf.h"
#include "tap.h"

static struct bounce_report R;

static int parse(const char *msg, size_t len)
{
    bounce_report_free(&R);
    return bounce_parse(msg, len, &R);
}

static int parse_s(const char *msg)
{
    return parse(msg, strlen(msg));
}

static const char *rcpt_line(size_t i)
{
    static char line[512];

    if (i >= R.nrcpt)
        return "(none)";
    snprintf(line, sizeof(line), "%s %s %s",
             bounce_action_name(R.rcpt[i].action), R.rcpt[i].address,
             R.rcpt[i].status[0] ? R.rcpt[i].status : "-");
    return line;
}

#define DSN_HEAD                                                               \
    "From: MAILER-DAEMON@mx.example.com\n"                                     \
    "To: list-bounces@lists.example.org\n"                                     \
    "Subject: Undelivered Mail Returned to Sender\n"                           \
    "MIME-Version: 1.0\n"                                                      \
    "Content-Type: multipart/report; report-type=delivery-status;\n"           \
    " boundary=\"b\"\n\n"                                                      \
    "--b\nContent-Type: text/plain\n\nA report.\n\n"                           \
    "--b\nContent-Type: message/delivery-status\n\n"                           \
    "Reporting-MTA: dns; mx.example.com\n\n"

static void test_dsn(void)
{
    is_int(parse_s(DSN_HEAD "Final-Recipient: rfc822; a@example.net\n"
                            "Action: failed\nStatus: 5.1.1\n"
                            "Diagnostic-Code: smtp; 550 5.1.1 no such user\n"
                            "\n--b--\n"),
           0, "dsn: parses");
    is_int(R.verdict, BOUNCE_NAMED, "dsn: named");
    is_str(R.format, "dsn", "dsn: format dsn");
    is_str(rcpt_line(0), "failed a@example.net 5.1.1", "dsn: the recipient");
    is_str(R.rcpt[0].diagnostic, "550 5.1.1 no such user",
           "dsn: diagnostic without its type");
    is_int(R.action, BOUNCE_FAILED, "dsn: summary action");
    is_str(R.status, "5.1.1", "dsn: summary status");

    parse_s(DSN_HEAD "Original-Recipient: rfc822;m+2Bx+3Dy@example.net\n"
                     "Final-Recipient: rfc822; local@backend.example.net\n"
                     "Action: failed\nStatus: 5.1.1\n\n--b--\n");
    is_str(rcpt_line(0), "failed m+x=y@example.net 5.1.1",
           "dsn: Original-Recipient preferred, xtext decoded");
    parse_s(DSN_HEAD "Original-Recipient: rfc822;user+AB@example.net\n"
                     "Final-Recipient: rfc822; b@example.net\n"
                     "Action: failed\nStatus: 5.1.1\n\n--b--\n");
    is_str(rcpt_line(0), "failed user+AB@example.net 5.1.1",
           "dsn: a '+' that is not xtext is kept");
    parse_s(DSN_HEAD "Original-Recipient: x400; /C=XX/\n"
                     "Final-Recipient: rfc822; b@example.net\n"
                     "Action: failed\nStatus: 5.1.1\n\n--b--\n");
    is_str(rcpt_line(0), "failed b@example.net 5.1.1",
           "dsn: a non-rfc822 Original-Recipient falls back to Final");

    parse_s(DSN_HEAD "Final-Recipient: rfc822; p@example.net\n"
                     "Action: failed\nStatus: 5.0.0\n"
                     "Diagnostic-Code: smtp; 550 5.7.1 Message rejected as "
                     "spam\n\n"
                     "Final-Recipient: rfc822; q@example.net\n"
                     "Action: failed\nStatus: 5.0.0\n"
                     "Diagnostic-Code: smtp; 550 rejected by DMARC "
                     "policy\n\n"
                     "Final-Recipient: rfc822; r@example.net\n"
                     "Action: failed\nStatus: 5.7.1\n\n"
                     "Final-Recipient: rfc822; s@example.net\n"
                     "Action: delayed\nStatus: 4.4.1\n\n"
                     "Final-Recipient: rfc822; t@example.net\n"
                     "Action: delivered\nStatus: 2.0.0\n\n--b--\n");
    is_int(R.nrcpt, 4, "dsn: four of five named (delivered is not)");
    is_str(rcpt_line(0), "policy p@example.net 5.7.1",
           "dsn: 5.7.1 in the diagnostic is policy (and refines 5.0.0)");
    is_str(rcpt_line(1), "policy q@example.net 5.0.0", "dsn: DMARC is policy");
    is_str(rcpt_line(2), "policy r@example.net 5.7.1", "dsn: 5.7.x is policy");
    is_str(rcpt_line(3), "delayed s@example.net 4.4.1", "dsn: delayed");

    parse_s(DSN_HEAD "Final-Recipient: rfc822; t@example.net\n"
                     "Action: delivered\nStatus: 2.0.0\n\n--b--\n");
    ok(R.verdict == BOUNCE_NOT && strcmp(R.format, "receipt") == 0 &&
           R.nrcpt == 0,
       "dsn: all delivered is a receipt, not a bounce");

    parse_s(DSN_HEAD "Final-Recipient: rfc822; list-bounces@lists.example.org\n"
                     "Action: failed\nStatus: 5.1.1\n\n--b--\n");
    ok(R.verdict == BOUNCE_ANONYMOUS && R.nrcpt == 0 &&
           R.action == BOUNCE_FAILED && strcmp(R.status, "5.1.1") == 0,
       "dsn: the bounce's own To is never named (anonymous failure)");

    parse_s(DSN_HEAD "Final-Recipient: rfc822; a@example.net\n"
                     "Action: failed\nStatus: 5.1.1\n\n"
                     "Final-Recipient: rfc822; A@EXAMPLE.NET\n"
                     "Action: failed\nStatus: 5.1.1\n\n--b--\n");
    is_int(R.nrcpt, 1, "dsn: one recipient reported twice is named once");
}

static void test_kinds(void)
{
    parse_s("From: a@example.com\nTo: l-bounces@lists.example.org\n"
            "Subject: Re: news\nAuto-Submitted: auto-replied\n\n"
            "Away until Monday.\n");
    ok(R.verdict == BOUNCE_NOT && strcmp(R.format, "vacation") == 0,
       "Auto-Submitted: vacation");
    parse_s("From: a@example.com\nSubject: Out of Office: news\n\nAway.\n");
    ok(R.verdict == BOUNCE_NOT && strcmp(R.format, "vacation") == 0,
       "out of office subject: vacation");
    parse_s("From: a@example.com\nSubject: Please confirm your message\n"
            "X-Delivery-Agent: TMDA/1.1\n\nConfirm.\n");
    ok(R.verdict == BOUNCE_NOT && strcmp(R.format, "challenge") == 0,
       "TMDA: challenge");
    parse_s("From: a@example.com\nSubject: Read: news\nMIME-Version: 1.0\n"
            "Content-Type: multipart/report; "
            "report-type=disposition-notification; boundary=m\n\n"
            "--m\nContent-Type: message/disposition-notification\n\n"
            "Final-Recipient: rfc822;a@example.com\n"
            "Disposition: manual-action/MDN-sent-manually; displayed\n"
            "--m--\n");
    ok(R.verdict == BOUNCE_NOT && strcmp(R.format, "receipt") == 0 &&
           R.nrcpt == 0,
       "MDN: receipt");
    parse_s("From: friend@example.com\nSubject: hello\n\nJust saying hi.\n");
    ok(R.verdict == BOUNCE_UNKNOWN && R.nrcpt == 0, "a letter: unknown");
    parse_s("From: MAILER-DAEMON@mx.example.com\n"
            "Subject: Undeliverable message\n\nThe mailbox is gone (5.1.1)\n");
    ok(R.verdict == BOUNCE_ANONYMOUS && R.action == BOUNCE_FAILED &&
           strcmp(R.status, "5.1.1") == 0,
       "a bounce naming nobody: anonymous failed 5.1.1");
    parse_s("From: MAILER-DAEMON@mx.example.com\n"
            "Subject: Delayed Mail (still being retried)\n\nStill trying.\n");
    ok(R.verdict == BOUNCE_ANONYMOUS && R.action == BOUNCE_DELAYED,
       "an anonymous delay warning: delayed");
    parse_s("From: MAILER-DAEMON@mx.example.com\nSubject: failure notice\n\n"
            "Hi. This is the qmail-send program at mx.example.com.\n"
            "I'm afraid I wasn't able to deliver your message to the "
            "following addresses.\n\n<q@example.com>:\n"
            "Sorry, no mailbox here by that name. (#5.1.1)\n\n"
            "--- Below this line is a copy of the message.\n\n"
            "<other@example.com>:\nSorry (#5.1.1)\n");
    ok(R.verdict == BOUNCE_NAMED && strcmp(R.format, "qmail") == 0 &&
           R.nrcpt == 1 &&
           strcmp(rcpt_line(0), "failed q@example.com 5.1.1") == 0,
       "qmail: named, the returned message not read");
}

static void test_scanners(void)
{
    char st[BOUNCE_STATUS_MAX], a[BP_ADDR_MAX];

    ok(bp_address_ok("a@b.example") && !bp_address_ok("a@b") &&
           !bp_address_ok("@b.example") && !bp_address_ok("a b@c.example") &&
           !bp_address_ok("a@b..example") && bp_address_ok("a@[192.0.2.1]"),
       "bp_address_ok");
    ok(bp_address_take("rfc822; <X@Example.COM>", 23, a, sizeof(a)) &&
           strcmp(a, "X@Example.COM") == 0,
       "bp_address_take: type and brackets dropped, case kept");
    ok(bp_status_find("IP 5.1.1.1 then 550 5.2.2 full", 30, st) &&
           strcmp(st, "5.2.2") == 0,
       "bp_status_find skips an IP address");
    ok(!bp_status_find("version 15.1.1", 14, st), "bp_status_find: 15.1.1 no");
    is_int(bp_smtp_class("host said: 452 try later", 24), 4, "bp_smtp_class");
    ok(bp_policy_text("listed at Spamhaus", 18) &&
           !bp_policy_text("mailbox unavailable", 19) &&
           !bp_policy_text("Despfx", 6),
       "bp_policy_text, whole words for short ones");
}

/* ---------------------------------------------------------- hostile */

static void test_hostile(void)
{
    struct buf b;
    int i;
    char *big;
    size_t n;

    /* 1,000 nested multiparts, a DSN at the bottom: beyond the depth
     * limit, so nobody is named, and no crash */
    buf_init(&b);
    buf_puts(&b, "From: MAILER-DAEMON@mx.example.com\n");
    for (i = 0; i < 1000; i++)
        buf_printf(&b,
                   "Content-Type: multipart/mixed; boundary=\"n%d\"\n\n"
                   "--n%d\n",
                   i, i);
    buf_puts(&b, "Content-Type: message/delivery-status\n\n"
                 "Final-Recipient: rfc822; deep@example.net\n"
                 "Action: failed\nStatus: 5.1.1\n");
    is_int(parse(b.data, b.len), 0, "1,000 deep: parses");
    ok(R.nrcpt == 0, "1,000 deep: the part beyond the limit is not read");
    buf_free(&b);

    /* nested 5 deep: within the limit */
    buf_init(&b);
    buf_puts(&b, "From: MAILER-DAEMON@mx.example.com\n");
    for (i = 0; i < 5; i++)
        buf_printf(&b,
                   "Content-Type: multipart/mixed; boundary=\"n%d\"\n\n"
                   "--n%d\n",
                   i, i);
    buf_puts(&b, "Content-Type: message/delivery-status\n\n"
                 "Final-Recipient: rfc822; deep@example.net\n"
                 "Action: failed\nStatus: 5.1.1\n");
    parse(b.data, b.len);
    is_str(rcpt_line(0), "failed deep@example.net 5.1.1",
           "5 deep, unterminated parts: found");
    buf_free(&b);

    /* a 30 MB base64 part before the report */
    n = 30u << 20;
    big = malloc(n + 1024);
    if (big == NULL)
        bail_out("no memory for 30 MB");
    i = snprintf(big, 1024, DSN_HEAD);
    {
        const char *h = "Final-Recipient: rfc822; big@example.net\n"
                        "Action: failed\nStatus: 5.2.2\n\n--b\n"
                        "Content-Type: text/plain\n"
                        "Content-Transfer-Encoding: base64\n\n";
        size_t k, off = (size_t)i + strlen(h);

        memcpy(big + i, h, strlen(h));
        for (k = off; k < n; k++)
            big[k] = (k % 77 == 76) ? '\n' : 'A' + (char)(k % 26);
        memcpy(big + n, "\n--b--\n", 7);
        is_int(parse(big, n + 7), 0, "30 MB part: parses");
        is_str(rcpt_line(0), "failed big@example.net 5.2.2",
               "30 MB part: the report is found");
    }
    free(big);

    /* NULs everywhere */
    {
        static const char m[] = "From: MAILER-DAEMON@mx\0.example.com\n"
                                "Content-Type: message/delivery-status\n\n"
                                "Final-Recipient: rfc822; n\0ul@example.net\n"
                                "Action: fa\0iled\nStatus: 5.\0"
                                "1.1\n\n"
                                "Final-Recipient: rfc822; ok@example.net\n"
                                "Action: failed\nStatus: 5.1.1\0\n";

        is_int(parse(m, sizeof(m) - 1), 0, "NULs: parses");
        ok(R.nrcpt == 1 && strcmp(R.rcpt[0].address, "ok@example.net") == 0,
           "NULs: only the clean recipient named");
    }

    /* a multipart without boundary, and one whose boundary never comes */
    parse_s("From: MAILER-DAEMON@mx.example.com\n"
            "Content-Type: multipart/report; report-type=delivery-status\n\n"
            "Final-Recipient: rfc822; a@example.net\nAction: failed\n");
    ok(R.nrcpt == 0, "no boundary: read as text, nobody named");
    parse_s("From: MAILER-DAEMON@mx.example.com\n"
            "Content-Type: multipart/report; boundary=zz\n\n"
            "--yy\nContent-Type: message/delivery-status\n\n"
            "Final-Recipient: rfc822; a@example.net\nAction: failed\n");
    ok(R.nrcpt == 0, "boundary never occurs: nobody named");

    /* no header/body separator, empty input */
    is_int(parse("From: x", 7), 0, "7 bytes, no separator: parses");
    is_int(parse("", 0), 0, "empty: parses");
    ok(R.verdict == BOUNCE_UNKNOWN, "empty: unknown");

    /* a field folded over 100 KB, and 5,000 recipients */
    buf_init(&b);
    buf_puts(&b, "From: MAILER-DAEMON@mx.example.com\n"
                 "Content-Type: message/delivery-status\n\n"
                 "Final-Recipient: rfc822; long@example.net\n"
                 "Action: failed\nStatus: 5.1.1\nDiagnostic-Code: smtp; 550");
    for (i = 0; i < 10000; i++)
        buf_puts(&b, "\n  0123456789");
    buf_puts(&b, "\n\n");
    for (i = 0; i < 5000; i++)
        buf_printf(&b,
                   "Final-Recipient: rfc822; u%d@example.net\n"
                   "Action: failed\nStatus: 5.1.1\n\n",
                   i);
    is_int(parse(b.data, b.len), 0, "100 KB field, 5,000 recipients: parses");
    is_int(R.nrcpt, BP_MAX_RCPT, "recipients capped at BP_MAX_RCPT");
    ok(R.rcpt[0].diagnostic != NULL &&
           strlen(R.rcpt[0].diagnostic) <= BP_DIAG_MAX,
       "diagnostic cut to BP_DIAG_MAX");
    buf_free(&b);

    bounce_report_free(&R);
    bounce_report_free(&R);
    ok(R.rcpt == NULL && R.nrcpt == 0, "a freed report may be freed again");
}

int main(void)
{
    memset(&R, 0, sizeof(R));
    test_dsn();
    test_kinds();
    test_scanners();
    test_hostile();
    bounce_report_free(&R);
    return done_testing();
}
