/*
 * rss-at-exit - an LD_PRELOAD shim for bench/deliver-bench.sh: every
 * process of the tree it is preloaded into appends one line
 *
 *     pid=PID ppid=PPID hwm_kb=VmHWM rss_kb=VmRSS
 *
 * to the file named by $RSS_AT_EXIT_LOG when it ends, so that the peak
 * resident set size of the mmq-deliver master and of each of its worker
 * processes is known exactly, not sampled.
 *
 * The master leaves main() through exit(), which runs our destructor; the
 * workers end with _exit() (mmq-deliver's start_worker()), which skips
 * destructors, so _exit() is interposed too: it records, then ends the
 * process with the exit_group system call, as libc's _exit() does.  A
 * process killed by a signal records nothing (the benchmark says how many
 * workers reported).
 *
 * Build: cc -O2 -shared -fPIC -o rss-at-exit.so rss-at-exit.c
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static int recorded;

static long status_kb(const char *buf, const char *key)
{
    const char *p = strstr(buf, key);

    return p ? strtol(p + strlen(key), NULL, 10) : -1;
}

static void record(void)
{
    const char *log = getenv("RSS_AT_EXIT_LOG");
    char buf[8192], line[160];
    ssize_t n;
    int fd, len;

    if (recorded || !log)
        return;
    recorded = 1;
    fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
        return;
    buf[n] = 0;
    len = snprintf(line, sizeof(line), "pid=%ld ppid=%ld hwm_kb=%ld rss_kb=%ld\n",
                   (long)getpid(), (long)getppid(), status_kb(buf, "VmHWM:"),
                   status_kb(buf, "VmRSS:"));
    fd = open(log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        return;
    /* one short O_APPEND write: lines of concurrent processes never mix */
    if (write(fd, line, (size_t)len) < 0) {
        /* nothing to do: the benchmark counts the lines */
    }
    close(fd);
}

/* A forked child inherits `recorded` = 0 from a parent that has not
 * recorded yet, which is what we want. */
__attribute__((destructor)) static void at_exit_record(void)
{
    record();
}

void _exit(int status)
{
    record();
    for (;;)
        syscall(SYS_exit_group, status);
}
