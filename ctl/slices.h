/*
 * slices.h - `mmqctl slices` (slices.c): print the slice map of the
 * cluster, one line (or JSON object) per stage and slice.  Returns a
 * sysexits status; reads the spool only.
 */
#ifndef MMQ_CTL_SLICES_H
#define MMQ_CTL_SLICES_H

#include "queue.h"

int ctl_slices(struct spool *sp, int json);

#endif
