/*
 * tap - a tiny Test Anything Protocol producer for the unit tests.
 *
 * Output is TAP version 12 as read by automake's tap-driver.sh: one line
 * "ok N - name" or "not ok N - name" per test point, a plan "1..N" (first
 * with plan(), last with done_testing()), and diagnostics as "# ..." lines.
 *
 * Contract:
 *  - every check returns its verdict (1 pass, 0 fail) so a test can stop
 *    early or print more context on failure;
 *  - names are printed with '#' and line ends replaced, so a hostile value
 *    in a name can never forge a directive or a test line;
 *  - exit_status() (and done_testing(), which returns it) is 0 only if every
 *    test passed and, with a plan, the count matched it.  main() should end
 *    with "return done_testing();" or "return exit_status();".
 *
 * Output goes to stdout, unbuffered-by-line, so a crash loses nothing that
 * was already reported.  tap_fork_prepare() flushes stdout before fork(2)
 * so a child never repeats the parent's buffered lines.
 */
#ifndef MMQ_TAP_H
#define MMQ_TAP_H

#include <stddef.h>

void plan(int n);
int done_testing(void);
int exit_status(void);

int ok(int cond, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int is_int(long long got, long long want, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int is_str(const char *got, const char *want, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Like is_str() for byte strings that may hold NULs or 8-bit bytes. */
int is_mem(const void *got, size_t gotlen, const void *want, size_t wantlen,
           const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/*
 * Mark the tests that follow as TODO (a known, documented shortcoming)
 * until todo(NULL): they are reported "# TODO why" and do not fail the
 * suite (automake counts them XFAIL, or XPASS once they pass, which does
 * fail it: then remove the todo()).
 */
void todo(const char *why);

void diag(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void skip(int n, const char *why);
/* Stop with "Bail out!": the remaining tests cannot run. */
void bail_out(const char *fmt, ...)
    __attribute__((format(printf, 1, 2), noreturn));

/* Number of test points so far and of failures so far. */
int tap_count(void);
int tap_failed(void);

void tap_fork_prepare(void);

#endif
