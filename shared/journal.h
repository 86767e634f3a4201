/*
 * journal - append-only record of the recipients of a spool entry that are
 * settled (delivered, or failed and already in a DSN), so that progress
 * through a large entry costs one small write(2) per transaction instead
 * of a rewrite of the whole entry (recipients and message, with fsync).
 *
 * A journal is journal/BB/NAME in the spool (BB: the entry's bucket, NAME:
 * the entry name without any claim or origin suffix), so it follows its
 * entry through claims and moves between queues without being renamed.
 * It is a sequence of lines
 *
 *     INDEX SP ADDRESS LF
 *
 * INDEX is the recipient's position (from 0, decimal) in the entry as it
 * is on disk and ADDRESS the same recipient, percent-encoded as in the
 * envelope (envelope.h).  A record counts only if the entry's recipient
 * INDEX is exactly ADDRESS, so a journal left over from an older version
 * of the entry cannot drop a recipient it does not name.  A last line
 * without LF (a write cut by a crash) is ignored; so is a malformed line.
 *
 * The contract with the spool (qclaim.c): queue_claim_read() applies the
 * journal (journal_apply()); queue_rewrite() writes an envelope read that
 * way and then removes the journal (the journal is folded into the entry);
 * the removal of an entry removes its journal.  Only the claimer of an
 * entry appends to its journal.
 *
 * Durability: journal_append() is one write(2), so a record survives the
 * death of its writer (kill -9) at once; journal_sync() (fdatasync) makes
 * it survive a power loss, and callers sync once per batch of
 * transactions, not once per record (mmq-deliver(8) states the bound).
 *
 * Errors: -1 with errno set and a reason in err (when given).
 */
#ifndef MMQ_JOURNAL_H
#define MMQ_JOURNAL_H

#include <stddef.h>

#include "envelope.h"
#include "queue.h"

#define JOURNAL_DIR "journal"
#define JOURNAL_MAX_BYTES (64u << 20)

struct journal {
    int fd;            /* -1: not open */
    unsigned unsynced; /* records written since the last journal_sync() */
};

void journal_init(struct journal *j);

/*
 * Drop from env the recipients the journal of entry name records as
 * settled.  *found is 1 when a journal file exists (even with no record
 * that applies), *settled the number of recipients dropped.  No journal:
 * 0 with *found = 0.
 */
int journal_apply(struct spool *sp, const char *name, struct envelope *env,
                  int *found, size_t *settled, char *err, size_t errlen);

/* Open (creating it and its directories if needed) the journal of name
 * for appending.  A new journal's directory is fsync()ed once. */
int journal_open(struct spool *sp, const char *name, struct journal *j,
                 char *err, size_t errlen);
/* Record recipient idx (addr) as settled: one write(2). */
int journal_append(struct journal *j, size_t idx, const char *addr);
/* fdatasync() if anything was written since the last sync. */
int journal_sync(struct journal *j);
void journal_close(struct journal *j);

/* Remove the journal of name, if there is one (0 also when there is none). */
int journal_remove(struct spool *sp, const char *name);

/*
 * Remove journals older than max_age seconds whose entry is in no queue
 * (left by a crash between the removal of an entry and of its journal).
 * *removed is raised by the number removed.
 */
int journal_clean(struct spool *sp, int max_age, unsigned *removed, char *err,
                  size_t errlen);

#endif
