/*
 * smtp - one SMTP session through libESMTP.  See smtp.h for the contract.
 *
 * What libESMTP 1.1.0 does that shapes this file (../shared/libesmtp-notes):
 *  - the return value of smtp_start_session() only says the exchange ran:
 *    outcomes are read per recipient and per message;
 *  - input must be CRLF (LF-only input is mangled), dot-stuffing is its job;
 *  - all recipients of one message go into one transaction, so the caller
 *    cuts recipients into several transactions;
 *  - timeouts are in milliseconds and silently raised to the RFC minimums
 *    unless OR-ed with Timeout_OVERRIDE_RFC2822_MINIMUM; there is no
 *    connect timeout, so the caller time-limits the whole session;
 *  - using its default TLS context twice in a process crashes: we always
 *    give it our own SSL_CTX;
 *  - a failed AUTH is silent: mail then goes out unauthenticated and the
 *    relay answers 5.7.x, which the caller must treat as a configuration
 *    error, not as a bad recipient;
 *  - SIGPIPE must be ignored by the process (a reset during DATA);
 *  - smtp_8bitmime_set_body() on one message makes 8BITMIME required for
 *    the whole session: a relay without it fails the session after EHLO
 *    (SMTP_EV_EXTNA_8BITMIME, nothing sent), so the 8-bit transactions
 *    are then deferred and the session is run again without them.
 */
#include "autoconf.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/ssl.h>
#include <openssl/x509v3.h>
/* auth-client.h must come before libesmtp.h to enable the AUTH API */
#include <auth-client.h>
#include <libesmtp.h>

#include "log.h"
#include "smtp.h"

#define SRC_CHUNK 65536

static SSL_CTX *tls_ctx;
static char *auth_user, *auth_pass;
static auth_context_t auth_ctx;

/* ------------------------------------------------------------ setup */

static void free_credentials(void)
{
    if (auth_pass)
        memset(auth_pass, 0, strlen(auth_pass));
    free(auth_user);
    free(auth_pass);
    auth_user = auth_pass = NULL;
}

static int read_credentials(const char *path, char *err, size_t errlen)
{
    char line[1024], user[512] = "", pass[512] = "";
    struct stat st;
    FILE *fp;
    int fd;

    if ((fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) < 0) {
        snprintf(err, errlen, "auth_file %s: %s", path, strerror(errno));
        return -1;
    }
    if (fstat(fd, &st) != 0 || (st.st_mode & 077) != 0 ||
        st.st_uid != geteuid()) {
        snprintf(err, errlen,
                 "auth_file %s: must be owned by us and not readable by "
                 "group or others (chmod 600)",
                 path);
        close(fd);
        return -1;
    }
    if (!(fp = fdopen(fd, "r"))) {
        close(fd);
        snprintf(err, errlen, "auth_file %s: %s", path, strerror(errno));
        return -1;
    }
    if (fgets(line, sizeof(line), fp))
        sscanf(line, "%511[^\r\n]", user);
    if (fgets(line, sizeof(line), fp))
        sscanf(line, "%511[^\r\n]", pass);
    memset(line, 0, sizeof(line));
    fclose(fp);
    if (!user[0] || !pass[0]) {
        snprintf(err, errlen,
                 "auth_file %s: expected a user line and a password line",
                 path);
        return -1;
    }
    free_credentials();
    auth_user = strdup(user);
    auth_pass = strdup(pass);
    memset(pass, 0, sizeof(pass));
    if (!auth_user || !auth_pass) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    return 0;
}

static int auth_interact(auth_client_request_t req, char **result, int fields,
                         void *arg)
{
    int i;

    (void)arg;
    for (i = 0; i < fields; i++) {
        if (req[i].flags & AUTH_USER)
            result[i] = auth_user;
        else if (req[i].flags & AUTH_PASS)
            result[i] = auth_pass;
        else
            return 0;
    }
    return 1;
}

/* Why OpenSSL refused the relay's certificate: with SSL_VERIFY_PEER the
 * handshake fails inside SSL_connect() and libESMTP reports only
 * "Client error", no event. */
