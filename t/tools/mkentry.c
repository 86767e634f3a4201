/*
 * mkentry - test and benchmark helper: queue one entry with many
 * recipients directly into a queue (as the list stage will), through the
 * same spool library the programs use.
 *
 *     mkentry -c CONF [-q QUEUE] [-l LIST] [-f SENDER] [-n PER_ENTRY] [-V]
 *             [-H FIELD]
 *             RCPTFILE < MESSAGE
 *
 * RCPTFILE holds one address per line; with -n the recipients are split
 * into entries of at most PER_ENTRY each; -V marks the entries "verp 1"
 * (each recipient is sent with its own VERP sender); -H FIELD names a
 * per-member header field (envelope key member-header).  Prints the entry
 * names.
 */
#include "autoconf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include "buf.h"
#include "config.h"
#include "envelope.h"
#include "queue.h"

static int write_entry(struct spool *sp, const char *queue,
                       struct envelope *env, const struct buf *msg)
{
    char err[QUEUE_ERR_MAX], name[QNAME_LEN + 1];
    struct queue_file *qf = queue_file_create(sp, queue, err, sizeof(err));

    env->size = (int64_t)msg->len;
    if (!qf || queue_file_begin(qf, env) ||
        queue_file_write(qf, msg->data, msg->len) ||
        queue_file_commit(qf, name, err, sizeof(err))) {
        fprintf(stderr, "mkentry: %s\n", qf ? err : err);
        return -1;
    }
    printf("%s\n", name);
    return 0;
}

int main(int argc, char **argv)
{
    const char *conf = NULL, *queue = "out", *list = "test", *sender = "";
    char err[QUEUE_ERR_MAX], line[2048];
    struct mmq_config cfg;
    struct spool sp;
    struct envelope env;
    struct buf msg;
    struct timeval tv;
    size_t per = 0;
    FILE *fp;
    int c, verp = 0;
    const char *member_header = NULL;

    while ((c = getopt(argc, argv, "c:q:l:f:n:VH:")) != -1) {
        switch (c) {
        case 'c':
            conf = optarg;
            break;
        case 'q':
            queue = optarg;
            break;
        case 'l':
            list = optarg;
            break;
        case 'f':
            sender = optarg;
            break;
        case 'n':
            per = (size_t)atol(optarg);
            break;
        case 'H':
            member_header = optarg;
            break;
        case 'V':
            verp = 1;
            break;
        default:
            return 2;
        }
    }
    if (optind != argc - 1)
        return 2;
    if (config_load(conf, &cfg, err, sizeof(err)) != 0 ||
        spool_open(&sp, &cfg, err, sizeof(err)) != 0) {
        fprintf(stderr, "mkentry: %s\n", err);
        return 1;
    }
    buf_init(&msg);
    while ((c = getchar()) != EOF)
        if (buf_append(&msg, &(char){(char)c}, 1) != 0)
            return 1;
    if (!(fp = fopen(argv[optind], "r"))) {
        perror(argv[optind]);
        return 1;
    }
    gettimeofday(&tv, NULL);
    envelope_init(&env);
    env.arrival_sec = tv.tv_sec;
    env.arrival_usec = (int32_t)tv.tv_usec;
    envelope_set(&env.list, list);
    envelope_set(&env.sender, sender);
    env.verp = verp;
    if (member_header && envelope_set(&env.member_header, member_header))
        return 1;
    while (fgets(line, sizeof(line), fp)) {
        line[strcspn(line, "\r\n")] = 0;
        if (!line[0])
            continue;
        envelope_add_rcpt(&env, line, NULL);
        if (per && env.nrcpt == per) {
            if (write_entry(&sp, queue, &env, &msg) != 0)
                return 1;
            while (env.nrcpt)
                envelope_remove_rcpt(&env, env.nrcpt - 1);
        }
    }
    fclose(fp);
    c = env.nrcpt && write_entry(&sp, queue, &env, &msg) != 0;
    envelope_free(&env);
    buf_free(&msg);
    spool_close(&sp);
    config_free(&cfg);
    return c;
}
