/*
 * log - messages to syslog (facility mail), a log file and, when
 * interactive, stderr.
 *
 * Every program calls log_init() once with its name.  Lines go to syslog
 * with the program name as ident and the pid; when standard error is a
 * terminal (or log_init() is told so), they are also printed on stderr as
 * "program: level: text", or with LOG_STDERR_STAMPED (the daemons' -e) in
 * the log file's format.  With log_open_file() (the log_file setting, for
 * hosts without a syslog daemon, like Postfix's maillog_file) every line is
 * also appended to that file in syslog's format,
 * "Mmm dd hh:mm:ss host program[pid]: text", one write(2) per line on an
 * O_APPEND descriptor so that the lines of concurrent processes never
 * interleave; log_reopen() reopens it after logrotate moved it (SIGHUP).
 * A line about a queue entry starts with the entry's queue ID followed by
 * ": ", the way Postfix logs ("4F2A...: from=<>").
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

enum log_stderr {
    LOG_STDERR_AUTO,
    LOG_STDERR_ALWAYS,
    LOG_STDERR_NEVER,
    LOG_STDERR_STAMPED /* always, each line as in the log file */
};

void log_init(const char *progname, enum log_stderr mode);

/*
 * Append every line to path too (NULL or "": no file).  The file is
 * created mode 0640 if missing.  -1 with a reason in err when it cannot be
 * opened; the lines then go where they went before.  log_reopen() opens
 * the same path again (and syslog): 0, or -1 with a reason, the old
 * descriptor kept.
 */
int log_open_file(const char *path, char *err, size_t errlen);
int log_reopen(char *err, size_t errlen);

/*
 * For the daemons at start: when neither syslog (a daemon listening on
 * /dev/log) nor a log file nor stderr takes the lines, say so once on
 * stderr.  Returns 1 when it did.  log_fatal() writes its line on stderr
 * too in that case (also before this was called: a configuration that
 * does not load), so that a fatal error is never silent.
 */
int log_warn_if_unheard(void);
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

/* Print "program (mmq) VERSION" on stdout and exit 0 (-V, --version). */
void log_version_exit(void) __attribute__((noreturn));

/*
 * For functions that report errors as -1 with errno and a reason: write
 * the reason into err (when err is not NULL), set errno to e, return -1.
 * Used as "return err_set(err, errlen, ENOENT, "%s: gone", name);".
 */
int err_set(char *err, size_t errlen, int e, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