static char tls_verify_err[160];

static int verify_cb(int preverify_ok, X509_STORE_CTX *x)
{
    if (!preverify_ok && !tls_verify_err[0])
        snprintf(tls_verify_err, sizeof(tls_verify_err),
                 "4.7.5 relay certificate not accepted: %s",
                 X509_verify_cert_error_string(X509_STORE_CTX_get_error(x)));
    return preverify_ok;
}

static int setup_tls(const struct mmq_config *cfg, char *err, size_t errlen)
{
    SSL_CTX *ctx;
    int required = strcmp(cfg->tls, "required") == 0;

    if (tls_ctx) {
        SSL_CTX_free(tls_ctx);
        tls_ctx = NULL;
    }
    if (strcmp(cfg->tls, "off") == 0)
        return 0;
    if (!(ctx = SSL_CTX_new(TLS_client_method()))) {
        snprintf(err, errlen, "cannot create a TLS context");
        return -1;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    /* libESMTP 1.1.0 reads before it writes EHLO when TLS 1.3 session
     * tickets arrive first after the handshake, and then waits forever */
    SSL_CTX_set_max_proto_version(ctx, TLS1_2_VERSION);
    if (cfg->tls_ca_file
            ? !SSL_CTX_load_verify_locations(ctx, cfg->tls_ca_file, NULL)
            : !SSL_CTX_set_default_verify_paths(ctx)) {
        snprintf(err, errlen, "tls_ca_file %s: cannot load CA certificates",
                 cfg->tls_ca_file ? cfg->tls_ca_file : "(system store)");
        SSL_CTX_free(ctx);
        return -1;
    }
    if (required) {
        X509_VERIFY_PARAM *p = SSL_CTX_get0_param(ctx);
        /* The name we connect to must be in the certificate. */
        if (!X509_VERIFY_PARAM_set1_ip_asc(p, cfg->relay_host))
            X509_VERIFY_PARAM_set1_host(p, cfg->relay_host, 0);
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, verify_cb);
    } else {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    }
    tls_ctx = ctx;
    return 0;
}

int smtp_setup(const struct mmq_config *cfg, char *err, size_t errlen)
{
    static int auth_inited;

    if (setup_tls(cfg, err, errlen) != 0)
        return -1;
    if (auth_ctx) {
        auth_destroy_context(auth_ctx);
        auth_ctx = NULL;
    }
    free_credentials();
    if (!cfg->auth_file)
        return 0;
    if (read_credentials(cfg->auth_file, err, errlen) != 0)
        return -1;
    if (!auth_inited) {
        auth_client_init();
        auth_inited = 1;
    }
    if (!(auth_ctx = auth_create_context())) {
        snprintf(err, errlen, "cannot create an AUTH context");
        return -1;
    }
    auth_set_mechanism_flags(auth_ctx, AUTH_PLUGIN_PLAIN, 0);
    auth_set_interact_cb(auth_ctx, auth_interact, NULL);
    return 0;
}

/* ------------------------------------------------------------ helpers */

int smtp_address_ok(const char *addr)
{
    const unsigned char *p;

    if (strlen(addr) > 998)
        return 0;
    for (p = (const unsigned char *)addr; *p; p++)
        if (*p < 0x21 || *p == 0x7f || *p == '<' || *p == '>')
            return 0;
    return 1;
}

int smtp_message_8bit(int fd, off_t off, int64_t size)
{
    unsigned char buf[SRC_CHUNK];
    off_t pos = off, end = off + size;

    while (pos < end) {
        size_t want = end - pos < SRC_CHUNK ? (size_t)(end - pos) : SRC_CHUNK;
        ssize_t n = pread(fd, buf, want, pos), i;

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            if (n == 0)
                errno = EIO; /* the file shrank under us */
            return -1;
        }
        for (i = 0; i < n; i++)
            if (buf[i] & 0x80)
                return 1;
        pos += n;
    }
    return 0;
}

static int has_8bit(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s >= 0x80)
            return 1;
    return 0;
}

