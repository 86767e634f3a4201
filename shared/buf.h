/*
 * buf - a growable byte buffer.
 *
 * Contract: buf_init() makes an empty buffer that owns nothing; the append
 * functions grow it and return -1 only when memory runs out (the buffer is
 * then unchanged); buf_free() releases it.  data is always NUL-terminated
 * one byte past len, so text can be used as a C string, but len counts the
 * bytes, which may include NULs.
 */
#ifndef MMQ_BUF_H
#define MMQ_BUF_H

#include <stddef.h>

struct buf {
    char *data;
    size_t len;
    size_t cap;
};

void buf_init(struct buf *b);
void buf_free(struct buf *b);
void buf_reset(struct buf *b);
int buf_reserve(struct buf *b, size_t extra);
int buf_append(struct buf *b, const void *p, size_t n);
int buf_puts(struct buf *b, const char *s);
int buf_printf(struct buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif
