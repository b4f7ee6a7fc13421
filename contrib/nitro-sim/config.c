/*
 * nitro-sim: configuration from the environment (NITRO_SIM_*)
 *
 * Every variable is documented in README.md; most are one line of the
 * table vars[] below.  The configuration is read
 * again at each open of /dev/nitro_enclaves and each AF_VSOCK socket, and
 * an enclave keeps the snapshot of the device it was created on.
 *
 * Copyright (c) 2025 Nitro Enclaves for QEMU authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include <errno.h>
#include <stddef.h>
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

/* the host's user address bits: 47, or 56 with 5-level paging; 48 */
static unsigned host_va_bits(void)
{
    static unsigned bits;
    char line[4096];
    FILE *f;
    bool la57 = false;

    if (bits) {
        return bits;
    }
    if (sim_host_arch() == SIM_ARCH_AARCH64) {
        return bits = 48;
    }
    f = fopen("/proc/cpuinfo", "re");
    while (f && !la57 && fgets(line, sizeof(line), f)) {
        la57 = !strncmp(line, "flags", 5) && strstr(line, " la57");
    }
    if (f) {
        fclose(f);
    }
    return bits = la57 ? 56 : 47;
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

/*
 * The variables that are a number, one of a few names or a path: one
 * line each.  The others (NITRO_SIM_DIR, NITRO_SIM_LOG and the CPU
 * layout, whose defaults depend on each other) follow the table.
 */
typedef enum { VAR_NUM, VAR_ENUM, VAR_PATH } SimVarKind;

typedef struct SimVar {
    const char *name;
    SimVarKind kind;
    size_t offset, size;            /* the field of SimConfig */
    uint64_t def, min, max, unit;   /* VAR_NUM: the field is value * unit */
    const char *const *names;       /* VAR_ENUM: value = index */
                                    /* (the first is the default) */
    int (*def_enum)(void);          /* VAR_ENUM: the default if not the first */
} SimVar;

#define SIZE(f) (sizeof(((SimConfig *)0)->f))
#define NUM(var, f, d, lo, hi, u) \
    { .name = "NITRO_SIM_" var, .kind = VAR_NUM, \
      .offset = offsetof(SimConfig, f), .size = SIZE(f), \
      .def = d, .min = lo, .max = hi, .unit = u }
#define ENUM(var, f, list, d) \
    { .name = "NITRO_SIM_" var, .kind = VAR_ENUM, \
      .offset = offsetof(SimConfig, f), .size = SIZE(f), \
      .names = list, .def_enum = d }
/* A path, or any string */
#define PATH(var, f) \
    { .name = "NITRO_SIM_" var, .kind = VAR_PATH, \
      .offset = offsetof(SimConfig, f), .size = SIZE(f) }

/* in the order of the SIM_* constants */
static const char *const topologies[] = { "ec2", "consecutive", NULL };
static const char *const contigs[] = { "call", "page", NULL };
static const char *const heartbeats[] = { "ok", "bad", "none", NULL };
static const char *const archs[] = { "x86_64", "aarch64", NULL };
static const char *const boots[] = { "sim", "qemu", NULL };

static const SimVar vars[] = {
    ENUM("TOPOLOGY", topology, topologies, NULL),
    NUM("THREADS_PER_CORE", threads_per_core, 2, 1, 64, 1),
    NUM("MAX_REGIONS", max_regions, 256, 0, 1 << 20, 1),
    ENUM("CONTIG", contig, contigs, NULL),
    NUM("MIN_MEM_MIB", min_mem, 64, 0, 1ULL << 30, SIM_MIB),
    NUM("BOOT_DELAY_MS", boot_delay_ms, 0, 0, 3600000, 1),
    NUM("HEARTBEAT_TIMEOUT_MS", heartbeat_timeout_ms, 30000, 0, 3600000, 1),
    NUM("LIFETIME_MS", lifetime_ms, 0, 0, UINT64_MAX / 2, 1),
    NUM("CONSOLE_BYTES", console_bytes, 0, 0, 1ULL << 30, 1),
    NUM("CONSOLE_TAIL_MS", console_tail_ms, 0, 0, 60000, 1),
    ENUM("HEARTBEAT", heartbeat, heartbeats, NULL),
    ENUM("ARCH", arch, archs, sim_host_arch),
    ENUM("BOOT", boot, boots, NULL),
    PATH("QEMU", qemu),
    PATH("VSOCK_BACKEND", backend),
    PATH("INSTANCE_ID", instance_id),
    PATH("IAM_ROLE", iam_role),
    NUM("VSOCK_CID", vsock_cid, 0, 0, UINT32_MAX - 1, 1),
    NUM("FAKE_PAGE_SIZE", fake_page_size, 0, 0, 1ULL << 40, 1),
    NUM("VA_BITS", va_bits, 0, 0, 63, 1),
};

static void store(SimConfig *cfg, const SimVar *var, uint64_t x)
{
    char *field = (char *)cfg + var->offset;

    if (var->size == sizeof(uint64_t)) {
        *(uint64_t *)field = x;
    } else {
        *(uint32_t *)field = x;     /* unsigned, uint32_t or int */
    }
}

/* "a, b or c" */
static void enum_names(const char *const *names, char *buf, size_t len)
{
    size_t n = 0;
    int i;

    buf[0] = 0;
    for (i = 0; names[i] && n < len; i++) {
        n += snprintf(buf + n, len - n, "%s%s", i == 0 ? "" :
                      names[i + 1] ? ", " : " or ", names[i]);
    }
}

static bool load_var(SimConfig *cfg, const SimVar *var, char *err,
                     size_t errlen)
{
    const char *v = getenv(var->name);
    char *field = (char *)cfg + var->offset;
    char list[128];
    uint64_t x;
    int i;

    switch (var->kind) {
    case VAR_PATH:
        if (v && strlen(v) >= var->size) {
            snprintf(err, errlen, "%s: longer than %zu bytes", var->name,
                     var->size - 1);
            return false;
        }
        snprintf(field, var->size, "%s", v ? v : "");
        return true;
    case VAR_ENUM:
        if (!v || !*v) {
            store(cfg, var, var->def_enum ? var->def_enum() : 0);
            return true;
        }
        for (i = 0; var->names[i]; i++) {
            if (!strcmp(v, var->names[i])) {
                store(cfg, var, i);
                return true;
            }
        }
        enum_names(var->names, list, sizeof(list));
        snprintf(err, errlen, "%s: %s, not '%s'", var->name, list, v);
        return false;
    case VAR_NUM:
        if (!env_u64(var->name, var->def, var->max, &x, err, errlen)) {
            return false;
        }
        if (x < var->min) {
            snprintf(err, errlen, "%s must be >= %llu", var->name,
                     (unsigned long long)var->min);
            return false;
        }
        store(cfg, var, x * var->unit);
        return true;
    }
    return false;
}

/*
 * The CPU layout: the pool (NITRO_SIM_CPUS, default: every core but
 * core 0 on core 1's node), the parent's CPUs (NITRO_SIM_HOST_CPUS) and
 * NUMA nodes (NITRO_SIM_NUMA_NODES), the pool's node (NITRO_SIM_NUMA_NODE)
 */
static bool config_cpus(SimConfig *cfg, char *err, size_t errlen)
{
    const char *v = getenv("NITRO_SIM_CPUS");
    unsigned maxcpu = 0, need, c, cores;
    uint64_t x;

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
    if (!env_u64("NITRO_SIM_HOST_CPUS", need < 8 ? 8 : need, SIM_MAX_CPUS,
                 &x, err, errlen)) {
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
    cores = cfg->host_cpus / cfg->threads_per_core;
    if (!env_u64("NITRO_SIM_NUMA_NODES", 1, 64, &x, err, errlen)) {
        return false;
    }
    if (x == 0 || x > cores) {
        snprintf(err, errlen, "NITRO_SIM_NUMA_NODES: 1 to %u nodes", cores);
        return false;
    }
    cfg->numa_nodes = x;
    cfg->numa_node = -1;
    for (c = 1; !v && c < cores; c++) {
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
    v = getenv("NITRO_SIM_NUMA_NODE");
    if (!v || !*v) {
        /* the pool's node */
        cfg->numa_node = cfg->numa_node < 0 ? 0 : cfg->numa_node;
    } else if (!strcmp(v, "any")) {
        cfg->numa_node = -1;
    } else {
        if (!env_u64("NITRO_SIM_NUMA_NODE", 0, 1023, &x, err, errlen)) {
            return false;
        }
        cfg->numa_node = x;
    }
    return true;
}

/* i- and 8 or 17 lowercase hex digits, as EC2 instance IDs are */
static bool instance_id_ok(const char *id)
{
    size_t n = strlen(id);

    return !strncmp(id, "i-", 2) && (n == 10 || n == 19) &&
           strspn(id + 2, "0123456789abcdef") == n - 2;
}

/* every variable but NITRO_SIM_DIR */
static bool config_values(SimConfig *cfg, char *err, size_t errlen)
{
    const char *v = getenv("NITRO_SIM_LOG");
    size_t i;

    if (v && *v) {
        snprintf(cfg->log, sizeof(cfg->log), "%s", v);
    } else {
        snprintf(cfg->log, sizeof(cfg->log), "%s/events.jsonl", cfg->dir);
    }
    for (i = 0; i < sizeof(vars) / sizeof(vars[0]); i++) {
        if (!load_var(cfg, &vars[i], err, errlen)) {
            return false;
        }
    }
    if (!cfg->va_bits) {
        cfg->va_bits = host_va_bits();
    }
    if (cfg->instance_id[0] && !instance_id_ok(cfg->instance_id)) {
        snprintf(err, errlen, "NITRO_SIM_INSTANCE_ID: '%s' is not an EC2 "
                 "instance ID (i- and 8 or 17 lowercase hex digits)",
                 cfg->instance_id);
        return false;
    }
    return config_cpus(cfg, err, errlen);
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
