/*
 * nitro-sim tests: nitro-sim-launch, a nitro-cli-like launcher program
 *
 *   nitro-sim-launch [--eif FILE] [--mem MIB] [--region MIB] [--cpus N]
 *                    [--debug] [--cid N] [--console] [--hold MS]
 *                    [--start-at EPOCH_MS]
 *
 * Drives /dev/nitro_enclaves exactly as nitro-cli does (launcher.c),
 * waits for the heartbeat, optionally reads the console up to the
 * "running" line, keeps the enclave for --hold ms, then closes the
 * enclave fd.  Without --eif it launches a small built-in EIF.  Prints
 * one JSON line; exit 0 on success, 1 on failure, 77 without huge pages.
 * --start-at makes several launchers start at the same instant.
 *
 * Copyright (c) 2025 Nitro Enclaves for QEMU authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "eif-writer.h"
#include "launcher.h"

static uint8_t *read_eif(const char *path, size_t *len)
{
    return (uint8_t *)nl_read_file(path, len);
}

int main(int argc, char **argv)
{
    NlParams p = { 0 };
    NlEnclave e;
    EifSpec spec;
    uint8_t *eif = NULL;
    bool console = false;
    long hold = 0;
    long long start_at = 0;
    char why[256];
    int i, rc = 0;

    for (i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;

        if (!strcmp(a, "--debug")) {
            p.debug = true;
        } else if (!strcmp(a, "--console")) {
            console = true;
        } else if (v && !strcmp(a, "--eif")) {
            eif = read_eif(v, &p.eif_len);
            if (!eif) {
                fprintf(stderr, "%s: %s\n", v, strerror(errno));
                return 1;
            }
            i++;
        } else if (v && !strcmp(a, "--mem")) {
            p.mem_mib = atoi(v);
            i++;
        } else if (v && !strcmp(a, "--region")) {
            p.region_mib = atoi(v);
            i++;
        } else if (v && !strcmp(a, "--cpus")) {
            p.ncpus = atoi(v);
            i++;
        } else if (v && !strcmp(a, "--cid")) {
            unsigned long long cid = 0;

            sscanf(v, "%llu", &cid);
            p.cid = cid;
            i++;
        } else if (v && !strcmp(a, "--hold")) {
            hold = atol(v);
            i++;
        } else if (v && !strcmp(a, "--start-at")) {
            start_at = atoll(v);
            i++;
        } else {
            fprintf(stderr, "usage: see the header of nitro-sim-launch.c\n");
            return 2;
        }
    }
    if (nl_hugepages((p.mem_mib ? p.mem_mib : 64) / 2, why,
                     sizeof(why)) < 0) {
        printf("{\"launch\": \"skip\", \"why\": \"%s\"}\n", why);
        return 77;
    }
    if (!eif) {
        eif_default(&spec);
        eif = eif_build(&spec, &p.eif_len);
    }
    p.eif = eif;
    if (start_at) {
        struct timespec ts = {
            .tv_sec = start_at / 1000,
            .tv_nsec = (start_at % 1000) * 1000000,
        };

        while (clock_nanosleep(CLOCK_REALTIME, TIMER_ABSTIME, &ts,
                               NULL) == EINTR) {
            continue;
        }
    }
    if (nl_launch(&p, &e) < 0) {
        printf("{\"launch\": \"error\", \"step\": \"%s\", \"errno\": %d, "
               "\"error\": \"%s\"}\n", e.failed_step, e.err,
               strerror(e.err));
        nl_close(&e);
        free(eif);
        return 1;
    }
    if (nl_heartbeat(&e, 30000, why, sizeof(why)) < 0) {
        printf("{\"launch\": \"error\", \"step\": \"heartbeat\", "
               "\"cid\": %llu, \"why\": \"%s\"}\n",
               (unsigned long long)e.cid, why);
        rc = 1;
    } else {
        char *log = NULL;

        if (console && p.debug) {
            int fd = nl_console_connect(e.cid);

            if (fd >= 0) {
                log = nl_read_until(fd, "nitro-sim: running\n", 10000,
                                    NULL);
                close(fd);
            }
            if (!log || !strstr(log, "nitro-sim: running\n")) {
                rc = 1;
            }
        }
        printf("{\"launch\": \"ok\", \"cid\": %llu, \"heartbeat\": \"ok\", "
               "\"console\": %s}\n", (unsigned long long)e.cid,
               !console ? "null" : rc ? "\"error\"" : "\"ok\"");
        free(log);
        if (hold > 0) {
            fflush(stdout);
            usleep(hold * 1000);
        }
    }
    nl_close(&e);
    free(eif);
    return rc;
}
