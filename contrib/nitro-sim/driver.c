/*
 * nitro-sim: the simulated nitro_enclaves driver
 *
 * A device fd (a memfd named "nitro_enclaves") answers NE_CREATE_VM with
 * an enclave fd: the read end of a pipe whose write end the simulator
 * keeps, so that the enclave fd is a real pollable fd that reports
 * POLLHUP once the simulator closes the write end (the enclave stopped),
 * and whose last close the simulator notices (POLLERR on the write end).
 * The ioctls on it follow the init -> running state machine and the
 * checks and NE_ERR_* errnos of the driver (nitro-brief.md, section 2).
 *
 * Copyright (c) 2025 Nitro Enclaves for QEMU authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <stdint.h>
#include "standard-headers/linux/nitro_enclaves.h"

#include "nitro-sim.h"

typedef struct SimDevice {
    struct SimDevice *next;
    dev_t dev;
    ino_t ino;
    SimConfig cfg;
} SimDevice;

static SimDevice *devices;
/* released enclaves: kept, a racing thread may still look at one */
static SimEnclave *graveyard;
static volatile int any_enclave; /* fast path hint, read unlocked */

/*
 * Where the driver's access_ok() ends user space: x86_64's TASK_SIZE_MAX
 * is a page short of 2^47 (2^56 with 5-level paging), aarch64's is 2^48
 */
static uint64_t user_limit(const SimConfig *cfg)
{
    uint64_t end = 1ULL << cfg->va_bits;

    return sim_host_arch() == SIM_ARCH_AARCH64 ? end : end - 4096;
}

int sim_device_open(int flags, const char *via)
{
    SimDevice *d;
    SimJson j;
    struct stat st;
    char err[256];
    int fd;

    sim_real_init();
    d = calloc(1, sizeof(*d));
    if (!d) {
        errno = ENOMEM;
        return -1;
    }
    if (!sim_config_load(&d->cfg, true, err, sizeof(err))) {
        int e = errno;

        fprintf(stderr, "nitro-sim: %s\n", err);
        free(d);
        errno = e;
        return -1;
    }
    /* The registry and the logs live there: say so now, not as EIO later */
    if (access(d->cfg.dir, W_OK | X_OK) < 0) {
        int e = errno;

        fprintf(stderr, "nitro-sim: cannot write the simulation directory "
                "%s (NITRO_SIM_DIR): %s\n", d->cfg.dir, strerror(e));
        free(d);
        errno = e;
        return -1;
    }
    fd = memfd_create("nitro_enclaves", (flags & O_CLOEXEC) ? MFD_CLOEXEC : 0);
    if (fd < 0 || fstat(fd, &st) < 0) {
        int e = errno;

        free(d);
        errno = e;
        return -1;
    }
    d->dev = st.st_dev;
    d->ino = st.st_ino;
    pthread_mutex_lock(&sim_lock);
    d->next = devices;
    devices = d;
    pthread_mutex_unlock(&sim_lock);

    sim_json_begin(&j, "open");
    sim_json_str(&j, "path", SIM_DEVICE_PATH);
    sim_json_str(&j, "via", via);
    sim_json_hex(&j, "flags", flags);
    sim_json_i64(&j, "fd", fd);
    sim_json_emit(&j, &d->cfg);
    return fd;
}

static const char *cmd_name(unsigned long req)
{
    switch (req) {
    case NE_CREATE_VM: return "NE_CREATE_VM";
    case NE_ADD_VCPU: return "NE_ADD_VCPU";
    case NE_GET_IMAGE_LOAD_INFO: return "NE_GET_IMAGE_LOAD_INFO";
    case NE_SET_USER_MEMORY_REGION: return "NE_SET_USER_MEMORY_REGION";
    case NE_START_ENCLAVE: return "NE_START_ENCLAVE";
    default: return NULL;
    }
}

/* ---- cores of the pool ---- */

static bool owns(SimEnclave *e, unsigned cpu)
{
    int i;

    if (!e) {
        return false;
    }
    for (i = 0; i < e->nvcpus; i++) {
        if (e->vcpus[i] == cpu) {
            return true;
        }
    }
    return false;
}

