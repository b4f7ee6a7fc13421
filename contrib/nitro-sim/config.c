/*
 * nitro-sim: configuration from the environment (NITRO_SIM_*)
 *
 * Every variable is documented in README.md.  The configuration is read
 * again at each open of /dev/nitro_enclaves and each AF_VSOCK socket, and
 * an enclave keeps the snapshot of the device it was created on.
 *
 * Copyright (c) 2025 Nitro Enclaves for QEMU authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/utsname.h>

#include "nitro-sim.h"

/*
 * EC2's x86 layout numbers the first thread of every core, then the
 * second: the siblings of CPU N are N and N + cores.  The other one
 * numbers the threads of a core consecutively.
 */
unsigned sim_cpu_core(const SimConfig *cfg, unsigned cpu)
{
    if (cfg->topology == SIM_TOPO_EC2) {
        return cpu % (cfg->host_cpus / cfg->threads_per_core);
    }
    return cpu / cfg->threads_per_core;
}

unsigned sim_core_cpu(const SimConfig *cfg, unsigned core, unsigned t)
{
    if (cfg->topology == SIM_TOPO_EC2) {
        return core + t * (cfg->host_cpus / cfg->threads_per_core);
    }
    return core * cfg->threads_per_core + t;
}

unsigned sim_cpu_node(const SimConfig *cfg, unsigned cpu)
{
    unsigned cores = cfg->host_cpus / cfg->threads_per_core;

    return sim_cpu_core(cfg, cpu) * cfg->numa_nodes / cores;
}

const char *sim_arch_name(int arch)
{
    return arch == SIM_ARCH_AARCH64 ? "aarch64" : "x86_64";
}

int sim_host_arch(void)
{
    struct utsname u;

    if (uname(&u) == 0 && !strcmp(u.machine, "aarch64")) {
        return SIM_ARCH_AARCH64;
    }
    return SIM_ARCH_X86_64;
}

bool sim_parse_u64(const char *s, const char **endp, uint64_t *v)
{
    unsigned base = 10;
    uint64_t x = 0;
    const char *p = s;

    if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) {
        base = 16;
        p += 2;
    }
    for (; *p; p++) {
        unsigned d;

        if (*p >= '0' && *p <= '9') {
            d = *p - '0';
        } else if (base == 16 && *p >= 'a' && *p <= 'f') {
            d = *p - 'a' + 10;
        } else if (base == 16 && *p >= 'A' && *p <= 'F') {
            d = *p - 'A' + 10;
        } else {
            break;
        }
        if (x > (UINT64_MAX - d) / base) {
            return false;
        }
        x = x * base + d;
    }
    if (p == s || (base == 16 && p == s + 2)) {
        return false;
    }
    *v = x;
    if (endp) {
        *endp = p;
    }
    return true;
}

bool sim_cpu_list_parse(const char *s, uint64_t *bm, char *err,
                        size_t errlen)
{
    const char *p = s;

    memset(bm, 0, SIM_MAX_CPUS / 8);
    while (*p) {
        uint64_t a, b;

        if (*p == ',' || *p == ' ') {
            p++;
            continue;
        }
        if (!sim_parse_u64(p, &p, &a) || a >= SIM_MAX_CPUS) {
            snprintf(err, errlen, "bad CPU list '%s'", s);
            return false;
        }
        b = a;
        if (*p == '-') {
            p++;
            if (!sim_parse_u64(p, &p, &b) || b >= SIM_MAX_CPUS || b < a) {
                snprintf(err, errlen, "bad CPU range in '%s'", s);
                return false;
            }
        }
        if (*p && *p != ',' && *p != ' ') {
            snprintf(err, errlen, "bad CPU list '%s'", s);
            return false;
        }
        for (; a <= b; a++) {
            sim_cpu_set(bm, a);
        }
    }
    return true;
}

static bool env_u64(const char *name, uint64_t def, uint64_t max,
                    uint64_t *out, char *err, size_t errlen)
{
    const char *v = getenv(name);
    const char *end;
    uint64_t x;

    if (!v || !*v) {
        *out = def;
        return true;
    }
    if (!sim_parse_u64(v, &end, &x) || *end || x > max) {
        snprintf(err, errlen, "%s: bad value '%s'", name, v);
        return false;
    }
    *out = x;
    return true;
}

