/*
 * members - mmqctl's view of member state (shared/member.h): the members
 * and bounces verbs, the bounce counts of "stats" and the bounce findings
 * of "check".
 *
 *   mmqctl members LIST [--json]            every member of the file with
 *                                           its state
 *   mmqctl members LIST enable|disable|remove ADDRESS...
 *   mmqctl bounces [LIST] [--json]          members with bounces recorded
 *
 * Safe while the daemons run: enable and disable add an event (member.h)
 * and sync the index, remove rewrites the members file by rename and drops
 * the state, exactly as mmq-bounce does.  Return values are sysexits codes.
 */
#ifndef MMQ_CTL_MEMBERS_H
#define MMQ_CTL_MEMBERS_H

#include "config.h"
#include "qcheck.h"
#include "queue.h"

int ctl_members(const struct mmq_config *cfg, const char *list, int json,
                const char *action, char **addrs, int naddrs);
int ctl_bounces(const struct mmq_config *cfg, const char *list, int json);

/* The counts mmq-bounce saved (the bounce_* counters of every node's
 * SPOOL/stats/NODE, shared/counters.h), summed: as text lines, or as the
 * JSON member "bounces":{...} (with a leading comma).  A spool that cannot
 * be read is logged and shows zeros. */
void ctl_bounce_stats(struct spool *sp, int json);

/* Unrecognised bounces kept in hold/ for the owners (the bounces/
 * backlog is check_attention's in mmqctl.c). */
void ctl_bounce_check(struct spool *sp, qcheck_report report, void *arg);

#endif