static bool core_full_in_pool(const SimConfig *cfg, unsigned core)
{
    unsigned t;

    for (t = 0; t < cfg->threads_per_core; t++) {
        if (!sim_cpu_in(cfg->pool, sim_core_cpu(cfg, core, t))) {
            return false;
        }
    }
    return true;
}

/*
 * Is a thread of @core given to an enclave other than @e (any process)?
 * The driver then reserves the whole core for that enclave.
 */
static bool core_taken(const SimConfig *cfg, SimEnclave *e, SimRegistry *r,
                       unsigned core)
{
    unsigned t;

    for (t = 0; t < cfg->threads_per_core; t++) {
        unsigned c = sim_core_cpu(cfg, core, t);

        if (!owns(e, c) && sim_reg_cpu_used(r, c)) {
            return true;
        }
    }
    return false;
}

/* the first core of the pool that no enclave uses, 0 if none */
static unsigned free_core(const SimConfig *cfg, SimRegistry *r, SimEnclave *e)
{
    unsigned core, t;

    for (core = 1; core < cfg->host_cpus / cfg->threads_per_core; core++) {
        bool mine = false;

        if (!core_full_in_pool(cfg, core) || core_taken(cfg, e, r, core)) {
            continue;
        }
        for (t = 0; t < cfg->threads_per_core; t++) {
            mine |= owns(e, sim_core_cpu(cfg, core, t));
        }
        if (!mine) {
            return core;
        }
    }
    return 0;
}

/* ---- NE_CREATE_VM ---- */

/* the free core check, the slot and the registry line under one lock */
static int create_vm(SimDevice *d, uint64_t *slot_out, SimJson *j)
{
    SimEnclave *e;
    SimRegistry r;
    struct stat st;
    int p[2], err;

    if (!sim_reg_open(&r, &d->cfg)) {
        return sim_reg_fail(&r);
    }
    err = !free_core(&d->cfg, &r, NULL) ? -NE_ERR_NO_CPUS_AVAIL_IN_POOL : 0;
    e = err ? NULL : calloc(1, sizeof(*e));
    if (!err && !e) {
        err = -ENOMEM;
    }
    if (!err && pipe2(p, O_CLOEXEC) < 0) {
        err = -errno;
    }
    if (err) {
        free(e);
        sim_reg_close(&r, false);
        return err;
    }
    fcntl(p[1], F_SETFL, O_NONBLOCK);
    fstat(p[0], &st);
    e->owner = getpid();
    e->cfg = d->cfg;
    e->dev = st.st_dev;
    e->ino = st.st_ino;
    e->app_fd = p[0];
    e->wr_fd = p[1];
    e->state = SIM_ST_INIT;
    e->console_listen = e->ctl_listen = -1;
    e->wake[0] = e->wake[1] = -1;
    e->slot = r.next_slot++;
    sim_reg_put(&r, e, false);
    if (!sim_reg_close(&r, true)) {
        err = sim_reg_fail(&r);
        sim_real.close(p[0]);
        sim_real.close(p[1]);
        free(e);
        return err;
    }
    pthread_cond_init(&e->cond, NULL);
    e->next = sim_enclaves;
    sim_enclaves = e;
    any_enclave = 1;
    *slot_out = e->slot;
    sim_json_i64(j, "enclave_fd", p[0]);
    sim_json_u64(j, "slot_uid", e->slot);
    return p[0];
}

/*
 * Which CPU and its registry line under one lock: another process picks
 * after this one has recorded its pick, never between.
 */
