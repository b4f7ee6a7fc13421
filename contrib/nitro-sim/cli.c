/*
 * nitro-sim: the command line tool of the simulator
 *
 *   nitro-sim list            JSON list of the simulated enclaves
 *   nitro-sim stop CID        stop one (console EOF, POLLHUP on its fd)
 *   nitro-sim console CID     print its debug console until it stops
 *   nitro-sim pcr EIF         check an EIF file, print its PCRs as JSON
 *
 * Results are JSON on stdout; errors are a line on stderr, exit status 1.
 *
 * It works on $NITRO_SIM_DIR like the LD_PRELOAD library (it does not
 * need the library itself), but creates nothing there: no directory, no
 * lock file, no log (run by another user, root under libvirt, it would
 * leave files the launchers cannot open).  It only removes what the
 * launchers that died left, as every reader of the registry does.
 *
 * Copyright (c) 2025 Nitro Enclaves for QEMU authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "nitro-sim.h"

/* asked for (--help): stdout, success; a wrong command line: stderr, 2 */
static int usage(bool asked)
{
    fprintf(asked ? stdout : stderr,
            "usage: nitro-sim list\n"
            "       nitro-sim stop CID\n"
            "       nitro-sim console CID\n"
            "       nitro-sim pcr EIF-FILE\n"
            "       nitro-sim --help\n"
            "The simulation directory is $NITRO_SIM_DIR "
            "(default /tmp/nitro-sim-$UID).\n");
    return asked ? 0 : 2;
}

static int cmd_list(const SimConfig *cfg)
{
    SimRegistry r;
    int i;

    if (!sim_reg_open(&r, cfg)) {
        fprintf(stderr, "nitro-sim: %s\n", r.err);
        return 1;
    }
    printf("[");
    for (i = 0; i < r.n; i++) {
        SimRegEntry *e = &r.e[i];

        printf("%s\n  {\"cid\": %u, \"pid\": %d, \"slot_uid\": %llu, "
               "\"state\": \"%s\", \"memory_mib\": %llu, \"vcpus\": [%s], "
               "\"debug\": %s}", i ? "," : "", e->cid, (int)e->pid,
               (unsigned long long)e->slot, e->state,
               (unsigned long long)(e->mem / SIM_MIB), e->vcpus,
               e->debug ? "true" : "false");
    }
    printf("%s]\n", r.n ? "\n" : "");
    sim_reg_close(&r, false);
    return 0;
}

/* the running enclave with @cid: 1 found (*debug set), 0 none, -1 error */
static int find_running(const SimConfig *cfg, uint32_t cid, bool *debug)
{
    SimRegistry r;
    int i, found = 0;

    if (!sim_reg_open(&r, cfg)) {
        fprintf(stderr, "nitro-sim: %s\n", r.err);
        return -1;
    }
    for (i = 0; i < r.n; i++) {
        if (!strcmp(r.e[i].state, "running") && r.e[i].cid == cid) {
            *debug = r.e[i].debug;
            found = 1;
        }
    }
    sim_reg_close(&r, false);
    if (!found) {
        fprintf(stderr, "nitro-sim: no running enclave with CID %u in %s\n",
                cid, cfg->dir);
    }
    return found;
}

static int cmd_stop(const SimConfig *cfg, uint32_t cid)
{
    struct sockaddr_storage ss;
    socklen_t sl = sim_ctl_name(cfg, cid, (struct sockaddr *)&ss);
    struct pollfd pfd;
    char buf[64] = "";
    ssize_t n;
    bool debug;
    int fd;

    if (find_running(cfg, cid, &debug) <= 0) {
        return 1;
    }
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&ss, sl) < 0 ||
        write(fd, "stop\n", 5) != 5) {
        fprintf(stderr, "nitro-sim: cannot reach enclave %u: %s\n", cid,
                strerror(errno));
        return 1;
    }
    pfd.fd = fd;
    pfd.events = POLLIN;
    if (poll(&pfd, 1, 10000) == 1) {
        n = read(fd, buf, sizeof(buf) - 1);
        buf[n > 0 ? n : 0] = 0;
    }
    close(fd);
    if (strncmp(buf, "stopped", 7)) {
        fprintf(stderr, "nitro-sim: enclave %u did not confirm the stop\n",
                cid);
        return 1;
    }
    printf("{\"cid\": %u, \"state\": \"stopped\"}\n", cid);
    return 0;
}

