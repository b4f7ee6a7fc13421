/*
 * nitro-sim: the sysfs files of the simulated parent
 *
 * A launcher reads the CPU pool (the nitro_enclaves module's ne_cpus
 * parameter) and the host's SMT layout (thread_siblings_list of each CPU)
 * to pick and explain a valid pool.  Under the simulator these describe
 * the simulated parent (NITRO_SIM_CPUS, NITRO_SIM_HOST_CPUS,
 * NITRO_SIM_TOPOLOGY), not the machine it runs on: opening one of them
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

#include "nitro-sim.h"

#define SIM_NE_CPUS "/sys/module/nitro_enclaves/parameters/ne_cpus"
#define SIM_CPU_DIR "/sys/devices/system/cpu/cpu"
#define SIM_SIBLINGS "/topology/thread_siblings_list"

/* the CPU whose thread_siblings_list @path is, or -1 */
static int siblings_cpu(const char *path)
{
    const char *p = path + strlen(SIM_CPU_DIR);
    uint64_t cpu;

    if (strncmp(path, SIM_CPU_DIR, strlen(SIM_CPU_DIR)) ||
        !sim_parse_u64(p, &p, &cpu) || strcmp(p, SIM_SIBLINGS) ||
        cpu >= SIM_MAX_CPUS) {
        return -1;
    }
    return cpu;
}

bool sim_sysfs_path(const char *path)
{
    return path && (!strcmp(path, SIM_NE_CPUS) || siblings_cpu(path) >= 0);
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
    int cpu = siblings_cpu(path), fd;
    unsigned t;
    size_t len;

    if ((flags & O_ACCMODE) != O_RDONLY) {
        errno = EACCES;
        return -1;
    }
    if (!sim_config_load(&cfg, err, sizeof(err))) {
        fprintf(stderr, "nitro-sim: %s\n", err);
        errno = EINVAL;
        return -1;
    }
    if (cpu < 0) {
        list_cpus(cfg.pool, text, sizeof(text) - 1);
    } else if ((unsigned)cpu >= cfg.host_cpus) {
        errno = ENOENT;
        return -1;
    } else {
        for (t = 0; t < cfg.threads_per_core; t++) {
            sim_cpu_set(bm, sim_core_cpu(&cfg, sim_cpu_core(&cfg, cpu), t));
        }
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
