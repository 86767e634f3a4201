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

int proc_start_time(pid_t pid, unsigned long long *start)
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
    if (!(p = strrchr(buf, ')')))
        return -1;
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

int proc_alive(pid_t pid, unsigned long long start)
{
    unsigned long long now;

    if (pid <= 0)
        return 0;
    if (proc_start_time(pid, &now) != 0)
        return 0;
    return now == start;
}
