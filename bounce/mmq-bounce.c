/*
 * mmq-bounce - the bounce stage.  This minimal main() serves only the
 * parse mode, "mmq-bounce -p FILE..." (bounce_parse_mode() in pmode.c);
 * the daemon replaces it.
 */
#include "autoconf.h"

#include <stdio.h>
#include <string.h>

#include "bparse.h"

int main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "-p") == 0)
        return bounce_parse_mode(argc - 2, argv + 2);
    fprintf(stderr, "usage: mmq-bounce -p FILE...\n");
    return 64;
}