static bool mkdir_p(const char *path)
{
    char tmp[PATH_MAX];
    char *p;

    snprintf(tmp, sizeof(tmp), "%s", path);
    for (p = tmp + 1; *p; p++) {
        if (*p == '/') {
            *p = 0;
            if (mkdir(tmp, 0755) < 0 && errno != EEXIST) {
                return false;
            }
            *p = '/';
        }
    }
    return mkdir(tmp, 0755) == 0 || errno == EEXIST;
}

static uint64_t fnv1a(const char *s)
{
    uint64_t h = 0xcbf29ce484222325ULL;

    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 0x100000001b3ULL;
    }
    return h;
}

/* NITRO_SIM_DIR: made if @create, and a directory; errno set on error */
static bool config_dir(SimConfig *cfg, bool create, char *err, size_t errlen)
{
    const char *v = getenv("NITRO_SIM_DIR");
    char real[PATH_MAX];
    struct stat st;

    if (v && *v) {
        snprintf(cfg->dir, sizeof(cfg->dir), "%s", v);
    } else {
        snprintf(cfg->dir, sizeof(cfg->dir), "/tmp/nitro-sim-%u",
                 (unsigned)getuid());
    }
    cfg->readonly = !create;
    if ((create && !mkdir_p(cfg->dir)) || stat(cfg->dir, &st) < 0) {
        if (!create && errno == ENOENT) {
            /* nothing ever ran there: nothing to find */
            return true;
        }
        snprintf(err, errlen, "NITRO_SIM_DIR %s: %s", cfg->dir,
                 strerror(errno));
        return false;
    }
    if (!S_ISDIR(st.st_mode)) {
        snprintf(err, errlen, "NITRO_SIM_DIR %s is not a directory",
                 cfg->dir);
        errno = ENOTDIR;
        return false;
    }
    if (!realpath(cfg->dir, real)) {
        snprintf(err, errlen, "NITRO_SIM_DIR %s: %s", cfg->dir,
                 strerror(errno));
        return false;
    }
    snprintf(cfg->dir, sizeof(cfg->dir), "%s", real);
    return true;
}

