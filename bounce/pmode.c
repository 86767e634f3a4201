/*
 * pmode - mmq-bounce -p FILE...: the parser for postmasters and tests.
 *
 * Each FILE is read whole as one message (no spool, no configuration),
 * parsed with bounce_parse(), and every recipient found is printed as
 * "FILE<TAB>ACTION<TAB>ADDRESS<TAB>STATUS" (STATUS "-" when unknown).  A
 * message that names nobody prints nothing.  A FILE that cannot be read
 * is reported on stderr and the others are still parsed; the exit status
 * is then 66 (EX_NOINPUT).  Out of memory: 71 (EX_OSERR); a failed write
 * to stdout: 74 (EX_IOERR).
 */
#include "autoconf.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bparse.h"

/* The whole file in memory the caller frees; NULL with errno on error. */
static char *read_file(const char *path, size_t *len)
{
    struct stat st;
    size_t cap, n = 0;
    char *data;
    int fd = open(path, O_RDONLY | O_CLOEXEC);

    if (fd < 0)
        return NULL;
    if (fstat(fd, &st) < 0 || S_ISDIR(st.st_mode)) {
        int e = S_ISDIR(st.st_mode) ? EISDIR : errno;

        close(fd);
        errno = e;
        return NULL;
    }
    cap = st.st_size > 0 ? (size_t)st.st_size + 1 : 65536;
    data = malloc(cap);
    while (data != NULL) {
        ssize_t got;

        if (n == cap) {
            char *bigger = realloc(data, cap * 2);

            if (bigger == NULL) {
                free(data);
                data = NULL;
                errno = ENOMEM;
                break;
            }
            data = bigger;
            cap *= 2;
        }
        got = read(fd, data + n, cap - n);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            int e = errno;

            free(data);
            data = NULL;
            errno = e;
            break;
        }
        if (got == 0)
            break;
        n += (size_t)got;
    }
    close(fd);
    *len = n;
    return data;
}

int bounce_parse_mode(int nfiles, char **files)
{
    int i, status = 0;

    for (i = 0; i < nfiles; i++) {
        struct bounce_report r;
        size_t len = 0, k;
        char *msg = read_file(files[i], &len);

        if (msg == NULL) {
            fprintf(stderr, "mmq-bounce: %s: %s\n", files[i], strerror(errno));
            if (status == 0)
                status = 66;
            continue;
        }
        if (bounce_parse(msg, len, &r) < 0) {
            fprintf(stderr, "mmq-bounce: %s: %s\n", files[i], strerror(errno));
            free(msg);
            return 71;
        }
        for (k = 0; k < r.nrcpt; k++)
            printf("%s\t%s\t%s\t%s\n", files[i],
                   bounce_action_name(r.rcpt[k].action), r.rcpt[k].address,
                   r.rcpt[k].status[0] ? r.rcpt[k].status : "-");
        bounce_report_free(&r);
        free(msg);
    }
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "mmq-bounce: write error: %s\n", strerror(errno));
        return 74;
    }
    return status;
}
