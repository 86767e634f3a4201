/*
 * subs - mmqctl's side of subscriptions (process/command.c does them by
 * mail): the admin's add, the pending requests, owner approval.
 *
 *   mmqctl members LIST add ADDRESS...        no confirmation: the admin's
 *                                             word (members_file_add())
 *   mmqctl members LIST --pending [--json]    requests awaiting the
 *                                             subscriber's confirmation or
 *                                             an owner's approval
 *   mmqctl members LIST approve|reject ADDRESS...
 *
 * approve and reject act on the same pending request (token.h) an owner's
 * reply to the approval mail uses, through token_use(): whichever comes
 * first wins, the other is told it was used already.  Return values are
 * sysexits codes.
 */
#ifndef MMQ_CTL_SUBS_H
#define MMQ_CTL_SUBS_H

#include "config.h"

int ctl_members_add(const struct mmq_config *cfg, const char *list,
                    char **addrs, int naddrs);
int ctl_members_pending(const struct mmq_config *cfg, const char *list,
                        int json);
int ctl_members_approve(const struct mmq_config *cfg, const char *list,
                        int approve, char **addrs, int naddrs);

#endif
