/*
 * digest - SHA-1 for entry names, through OpenSSL's direct SHA-1 functions.
 *
 * Why not EVP: in OpenSSL 3 the first EVP digest of a process loads the
 * configuration file and the default provider, about a millisecond of
 * start-up that mmq-filter, started once per message, cannot afford (see
 * bench/filter-bench.sh).  The direct functions compute the same SHA-1
 * without that set-up.  They are marked deprecated in OpenSSL 3.0 but
 * remain part of its API; only this module uses them.
 *
 * No allocation, no failure.
 */
#ifndef MMQ_DIGEST_H
#define MMQ_DIGEST_H

#include <stddef.h>

#define DIGEST_HEX_LEN 40

struct digest {
    unsigned char state[128]; /* an OpenSSL SHA_CTX (96 bytes) */
};

void digest_init(struct digest *d);
void digest_update(struct digest *d, const void *data, size_t len);
/* Finish and write 40 lower-case hex digits and a NUL into hex. */
void digest_hex(struct digest *d, char *hex);
/* SHA-1 of one buffer, in hex. */
void digest_hex_of(const void *data, size_t len, char *hex);

#endif
