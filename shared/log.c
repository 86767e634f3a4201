/*
 * log - syslog and stderr logging.  See log.h for the contract.
 */
#include "autoconf.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include "log.h"

static const char *prog = "mmq";
static int to_stderr;
static int verbose;
static void (*fatal_hook)(void);

void log_init(const char *progname, enum log_stderr mode)
{
    const char *slash = strrchr(progname, '/');

    prog = slash ? slash + 1 : progname;
    switch (mode) {
    case LOG_STDERR_ALWAYS:
        to_stderr = 1;
        break;
    case LOG_STDERR_NEVER:
        to_stderr = 0;
        break;
    default:
        to_stderr = isatty(STDERR_FILENO);
        break;
    }
    openlog(prog, LOG_PID | LOG_NDELAY, LOG_MAIL);
}

const char *log_progname(void)
{
    return prog;
}

void log_set_verbose(int v)
{
    verbose = v;
}

void log_set_fatal_hook(void (*hook)(void))
{
    fatal_hook = hook;
}

static void log_emit(int prio, const char *level, const char *fmt, va_list ap)
{
    char buf[2000];
    unsigned char *p;

    vsnprintf(buf, sizeof(buf), fmt, ap);
    for (p = (unsigned char *)buf; *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            *p = '?';
    syslog(prio, "%s%s", level[0] ? level : "", buf);
    if (to_stderr)
        fprintf(stderr, "%s: %s%s\n", prog, level, buf);
}

#define LOG_BODY(prio, level)                                                  \
    do {                                                                       \
        va_list ap;                                                            \
        va_start(ap, fmt);                                                     \
        log_emit(prio, level, fmt, ap);                                        \
        va_end(ap);                                                            \
    } while (0)

void log_debug(const char *fmt, ...)
{
    if (verbose)
        LOG_BODY(LOG_DEBUG, "debug: ");
}

void log_info(const char *fmt, ...)
{
    LOG_BODY(LOG_INFO, "");
}

void log_warn(const char *fmt, ...)
{
    LOG_BODY(LOG_WARNING, "warning: ");
}

void log_error(const char *fmt, ...)
{
    LOG_BODY(LOG_ERR, "error: ");
}

void log_fatal(int status, const char *fmt, ...)
{
    LOG_BODY(LOG_CRIT, "fatal: ");
    if (fatal_hook)
        fatal_hook();
    exit(status);
}

int err_set(char *err, size_t errlen, int e, const char *fmt, ...)
{
    va_list ap;

    if (err && errlen) {
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    errno = e;
    return -1;
}
