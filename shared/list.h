/*
 * list - mailing list names and addresses.
 *
 * A list exists when its definition file LISTS_DIR/NAME.conf exists (the
 * list stage reads its contents; mmq-filter only needs to know it is
 * there).  Names are checked strictly before they touch the filesystem.
 *
 * No allocation; results go into caller buffers of LIST_NAME_MAX + 1.
 */
#ifndef MMQ_LIST_H
#define MMQ_LIST_H

#include "config.h"
#include "envelope.h"

#define LIST_NAME_MAX 64

/*
 * 1 if name is a valid list name: 1..64 of a-z 0-9 . - _ (upper case is
 * accepted and folded by list_name_normalise), starting with a letter or
 * digit, no "..", and no control, '/', '@' or space.  0 otherwise.
 */
int list_name_valid(const char *name);
/* Copy name folded to lower case; -1 if it is not valid. */
int list_name_normalise(const char *name, char *out);

/* 1: the list exists; 0: it does not; -1: cannot tell (errno set). */
int list_exists(const struct mmq_config *cfg, const char *name);

/*
 * The role a recipient address gives for list: "LIST-bounces@..." (also
 * with a "+detail" extension, as with VERP) is bounces, "-owner" owner,
 * "-request" request, "-join" and "-subscribe" join, "-leave" and
 * "-unsubscribe" leave, "-confirm" (with "+TOKEN") confirm, the list
 * address itself post.  -1 if the address
 * is not one of this list's.
 */
int list_role_of_recipient(const char *list, const char *rcpt,
                           enum mmq_role *role);

/*
 * If name ends in one of the role suffixes above, cut it off into
 * stem and set *role; returns 1.  0 if there is no such suffix.
 */
int list_split_suffix(const char *name, char *stem, enum mmq_role *role);

/*
 * VERP: the bounce address for one recipient.  sender "L-bounces@D" and
 * rcpt "bob@example.org" give "L-bounces+bob=example.org@D".  -1 if it
 * does not fit in outlen or an address has no '@'.
 */
int list_verp_address(const char *sender, const char *rcpt, char *out,
                      size_t outlen);

#endif
