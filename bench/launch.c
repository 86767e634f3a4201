/*
 * launch - start a program N times, one after the other, each with its
 * standard input opened from FILE, as an MTA's pipe transport does, and
 * wait for each.  A launcher in C, so that the shell's own fork cost is not
 * counted against the program being measured (see filter-bench.sh).
 *
 *     launch [-x STATUS] N FILE PROGRAM [ARG...]
 *
 * stdout and stderr of the program go to /dev/null.  -x: the exit status
 * every run is expected to have (default 0).  Prints one line
 * "n=N fail=F t0=SEC.NSEC t1=SEC.NSEC" (CLOCK_MONOTONIC, so that the
 * script can compute the wall time of two launchers run at once); fail
 * counts runs that did not exit with the expected status, and the first such
 * status is reported on stderr.  Exit status 0 only if every run exited as
 * expected.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

int main(int argc, char **argv)
{
    posix_spawn_file_actions_t fa;
    struct timespec t0, t1;
    struct rusage ru;
    long n, i, fail = 0;
    int first = 1, want = 0;

    if (argc > 2 && strcmp(argv[1], "-x") == 0) {
        want = atoi(argv[2]);
        argv += 2;
        argc -= 2;
    }
    if (argc < 4) {
        fprintf(stderr, "usage: launch [-x STATUS] N FILE PROGRAM [ARG...]\n");
        return 2;
    }
    n = atol(argv[1]);
    if (access(argv[2], R_OK) != 0) {
        fprintf(stderr, "launch: %s: %s\n", argv[2], strerror(errno));
        return 2;
    }
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, argv[2], O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);

    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (i = 0; i < n; i++) {
        pid_t pid;
        int st, rc;

        rc = posix_spawn(&pid, argv[3], &fa, NULL, argv + 3, environ);
        if (rc != 0) {
            fprintf(stderr, "launch: %s: %s\n", argv[3], strerror(rc));
            return 2;
        }
        while (waitpid(pid, &st, 0) < 0)
            if (errno != EINTR) {
                perror("launch: waitpid");
                return 2;
            }
        if (!WIFEXITED(st) || WEXITSTATUS(st) != want) {
            if (first)
                fprintf(stderr, "launch: run %ld of %s: %s %d\n", i, argv[3],
                        WIFEXITED(st) ? "exit" : "signal",
                        WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
            first = 0;
            fail++;
        }
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    getrusage(RUSAGE_CHILDREN, &ru);
    posix_spawn_file_actions_destroy(&fa);
    printf("n=%ld fail=%ld t0=%lld.%09ld t1=%lld.%09ld cpu=%.6f\n", n, fail,
           (long long)t0.tv_sec, t0.tv_nsec, (long long)t1.tv_sec, t1.tv_nsec,
           (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
               (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6);
    return fail != 0;
}
