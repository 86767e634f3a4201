/*
 * log - syslog, log file and stderr logging.  See log.h for the contract.
 *
 * The log file is opened by every process itself (mmq-filter included,
 * which the MTA runs as its pipe user: that user needs write access), not
 * handed to a logging daemon: O_APPEND makes each write(2) land whole at
 * the end of the file, so a line is one write, never split.
 */
#include "autoconf.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

static const char *prog = "mmq";
static int to_stderr, stamped;
static int file_fd = -1;
static char *file_path;
static char host[64];
static int verbose;
static void (*fatal_hook)(void);

void log_init(const char *progname, enum log_stderr mode)
{
    const char *slash = strrchr(progname, '/');

    prog = slash ? slash + 1 : progname;
    stamped = mode == LOG_STDERR_STAMPED;
    switch (mode) {
    case LOG_STDERR_ALWAYS:
    case LOG_STDERR_STAMPED:
        to_stderr = 1;
        break;
    case LOG_STDERR_NEVER:
        to_stderr = 0;
        break;
    default:
        to_stderr = isatty(STDERR_FILENO);
        break;
    }
    if (gethostname(host, sizeof(host) - 1) != 0 || !host[0])
        strcpy(host, "localhost");
    host[strcspn(host, ".")] = 0; /* syslog's short name */
    openlog(prog, LOG_PID | LOG_NDELAY, LOG_MAIL);
}

static int open_append(const char *path, char *err, size_t errlen)
{
    int fd =
        open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0640);

    if (fd < 0)
        err_set(err, errlen, errno, "log_file %s: %s", path, strerror(errno));
    return fd;
}

int log_open_file(const char *path, char *err, size_t errlen)
{
    int fd = -1;
    char *copy = NULL;

    if (path && *path) {
        if (!(copy = strdup(path)))
            return err_set(err, errlen, ENOMEM, "out of memory");
        if ((fd = open_append(path, err, errlen)) < 0) {
            free(copy);
            return -1;
        }
    }
    if (file_fd >= 0)
        close(file_fd);
    free(file_path);
    file_fd = fd;
    file_path = copy;
    return 0;
}

int log_reopen(char *err, size_t errlen)
{
    int fd;

    closelog();
    openlog(prog, LOG_PID | LOG_NDELAY, LOG_MAIL);
    if (!file_path)
        return 0;
    if ((fd = open_append(file_path, err, errlen)) < 0)
        return -1; /* keep writing where we did: better than nowhere */
    if (file_fd >= 0)
        close(file_fd);
    file_fd = fd;
    return 0;
}

/* Is a syslog daemon listening on /dev/log (datagram or stream)? */
static int syslog_listening(void)
{
    static const int types[] = {SOCK_DGRAM, SOCK_STREAM};
    struct sockaddr_un sun;

    memset(&sun, 0, sizeof(sun));
    sun.sun_family = AF_UNIX;
    snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", _PATH_LOG);
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
        int fd = socket(AF_UNIX, types[i] | SOCK_CLOEXEC, 0);
        int ok =
            fd >= 0 && connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0;

        if (fd >= 0)
            close(fd);
        if (ok)
            return 1;
    }
    return 0;
}

static int unheard = -1; /* -1: not checked yet */

int log_warn_if_unheard(void)
{
    unheard = file_fd < 0 && !syslog_listening();
    if (!unheard || to_stderr)
        return 0;
    fprintf(stderr,
            "%s: warning: no syslog daemon listens on %s and no log_file is "
            "set: nothing will be logged (set log_file in mmq.conf, or run "
            "with -e)\n",
            prog, _PATH_LOG);
    return 1;
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

/* "Mmm dd hh:mm:ss host program[pid]: " into out; its length. */
static size_t stamp(char *out, size_t cap)
{
    time_t now = time(NULL);
    struct tm tm;
    size_t n;
    int m;

    if (!localtime_r(&now, &tm) ||
        (n = strftime(out, cap, "%b %e %H:%M:%S ", &tm)) == 0)
        n = 0;
    m = snprintf(out + n, cap - n, "%s %s[%ld]: ", host, prog, (long)getpid());
    return m < 0 ? n : n + (size_t)m < cap ? n + (size_t)m : cap - 1;
}

static void log_emit(int prio, const char *level, const char *fmt, va_list ap)
{
    char buf[2000], line[2200];
    unsigned char *p;
    size_t n;

    vsnprintf(buf, sizeof(buf), fmt, ap);
    for (p = (unsigned char *)buf; *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            *p = '?';
    syslog(prio, "%s%s", level[0] ? level : "", buf);
    if (file_fd >= 0 || stamped) {
        n = stamp(line, sizeof(line));
        snprintf(line + n, sizeof(line) - n, "%s%s\n", level, buf);
        n = strlen(line);
        if (file_fd >= 0)
            (void)!write(file_fd, line, n); /* nowhere to report a failure */
    }
    if (stamped)
        fputs(line, stderr);
    else if (to_stderr || (prio == LOG_CRIT && unheard == 1))
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
    if (unheard < 0) /* before log_warn_if_unheard(): a configuration error */
        unheard = file_fd < 0 && !syslog_listening();
    LOG_BODY(LOG_CRIT, "fatal: ");
    if (fatal_hook)
        fatal_hook();
    exit(status);
}

void log_version_exit(void)
{
    printf("%s (%s) %s\n", prog, PACKAGE_NAME, PACKAGE_VERSION);
    exit(fflush(stdout) == 0 ? 0 : 1);
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
