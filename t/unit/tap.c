/*
 * tap - a tiny TAP producer.  See tap.h for the contract.
 */
#include "autoconf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tap.h"

static int planned = -1; /* -1: no plan yet */
static int count;
static int failed;
static char todo_why[256]; /* "": not in a TODO block */

static void init_once(void)
{
    static int done;

    if (!done) {
        done = 1;
        setvbuf(stdout, NULL, _IOLBF, 0);
    }
}

/* Print s so that it can neither end the line nor start a directive. */
static void put_safe(const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;

        if (c == '#' || c == '\\')
            fputc('\\', stdout);
        if (c < 0x20 || c == 0x7f)
            fputc('?', stdout);
        else
            fputc(c, stdout);
    }
}

void plan(int n)
{
    init_once();
    planned = n;
    printf("1..%d\n", n);
}

int exit_status(void)
{
    if (failed)
        return 1;
    if (planned >= 0 && planned != count)
        return 1;
    return 0;
}

int done_testing(void)
{
    init_once();
    if (planned < 0) {
        planned = count;
        printf("1..%d\n", count);
    } else if (planned != count) {
        diag("planned %d tests but ran %d", planned, count);
    }
    if (failed)
        diag("failed %d of %d tests", failed, count);
    fflush(stdout);
    return exit_status();
}

static int vresult(int cond, const char *directive, const char *fmt, va_list ap)
{
    char name[1024];

    init_once();
    vsnprintf(name, sizeof(name), fmt, ap);
    count++;
    if (!cond && !todo_why[0])
        failed++;
    printf("%sok %d - ", cond ? "" : "not ", count);
    put_safe(name);
    if (directive)
        printf(" # %s", directive);
    else if (todo_why[0])
        printf(" # TODO %s", todo_why);
    fputc('\n', stdout);
    return cond != 0;
}

int ok(int cond, const char *fmt, ...)
{
    va_list ap;
    int rc;

    va_start(ap, fmt);
    rc = vresult(cond, NULL, fmt, ap);
    va_end(ap);
    return rc;
}

int is_int(long long got, long long want, const char *fmt, ...)
{
    va_list ap;
    int rc;

    va_start(ap, fmt);
    rc = vresult(got == want, NULL, fmt, ap);
    va_end(ap);
    if (!rc) {
        diag("     got: %lld", got);
        diag("expected: %lld", want);
    }
    return rc;
}

/* Show a possibly hostile byte string on one diagnostic line. */
static void diag_bytes(const char *label, const void *p, size_t n)
{
    const unsigned char *s = p;
    char out[600];
    size_t i, w = 0;

    if (!p) {
        diag("%s: (null)", label);
        return;
    }
    for (i = 0; i < n && w + 8 < sizeof(out); i++) {
        if (s[i] >= 0x20 && s[i] < 0x7f && s[i] != '\\')
            out[w++] = (char)s[i];
        else
            w += (size_t)snprintf(out + w, sizeof(out) - w, "\\x%02x", s[i]);
    }
    out[w] = 0;
    diag("%s: \"%s\"%s (%zu bytes)", label, out, i < n ? "..." : "", n);
}

int is_str(const char *got, const char *want, const char *fmt, ...)
{
    va_list ap;
    int rc, same;

    same = (got == NULL && want == NULL) ||
           (got != NULL && want != NULL && strcmp(got, want) == 0);
    va_start(ap, fmt);
    rc = vresult(same, NULL, fmt, ap);
    va_end(ap);
    if (!rc) {
        diag_bytes("     got", got, got ? strlen(got) : 0);
        diag_bytes("expected", want, want ? strlen(want) : 0);
    }
    return rc;
}

int is_mem(const void *got, size_t gotlen, const void *want, size_t wantlen,
           const char *fmt, ...)
{
    va_list ap;
    int rc, same;

    same = gotlen == wantlen &&
           (gotlen == 0 || (got && want && memcmp(got, want, gotlen) == 0));
    va_start(ap, fmt);
    rc = vresult(same, NULL, fmt, ap);
    va_end(ap);
    if (!rc) {
        size_t i = 0;

        if (got && want)
            while (i < gotlen && i < wantlen &&
                   ((const char *)got)[i] == ((const char *)want)[i])
                i++;
        diag("first difference at byte %zu (lengths %zu and %zu)", i, gotlen,
             wantlen);
        diag_bytes("     got", got, gotlen);
        diag_bytes("expected", want, wantlen);
    }
    return rc;
}

void todo(const char *why)
{
    size_t i;

    snprintf(todo_why, sizeof(todo_why), "%s", why ? why : "");
    for (i = 0; todo_why[i]; i++)
        if ((unsigned char)todo_why[i] < 0x20)
            todo_why[i] = '?';
    if (why && !todo_why[0])
        snprintf(todo_why, sizeof(todo_why), "todo");
}

void diag(const char *fmt, ...)
{
    char text[2048];
    va_list ap;
    const char *line, *nl;

    init_once();
    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    /* One "# " line per line of text. */
    for (line = text;; line = nl + 1) {
        nl = strchr(line, '\n');
        printf("# %.*s\n", nl ? (int)(nl - line) : (int)strlen(line), line);
        if (!nl || !nl[1])
            break;
    }
}

static int ok_directive(const char *directive, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int ok_directive(const char *directive, const char *fmt, ...)
{
    va_list ap;
    int rc;

    va_start(ap, fmt);
    rc = vresult(1, directive, fmt, ap);
    va_end(ap);
    return rc;
}

void skip(int n, const char *why)
{
    char directive[600];
    char reason[512];
    size_t i;

    /* The reason goes after the directive: keep it on one line. */
    snprintf(reason, sizeof(reason), "%s", why ? why : "");
    for (i = 0; reason[i]; i++)
        if ((unsigned char)reason[i] < 0x20)
            reason[i] = '?';
    snprintf(directive, sizeof(directive), "SKIP %s", reason);
    while (n-- > 0)
        ok_directive(directive, "skipped");
}

void bail_out(const char *fmt, ...)
{
    char text[1024];
    va_list ap;
    size_t i;

    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    for (i = 0; text[i]; i++)
        if ((unsigned char)text[i] < 0x20)
            text[i] = '?';
    printf("Bail out! %s\n", text);
    fflush(stdout);
    exit(255);
}

int tap_count(void)
{
    return count;
}

int tap_failed(void)
{
    return failed;
}

void tap_fork_prepare(void)
{
    fflush(stdout);
    fflush(stderr);
}