static void sanitise(char *dst, size_t dstlen, const char *src)
{
    size_t i = 0;

    if (!src)
        src = "";
    for (; *src && i + 1 < dstlen; src++) {
        unsigned char c = (unsigned char)*src;
        if (c == '\r' || c == '\n') {
            if (i > 0 && dst[i - 1] != ' ')
                dst[i++] = ' ';
            continue;
        }
        dst[i++] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
    }
    while (i > 0 && dst[i - 1] == ' ')
        i--;
    dst[i] = 0;
}

static void take_status(struct smtp_rcpt_result *r, const smtp_status_t *st)
{
    char text[SMTP_TEXT_MAX - 32];

    memset(r, 0, sizeof(*r));
    if (!st)
        return;
    r->code = st->code;
    if (st->enh_class >= 2 && st->enh_class <= 5)
        snprintf(r->status, sizeof(r->status), "%d.%d.%d", st->enh_class,
                 st->enh_subject % 1000, st->enh_detail % 1000);
    sanitise(text, sizeof(text), st->text);
    if (r->status[0])
        snprintf(r->text, sizeof(r->text), "%d %s %s", st->code, r->status,
                 text);
    else
        snprintf(r->text, sizeof(r->text), "%d %s", st->code, text);
}

enum smtp_outcome smtp_outcome(const struct smtp_txn *t, size_t i)
{
    int rc = t->res[i].code / 100, mc = t->msg.code / 100;

    if (rc == 5 || (rc == 2 && t->completed && mc == 5))
        return SMTP_FAILED;
    if (rc == 2 && t->completed && mc == 2)
        return SMTP_SENT;
    return SMTP_RETRY;
}

/* ----------------------------------------------------- message source */

struct msgsrc {
    off_t pos, end;
    int prev_cr;
    int prefix_sent; /* t->prefix went out (first chunk) */
};

/*
 * The buffers behind every message of the process: libESMTP reads one
 * message at a time and is done with a chunk when it asks for the next, so
 * one pair serves all (a pair per message was 192 KiB malloc()ed and
 * free()d per transaction).  A message that fits in one chunk is kept
 * converted: the next transaction of the same message (VERP, per-member
 * headers: one transaction per recipient of an entry) is sent from it
 * without reading or converting again.  The key is the descriptor and the
 * range; smtp_run() forgets it at its start, as the caller's descriptors
 * may be reused between runs.  A claimed entry's file is never written in
 * place (rewrites make a new file), so the bytes behind a key cannot
 * change within a run.
 */
static char src_in[SRC_CHUNK], src_out[2 * SRC_CHUNK];
static struct {
    int fd;
    off_t off, end;
    size_t len; /* src_out[0..len) is the whole message, CRLF */
} src_cached = {-1, 0, 0, 0};

/*
 * libESMTP pulls the message through this callback; *ctx is ours to
 * allocate and libESMTP free()s it.  LF line ends become CRLF.  A read
 * error cannot be reported through this interface, and sending a short
 * message as if it were whole would corrupt mail, so the process exits
 * instead: the connection drops in the middle of DATA, the server discards
 * the transaction, and the agent's master defers the entries.
 */