static int add_vcpu(SimEnclave *e, uint32_t *arg, SimJson *j)
{
    const SimConfig *cfg = &e->cfg;
    unsigned tpc = cfg->threads_per_core;
    SimRegistry r;
    uint32_t id;
    int err = 0, i;
    unsigned core;

    id = *arg;
    sim_json_u64(j, "vcpu_id", id);
    if (e->state != SIM_ST_INIT) {
        return -NE_ERR_NOT_IN_INIT_STATE;
    }
    if (id && id >= cfg->host_cpus) {
        return -NE_ERR_INVALID_VCPU;
    }
    if (!sim_reg_open(&r, cfg)) {
        return sim_reg_fail(&r);
    }
    if (id) {
        if (owns(e, id)) {
            err = -NE_ERR_VCPU_ALREADY_USED;
        } else if (!sim_cpu_in(cfg->pool, id)) {
            err = -NE_ERR_VCPU_NOT_IN_CPU_POOL;
        } else if (!core_full_in_pool(cfg, sim_cpu_core(cfg, id))) {
            err = -NE_ERR_VCPU_INVALID_CPU_CORE;
        } else if (core_taken(cfg, e, &r, sim_cpu_core(cfg, id))) {
            /* no longer available in the pool: another enclave's core */
            err = -NE_ERR_VCPU_NOT_IN_CPU_POOL;
        }
    } else {
        /* the remaining siblings of owned cores first, then a new core */
        for (i = 0; i < e->nvcpus && !id; i++) {
            unsigned t;

            core = sim_cpu_core(cfg, e->vcpus[i]);
            for (t = 0; t < tpc && !id; t++) {
                unsigned c = sim_core_cpu(cfg, core, t);

                if (!owns(e, c) && sim_cpu_in(cfg->pool, c) &&
                    !sim_reg_cpu_used(&r, c)) {
                    id = c;
                }
            }
        }
        if (!id) {
            core = free_core(cfg, &r, e);
            id = core ? sim_core_cpu(cfg, core, 0) : 0;
        }
        if (!id) {
            err = -NE_ERR_NO_CPUS_AVAIL_IN_POOL;
        }
    }
    if (err) {
        sim_reg_close(&r, false);
        return err;
    }
    e->vcpus[e->nvcpus++] = id;
    sim_reg_put(&r, e, false);
    if (!sim_reg_close(&r, true)) {
        e->nvcpus--;
        return sim_reg_fail(&r);
    }
    *arg = id;
    sim_json_u64(j, "vcpu", id);
    return 0;
}

/* ---- NE_GET_IMAGE_LOAD_INFO ---- */

static int image_load_info(SimEnclave *e, struct ne_image_load_info *info,
                           SimJson *j)
{
    sim_json_u64(j, "flags", info->flags);
    if (e->state != SIM_ST_INIT) {
        return -NE_ERR_NOT_IN_INIT_STATE;
    }
    if (info->flags != NE_EIF_IMAGE) {
        return -NE_ERR_INVALID_FLAG_VALUE;
    }
    info->memory_offset = SIM_IMAGE_OFFSET;
    sim_json_u64(j, "memory_offset", info->memory_offset);
    return 0;
}

/* ---- NE_SET_USER_MEMORY_REGION ---- */

static bool overlaps(uint64_t a, uint64_t as, uint64_t b, uint64_t bs)
{
    return a < b + bs && b < a + as;
}

/*
 * The driver merges the physically contiguous pages of one call into one
 * range, never pages of different calls: a call is one range at best
 * (NITRO_SIM_CONTIG=call), one range per huge page at worst (=page).
 */
static int ranges_of_call(SimEnclave *e, uint64_t size, uint64_t page)
{
    return e->cfg.contig == SIM_CONTIG_PAGE ? (int)(size / page) : 1;
}

static int set_region(SimEnclave *e, struct ne_user_memory_region *mr,
                      SimJson *j)
{
    const SimConfig *cfg = &e->cfg;
    uint64_t addr, size, page;
    SimMapInfo mi;
    SimJson rj;
    int i, n, err;

    addr = mr->userspace_addr;
    size = mr->memory_size;
    sim_json_u64(j, "flags", mr->flags);
    sim_json_hex(j, "userspace_addr", addr);
    sim_json_u64(j, "memory_size", size);
    if (mr->flags >= NE_MEMORY_REGION_MAX_FLAG_VAL) {
        return -NE_ERR_INVALID_FLAG_VALUE;
    }
    if (e->state != SIM_ST_INIT) {
        return -NE_ERR_NOT_IN_INIT_STATE;
    }
    if (size % SIM_MIN_REGION) {
        return -NE_ERR_INVALID_MEM_REGION_SIZE;
    }
    if (addr % SIM_MIN_REGION) {
        return -NE_ERR_UNALIGNED_MEM_REGION_ADDR;
    }
    if (addr + size < addr || addr + size > user_limit(cfg)) {
        return -NE_ERR_INVALID_MEM_REGION_ADDR;
    }
    /* only against this enclave's regions */
    for (i = 0; i < e->nregions; i++) {
        if (overlaps(addr, size, e->regions[i].addr, e->regions[i].size)) {
            return -NE_ERR_MEM_REGION_ALREADY_USED;
        }
    }
    /* the driver's allocation of no pages fails */
    if (!size) {
        return -ENOMEM;
    }
    if (!sim_map_info(addr, size, &mi)) {
        return -EIO;
    }
    if (!mi.mapped || !(mi.prot & PROT_READ)) {
        /* pinning the user pages fails */
        return -EFAULT;
    }
    page = cfg->fake_page_size ? cfg->fake_page_size : mi.page_size;

    sim_json_begin(&rj, "region");
    sim_json_u64(&rj, "slot_uid", e->slot);
    sim_json_hex(&rj, "userspace_addr", addr);
    sim_json_u64(&rj, "size", size);
    sim_json_u64(&rj, "page_size", page);
    sim_json_bool(&rj, "hugetlb", mi.hugetlb);
    sim_json_i64(&rj, "numa_node", mi.numa_node);
    sim_json_str(&rj, "mapping", mi.name);
    sim_json_emit(&rj, cfg);

    if (!mi.hugetlb) {
        return -NE_ERR_MEM_NOT_HUGE_PAGE;
    }
    if (!page || page % SIM_MIN_REGION) {
        return -NE_ERR_INVALID_PAGE_SIZE;
    }
    if (cfg->numa_node >= 0 &&
        (mi.numa_mixed || (mi.numa_node >= 0 &&
                           mi.numa_node != cfg->numa_node))) {
        return -NE_ERR_MEM_DIFFERENT_NUMA_NODE;
    }
    n = e->nranges + ranges_of_call(e, size, page);
    sim_json_i64(j, "ranges", n);
    if ((unsigned)n > cfg->max_regions) {
        return -NE_ERR_MEM_MAX_REGIONS;
    }
    e->regions = realloc(e->regions, (e->nregions + 1) *
                         sizeof(*e->regions));
    e->regions[e->nregions].addr = addr;
    e->regions[e->nregions].size = size;
    e->regions[e->nregions].page_size = page;
    e->regions[e->nregions].prot = mi.prot;
    e->nregions++;
    e->nranges = n;
    e->mem_size += size;
    err = sim_enclave_sync(e, false);
    if (err) {
        e->nregions--;
        e->nranges -= ranges_of_call(e, size, page);
        e->mem_size -= size;
    }
    return err;
}

/* ---- NE_START_ENCLAVE ---- */

static void log_eif(SimEnclave *e, const SimEif *r)
{
    SimJson j;

    sim_json_begin(&j, "eif");
    sim_json_u64(&j, "slot_uid", e->slot);
    sim_json_str(&j, "verdict", r->ok ? "ok" : "error");
    sim_json_str(&j, "message", r->message);
    sim_json_str(&j, "arch", r->arch < 0 ? NULL : sim_arch_name(r->arch));
    sim_json_u64(&j, "version", r->version);
    sim_json_u64(&j, "sections", r->nsections);
    sim_json_u64(&j, "ramdisks", r->nramdisks);
    sim_json_bool(&j, "crc_ok", r->crc_ok);
    sim_json_u64(&j, "size", r->size);
    sim_json_u64(&j, "image_offset", SIM_IMAGE_OFFSET);
    if (r->pcr_hex[0][0]) {
        sim_json_str(&j, "pcr0", r->pcr_hex[0]);
        sim_json_str(&j, "pcr1", r->pcr_hex[1]);
        sim_json_str(&j, "pcr2", r->pcr_hex[2]);
    }
    sim_json_str(&j, "cmdline", r->cmdline);
    sim_json_emit(&j, &e->cfg);
}

