/*
 * queue - the mmq spool: durable enqueue, listing by slice, claim,
 * finish, move, rewrite and crash recovery.  mmq-spool(5) describes the
 * layout on disk; this header is the contract for programs, in five
 * modules, each header stating its part: spool.h (the directory, slice
 * locks, watches), qname.h (entry names, listing), qwriter.h (writing an
 * entry), qclaim.h (claims), qrecover.h (recovery); queue-int.h is what
 * their .c files share and programs never include.
 *
 * Layout (all paths relative to the spool directory):
 *
 *     tmp/                       files being written, never read as entries
 *     in/ bounces/ out/ deferred/ hold/ bad/   the queues
 *     QUEUE/BB/NAME              a ready entry; BB = first 2 digest digits
 *     QUEUE/BB/NAME#NODE#PID#ST  the same entry claimed by a process
 *     bad/BB/NAME@QUEUE          an entry moved aside, and where from
 *     hold/BB/NAME@QUEUE         an entry held, and where from
 *
 * NAME is "SSSSSSSSSS.UUUUUU+" and 40 hex digits: arrival time (seconds,
 * microseconds) and a SHA-1 digest of the message, the envelope, the node,
 * the process, a counter and random bytes.  Names sort in arrival order.
 *
 * The crash rules every program relies on:
 *  - An entry appears under a final name only by rename(2) of a complete,
 *    fsync()ed file from tmp/, followed by fsync() of the bucket directory.
 *    A reader never sees a partial entry.
 *  - A process works on an entry only after claiming it: renaming it to a
 *    name that carries its node, pid and start time.  Of two processes
 *    claiming the same entry exactly one rename succeeds, because the
 *    targets differ (see ../shared/gluster notes: renames to a shared
 *    target name can both "succeed" on a distributed filesystem).
 *  - A claimed entry whose process is dead (same node, pid gone or reused)
 *    is restored by queue_recover() with its recovery count raised; past
 *    max_recoveries it goes to bad/ instead of crashing the runner again.
 *  - Temporary files of dead processes, or older than tmp_max_age, are
 *    removed by spool_clean_tmp().
 *  - Entries are opened with O_NOFOLLOW; the spool and its directories
 *    must not be world-writable and must belong to us (spool_open()).
 *
 * Errors: functions return -1 with errno set and a reason in err (when
 * given); err is always NUL-terminated.  Nothing here calls exit().
 */
#ifndef MMQ_QUEUE_H
#define MMQ_QUEUE_H

#include "qclaim.h"
#include "qname.h"
#include "qrecover.h"
#include "qwriter.h"
#include "spool.h"

#endif
