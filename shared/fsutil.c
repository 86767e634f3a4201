/*
 * fsutil - file system steps that several modules share (see fsutil.h).
 */
#include "autoconf.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include "fsutil.h"

int fsync_dir_at(int at, const char *rel)
{
    int fd = openat(at, rel, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int rc, e;

    if (fd < 0)
        return -1;
    rc = fsync(fd);
    e = errno;
    close(fd);
    errno = e;
    return rc;
}