static int start(SimEnclave *e, struct ne_enclave_start_info *si,
                 SimJson *j)
{
    const SimConfig *cfg = &e->cfg;
    unsigned tpc = cfg->threads_per_core;
    SimSeg *segs;
    SimRegistry r;
    SimJson sj;
    uint32_t cid;
    char vl[SIM_MAX_CPUS * 6] = "[";
    int i, err;

    sim_json_u64(j, "flags", si->flags);
    sim_json_u64(j, "enclave_cid", si->enclave_cid);
    if (si->flags >= NE_ENCLAVE_START_MAX_FLAG_VAL) {
        return -NE_ERR_INVALID_FLAG_VALUE;
    }
    if ((si->enclave_cid >= 1 && si->enclave_cid <= SIM_PARENT_CID) ||
        si->enclave_cid >= UINT32_MAX) {
        return -NE_ERR_INVALID_ENCLAVE_CID;
    }
    if (e->state != SIM_ST_INIT) {
        return -NE_ERR_NOT_IN_INIT_STATE;
    }
    if (!e->nregions) {
        return -NE_ERR_NO_MEM_REGIONS_ADDED;
    }
    if (e->mem_size < cfg->min_mem) {
        return -NE_ERR_ENCLAVE_MEM_MIN_SIZE;
    }
    if (!e->nvcpus) {
        return -NE_ERR_NO_VCPUS_ADDED;
    }
    for (i = 0; i < e->nvcpus; i++) {
        unsigned core = sim_cpu_core(cfg, e->vcpus[i]), t;

        for (t = 0; t < tpc; t++) {
            if (!owns(e, sim_core_cpu(cfg, core, t))) {
                return -NE_ERR_FULL_CORES_NOT_USED;
            }
        }
    }

    /* the hypervisor loads the image: check it and measure it */
    segs = calloc(e->nregions, sizeof(*segs));
    for (i = 0; i < e->nregions; i++) {
        segs[i].p = (const uint8_t *)(uintptr_t)e->regions[i].addr;
        segs[i].len = e->regions[i].size;
    }
    sim_eif_free(&e->eif);
    sim_eif_check(segs, e->nregions, SIM_IMAGE_OFFSET, cfg->arch, &e->eif);
    free(segs);
    log_eif(e, &e->eif);
    if (!e->eif.ok) {
        /* as nitro-enclaves-pci says it */
        return -ENOEXEC;
    }

    if (!sim_reg_open(&r, cfg)) {
        return sim_reg_fail(&r);
    }
    cid = si->enclave_cid;
    if (cid && sim_reg_cid_used(&r, cid)) {
        sim_reg_close(&r, false);
        return -EADDRINUSE;
    }
    if (!cid) {
        for (cid = SIM_FIRST_AUTO_CID; sim_reg_cid_used(&r, cid); cid++) {
            continue;
        }
    }
    /* claim the CID before the lock is dropped */
    e->cid = cid;
    e->flags = si->flags;
    e->state = SIM_ST_RUNNING;
    sim_reg_put(&r, e, false);
    if (!sim_reg_close(&r, true)) {
        e->state = SIM_ST_INIT;
        e->cid = 0;
        e->flags = 0;
        return sim_reg_fail(&r);
    }

    err = sim_enclave_launch(e);
    if (err) {
        e->state = SIM_ST_INIT;
        e->cid = 0;
        sim_enclave_sync(e, false);
        return -err;
    }
    /* from now on the memory belongs to the enclave */
    for (i = 0; i < e->nregions; i++) {
        mprotect((void *)(uintptr_t)e->regions[i].addr, e->regions[i].size,
                 PROT_NONE);
    }
    si->enclave_cid = cid;
    sim_json_u64(j, "cid", cid);

    sim_json_begin(&sj, "start");
    sim_json_u64(&sj, "slot_uid", e->slot);
    sim_json_u64(&sj, "cid", cid);
    sim_json_u64(&sj, "flags", e->flags);
    sim_json_bool(&sj, "debug", e->flags & NE_ENCLAVE_DEBUG_MODE);
    for (i = 0; i < e->nvcpus; i++) {
        sprintf(vl + strlen(vl), "%s%u", i ? "," : "", e->vcpus[i]);
    }
    strcat(vl, "]");
    sim_json_raw(&sj, "vcpus", vl);
    sim_json_u64(&sj, "mem_size", e->mem_size);
    sim_json_u64(&sj, "regions", e->nregions);
    sim_json_str(&sj, "arch", sim_arch_name(e->eif.arch));
    sim_json_str(&sj, "pcr0", e->eif.pcr_hex[0]);
    sim_json_emit(&sj, cfg);
    return 0;
}

/* ---- dispatch ---- */

