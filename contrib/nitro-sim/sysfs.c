/*
 * nitro-sim: the sysfs files of the simulated parent
 *
 * A launcher reads the CPU pool (the nitro_enclaves module's ne_cpus
 * parameter) and the host's SMT layout (thread_siblings_list of each CPU)
 * to pick and explain a valid pool, each CPU's online state (the driver
 * takes the pool's CPUs offline), and the instance ID (DMI's
 * board_asset_tag on EC2) to name enclaves as nitro-cli does.  Under the
 * simulator these describe the simulated parent (NITRO_SIM_CPUS,
 * NITRO_SIM_HOST_CPUS, NITRO_SIM_TOPOLOGY, NITRO_SIM_DIR for the instance
 * ID), not the machine it runs on: opening one of them
 * gives a read-only memfd with the content the real file would have.
 *
 * Copyright (c) 2025 Nitro Enclaves for QEMU authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "nitro-sim.h"

#define SIM_NE_CPUS "/sys/module/nitro_enclaves/parameters/ne_cpus"
#define SIM_CPU_DIR "/sys/devices/system/cpu/cpu"
#define SIM_SIBLINGS "/topology/thread_siblings_list"
#define SIM_ONLINE "/online"
#define SIM_NODE_DIR "/sys/devices/system/node/"
#define SIM_NODE_HUGEPAGES "/hugepages/hugepages-"
#define SIM_ASSET_TAG "/sys/devices/virtual/dmi/id/board_asset_tag"

enum { SF_NONE, SF_NE_CPUS, SF_SIBLINGS, SF_CPU_ONLINE, SF_NODES,
       SF_NODE_CPUS, SF_NODE_PAGES, SF_ASSET_TAG };

/* "<prefix><number><suffix>": the number, or -1 */
static int numbered(const char *path, const char *prefix, const char *suffix)
{
    const char *p = path + strlen(prefix);
    uint64_t n;

    if (strncmp(path, prefix, strlen(prefix)) || !sim_parse_u64(p, &p, &n) ||
        n >= SIM_MAX_CPUS || strncmp(p, suffix, strlen(suffix))) {
        return -1;
    }
    return n;
}

/*
 * Which simulated file @path is (SF_*), and its CPU or node in *@n.  The
 * huge pages of node 0 are the host's; those of the other simulated
 * nodes, when the host has no such node, are none.
 */
static int classify(const char *path, int *n)
{
    struct stat st;
    const char *p;
    uint64_t kib;

    if (!path || strncmp(path, "/sys/", 5)) {
        return SF_NONE;
    }
    if (!strcmp(path, SIM_NE_CPUS)) {
        return SF_NE_CPUS;
    }
    if (!strcmp(path, SIM_NODE_DIR "online")) {
        return SF_NODES;
    }
    if (!strcmp(path, SIM_ASSET_TAG)) {
        return SF_ASSET_TAG;
    }
    *n = numbered(path, SIM_CPU_DIR, SIM_SIBLINGS);
    if (*n >= 0 && !strcmp(strstr(path, "/topology/"), SIM_SIBLINGS)) {
        return SF_SIBLINGS;
    }
    *n = numbered(path, SIM_CPU_DIR, SIM_ONLINE);
    if (*n > 0 && !strcmp(strrchr(path, '/'), SIM_ONLINE)) {
        return SF_CPU_ONLINE;
    }
    *n = numbered(path, SIM_NODE_DIR "node", "/cpulist");
    if (*n >= 0 && !strcmp(strstr(path, "/cpulist"), "/cpulist")) {
        return SF_NODE_CPUS;
    }
    *n = numbered(path, SIM_NODE_DIR "node", SIM_NODE_HUGEPAGES);
    if (*n > 0 && stat(path, &st) < 0) {
        p = strstr(path, SIM_NODE_HUGEPAGES) + strlen(SIM_NODE_HUGEPAGES);
        if (sim_parse_u64(p, &p, &kib) &&
            (!strcmp(p, "kB/nr_hugepages") ||
             !strcmp(p, "kB/free_hugepages") ||
             !strcmp(p, "kB/surplus_hugepages"))) {
            return SF_NODE_PAGES;
        }
    }
    return SF_NONE;
}

