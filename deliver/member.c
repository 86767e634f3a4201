/*
 * member - per-member header fields.  See member.h.
 */
#include "autoconf.h"

#include <string.h>

#include "member.h"

int member_field_ok(const char *name)
{
    size_t i, n = strlen(name);

    if (n == 0 || n > MEMBER_FIELD_MAX)
        return 0;
    for (i = 0; i < n; i++) /* ftext: printable US-ASCII except ':' */
        if ((unsigned char)name[i] < 33 || (unsigned char)name[i] > 126 ||
            name[i] == ':')
            return 0;
    return 1;
}

/* A value that cannot break the header: printable ASCII, <= 900 bytes. */
static int value_ok(const char *v)
{
    size_t i, n = strlen(v);

    if (n == 0 || n > 900)
        return 0;
    for (i = 0; i < n; i++)
        if ((unsigned char)v[i] < 32 || (unsigned char)v[i] > 126)
            return 0;
    return 1;
}

int member_headers(const struct envelope *env, const char *member,
                   struct buf *out)
{
    if (!env->member_header || !member_field_ok(env->member_header) ||
        !value_ok(member))
        return 0;
    return buf_printf(out, "%s: %s\r\n", env->member_header, member);
}
