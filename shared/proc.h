/*
 * proc - who this process is, and whether another process still lives.
 *
 * A claim or temporary file is stamped with node, pid and the process's
 * start time (clock ticks since boot, from /proc/PID/stat).  The start
 * time makes the liveness test immune to pid reuse: a pid that now belongs
 * to a different process has a different start time.
 *
 * Liveness can only be judged on the node that wrote the stamp; callers
 * compare the node name first.  No allocation.
 */
#ifndef MMQ_PROC_H
#define MMQ_PROC_H

#include <sys/types.h>

/* Start time of pid (0: this process); -1 if it does not exist. */
int proc_start_time(pid_t pid, unsigned long long *start);

/* 1: that process (pid with that start time) is alive; 0: it is not
 * (gone, reused, or a zombie not yet reaped). */
int proc_alive(pid_t pid, unsigned long long start);

#endif
