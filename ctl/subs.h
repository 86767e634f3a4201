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
 *   mmqctl members LIST add|remove ADDRESS... --notify
 *                                             the same, and each address
 *                                             whose membership changes
 *                                             gets the list's welcome or
 *                                             goodbye message (listmail.h)
 *
 * approve and reject act on the same pending request (token.h) an owner's
 * reply to the approval mail uses, through token_use(): whichever comes
 * first wins, the other is told it was used already.  Return values are
 * sysexits codes.
 */
#ifndef MMQ_CTL_SUBS_H
#define MMQ_CTL_SUBS_H

#include "config.h"
#include "queue.h"

int ctl_members_add(const struct mmq_config *cfg, const char *list,
                    char **addrs, int naddrs);
int ctl_members_pending(const struct mmq_config *cfg, const char *list,
                        int json);
/* approve also queues the welcome message (the subscription by mail
 * completes), as an owner's reply does. */
int ctl_members_approve(struct spool *sp, const struct mmq_config *cfg,
                        const char *list, int approve, char **addrs,
                        int naddrs);

/*
 * --notify: queue the welcome (welcome != 0) or goodbye message to each
 * address that is not (is) a member now, before the add or removal is
 * done (a crash between leaves the message and an edit to do again: the
 * admin's rerun finds the edit undone and queues it once more).  Nothing
 * is queued when the list's send_welcome_message / send_goodbye_message
 * is false.  EX_OK, or a sysexits code (nothing more is done).
 */
int ctl_members_notify(struct spool *sp, const struct mmq_config *cfg,
                       const char *list, int welcome, char **addrs,
                       int naddrs);

#endif
