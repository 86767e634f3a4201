/*
 * qwriter - writing entries (contract): an entry is written into tmp/ and
 * appears under its final name only complete, fsynced and renamed, with
 * its bucket fsynced; or it is staged for two-phase publication.
 * Implemented in qwriter.c.
 */
#ifndef MMQ_QWRITER_H
#define MMQ_QWRITER_H

#include "qname.h"

struct queue_file;

/* Start a new entry for queue: a fresh file in tmp/.  NULL on error. */
struct queue_file *queue_file_create(struct spool *sp, const char *queue,
                                     char *err, size_t errlen);
/* Write the envelope (its size field is filled in at commit). */
int queue_file_begin(struct queue_file *qf, const struct envelope *env);
/* Append message bytes. */
int queue_file_write(struct queue_file *qf, const void *data, size_t len);
/* Bytes of message written so far. */
int64_t queue_file_size(const struct queue_file *qf);
/*
 * Make the entry durable and visible: patch the size, fsync the file,
 * rename it into QUEUE/BB/NAME, fsync the bucket.  name_out receives NAME
 * (QNAME_LEN + 1 bytes).  The writer is freed either way; on failure the
 * temporary file is removed and the reason is in err.
 */
int queue_file_commit(struct queue_file *qf, char *name_out, char *err,
                      size_t errlen);
/* As queue_file_commit() but with a name chosen by the caller (a valid
 * entry name): used where a rerun must find what an earlier run made. */
int queue_file_commit_as(struct queue_file *qf, const char *name, char *err,
                         size_t errlen);
/*
 * Two-phase publication, for a writer of many entries that must appear
 * all or none (the list stage).  queue_file_stage() makes the entry
 * complete and durable as stage/STAGED, invisible to every runner (call
 * spool_sync_dir(sp, "stage") once after the last one); STAGED is
 * "OWNER.N": the name of the entry that produces them and an index.
 * queue_publish_staged() then renames stage/STAGED into QUEUE/BB/NAME
 * (returns 1 if it is no longer staged: published before a crash).  The
 * caller fsyncs the buckets it published into with spool_sync_dir().
 * spool_unstage() removes every stage/OWNER.* left over (a rerun that
 * staged fewer entries, or a post held after a crash).
 */
int queue_file_stage(struct queue_file *qf, const char *staged, char *err,
                     size_t errlen);
int queue_publish_staged(struct spool *sp, const char *staged,
                         const char *queue, const char *name, char *err,
                         size_t errlen);
int spool_unstage(struct spool *sp, const char *owner, char *err,
                  size_t errlen);
int spool_sync_dir(struct spool *sp, const char *rel, char *err, size_t errlen);
/* Remove the temporary file and free the writer. */
void queue_file_abort(struct queue_file *qf);
/* Async-signal-safe: only unlink the temporary file. */
void queue_file_unlink_signal_safe(const struct queue_file *qf);
const char *queue_file_error(const struct queue_file *qf);

#endif