bool sim_sysfs_path(const char *path)
{
    int n;

    return classify(path, &n) != SF_NONE;
}

static uint64_t sim_instance(const SimConfig *cfg)
{
    uint64_t h = 14695981039346656037ULL;

    for (const char *c = cfg->dir; *c; c++) {
        h = (h ^ (uint8_t)*c) * 1099511628211ULL;
    }
    return h;
}

void sim_instance_id(const SimConfig *cfg, char *buf, size_t len)
{
    if (cfg->instance_id[0]) {
        snprintf(buf, len, "%s", cfg->instance_id);
        return;
    }
    snprintf(buf, len, "i-%017llx", (unsigned long long)sim_instance(cfg));
}

/* "1-3,5-7" */
static void list_cpus(const uint64_t *bm, char *buf, size_t len)
{
    size_t n = 0;
    unsigned c = 0, end;

    buf[0] = 0;
    while (c < SIM_MAX_CPUS) {
        if (!sim_cpu_in(bm, c)) {
            c++;
            continue;
        }
        for (end = c; end + 1 < SIM_MAX_CPUS && sim_cpu_in(bm, end + 1);
             end++) {
            continue;
        }
        n += snprintf(buf + n, n < len ? len - n : 0,
                      end > c ? "%s%u-%u" : "%s%u", n ? "," : "", c, end);
        c = end + 1;
    }
}

int sim_sysfs_open(const char *path, int flags)
{
    uint64_t bm[SIM_MAX_CPUS / 64] = { 0 };
    char text[SIM_MAX_CPUS * 6], err[256];
    SimConfig cfg;
    int n, kind = classify(path, &n), fd;
    unsigned c, t;
    size_t len;

    if ((flags & O_ACCMODE) != O_RDONLY) {
        errno = EACCES;
        return -1;
    }
    if (!sim_config_load(&cfg, true, err, sizeof(err))) {
        fprintf(stderr, "nitro-sim: %s\n", err);
        errno = EINVAL;
        return -1;
    }
    switch (kind) {
    case SF_NE_CPUS:
        memcpy(bm, cfg.pool, sizeof(bm));
        break;
    case SF_SIBLINGS:
        if ((unsigned)n >= cfg.host_cpus) {
            errno = ENOENT;
            return -1;
        }
        for (t = 0; t < cfg.threads_per_core; t++) {
            sim_cpu_set(bm, sim_core_cpu(&cfg, sim_cpu_core(&cfg, n), t));
        }
        break;
    case SF_NODES:
        for (c = 0; c < cfg.numa_nodes; c++) {
            sim_cpu_set(bm, c);
        }
        break;
    case SF_NODE_CPUS:
    case SF_NODE_PAGES:
        if ((unsigned)n >= cfg.numa_nodes) {
            errno = ENOENT;
            return -1;
        }
        for (c = 0; kind == SF_NODE_CPUS && c < cfg.host_cpus; c++) {
            if (sim_cpu_node(&cfg, c) == (unsigned)n) {
                sim_cpu_set(bm, c);
            }
        }
        break;
    }
    if (kind == SF_ASSET_TAG) {
        sim_instance_id(&cfg, text, sizeof(text));
    } else if (kind == SF_CPU_ONLINE) {
        /* the driver takes the pool's CPUs offline */
        if ((unsigned)n >= cfg.host_cpus) {
            errno = ENOENT;
            return -1;
        }
        snprintf(text, sizeof(text), "%d", !sim_cpu_in(cfg.pool, n));
    } else if (kind == SF_NODE_PAGES) {
        snprintf(text, sizeof(text), "0");
    } else {
        list_cpus(bm, text, sizeof(text) - 1);
    }
    len = strlen(text);
    text[len++] = '\n';
    fd = memfd_create("nitro-sim-sysfs",
                      (flags & O_CLOEXEC) ? MFD_CLOEXEC : 0);
    if (fd < 0) {
        return -1;
    }
    if (write(fd, text, len) != (ssize_t)len || lseek(fd, 0, SEEK_SET)) {
        int e = errno;

        sim_real.close(fd);
        errno = e;
        return -1;
    }
    return fd;
}
