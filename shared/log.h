/*
 * log - messages to syslog (facility mail) and, when interactive, stderr.
 *
 * Every program calls log_init() once with its name.  Lines go to syslog
 * with the program name as ident and the pid; when standard error is a
 * terminal (or log_init() is told so), they are also printed on stderr as
 * "program: level: text".  A line about a queue entry starts with the
 * entry's queue ID followed by ": ", the way Postfix logs ("4F2A...: from=<>").
 *
 * Contract: the functions never fail and never allocate; the text is
 * truncated to 2000 bytes.  Control characters in the formatted text are
 * replaced by '?' so that hostile input cannot forge log lines.
 * log_fatal() logs and exits with the given status; it runs the exit hook
 * registered with log_set_fatal_hook() first (used to remove temporary
 * files).
 */
#ifndef MMQ_LOG_H
#define MMQ_LOG_H

#include <stdarg.h>
#include <stddef.h>

enum log_stderr { LOG_STDERR_AUTO, LOG_STDERR_ALWAYS, LOG_STDERR_NEVER };

void log_init(const char *progname, enum log_stderr mode);
const char *log_progname(void);
/* Debug lines are dropped unless log_set_verbose(1) was called. */
void log_set_verbose(int verbose);
void log_set_fatal_hook(void (*hook)(void));

void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_fatal(int status, const char *fmt, ...)
    __attribute__((format(printf, 2, 3), noreturn));

/*
 * For functions that report errors as -1 with errno and a reason: write
 * the reason into err (when err is not NULL), set errno to e, return -1.
 * Used as "return err_set(err, errlen, ENOENT, "%s: gone", name);".
 */
int err_set(char *err, size_t errlen, int e, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
