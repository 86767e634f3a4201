/*
 * qcheck - a consistency check of the spool, for "mmqctl check".
 *
 * It only reads (and, for the slice locks, probes): it never changes a
 * file.  Each finding is handed to a callback as one line of text, with a
 * severity: QC_PROBLEM (needs the postmaster) or QC_NOTE (worth knowing,
 * nothing to do: e.g. an entry claimed by another node, whose processes
 * only that node can judge).
 *
 * What is checked:
 *  - the directories: present, not symlinks, mode 2770, owned by us or
 *    spool_user, in the spool directory's group;
 *  - the files of the queues: names (mmq-spool(5) ENTRY NAMES), in the
 *    right bucket, regular, not world-writable, owned by us or
 *    spool_user; origins of hold/ and bad/ entries; envelopes readable;
 *  - claims: of this node, whether the process still runs (dead: run
 *    "mmqctl recover"); of other nodes, a note;
 *  - tmp/: files of dead writers of this node, or older than tmp_max_age;
 *  - mmq.conf, lists_dir and its .conf and .members files: not regular
 *    or world-writable (the programs refuse them), group-writable (note);
 *  - with QC_SLICES, the slice locks: every slice of process_slices and
 *    delivery_slices must be locked on this node (a runner serves it), and
 *    every other slice must have a lock file of some other node.  The
 *    probe is flock(LOCK_SH | LOCK_NB), released at once: a runner that
 *    starts in that instant may find the slice busy and exit 75 (its
 *    supervisor starts it again).
 */
#ifndef MMQ_QCHECK_H
#define MMQ_QCHECK_H

#include <stddef.h>

#include "queue.h"

enum qcheck_severity { QC_NOTE, QC_PROBLEM };

#define QC_SLICES 1 /* also check that every slice has a runner */

typedef void (*qcheck_report)(void *arg, enum qcheck_severity sev,
                              const char *text);

/* Run the checks; -1 (with err) only when the check itself cannot run. */
int qcheck_spool(struct spool *sp, int flags, qcheck_report report, void *arg,
                 char *err, size_t errlen);

/* 1: a runner of this node holds the lock of slice i of stage ("process"
 * or "deliver"); 0: none (the probe described above). */
int qcheck_slice_running(struct spool *sp, const char *stage, unsigned i);

#endif