static const char *msg_source(void **ctx, int *len, void *arg)
{
    struct smtp_txn *t = arg;
    struct msgsrc *s = *ctx;
    ssize_t n, i;
    size_t o = 0;

    if (!s) {
        if (!(s = malloc(sizeof(*s)))) {
            log_error("out of memory reading a message: exiting");
            _exit(75);
        }
        *ctx = s;
        s->pos = t->off;
        s->end = t->off + t->size;
        s->prev_cr = 0;
        s->prefix_sent = 0;
    }
    if (!len) { /* rewind */
        s->pos = t->off;
        s->prev_cr = 0;
        s->prefix_sent = 0;
        return NULL;
    }
    if (!s->prefix_sent && t->prefix && t->prefix_len > 0 &&
        t->prefix_len <= sizeof(src_out)) {
        /* the transaction's own header lines, then the queued message;
         * returned from the caller's buffer: src_out may hold the cache */
        s->prefix_sent = 1;
        *len = (int)t->prefix_len;
        return t->prefix;
    }
    if (s->pos >= s->end) {
        *len = 0;
        return NULL;
    }
    if (s->pos == t->off && src_cached.fd == t->fd &&
        src_cached.off == t->off && src_cached.end == s->end) {
        s->pos = s->end;
        *len = (int)src_cached.len;
        return src_out;
    }
    src_cached.fd = -1;
    do
        n = pread(
            t->fd, src_in,
            (size_t)(s->end - s->pos < SRC_CHUNK ? s->end - s->pos : SRC_CHUNK),
            s->pos);
    while (n < 0 && errno == EINTR);
    if (n <= 0) {
        log_error("reading a queued message failed (%s): dropping the "
                  "connection so that nothing partial is delivered",
                  n < 0 ? strerror(errno) : "file shrank");
        _exit(75);
    }
    for (i = 0; i < n; i++) {
        char c = src_in[i];
        if (c == '\n' && !s->prev_cr)
            src_out[o++] = '\r';
        src_out[o++] = c;
        s->prev_cr = c == '\r';
    }
    if (s->pos == t->off && s->pos + n == s->end) { /* all in one chunk */
        src_cached.fd = t->fd;
        src_cached.off = t->off;
        src_cached.end = s->end;
        src_cached.len = o;
    }
    s->pos += n;
    *len = (int)o;
    return src_out;
}

/* ------------------------------------------------------------ session */

struct run {
    struct smtp_txn **txn;
    size_t n;
    smtp_txn_done_fn done;
    void *arg;
    char last_reply[SMTP_TEXT_MAX]; /* the server's last line */
    char prev_reply[SMTP_TEXT_MAX]; /* the one before */
    int starttls_state;             /* 1: STARTTLS sent, 2: answered */
    int starttls_refused;           /* answered 4xx/5xx */
    char tls_problem[128];
    int required_tls;
    int no_8bitmime; /* SMTP_EV_EXTNA_8BITMIME: the relay lacks it */
    size_t last_sent; /* after txn[last_sent - 1] ended (on_event) */
};

struct txn_priv {
    smtp_message_t m;
    smtp_recipient_t *r;
};

static void collect(struct smtp_txn *t)
{
    struct txn_priv *p = t->priv;
    size_t i;

    for (i = 0; i < t->nrcpt; i++)
        if (p->r[i])
            take_status(&t->res[i], smtp_recipient_status(p->r[i]));
    take_status(&t->msg, smtp_message_transfer_status(p->m));
}

/*
 * libESMTP writes through a 2048-byte buffer, never sets TCP_NODELAY and
 * does not expose its socket.  At the end of DATA it writes 2048 bytes and
 * then a short tail ("...\r\n.\r\n"); Nagle holds the tail until the
 * server ACKs the previous segment, and the server, with nothing to say
 * before ".", delays that ACK (40 ms on Linux): every transaction stalled
 * for one delayed-ACK time (bench/deliver-bench.sh, section 8).  We are
 * called on SMTP_EV_CONNECT, right after connect(), in a worker process
 * whose only TCP socket is the SMTP connection: turn Nagle off on it.
 */
static void set_nodelay(void)
{
    DIR *d = opendir("/proc/self/fd");
    struct dirent *de;
    int one = 1;

    if (!d)
        return;
    while ((de = readdir(d)) != NULL) {
        int fd = atoi(de->d_name), proto = 0;
        socklen_t len = sizeof(proto);

        if (de->d_name[0] == '.' || fd == dirfd(d))
            continue;
        if (getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &proto, &len) == 0 &&
            proto == IPPROTO_TCP)
            (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    }
    closedir(d);
}

static void on_event(smtp_session_t s, int ev, void *arg, ...)
{
    struct run *run = arg;
    va_list ap;
    int *ok;
    size_t i;

    (void)s;
    va_start(ap, arg);
    switch (ev) {
    case SMTP_EV_CONNECT:
        set_nodelay();
        break;
    case SMTP_EV_MESSAGESENT: {
        smtp_message_t m = va_arg(ap, smtp_message_t);
        /* messages end in the order they were added: look from the one
         * after the last (a search from 0 made a session O(n^2)) */
        for (size_t k = 0; k < run->n; k++) {
            struct smtp_txn *t = run->txn[i = (run->last_sent + k) % run->n];
            if (((struct txn_priv *)t->priv)->m == m && !t->completed) {
                collect(t);
                /* A 354 never came: DATA refused, still "sent" here. */
                t->completed = 1;
                run->last_sent = i + 1;
                run->done(t, run->arg);
                break;
            }
        }
        break;
    }
    case SMTP_EV_INVALID_PEER_CERTIFICATE:
        (void)va_arg(ap, long);
        ok = va_arg(ap, int *);
        *ok = !run->required_tls;
        if (run->required_tls)
            snprintf(run->tls_problem, sizeof(run->tls_problem),
                     "4.7.5 relay certificate not trusted");
        break;
    case SMTP_EV_NO_PEER_CERTIFICATE:
        ok = va_arg(ap, int *);
        *ok = !run->required_tls;
        if (run->required_tls)
            snprintf(run->tls_problem, sizeof(run->tls_problem),
                     "4.7.5 relay presented no certificate");
        break;
    case SMTP_EV_WRONG_PEER_CERTIFICATE:
        /* libESMTP's own name check knows no IP addresses.  With
         * tls = required our SSL_CTX has already checked the name (host
         * or IP, X509_VERIFY_PARAM) during the handshake, which fails on
         * a mismatch; so this event only repeats a check already passed. */
        ok = va_arg(ap, int *);
        *ok = 1;
        break;
    case SMTP_EV_EXTNA_8BITMIME:
        run->no_8bitmime = 1;
        break;
    case SMTP_EV_EXTNA_STARTTLS:
        snprintf(run->tls_problem, sizeof(run->tls_problem),
                 "4.7.4 relay does not offer STARTTLS (tls = required)");
        break;
    default:
        break;
    }
    va_end(ap);
}

static void on_monitor(const char *buf, int len, int writing, void *arg)
{
    struct run *run = arg;
    char line[SMTP_TEXT_MAX];
    int start, end;

    if (len <= 0)
        return;
    if (writing) {
        if (len >= 8 && strncmp(buf, "STARTTLS", 8) == 0)
            run->starttls_state = 1;
        return;
    }
    /* keep the last complete line the server sent */
    end = len;
    while (end > 0 && (buf[end - 1] == '\n' || buf[end - 1] == '\r'))
        end--;
    start = end;
    while (start > 0 && buf[start - 1] != '\n')
        start--;
    if (end - start <= 0)
        return;
    snprintf(line, sizeof(line), "%.*s", end - start, buf + start);
    memcpy(run->prev_reply, run->last_reply, sizeof(run->prev_reply));
    sanitise(run->last_reply, sizeof(run->last_reply), line);
    if (run->starttls_state == 1) {
        run->starttls_state = 2;
        run->starttls_refused = line[0] == '4' || line[0] == '5';
    }
}

static void set_timeouts(smtp_session_t s, int seconds)
{
    long ms = (long)seconds * 1000;
    int o = Timeout_OVERRIDE_RFC2822_MINIMUM; /* a flag of "which" */

    smtp_set_timeout(s, Timeout_GREETING | o, ms);
    smtp_set_timeout(s, Timeout_ENVELOPE | o, ms);
    smtp_set_timeout(s, Timeout_DATA | o, ms);
    smtp_set_timeout(s, Timeout_TRANSFER | o, ms);
    smtp_set_timeout(s, Timeout_DATA2 | o, ms);
}

