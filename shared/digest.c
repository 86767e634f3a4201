/*
 * digest - SHA-1 through OpenSSL's direct interface.  See digest.h for why.
 */
#define OPENSSL_SUPPRESS_DEPRECATED 1
#include "autoconf.h"

#include <stdio.h>
#include <string.h>

#include <openssl/sha.h>

#include "digest.h"

typedef char
    state_fits[sizeof(SHA_CTX) <= sizeof(((struct digest *)0)->state) ? 1 : -1];

void digest_init(struct digest *d)
{
    SHA1_Init((SHA_CTX *)(void *)d->state);
}

void digest_update(struct digest *d, const void *data, size_t len)
{
    SHA1_Update((SHA_CTX *)(void *)d->state, data, len);
}

void digest_hex(struct digest *d, char *hex)
{
    static const char digits[] = "0123456789abcdef";
    unsigned char md[SHA_DIGEST_LENGTH];
    int i;

    SHA1_Final(md, (SHA_CTX *)(void *)d->state);
    for (i = 0; i < SHA_DIGEST_LENGTH; i++) {
        hex[2 * i] = digits[md[i] >> 4];
        hex[2 * i + 1] = digits[md[i] & 15];
    }
    hex[DIGEST_HEX_LEN] = 0;
}

void digest_hex_of(const void *data, size_t len, char *hex)
{
    struct digest d;

    digest_init(&d);
    digest_update(&d, data, len);
    digest_hex(&d, hex);
}
