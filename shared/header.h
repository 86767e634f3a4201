/*
 * header - read and edit the header section of a message, byte for byte.
 *
 * headers_parse() indexes the header fields of msg without copying it:
 * each field is the byte range of its first line and all its continuation
 * lines, line ends included, exactly as received (folded, overlong, 8-bit
 * and malformed lines alike).  A line that is neither a field ("Name:")
 * nor a continuation is kept as a field with an empty name, so that
 * writing the fields back reproduces the input.  The section ends at the
 * first empty line; a message without one is all header.
 *
 * headers_write() produces the edited message: fields marked dropped are
 * left out, replaced ones are written with their new value, added ones go
 * at the end of the section, with the message's own line end (CRLF or LF),
 * and the body is copied unchanged.
 *
 * Memory: struct headers points into msg, which must outlive it, and owns
 * its arrays and replacement strings; headers_free() releases them.
 */
#ifndef MMQ_HEADER_H
#define MMQ_HEADER_H

#include <stddef.h>

#include "buf.h"

struct hfield {
    size_t start, end; /* [start, end) in msg, line ends included */
    size_t name_len;   /* 0: not a field (malformed line) */
    int dropped;
    char *replacement; /* new value (after "Name: "), or NULL */
    char *raw;         /* or the whole new field, line ends included */
    size_t raw_len;
};

struct headers {
    const char *msg;
    size_t len;
    struct hfield *f;
    size_t n, cap;
    size_t body_off;  /* first byte after the empty line (len if none) */
    size_t sep_off;   /* the empty line itself (len if none) */
    const char *eol;  /* "\r\n" or "\n": the message's own line end */
    struct buf added; /* fields to add, already formatted */
};

int headers_parse(const char *msg, size_t len, struct headers *h);
void headers_free(struct headers *h);

/* Index of the first field named name at or after from, or -1. */
long headers_find(const struct headers *h, const char *name, size_t from);
/* The unfolded value of field i (leading/trailing blanks removed), as a
 * new string the caller frees; NULL on out of memory. */
char *headers_value(const struct headers *h, size_t i);

void headers_drop(struct headers *h, size_t i);
/* Drop every field with this name. */
void headers_drop_all(struct headers *h, const char *name);
int headers_replace(struct headers *h, size_t i, const char *value);
/*
 * Put text (one line) in front of field i's value, keeping the field's
 * own bytes and folding as they are (NUL and 8-bit bytes included):
 * "Name: TEXT old value...", or "Name: TEXT" with the old value folded
 * under it when the first line would pass 78 characters.  So a field
 * folded over many lines stays folded, and no line grows past RFC 5322's
 * limits because of us.
 */
int headers_prefix(struct headers *h, size_t i, const char *text);
/* Add "name: value" at the end of the header section. */
int headers_add(struct headers *h, const char *name, const char *value);

/* The edited message onto out. */
int headers_write(const struct headers *h, struct buf *out);

/*
 * The subject text with RFC 2047 encoded-words decoded to their bytes
 * (any charset, no conversion): enough to look for an ASCII prefix.
 * Caller frees; NULL on out of memory.
 */
char *header_decode_2047(const char *value);

/* The address in a From:-like value ("Name <a@b>" or "a@b"), lower-cased
 * domain, into out; -1 if none is found. */
int header_address(const char *value, char *out, size_t outlen);

#endif
