/*
 * bounce_fuzz - libFuzzer target for bounce_parse() (see bounce-run.sh).
 *
 * Besides "no crash, no sanitizer report, no leak" it checks the parser's
 * contract: the result is 0 (or -1 with an empty report); the verdict is
 * one of the four and BOUNCE_NAMED exactly when recipients are named, at
 * most BP_MAX_RCPT of them; every address is a plain address (no blank or
 * control byte that could forge a line of "mmq-bounce -p") that occurs in
 * the input (the parser never invents one; an xtext-decoded address may
 * differ only by its '+' and '=', and an input with base64,
 * quoted-printable or HTML entities is not checked); every status is empty or an RFC 3463
 * code; the report frees cleanly twice.  A violation aborts, which
 * libFuzzer reports as a crash with the input saved.
 */
#include "autoconf.h"

#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "bparse.h"
#include "bpint.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int cond, const char *what)
{
    if (!cond) {
        fprintf(stderr, "bounce_fuzz: contract violated: %s\n", what);
        abort();
    }
}

static int status_ok(const char *s)
{
    int dots = 0;

    if (s[0] == 0)
        return 1;
    if (s[0] != '2' && s[0] != '4' && s[0] != '5')
        return 0;
    for (s++; *s; s++) {
        if (*s == '.')
            dots++;
        else if (!isdigit((unsigned char)*s))
            return 0;
    }
    return dots == 2;
}

/* Does addr occur in the input, ignoring case (xtext: '+' '=' may have
 * been encoded as "+2B" "+3D")? */
static int in_input(const uint8_t *data, size_t size, const char *addr)
{
    size_t n = strlen(addr), i;

    if (strchr(addr, '+') || strchr(addr, '='))
        return 1;
    /* decoded text (base64, quoted-printable, HTML entities) may hold it */
    if (bp_find((const char *)data, size, "base64") ||
        bp_find((const char *)data, size, "quoted-printable") ||
        memchr(data, '&', size))
        return 1;
    for (i = 0; i + n <= size; i++)
        if (strncasecmp((const char *)data + i, addr, n) == 0) {
            size_t k;

            for (k = 0; k < n; k++) /* strncasecmp stops at a NUL */
                if (tolower(data[i + k]) != tolower((unsigned char)addr[k]))
                    break;
            if (k == n)
                return 1;
        }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct bounce_report r;
    size_t i;
    int rc = bounce_parse((const char *)data, size, &r);

    check(rc == 0 || rc == -1, "result is 0 or -1");
    if (rc < 0) {
        check(r.nrcpt == 0 && r.rcpt == NULL, "a failed parse is empty");
        return 0;
    }
    check(r.verdict == BOUNCE_NAMED || r.verdict == BOUNCE_ANONYMOUS ||
              r.verdict == BOUNCE_NOT || r.verdict == BOUNCE_UNKNOWN,
          "verdict in range");
    check(r.format != NULL, "a format");
    check((r.verdict == BOUNCE_NAMED) == (r.nrcpt > 0),
          "named exactly when recipients are");
    check(r.nrcpt <= BP_MAX_RCPT, "at most BP_MAX_RCPT recipients");
    check(status_ok(r.status), "summary status is a code or empty");
    for (i = 0; i < r.nrcpt; i++) {
        const struct bounce_rcpt *c = &r.rcpt[i];

        check(c->address != NULL && bp_address_ok(c->address),
              "a plain address");
        check(in_input(data, size, c->address), "the address is in the input");
        check(c->action == BOUNCE_FAILED || c->action == BOUNCE_DELAYED ||
                  c->action == BOUNCE_POLICY,
              "action in range");
        check(status_ok(c->status), "status is a code or empty");
        check(c->diagnostic == NULL ||
                  (strlen(c->diagnostic) <= BP_DIAG_MAX &&
                   strpbrk(c->diagnostic, "\r\n\t") == NULL),
              "diagnostic is one short line");
    }
    bounce_report_free(&r);
    bounce_report_free(&r);
    return 0;
}
