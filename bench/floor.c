/*
 * floor - the least work any durable mail filter must do, for comparison
 * with mmq-filter (see filter-bench.sh).
 *
 *     floor create DIR N SIZE
 *         N times, in one process: create DIR/tmp/NAME with
 *         O_CREAT|O_EXCL, write SIZE bytes, fsync, close, rename it into
 *         one of 256 bucket directories DIR/BB/, and fsync that directory
 *         (opened for the purpose, as the spool does).  This is exactly the
 *         durable create of the mmq spool, minus everything else.
 *     floor drain
 *         read stdin to its end and exit 0: the trivial program whose
 *         start-up (fork + exec, run by bench/launch) is the process floor.
 *         Built static, so that it pays no dynamic linking at all.
 *
 * create prints one line "n=N fail=F t0=SEC.NSEC t1=SEC.NSEC cpu=SEC"
 * (t0, t1: CLOCK_MONOTONIC; cpu: user + system time of the loop, as
 * bench/launch prints them); drain prints nothing.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static void die(const char *what)
{
    fprintf(stderr, "floor: %s: %s\n", what, strerror(errno));
    exit(1);
}

static int drain(void)
{
    char buf[65536];
    ssize_t n;

    while ((n = read(STDIN_FILENO, buf, sizeof(buf))) != 0)
        if (n < 0 && errno != EINTR)
            return 1;
    return 0;
}

static double cpu_seconds(const struct rusage *r)
{
    return (double)(r->ru_utime.tv_sec + r->ru_stime.tv_sec) +
           (double)(r->ru_utime.tv_usec + r->ru_stime.tv_usec) / 1e6;
}

/* A cheap 64-bit mix, to spread names over the buckets like a digest. */
static uint64_t mix(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return x;
}

static int create(const char *dir, long n, size_t size)
{
    struct timespec t0, t1;
    struct rusage r0, r1;
    char tmp[128], dst[128], bucket[8];
    char *data;
    long i, fail = 0;
    int dfd, b;
    pid_t pid = getpid();

    if ((dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
        die(dir);
    if (mkdirat(dfd, "tmp", 0770) != 0 && errno != EEXIST)
        die("mkdir tmp");
    for (b = 0; b < 256; b++) {
        snprintf(bucket, sizeof(bucket), "%02x", b);
        if (mkdirat(dfd, bucket, 0770) != 0 && errno != EEXIST)
            die("mkdir bucket");
    }
    if (!(data = malloc(size ? size : 1)))
        die("malloc");
    memset(data, 'x', size);
    for (i = 0; i + 1 < (long)size; i += 72)
        data[i] = '\n';

    getrusage(RUSAGE_SELF, &r0);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (i = 0; i < n; i++) {
        uint64_t h = mix(((uint64_t)pid << 32) ^ (uint64_t)i);
        int fd, bfd;
        size_t off = 0;

        snprintf(tmp, sizeof(tmp), "tmp/%ld.%ld", (long)pid, i);
        snprintf(bucket, sizeof(bucket), "%02x", (unsigned)(h & 255));
        snprintf(dst, sizeof(dst), "%s/%016llx.%ld.%ld", bucket,
                 (unsigned long long)h, (long)pid, i);
        fd = openat(dfd, tmp,
                    O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0640);
        if (fd < 0)
            die(tmp);
        while (off < size) {
            ssize_t w = write(fd, data + off, size - off);
            if (w < 0 && errno == EINTR)
                continue;
            if (w < 0)
                die("write");
            off += (size_t)w;
        }
        if (fsync(fd) != 0)
            die("fsync");
        if (close(fd) != 0)
            die("close");
        if (renameat(dfd, tmp, dfd, dst) != 0)
            die("rename");
        if ((bfd = openat(dfd, bucket, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
            die(bucket);
        if (fsync(bfd) != 0)
            fail++;
        close(bfd);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    getrusage(RUSAGE_SELF, &r1);
    printf("n=%ld fail=%ld t0=%lld.%09ld t1=%lld.%09ld cpu=%.6f\n", n, fail,
           (long long)t0.tv_sec, t0.tv_nsec, (long long)t1.tv_sec, t1.tv_nsec,
           cpu_seconds(&r1) - cpu_seconds(&r0));
    free(data);
    close(dfd);
    return fail != 0;
}

int main(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "drain") == 0)
        return drain();
    if (argc == 5 && strcmp(argv[1], "create") == 0)
        return create(argv[2], atol(argv[3]), (size_t)atol(argv[4]));
    fprintf(stderr, "usage: floor create DIR N SIZE | floor drain\n");
    return 2;
}
