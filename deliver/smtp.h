/*
 * smtp - one SMTP session to the relay through libESMTP.
 *
 * The caller describes transactions (sender, recipients, and where the
 * message is: a file descriptor and an offset), smtp_run() sends them all
 * over one connection, pipelined when the server offers PIPELINING, and
 * reports each transaction through a callback as soon as the server has
 * answered its DATA, so that the caller can record the outcome durably
 * before the next transaction completes.  Transactions the callback was
 * not called for were not completed (connection refused or dropped, a
 * timeout): their recipients must be retried.
 *
 * The message is read from the file as stored (LF or CRLF line ends) and
 * sent with CRLF line ends; libESMTP does the dot-stuffing.  Addresses
 * containing CR, LF or NUL, or longer than 998 bytes, are never put on the
 * wire: such a recipient is failed with 5.1.3 before the session; one with
 * non-ASCII bytes (it would need SMTPUTF8, which libESMTP 1.1.0 lacks)
 * with 5.6.7.
 *
 * 8BITMIME (RFC 6152): a transaction whose message has 8-bit bytes
 * (body8, found once per entry by smtp_message_8bit()) goes out with
 * BODY=8BITMIME; 7-bit ones carry no BODY= parameter, in the same session.
 * When the relay does not offer 8BITMIME, 8-bit data must not be sent:
 * the 8-bit transactions are completed without being sent, every
 * recipient with "451 4.6.3 ..." (so: retry later), and the 7-bit ones go
 * out on a second connection.  (libESMTP makes an extension requested by
 * one message required for the whole session, and quits right after EHLO
 * when the relay lacks it; hence the second connection.)
 *
 * Outcome per recipient (struct smtp_rcpt_result):
 *   code 2xx and the transaction's 2xx: delivered;
 *   a 5xx for the recipient or for the message: failed for good;
 *   anything else (4xx, 0 = never attempted): retry later.
 * smtp_outcome() applies exactly this rule.
 *
 * Memory: smtp_txn and its arrays belong to the caller; results are
 * stored into them.  Nothing returned needs freeing.
 */
#ifndef MMQ_SMTP_H
#define MMQ_SMTP_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "config.h"

#define SMTP_TEXT_MAX 256
#define SMTP_PREFIX_MAX 4096

struct smtp_rcpt_result {
    int code;                 /* SMTP reply code, 0: no reply */
    char status[16];          /* enhanced status "5.1.1", or "" */
    char text[SMTP_TEXT_MAX]; /* the reply, sanitised */
};

struct smtp_txn {
    /* input */
    const char *sender; /* "" for the null sender */
    const char *const *rcpt;
    size_t nrcpt;
    int fd; /* the message: bytes [off, off + size) */
    off_t off;
    int64_t size;
    int body8; /* the message has 8-bit bytes: send BODY=8BITMIME */
    /* sent as is before the message (per-member header lines, CRLF, at
     * most SMTP_PREFIX_MAX bytes; see member.h), or NULL */
    const char *prefix;
    size_t prefix_len;
    void *user;
    /* output */
    int completed;                /* the server answered the end of DATA */
    struct smtp_rcpt_result msg;  /* the reply to DATA / end of data */
    struct smtp_rcpt_result *res; /* nrcpt entries, provided by the caller */
    void *priv;                   /* libESMTP's message */
};

enum smtp_outcome { SMTP_SENT, SMTP_FAILED, SMTP_RETRY };
enum smtp_outcome smtp_outcome(const struct smtp_txn *t, size_t i);

typedef void (*smtp_txn_done_fn)(struct smtp_txn *t, void *arg);

/*
 * Process-wide setup (TLS context, AUTH credentials) from cfg.  -1 with a
 * reason in err if the configuration cannot be used (unreadable CA file,
 * credentials file readable by others...).  Call again after SIGHUP.
 */
int smtp_setup(const struct mmq_config *cfg, char *err, size_t errlen);

/*
 * Run one session with n transactions.  done is called for each completed
 * transaction, in order, from inside the session.  Returns 0 when the
 * session ran to its end (some transactions may still have failed); -1
 * when it could not start or was cut short, with the reason in err (in
 * the form of an SMTP reply or a system error, for the log and the DSN).
 */
int smtp_run(const struct mmq_config *cfg, struct smtp_txn **txn, size_t n,
             smtp_txn_done_fn done, void *arg, char *err, size_t errlen);

/*
 * 1 if the message bytes [off, off + size) of fd hold a byte above 127
 * (then it needs BODY=8BITMIME), 0 if not, -1 on a read error (errno).
 * Reads the message once; the caller keeps the answer per entry.
 */
int smtp_message_8bit(int fd, off_t off, int64_t size);

/* 1 if addr can safely be used in MAIL FROM / RCPT TO. */
int smtp_address_ok(const char *addr);

#endif