static int cmd_console(const SimConfig *cfg, uint32_t cid)
{
    struct sockaddr_storage ss;
    socklen_t sl = sim_vsock_name(cfg, SIM_HYPERVISOR_CID,
                                  cid + SIM_CONSOLE_PORT_BASE,
                                  (struct sockaddr *)&ss);
    char buf[4096];
    ssize_t n;
    bool debug;
    int fd;

    if (find_running(cfg, cid, &debug) <= 0) {
        return 1;
    }
    if (!debug) {
        fprintf(stderr, "nitro-sim: enclave %u has no console: it was not "
                "started in debug mode\n", cid);
        return 1;
    }
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&ss, sl) < 0) {
        fprintf(stderr, "nitro-sim: no console for CID %u: %s\n", cid,
                strerror(errno));
        return 1;
    }
    while ((n = read(fd, buf, sizeof(buf))) > 0) {
        if (fwrite(buf, 1, n, stdout) != (size_t)n) {
            return 1;
        }
        fflush(stdout);
    }
    close(fd);
    return 0;
}

/*
 * Like the other commands: JSON on stdout on success, a message on stderr
 * and exit status 1 otherwise (an invalid image, or an input that is not
 * a regular file, which is refused without being read)
 */
static int cmd_pcr(const char *path)
{
    struct stat st;
    SimSeg seg;
    SimEif r;
    void *p;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);

    if (fd < 0 || fstat(fd, &st) < 0) {
        fprintf(stderr, "nitro-sim: %s: %s\n", path, strerror(errno));
        if (fd >= 0) {
            close(fd);
        }
        return 1;
    }
    if (!S_ISREG(st.st_mode)) {
        fprintf(stderr, "nitro-sim: %s: not a regular file\n", path);
        close(fd);
        return 1;
    }
    p = st.st_size ? mmap(NULL, st.st_size, PROT_READ, MAP_PRIVATE, fd, 0) :
        MAP_FAILED;
    close(fd);
    seg.p = p == MAP_FAILED ? (const uint8_t *)"" : p;
    seg.len = p == MAP_FAILED ? 0 : st.st_size;
    sim_eif_check(&seg, 1, 0, -1, &r);
    if (!r.ok) {
        fprintf(stderr, "nitro-sim: %s: %s\n", path, r.message);
        sim_eif_free(&r);
        return 1;
    }
    printf("{\"verdict\": \"ok\", \"arch\": \"%s\", \"crc_ok\": %s, "
           "\"size\": %llu, \"pcr0\": \"%s\", \"pcr1\": \"%s\", "
           "\"pcr2\": \"%s\"}\n", sim_arch_name(r.arch),
           r.crc_ok ? "true" : "false", (unsigned long long)r.size,
           r.pcr_hex[0], r.pcr_hex[1], r.pcr_hex[2]);
    sim_eif_free(&r);
    return 0;
}

static bool parse_cid(const char *s, uint32_t *cid)
{
    const char *end;
    uint64_t v;

    if (!sim_parse_u64(s, &end, &v) || *end || v >= UINT32_MAX) {
        return false;
    }
    *cid = v;
    return true;
}

int main(int argc, char **argv)
{
    SimConfig cfg;
    char err[256];
    uint32_t cid;

    if (argc == 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") ||
                      !strcmp(argv[1], "help"))) {
        return usage(true);
    }
    if (argc < 2) {
        return usage(false);
    }
    if (!strcmp(argv[1], "pcr") && argc == 3) {
        return cmd_pcr(argv[2]);
    }
    if (!sim_config_load(&cfg, false, err, sizeof(err))) {
        fprintf(stderr, "nitro-sim: %s\n", err);
        return 1;
    }
    if (!strcmp(argv[1], "list") && argc == 2) {
        return cmd_list(&cfg);
    }
    if (argc == 3 && parse_cid(argv[2], &cid)) {
        if (!strcmp(argv[1], "stop")) {
            return cmd_stop(&cfg, cid);
        }
        if (!strcmp(argv[1], "console")) {
            return cmd_console(&cfg, cid);
        }
    }
    return usage(false);
}
