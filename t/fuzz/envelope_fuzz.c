/*
 * envelope_fuzz - libFuzzer target for envelope_parse() (see run.sh).
 *
 * Besides "no crash, no sanitizer report" it checks the parser's contract:
 * the result is -1, 0 or 1; on anything but 0 the envelope is left empty;
 * on 0 the envelope ends inside the input, and writing it out again with
 * envelope_format() gives text that parses back and formats to the same
 * bytes.  A violation aborts, which libFuzzer reports as a crash with the
 * input saved.
 */
#include "autoconf.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "envelope.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int cond, const char *what)
{
    if (!cond) {
        fprintf(stderr, "envelope_fuzz: contract violated: %s\n", what);
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct envelope env, again;
    struct buf a, b;
    char err[256];
    size_t consumed = 0, consumed2 = 0;
    int rc;

    rc = envelope_parse((const char *)data, size, &env, &consumed, err,
                        sizeof(err));
    check(rc >= -1 && rc <= 1, "result is -1, 0 or 1");
    if (rc != 0) {
        check(env.list == NULL && env.sender == NULL && env.nrcpt == 0 &&
                  env.rcpt == NULL && env.extra.len == 0,
              "a failed parse leaves env empty");
        if (rc < 0)
            check(memchr(err, 0, sizeof(err)) != NULL && err[0] != 0,
                  "-1 comes with a reason");
        return 0;
    }
    check(consumed >= 2 && consumed <= size && data[consumed - 1] == '\n' &&
              data[consumed - 2] == '\n',
          "consumed ends at the empty line");
    buf_init(&a);
    buf_init(&b);
    check(envelope_format(&env, &a, NULL) == 0, "a parsed envelope formats");
    rc = envelope_parse(a.data, a.len, &again, &consumed2, err, sizeof(err));
    check(rc == 0 && consumed2 == a.len, "formatted text parses back");
    check(envelope_format(&again, &b, NULL) == 0, "it formats again");
    check(a.len == b.len && memcmp(a.data, b.data, a.len) == 0,
          "format(parse(format(parse(x)))) == format(parse(x))");
    envelope_free(&again);
    envelope_free(&env);
    buf_free(&a);
    buf_free(&b);
    return 0;
}
