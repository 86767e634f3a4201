/*
 * retry - when to try a deferred delivery again, and when to give up.
 *
 * The delay before attempt a+1 grows exponentially from retry_min and is
 * capped at retry_max (like Postfix's minimal/maximal_backoff_time), then
 * "full jitter" picks a random point in its upper half, so that a burst of
 * mail deferred together does not come back together.  The result is never
 * below retry_min nor above retry_max.  No allocation, no failure.
 */
#ifndef MMQ_RETRY_H
#define MMQ_RETRY_H

#include <stdint.h>

/* Seconds to wait after the given number of failed attempts (>= 1). */
int64_t retry_delay(int attempts, int retry_min, int retry_max);
/* 1 when mail that arrived at arrival has outlived lifetime at now. */
int retry_expired(int64_t arrival, int lifetime, int64_t now);

#endif
