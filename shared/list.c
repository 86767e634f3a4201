/*
 * list - list names, existence and role suffixes.  See list.h.
 */
#include "autoconf.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "list.h"

static const struct {
    const char *suffix;
    enum mmq_role role;
} suffixes[] = {
    {"-bounces", ROLE_BOUNCES},
    {"-owner", ROLE_OWNER},
    {"-request", ROLE_REQUEST},
    {"-join", ROLE_JOIN},
    {"-subscribe", ROLE_JOIN},
    {"-leave", ROLE_LEAVE},
    {"-unsubscribe", ROLE_LEAVE},
    {"-confirm", ROLE_CONFIRM},
};

static int lower(int c)
{
    return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c;
}

int list_name_valid(const char *name)
{
    size_t i, n = strlen(name);

    if (n == 0 || n > LIST_NAME_MAX)
        return 0;
    for (i = 0; i < n; i++) {
        int c = lower((unsigned char)name[i]);
        int alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');

        if (i == 0 && !alnum)
            return 0;
        if (!alnum && c != '.' && c != '-' && c != '_')
            return 0;
        if (c == '.' && name[i + 1] == '.')
            return 0;
    }
    return name[n - 1] != '.';
}

int list_name_normalise(const char *name, char *out)
{
    size_t i;

    if (!list_name_valid(name))
        return -1;
    for (i = 0; name[i]; i++)
        out[i] = (char)lower((unsigned char)name[i]);
    out[i] = 0;
    return 0;
}

int list_exists(const struct mmq_config *cfg, const char *name)
{
    char path[PATH_MAX];
    struct stat st;

    if (!list_name_valid(name))
        return 0;
    if ((size_t)snprintf(path, sizeof(path), "%s/%s.conf", cfg->lists_dir,
                         name) >= sizeof(path)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    if (stat(path, &st) != 0) {
        if (errno != ENOENT && errno != ENOTDIR)
            return -1;
        /* "No such list" only if the lists directory itself is there: a
         * missing directory is a configuration fault, not a bad address,
         * and must not make the MTA bounce every post. */
        if (stat(cfg->lists_dir, &st) != 0)
            return -1;
        if (!S_ISDIR(st.st_mode)) {
            errno = ENOTDIR;
            return -1;
        }
        return 0;
    }
    return S_ISREG(st.st_mode);
}

int list_split_suffix(const char *name, char *stem, enum mmq_role *role)
{
    size_t i, n = strlen(name);

    for (i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
        size_t sn = strlen(suffixes[i].suffix);

        if (n > sn && n - sn <= LIST_NAME_MAX &&
            strcasecmp(name + n - sn, suffixes[i].suffix) == 0) {
            memcpy(stem, name, n - sn);
            stem[n - sn] = 0;
            *role = suffixes[i].role;
            return 1;
        }
    }
    return 0;
}

int list_role_of_recipient(const char *list, const char *rcpt,
                           enum mmq_role *role)
{
    char local[LIST_NAME_MAX + 32], stem[LIST_NAME_MAX + 32];
    const char *at = strrchr(rcpt, '@');
    size_t n = at ? (size_t)(at - rcpt) : strlen(rcpt);
    char *plus;

    if (n >= sizeof(local))
        return -1;
    memcpy(local, rcpt, n);
    local[n] = 0;
    if ((plus = strchr(local, '+')) != NULL) /* "+detail" (VERP) */
        *plus = 0;
    if (strcasecmp(local, list) == 0) {
        *role = ROLE_POST;
        return 0;
    }
    if (list_split_suffix(local, stem, role) && strcasecmp(stem, list) == 0)
        return 0;
    return -1;
}

int list_verp_address(const char *sender, const char *rcpt, char *out,
                      size_t outlen)
{
    const char *sat = strrchr(sender, '@'), *rat = strrchr(rcpt, '@');
    int n;

    if (!sat || !rat)
        return -1;
    n = snprintf(out, outlen, "%.*s+%.*s=%s%s", (int)(sat - sender), sender,
                 (int)(rat - rcpt), rcpt, rat + 1, sat);
    return n < 0 || (size_t)n >= outlen ? -1 : 0;
}