/* every variable but NITRO_SIM_DIR */
static bool config_values(SimConfig *cfg, char *err, size_t errlen)
{
    const char *v;
    uint64_t x;
    unsigned maxcpu = 0, need, c;

    v = getenv("NITRO_SIM_LOG");
    if (v && *v) {
        snprintf(cfg->log, sizeof(cfg->log), "%s", v);
    } else {
        snprintf(cfg->log, sizeof(cfg->log), "%s/events.jsonl", cfg->dir);
    }

    v = getenv("NITRO_SIM_TOPOLOGY");
    if (!v || !*v || !strcmp(v, "ec2")) {
        cfg->topology = SIM_TOPO_EC2;
    } else if (!strcmp(v, "consecutive")) {
        cfg->topology = SIM_TOPO_CONSECUTIVE;
    } else {
        snprintf(err, errlen, "NITRO_SIM_TOPOLOGY: ec2 or consecutive, "
                 "not '%s'", v);
        return false;
    }
    if (!env_u64("NITRO_SIM_THREADS_PER_CORE", 2, 64, &x, err, errlen)) {
        return false;
    }
    if (x == 0) {
        snprintf(err, errlen, "NITRO_SIM_THREADS_PER_CORE must be >= 1");
        return false;
    }
    cfg->threads_per_core = x;
    /* unset: every core but core 0 on its node, set below */
    v = getenv("NITRO_SIM_CPUS");
    if (!sim_cpu_list_parse(v ? v : "", cfg->pool, err, errlen)) {
        return false;
    }
    for (c = 0; c < SIM_MAX_CPUS; c++) {
        if (sim_cpu_in(cfg->pool, c)) {
            maxcpu = c + 1;
        }
    }
    need = (maxcpu + cfg->threads_per_core - 1) / cfg->threads_per_core *
           cfg->threads_per_core;
    maxcpu = need;
    if (maxcpu < 8) {
        maxcpu = 8;
    }
    if (!env_u64("NITRO_SIM_HOST_CPUS", maxcpu, SIM_MAX_CPUS, &x, err,
                 errlen)) {
        return false;
    }
    cfg->host_cpus = x;
    if (cfg->host_cpus < need ||
        cfg->host_cpus % cfg->threads_per_core) {
        snprintf(err, errlen, "NITRO_SIM_HOST_CPUS: %u CPUs cannot hold "
                 "the pool in whole cores of %u threads", cfg->host_cpus,
                 cfg->threads_per_core);
        return false;
    }
    if (!env_u64("NITRO_SIM_NUMA_NODES", 1, 64, &x, err, errlen)) {
        return false;
    }
    if (x == 0 || x > cfg->host_cpus / cfg->threads_per_core) {
        snprintf(err, errlen, "NITRO_SIM_NUMA_NODES: 1 to %u nodes",
                 cfg->host_cpus / cfg->threads_per_core);
        return false;
    }
    cfg->numa_nodes = x;
    cfg->numa_node = -1;
    for (c = 1; !v && c < cfg->host_cpus / cfg->threads_per_core; c++) {
        if (sim_cpu_node(cfg, sim_core_cpu(cfg, c, 0)) ==
            sim_cpu_node(cfg, sim_core_cpu(cfg, 1, 0))) {
            for (x = 0; x < cfg->threads_per_core; x++) {
                sim_cpu_set(cfg->pool, sim_core_cpu(cfg, c, x));
            }
        }
    }
    for (c = 0; c < SIM_MAX_CPUS; c++) {
        if (!sim_cpu_in(cfg->pool, c)) {
            continue;
        }
        if (sim_cpu_core(cfg, c) == 0) {
            snprintf(err, errlen, "NITRO_SIM_CPUS: CPU %u is on core 0, "
                     "which is never in the pool", c);
            return false;
        }
        /* the driver refuses a pool on several nodes */
        if (cfg->numa_node >= 0 &&
            (unsigned)cfg->numa_node != sim_cpu_node(cfg, c)) {
            snprintf(err, errlen, "NITRO_SIM_CPUS: the pool spans NUMA "
                     "nodes %d and %u", cfg->numa_node, sim_cpu_node(cfg, c));
            return false;
        }
        cfg->numa_node = sim_cpu_node(cfg, c);
    }
    if (!env_u64("NITRO_SIM_MAX_REGIONS", 256, 1 << 20, &x, err, errlen)) {
        return false;
    }
    cfg->max_regions = x;
    v = getenv("NITRO_SIM_CONTIG");
    if (!v || !*v || !strcmp(v, "call")) {
        cfg->contig = SIM_CONTIG_CALL;
    } else if (!strcmp(v, "page")) {
        cfg->contig = SIM_CONTIG_PAGE;
    } else {
        snprintf(err, errlen, "NITRO_SIM_CONTIG: 'call' or 'page', "
                 "not '%s'", v);
        return false;
    }
    if (!env_u64("NITRO_SIM_MIN_MEM_MIB", 64, 1ULL << 30, &x, err, errlen)) {
        return false;
    }
    cfg->min_mem = x * SIM_MIB;
    if (!env_u64("NITRO_SIM_BOOT_DELAY_MS", 0, 3600000, &x, err, errlen)) {
        return false;
    }
    cfg->boot_delay_ms = x;
    if (!env_u64("NITRO_SIM_HEARTBEAT_TIMEOUT_MS", 30000, 3600000, &x, err,
                 errlen)) {
        return false;
    }
    cfg->heartbeat_timeout_ms = x;
    if (!env_u64("NITRO_SIM_LIFETIME_MS", 0, UINT64_MAX / 2, &x, err,
                 errlen)) {
        return false;
    }
    cfg->lifetime_ms = x;
    if (!env_u64("NITRO_SIM_CONSOLE_TAIL_MS", 0, 60000, &x, err, errlen)) {
        return false;
    }
    cfg->console_tail_ms = x;
    v = getenv("NITRO_SIM_HEARTBEAT");
    if (!v || !*v || !strcmp(v, "ok")) {
        cfg->heartbeat = SIM_HB_OK;
    } else if (!strcmp(v, "bad")) {
        cfg->heartbeat = SIM_HB_BAD;
    } else if (!strcmp(v, "none")) {
        cfg->heartbeat = SIM_HB_NONE;
    } else {
        snprintf(err, errlen, "NITRO_SIM_HEARTBEAT: ok, bad or none, "
                 "not '%s'", v);
        return false;
    }
    v = getenv("NITRO_SIM_ARCH");
    if (!v || !*v) {
        cfg->arch = sim_host_arch();
    } else if (!strcmp(v, "x86_64")) {
        cfg->arch = SIM_ARCH_X86_64;
    } else if (!strcmp(v, "aarch64")) {
        cfg->arch = SIM_ARCH_AARCH64;
    } else {
        snprintf(err, errlen, "NITRO_SIM_ARCH: x86_64 or aarch64, not '%s'",
                 v);
        return false;
    }
    v = getenv("NITRO_SIM_BOOT");
    if (!v || !*v || !strcmp(v, "sim")) {
        cfg->boot = SIM_BOOT_SIM;
    } else if (!strcmp(v, "qemu")) {
        cfg->boot = SIM_BOOT_QEMU;
    } else {
        snprintf(err, errlen, "NITRO_SIM_BOOT: sim or qemu, not '%s'", v);
        return false;
    }
    v = getenv("NITRO_SIM_QEMU");
    snprintf(cfg->qemu, sizeof(cfg->qemu), "%s", v ? v : "");
    v = getenv("NITRO_SIM_VSOCK_BACKEND");
    snprintf(cfg->backend, sizeof(cfg->backend), "%s", v ? v : "");
    if (!env_u64("NITRO_SIM_VSOCK_CID", 0, UINT32_MAX - 1, &x, err,
                 errlen)) {
        return false;
    }
    cfg->vsock_cid = x;
    v = getenv("NITRO_SIM_NUMA_NODE");
    if (!v || !*v) {
        /* the pool's node, from the CPUs above */
        cfg->numa_node = cfg->numa_node < 0 ? 0 : cfg->numa_node;
    } else if (!strcmp(v, "any")) {
        cfg->numa_node = -1;
    } else {
        if (!env_u64("NITRO_SIM_NUMA_NODE", 0, 1023, &x, err, errlen)) {
            return false;
        }
        cfg->numa_node = x;
    }
    if (!env_u64("NITRO_SIM_FAKE_PAGE_SIZE", 0, 1ULL << 40, &x, err,
                 errlen)) {
        return false;
    }
    cfg->fake_page_size = x;
    return true;
}

