/*
 * config - the mmq configuration file (libconfig syntax), see mmq.conf(5).
 *
 * config_load() reads one file, checks every setting against the table of
 * known settings (name, type, range) and fills a struct mmq_config with the
 * values, falling back to compiled-in defaults for settings not given.
 * An unknown setting, a value of the wrong type or out of range, and a
 * syntax error are all errors: the caller gets "file:line: reason" in err
 * and must refuse to run.  A missing or unreadable file is an error too.
 *
 * Memory: every string in struct mmq_config is owned by it (copied out of
 * libconfig) and freed by config_free().  Nothing else allocates.
 */
#ifndef MMQ_CONFIG_H
#define MMQ_CONFIG_H

#include <libconfig.h>
#include <stddef.h>
#include <stdint.h>

#define CONFIG_ERR_MAX 512

/* One node of a cluster (the "nodes" list, see mmq.conf(5) CLUSTER). */
struct mmq_node {
    char *name;
    char *process;      /* slices whose list stage it owns ("" none) */
    char *deliver;      /* slices whose delivery it owns ("" none) */
    char *bounce;       /* slices of bounces/ it owns ("" none) */
    char *standby;      /* slices of other nodes it may take over */
    int takeover_after; /* seconds a lease must look dead before that */
};

struct mmq_config {
    char *path;               /* the file this was read from */
    char *spool;              /* spool directory */
    char *node;               /* this node's name (default: short host name) */
    char *lists_dir;          /* one LIST.conf file per list */
    char *spool_user;         /* the user that owns the spool, or NULL */
    int slices;               /* number of slices the hash space is cut into */
    int64_t max_message_size; /* bytes; larger messages are refused */
    int max_recoveries; /* recoveries of one entry before it goes to bad/ */
    int tmp_max_age;    /* seconds before a foreign temp file is orphaned */
    int filter_timeout; /* seconds mmq-filter may spend on one message */
    int verbose;        /* log debug lines */

    /* delivery (mmq-deliver) */
    char *relay_host; /* where mmq-deliver relays to */
    int relay_port;
    char *helo_name;                 /* EHLO name (default: host name) */
    char *delivery_slices;           /* slices delivered: "all", "0-3,5" */
    int recipients_per_transaction;  /* R */
    int connections;                 /* P: SMTP sessions in parallel */
    int transactions_per_connection; /* entries sent over one session */
    int smtp_timeout;                /* seconds per SMTP wait */
    int session_time_limit;          /* seconds one SMTP session may take */
    int retry_min;                   /* backoff bounds, seconds */
    int retry_max;
    int max_lifetime;  /* seconds before deferred mail is returned */
    int scan_interval; /* seconds between full queue scans */
    char *tls;         /* "off", "opportunistic" or "required" */
    char *tls_ca_file; /* CA bundle; NULL: the system store */
    char *auth_file;   /* "user LF password LF", mode 0600; NULL: none */
    char *postmaster;  /* From: of DSNs; NULL: MAILER-DAEMON@host */

    /* list stage (mmq-process) */
    char *process_slices; /* slices this node's list stage serves */
    char *archive_dir;    /* list archives (mbox); NULL: SPOOL/archive */
    int dmarc_timeout;    /* seconds one DMARC policy lookup may take */
    int duplicate_window; /* seconds a post's mark drops a second copy */

    /* cluster: leases per (stage, slice), see lease.h */
    struct mmq_node *nodes; /* NULL: no cluster, no leases */
    size_t nnodes;
    int lease_time;   /* seconds a holder works on without renewing */
    int lease_margin; /* file system visibility delay and scheduling slack */

    char *log_file;   /* also log here, syslog format; NULL: syslog only */
    char *myhostname; /* fully qualified name, for DSNs; NULL: the system's */
};

/* Default location of the configuration file (compiled in). */
const char *config_default_path(void);

/*
 * Read and check path (NULL: the default).  Returns 0 and fills cfg, or -1
 * with cfg untouched-but-freeable and a message "file:line: reason" (or
 * "file: reason") in err.
 */
int config_load(const char *path, struct mmq_config *cfg, char *err,
                size_t errlen);

/* Defaults only, no file: used by tools before a file exists. */
int config_defaults(struct mmq_config *cfg);

void config_free(struct mmq_config *cfg);

/* The entry of node name in cfg->nodes, or NULL. */
const struct mmq_node *config_node(const struct mmq_config *cfg,
                                   const char *name);
/* The node that owns slice i of stage ("process", "deliver" or "bounce"),
 * or NULL. */
const struct mmq_node *config_slice_owner(const struct mmq_config *cfg,
                                          const char *stage, unsigned i);

/*
 * Parse one libconfig file into lc (initialised here): only a regular file
 * is read, @include is relative to include_dir (NULL: the file's own
 * directory).  0: the caller must config_destroy(lc); -1: lc is already
 * destroyed and err holds "file:line: reason" or "file: reason".
 */
int config_parse_file(config_t *lc, const char *path, const char *include_dir,
                      char *err, size_t errlen);

/*
 * The host's fully qualified name, for DSNs (Reporting-MTA, "the mail
 * system at host ..."): myhostname if set, else the system's name, made
 * fully qualified through the resolver (/etc/hosts, DNS) when it has no
 * dot.  Looked up once per process; the result is static.
 */
const char *config_myhostname(const struct mmq_config *cfg);

/*
 * The integer setting cs of file, checked against min..max: the range
 * rules of every configuration file (mmq.conf and the list files), so
 * that a literal libconfig wrapped to 32 bits (it reads one without the
 * L suffix so) is an error everywhere.  0, or -1 with "file:line: reason".
 */
int config_get_integer(config_setting_t *cs, const char *file, long long min,
                       long long max, long long *out, char *err, size_t errlen);

/* Node names: 1..63 of [A-Za-z0-9._-], not starting with '.' or '-'. */
int config_valid_node(const char *name);

#endif
