/*
 * retry - exponential backoff with jitter.  See retry.h.
 */
#include "autoconf.h"

#include <stdlib.h>
#include <sys/random.h>

#include "retry.h"

static uint32_t random32(void)
{
    uint32_t r;

    if (getrandom(&r, sizeof(r), GRND_NONBLOCK) != (ssize_t)sizeof(r))
        r = (uint32_t)random();
    return r;
}

int64_t retry_delay(int attempts, int retry_min, int retry_max)
{
    int64_t d = retry_min, half;

    if (attempts < 1)
        attempts = 1;
    while (--attempts > 0 && d < retry_max)
        d *= 2;
    if (d > retry_max)
        d = retry_max;
    half = d / 2;
    d = half + (half > 0 ? (int64_t)(random32() % (uint64_t)(half + 1)) : 0);
    if (d < retry_min)
        d = retry_min;
    if (d > retry_max)
        d = retry_max;
    return d;
}

int retry_expired(int64_t arrival, int lifetime, int64_t now)
{
    return now - arrival >= lifetime;
}