/* the enclave of pipe @dev:@ino, of this process or (@any) any other */
static SimEnclave *find_enclave(dev_t dev, ino_t ino, bool any)
{
    SimEnclave *e;
    pid_t me = getpid();

    for (e = sim_enclaves; e; e = e->next) {
        if ((any || e->owner == me) && !e->released && e->dev == dev &&
            e->ino == ino) {
            return e;
        }
    }
    return NULL;
}

/*
 * The driver's copy_from_user() and copy_to_user(): a bad pointer is
 * EFAULT, not a crash.  Where the kernel refuses the calls (seccomp),
 * the copy is a plain one.
 */
static int copy_user(void *to, const void *from, size_t len, bool in)
{
    struct iovec local = { in ? to : (void *)from, len };
    struct iovec remote = { in ? (void *)from : to, len };
    ssize_t n = in ? process_vm_readv(getpid(), &local, 1, &remote, 1, 0) :
                     process_vm_writev(getpid(), &local, 1, &remote, 1, 0);

    if (n < 0 && (errno == ENOSYS || errno == EPERM)) {
        memcpy(to, from, len);
        return 0;
    }
    return n == (ssize_t)len ? 0 : -EFAULT;
}

typedef union SimIoctlArg {
    uint64_t slot;
    uint32_t vcpu;
    struct ne_image_load_info info;
    struct ne_user_memory_region region;
    struct ne_enclave_start_info start;
} SimIoctlArg;

/* an enclave fd's @req, with the argument in @a */
static int enclave_ioctl(SimEnclave *e, unsigned long req, SimIoctlArg *a,
                         SimJson *j)
{
    switch (req) {
    case NE_ADD_VCPU:
        return add_vcpu(e, &a->vcpu, j);
    case NE_GET_IMAGE_LOAD_INFO:
        return image_load_info(e, &a->info, j);
    case NE_SET_USER_MEMORY_REGION:
        return set_region(e, &a->region, j);
    default:
        return start(e, &a->start, j);
    }
}

bool sim_ioctl(int fd, unsigned long req, void *arg, int *ret)
{
    struct stat st;
    SimDevice *d;
    SimEnclave *e = NULL;
    const SimConfig *cfg;
    const char *name;
    SimIoctlArg a;
    SimJson j;
    int err;

    if (_IOC_TYPE(req) != 0xAE || (!devices && !any_enclave) ||
        fstat(fd, &st) < 0) {
        return false;
    }
    pthread_mutex_lock(&sim_lock);
    for (d = devices; d; d = d->next) {
        if (d->dev == st.st_dev && d->ino == st.st_ino) {
            break;
        }
    }
    if (!d) {
        e = find_enclave(st.st_dev, st.st_ino, true);
        if (!e) {
            pthread_mutex_unlock(&sim_lock);
            return false;
        }
    }
    cfg = d ? &d->cfg : &e->cfg;
    name = cmd_name(req);
    sim_json_begin(&j, "ioctl");
    sim_json_i64(&j, "fd", fd);
    sim_json_str(&j, "cmd", name ? name : "unknown");
    if (!name) {
        sim_json_hex(&j, "request", req);
    }
    if (e) {
        sim_json_u64(&j, "slot_uid", e->slot);
    }
    if (!name || (d != NULL) != (req == NE_CREATE_VM)) {
        err = -ENOTTY;
    } else if (e && e->owner != getpid() && req != NE_GET_IMAGE_LOAD_INFO) {
        /*
         * Another process (a forked child): the driver refuses memory
         * and vCPUs of another mm; the simulated enclave lives in the
         * process that created it, so its start is refused too.
         */
        err = -EIO;
    } else {
        /* in, and for _IOR the check that the result can be written */
        err = copy_user(&a, arg, _IOC_SIZE(req), true);
        if (!err && (_IOC_DIR(req) & _IOC_READ)) {
            err = copy_user(arg, &a, _IOC_SIZE(req), false);
        }
        if (!err) {
            err = d ? create_vm(d, &a.slot, &j) :
                      enclave_ioctl(e, req, &a, &j);
        }
        if (err >= 0 && (_IOC_DIR(req) & _IOC_READ)) {
            copy_user(arg, &a, _IOC_SIZE(req), false);
        }
    }
    /* 0, or the enclave fd of NE_CREATE_VM, or -errno */
    *ret = err < 0 ? -1 : err;
    sim_json_result(&j, err < 0 ? -err : 0);
    sim_json_emit(&j, cfg);
    pthread_mutex_unlock(&sim_lock);
    if (err < 0) {
        errno = -err;
    }
    return true;
}