static int add_txn(smtp_session_t s, struct smtp_txn *t)
{
    struct txn_priv *p = t->priv;
    size_t i;

    memset(&t->msg, 0, sizeof(t->msg));
    t->completed = 0;
    if (!(p->m = smtp_add_message(s)) ||
        !smtp_set_reverse_path(p->m, t->sender) ||
        !smtp_set_messagecb(p->m, msg_source, t) ||
        (t->body8 && !smtp_8bitmime_set_body(p->m, E8bitmime_8BITMIME)))
        return -1;
    for (i = 0; i < t->nrcpt; i++) {
        memset(&t->res[i], 0, sizeof(t->res[i]));
        p->r[i] = NULL;
        if (!smtp_address_ok(t->rcpt[i])) {
            t->res[i].code = 553;
            snprintf(t->res[i].status, sizeof(t->res[i].status), "5.1.3");
            snprintf(t->res[i].text, sizeof(t->res[i].text),
                     "553 5.1.3 address contains characters not allowed in "
                     "SMTP (not sent)");
            continue;
        }
        if (has_8bit(t->rcpt[i])) { /* libESMTP has no SMTPUTF8 */
            t->res[i].code = 553;
            snprintf(t->res[i].status, sizeof(t->res[i].status), "5.6.7");
            snprintf(t->res[i].text, sizeof(t->res[i].text),
                     "553 5.6.7 non-ASCII address needs SMTPUTF8, which "
                     "mmq-deliver cannot send (not sent)");
            continue;
        }
        if (!(p->r[i] = smtp_add_recipient(p->m, t->rcpt[i])))
            return -1;
    }
    return 0;
}

static void session_error(struct run *run, char *err, size_t errlen)
{
    char buf[128];
    int e = smtp_errno();

    const char *r = run->last_reply;

    /* a refusal, then our QUIT and its 221: the refusal is the reason */
    if (strncmp(r, "221", 3) == 0 &&
        (run->prev_reply[0] == '4' || run->prev_reply[0] == '5'))
        r = run->prev_reply;
    if (tls_verify_err[0])
        snprintf(err, errlen, "%s", tls_verify_err);
    else if (run->tls_problem[0])
        snprintf(err, errlen, "%s", run->tls_problem);
    else if (r[0] && (r[0] == '4' || r[0] == '5'))
        snprintf(err, errlen, "%s (%s)", r, smtp_strerror(e, buf, sizeof(buf)));
    else
        snprintf(err, errlen, "4.4.2 %s", smtp_strerror(e, buf, sizeof(buf)));
}

/*
 * The relay does not offer 8BITMIME: the 8-bit transactions are completed
 * here without being sent (RFC 6152 forbids 8-bit data without it), each
 * sendable recipient with a 451 4.6.3 reply, so that they are retried.
 * Returns how many 7-bit transactions are left to send.
 */
static size_t defer_8bit(const struct mmq_config *cfg, struct smtp_txn **txn,
                         size_t n, smtp_txn_done_fn done, void *arg)
{
    struct smtp_rcpt_result r;
    size_t i, k, left = 0, deferred = 0;

    memset(&r, 0, sizeof(r));
    r.code = 451;
    snprintf(r.status, sizeof(r.status), "4.6.3");
    snprintf(r.text, sizeof(r.text),
             "451 4.6.3 relay %s:%d does not offer 8BITMIME and the message "
             "has 8-bit data: not sent (RFC 6152)",
             cfg->relay_host, cfg->relay_port);
    for (i = 0; i < n; i++) {
        struct smtp_txn *t = txn[i];
        struct txn_priv *p = t->priv;

        if (t->completed)
            continue;
        if (!t->body8) {
            left++;
            continue;
        }
        for (k = 0; k < t->nrcpt; k++)
            if (p->r[k])
                t->res[k] = r;
        t->msg = r;
        t->completed = 1;
        deferred++;
        done(t, arg);
    }
    log_warn("relay %s:%d does not offer 8BITMIME: %zu transaction%s with "
             "8-bit data deferred (RFC 6152); enable 8BITMIME on the relay",
             cfg->relay_host, cfg->relay_port, deferred,
             deferred == 1 ? "" : "s");
    return left;
}

/* Forget a finished session's libESMTP objects before the next one. */
static void reset_session(smtp_session_t *s, struct txn_priv *priv, size_t n)
{
    size_t i;

    smtp_destroy_session(*s);
    *s = NULL;
    for (i = 0; i < n; i++) {
        free(priv[i].r);
        priv[i].r = NULL;
        priv[i].m = NULL;
    }
}