bool sim_config_load(SimConfig *cfg, bool create, char *err, size_t errlen)
{
    memset(cfg, 0, sizeof(*cfg));
    if (!config_dir(cfg, create, err, errlen)) {
        return false;
    }
    snprintf(cfg->ns, sizeof(cfg->ns), "nitro-sim-%016llx",
             (unsigned long long)fnv1a(cfg->dir));
    if (!config_values(cfg, err, errlen)) {
        errno = EINVAL;
        return false;
    }
    return true;
}

static socklen_t abstract_name(const SimConfig *cfg, const char *leaf,
                               struct sockaddr *sa)
{
    struct sockaddr_un *un = (struct sockaddr_un *)sa;
    int n;

    memset(un, 0, sizeof(*un));
    un->sun_family = AF_UNIX;
    n = snprintf(un->sun_path + 1, sizeof(un->sun_path) - 1, "%s/%s",
                 cfg->ns, leaf);
    return offsetof(struct sockaddr_un, sun_path) + 1 + n;
}

socklen_t sim_vsock_name(const SimConfig *cfg, uint32_t cid, uint32_t port,
                         struct sockaddr *sa)
{
    char leaf[32];

    snprintf(leaf, sizeof(leaf), "%u.%u", cid, port);
    return abstract_name(cfg, leaf, sa);
}

socklen_t sim_ctl_name(const SimConfig *cfg, uint32_t cid,
                       struct sockaddr *sa)
{
    char leaf[32];

    snprintf(leaf, sizeof(leaf), "ctl.%u", cid);
    return abstract_name(cfg, leaf, sa);
}

bool sim_vsock_parse_name(const struct sockaddr *sa, socklen_t len,
                          uint32_t *cid, uint32_t *port)
{
    const struct sockaddr_un *un = (const struct sockaddr_un *)sa;
    size_t off = offsetof(struct sockaddr_un, sun_path);
    char name[sizeof(un->sun_path) + 1];
    const char *leaf;
    unsigned long long c, p;
    char dot;

    if (len <= off + 1 || un->sun_family != AF_UNIX || un->sun_path[0]) {
        return false;
    }
    memcpy(name, un->sun_path + 1, len - off - 1);
    name[len - off - 1] = 0;
    leaf = strrchr(name, '/');
    if (!leaf || sscanf(leaf + 1, "%llu%c%llu", &c, &dot, &p) != 3 ||
        dot != '.') {
        return false;
    }
    *cid = c;
    *port = p;
    return true;
}
