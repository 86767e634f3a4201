/*
 * mime - a bounded walker over a message's MIME tree, and the header and
 * body helpers the bounce detectors share.
 *
 * mime_walk() splits a message (header, blank line, body; CRLF or LF) into
 * its parts and calls a function for every leaf, in document order:
 * multipart/ bodies are split at their boundary, message/rfc822 and
 * message/global bodies are walked as messages of their own (with
 * part.in_message set), everything else is a leaf.  Nothing is copied:
 * a part points into the caller's message.
 *
 * Bounds, because the input is hostile: at most MIME_MAX_DEPTH levels of
 * nesting (a deeper container is passed on as a leaf) and MIME_MAX_PARTS
 * leaves (the rest are skipped); each level scans its body once, so the
 * work is at most MIME_MAX_DEPTH passes over the input.  A multipart
 * without a boundary parameter, or whose boundary never occurs, is a leaf.
 * NULs are ordinary bytes.  The recursion is bounded by MIME_MAX_DEPTH.
 *
 * mime_decode() returns a part's body without its Content-Transfer-Encoding
 * (base64, quoted-printable; anything else as is), at most max bytes, in
 * memory the caller frees; NULL only when memory runs out.
 */
#ifndef MMQ_BOUNCE_MIME_H
#define MMQ_BOUNCE_MIME_H

#include <stddef.h>

#define MIME_MAX_DEPTH 12
#define MIME_MAX_PARTS 256

struct mime_part {
    const char *hdr; /* header block (without the blank line) */
    size_t hdrlen;
    const char *body;
    size_t bodylen;
    char ctype[64]; /* "type/subtype", lower case; "text/plain" default */
    int depth;      /* 0: the message itself */
    int in_message; /* inside an attached message/rfc822 */
};

/* Return non-zero to stop the walk. */
typedef int (*mime_leaf_fn)(const struct mime_part *part, void *ctx);

void mime_walk(const char *msg, size_t len, mime_leaf_fn fn, void *ctx);

/* Split at the first empty line; no empty line: all header, empty body. */
void mime_split(const char *msg, size_t len, const char **hdr, size_t *hdrlen,
                const char **body, size_t *bodylen);

/*
 * The first field NAME (case-insensitive) of a header block, unfolded,
 * without leading and trailing blanks, NULs and control bytes turned into
 * spaces, cut to outlen - 1 bytes.  Returns 1 when found, 0 when not
 * (out is then "").
 */
int mime_header(const char *hdr, size_t hdrlen, const char *name, char *out,
                size_t outlen);

/* Parameter PARAM of a field value ("type/sub; a=b; c=\"d\""): 1 or 0. */
int mime_param(const char *value, const char *param, char *out, size_t outlen);

char *mime_decode(const struct mime_part *part, size_t max, size_t *outlen);

#endif