int smtp_run(const struct mmq_config *cfg, struct smtp_txn **txn, size_t n,
             smtp_txn_done_fn done, void *arg, char *err, size_t errlen)
{
    struct run run;
    struct txn_priv *priv = calloc(n ? n : 1, sizeof(*priv));
    smtp_session_t s = NULL;
    char hostport[300];
    size_t i, incomplete = 0;
    int rc = -1, any_rcpt = 0, plain = 0, skip_8bit = 0, ran;

    src_cached.fd = -1; /* the caller's descriptors may be new */
again:
    tls_verify_err[0] = 0;
    memset(&run, 0, sizeof(run));
    run.txn = txn;
    run.n = n;
    run.done = done;
    run.arg = arg;
    run.required_tls = strcmp(cfg->tls, "required") == 0;
    if (!priv || !(s = smtp_create_session()))
        goto oom;
    for (i = 0; i < n; i++) {
        txn[i]->priv = &priv[i];
        if (skip_8bit && txn[i]->body8)
            continue; /* completed by defer_8bit(), not in this session */
        priv[i].r =
            calloc(txn[i]->nrcpt ? txn[i]->nrcpt : 1, sizeof(smtp_recipient_t));
        if (!priv[i].r || add_txn(s, txn[i]) != 0)
            goto oom;
        for (size_t j = 0; j < txn[i]->nrcpt; j++)
            any_rcpt |= priv[i].r[j] != NULL;
    }
    if (!any_rcpt) { /* nothing sendable: every recipient already failed */
        for (i = 0; i < n; i++) {
            if (skip_8bit && txn[i]->body8)
                continue;
            txn[i]->completed = 1;
            done(txn[i], arg);
        }
        rc = 0;
        goto out;
    }
    snprintf(hostport, sizeof(hostport),
             strchr(cfg->relay_host, ':') ? "[%s]:%d" : "%s:%d",
             cfg->relay_host, cfg->relay_port);
    smtp_set_server(s, hostport);
    if (cfg->helo_name)
        smtp_set_hostname(s, cfg->helo_name);
    set_timeouts(s, cfg->smtp_timeout);
    smtp_set_eventcb(s, on_event, &run);
    smtp_set_monitorcb(s, on_monitor, &run, 0);
    if (tls_ctx && !plain) {
        smtp_starttls_set_ctx(s, tls_ctx);
        smtp_starttls_enable(s, run.required_tls ? Starttls_REQUIRED
                                                 : Starttls_ENABLED);
    } else {
        smtp_starttls_enable(s, Starttls_DISABLED);
    }
    if (auth_ctx)
        smtp_auth_set_context(s, auth_ctx);

    ran = smtp_start_session(s);
    if (ran && run.starttls_refused && !run.required_tls && !plain) {
        /* tls = opportunistic and the relay refused STARTTLS (454):
         * libESMTP gave up; go on in clear, as Postfix does */
        for (i = 0; i < n && !txn[i]->completed; i++)
            ;
        if (i == n) {
            reset_session(&s, priv, n);
            plain = 1;
            any_rcpt = 0;
            goto again;
        }
    }
    if (run.no_8bitmime && !skip_8bit) {
        /* nothing was sent: defer the 8-bit mail, send the rest */
        if (defer_8bit(cfg, txn, n, done, arg) == 0) {
            rc = 0;
            goto out;
        }
        reset_session(&s, priv, n);
        skip_8bit = 1;
        any_rcpt = 0;
        goto again;
    }
    if (!ran) {
        session_error(&run, err, errlen);
        goto out;
    }
    for (i = 0; i < n; i++)
        if (!txn[i]->completed) {
            collect(txn[i]); /* RCPT replies still count (a 550 is final) */
            incomplete++;
        }
    if (incomplete) {
        session_error(&run, err, errlen);
        goto out;
    }
    rc = 0;
    goto out;
oom:
    snprintf(err, errlen, "4.3.0 out of memory");
out:
    if (s)
        smtp_destroy_session(s);
    for (i = 0; priv && i < n; i++) {
        free(priv[i].r);
        txn[i]->priv = NULL;
    }
    free(priv);
    return rc;
}
