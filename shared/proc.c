/*
 * proc - process identity and liveness from /proc.  See proc.h.
 */
#include "autoconf.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "proc.h"

/* Start time and state letter of pid from /proc/PID/stat. */
static int read_stat(pid_t pid, unsigned long long *start, char *state)
{
    char path[64], buf[1024];
    char *p, *end;
    ssize_t n;
    int fd, field;

    if (pid == 0)
        pid = getpid();
    snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
    if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
        return -1;
    n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
        return -1;
    buf[n] = 0;
    /* The command name is in parentheses and may hold anything: skip to
     * the last ')'.  Fields after it start with field 3 (state). */
    if (!(p = strrchr(buf, ')')) || p[1] != ' ' || !p[2])
        return -1;
    *state = p[2];
    p++;
    for (field = 3; field < 22; field++) {
        p = strchr(p + 1, ' ');
        if (!p)
            return -1;
    }
    errno = 0;
    *start = strtoull(p + 1, &end, 10);
    if (errno || end == p + 1)
        return -1;
    return 0;
}

int proc_start_time(pid_t pid, unsigned long long *start)
{
    char state;

    return read_stat(pid, start, &state);
}

int proc_alive(pid_t pid, unsigned long long start)
{
    unsigned long long now;
    char state;

    if (pid <= 0 || read_stat(pid, &now, &state) != 0)
        return 0;
    /* A zombie ('Z') or dead ('X') process has ended even if its parent
     * has not reaped it yet: it holds nothing and will do nothing more. */
    return now == start && state != 'Z' && state != 'X';
}
