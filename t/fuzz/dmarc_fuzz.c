/*
 * dmarc_fuzz - libFuzzer target for the DMARC parsers and the From:
 * munging (process/dmarcrec.h, process/munge.h); see run.sh
 * (TARGET=dmarc).
 *
 * One input is used four ways: as a DNS answer to "_dmarc.example.com"
 * (dmarc_answer_parse), as the text of a TXT record (dmarc_record_parse),
 * as a From: value (munge_from_value) and as a message to munge and
 * wrap.  Besides "no crash, no sanitizer report" it checks the contracts:
 * results inside their enums and ranges, a record that is not DMARC
 * leaves r zeroed, a new From: value is one line of printable ASCII
 * ending in the list's address, the MIME boundary of a wrapped message
 * occurs nowhere in the post.  A violation aborts.
 */
#include "autoconf.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dmarcrec.h"
#include "header.h"
#include "munge.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int cond, const char *what)
{
    if (!cond) {
        fprintf(stderr, "dmarc_fuzz: contract violated: %s\n", what);
        abort();
    }
}

static void check_record(const struct dmarc_record *r)
{
    check(r->p >= DMARC_P_UNSET && r->p <= DMARC_P_REJECT, "p in range");
    check(r->sp >= DMARC_P_UNSET && r->sp <= DMARC_P_REJECT, "sp in range");
}

static void fuzz_from(const char *v, const struct listdef *ld)
{
    struct buf out;
    const char *tail = " <announce@lists.example.org>";
    size_t i, tl = strlen(tail);

    buf_init(&out);
    if (munge_from_value(v, ld, &out) == 0) {
        check(out.len > tl && memcmp(out.data + out.len - tl, tail, tl) == 0,
              "the new From: ends with the list's address");
        for (i = 0; i < out.len; i++)
            check((unsigned char)out.data[i] >= 0x20 &&
                      (unsigned char)out.data[i] < 0x7f,
                  "the new From: is printable ASCII on one line");
    }
    buf_free(&out);
}

static void fuzz_message(const char *msg, size_t len, struct listdef *ld)
{
    struct headers h;
    struct buf out, wrapped;

    buf_init(&out);
    buf_init(&wrapped);
    if (headers_parse(msg, len, &h) != 0)
        return;
    if (munge_from(&h, ld) == 0 && headers_write(&h, &out) == 0 &&
        munge_wrap(&out, msg, len, ld, "fuzz", &wrapped) == 0) {
        /* the boundary munge_wrap() must have chosen: the first
         * "=_mmq_fuzz_K" that the post does not contain */
        char b[64], want[80];
        unsigned k = 0;
        do
            snprintf(b, sizeof(b), "=_mmq_fuzz_%u", k++);
        while (memmem(msg, len, b, strlen(b)));
        snprintf(want, sizeof(want), "boundary=\"%s\"", b);
        check(memmem(wrapped.data, wrapped.len, want, strlen(want)) != NULL,
              "the wrapper's boundary is one the post does not contain");
    }
    headers_free(&h);
    buf_free(&out);
    buf_free(&wrapped);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct dmarc_answer a;
    struct dmarc_record r;
    struct listdef ld;
    char dom[] = "lists.example.org";
    char *s;
    int rc;

    check(dmarc_answer_parse(data, size, "_dmarc.example.com", &a) == 0,
          "answer parse returns 0");
    check(a.kind == DMARC_ANS_RECORD || a.kind == DMARC_ANS_NONE ||
              a.kind == DMARC_ANS_FAIL,
          "answer kind in range");
    check(a.ttl >= -1 && a.ttl <= 0xffffffffLL, "ttl in range");
    if (a.kind == DMARC_ANS_RECORD) {
        check(a.nrecords >= 1, "a record counted");
        check_record(&a.rec);
    }
    rc = dmarc_record_parse((const char *)data, size, &r);
    check(rc == 0 || rc == 1, "record parse returns 0 or 1");
    check_record(&r);
    check(r.pct >= 0 && r.pct <= 100, "pct in range");
    if (rc == 0)
        check(r.p == 0 && r.sp == 0 && r.pct == 0, "not DMARC: r zeroed");

    memset(&ld, 0, sizeof(ld));
    snprintf(ld.name, sizeof(ld.name), "announce");
    ld.domain = dom;
    ld.reply_to = size % 2 ? REPLYTO_LIST : REPLYTO_NONE;
    if (!(s = malloc(size + 1)))
        return 0;
    memcpy(s, data, size);
    s[size] = 0;
    {
        char *p; /* a header value has no line breaks */
        for (p = s; *p; p++)
            if (*p == '\r' || *p == '\n')
                *p = ' ';
    }
    fuzz_from(s, &ld);
    free(s);
    fuzz_message((const char *)data, size, &ld);
    return 0;
}
