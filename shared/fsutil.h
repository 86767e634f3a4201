/*
 * fsutil - file system steps that several modules share.
 *
 * fsync_dir_at() makes a directory's entries durable: after a file is
 * created, renamed into or unlinked from a directory, the change survives
 * a crash only once the directory itself is fsync'ed (rename(2) alone
 * promises atomicity, not durability).  Every module that publishes files
 * (the queues, the journals, the member store, the members file) calls it
 * after the step that must last.
 *
 * Contract: no memory is kept; returns 0, or -1 with errno set (ENOENT and
 * friends from opening the directory, EIO and friends from fsync(2)), and
 * the directory descriptor it opened is closed either way.  Callers that
 * accept file systems which cannot fsync a directory (EINVAL) decide that
 * themselves.
 */
#ifndef MMQ_FSUTIL_H
#define MMQ_FSUTIL_H

/* fsync the directory rel, relative to the directory descriptor at
 * (AT_FDCWD: the working directory). */
int fsync_dir_at(int at, const char *rel);

#endif