/* ---- close and release ---- */

void sim_enclave_release(SimEnclave *e, bool restore)
{
    SimEnclave **pp;
    SimJson j;
    int i;

    if (e->released) {
        return;
    }
    e->released = true;
    if (e->state == SIM_ST_RUNNING && e->thread_running) {
        /* the enclave thread did not stop in time: leave it its state */
        sim_enclave_sync(e, true);
        return;
    }
    if (restore && e->state != SIM_ST_INIT) {
        for (i = 0; i < e->nregions; i++) {
            mprotect((void *)(uintptr_t)e->regions[i].addr,
                     e->regions[i].size, e->regions[i].prot);
        }
    }
    if (e->wr_fd >= 0) {
        sim_real.close(e->wr_fd);
        e->wr_fd = -1;
    }
    sim_enclave_sync(e, true);
    sim_json_begin(&j, "release");
    sim_json_u64(&j, "slot_uid", e->slot);
    sim_json_u64(&j, "cid", e->cid);
    sim_json_emit(&j, &e->cfg);
    for (pp = &sim_enclaves; *pp; pp = &(*pp)->next) {
        if (*pp == e) {
            *pp = e->next;
            break;
        }
    }
    free(e->regions);
    free(e->clients);
    free(e->con_buf);
    e->regions = NULL;
    e->clients = NULL;
    e->con_buf = NULL;
    sim_eif_free(&e->eif);
    e->next = graveyard;
    graveyard = e;
}

void sim_before_close(int fd, bool *is_enclave, dev_t *dev, ino_t *ino)
{
    struct stat st;

    *is_enclave = false;
    if (!any_enclave || fstat(fd, &st) < 0 || !S_ISFIFO(st.st_mode)) {
        return;
    }
    pthread_mutex_lock(&sim_lock);
    if (find_enclave(st.st_dev, st.st_ino, false)) {
        *is_enclave = true;
        *dev = st.st_dev;
        *ino = st.st_ino;
    }
    pthread_mutex_unlock(&sim_lock);
}

/* does any fd of this process still refer to pipe inode @ino? */
static bool pipe_still_open(ino_t ino)
{
    char want[64], path[300], link[64];
    struct dirent *de;
    DIR *dir = opendir("/proc/self/fd");
    bool found = false;
    ssize_t n;

    if (!dir) {
        return false;
    }
    snprintf(want, sizeof(want), "pipe:[%llu]", (unsigned long long)ino);
    while ((de = readdir(dir)) && !found) {
        snprintf(path, sizeof(path), "/proc/self/fd/%s", de->d_name);
        n = readlink(path, link, sizeof(link) - 1);
        if (n > 0) {
            link[n] = 0;
            found = !strcmp(link, want);
        }
    }
    closedir(dir);
    return found;
}

void sim_after_close(dev_t dev, ino_t ino)
{
    SimEnclave *e;
    struct pollfd pfd;
    bool gone;

    pthread_mutex_lock(&sim_lock);
    e = find_enclave(dev, ino, false);
    if (e) {
        if (e->wr_fd >= 0) {
            /* POLLERR on the write end: no reader left anywhere */
            pfd.fd = e->wr_fd;
            pfd.events = 0;
            gone = poll(&pfd, 1, 0) == 1 && (pfd.revents & POLLERR);
        } else {
            gone = !pipe_still_open(ino);
        }
        if (gone) {
            sim_enclave_stop(e, "fd-closed");
            sim_enclave_release(e, true);
        }
    }
    pthread_mutex_unlock(&sim_lock);
}

void sim_process_exit(void)
{
    SimEnclave *e, *next;
    struct timespec ts;
    pid_t me = getpid();

    if (!any_enclave) {
        return;
    }
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += 2;
    if (pthread_mutex_timedlock(&sim_lock, &ts)) {
        return;
    }
    for (e = sim_enclaves; e; e = next) {
        next = e->next;
        if (e->owner != me || e->released) {
            continue;
        }
        e->at_exit = true;
        sim_enclave_stop(e, "fd-closed");
        sim_enclave_release(e, false);
    }
    pthread_mutex_unlock(&sim_lock);
}
