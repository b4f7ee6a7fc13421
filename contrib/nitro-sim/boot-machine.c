/*
 * nitro-sim: the emulated machine of NITRO_SIM_BOOT=qemu
 *
 * x86_64: QEMU's -M nitro-enclave boots the EIF itself (its kernel,
 * command line and initrds; its PCRs for virtio-nsm) from a copy of the
 * image in enclave memory, under TCG.  Guest time follows the instruction
 * count (-icount): on a loaded host, real-time TCG runs the kernel's TSC
 * calibration against the PIT too slowly, it fails and the kernel hangs.
 *
 * The machine's options are built here, one per argument (SimArgv).
 *
 * Copyright (c) 2026 Nitro Enclaves for QEMU authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "standard-headers/linux/nitro_enclaves.h"
#include "nitro-sim.h"

void sim_argv_add(SimArgv *a, const char *fmt, ...)
{
    va_list ap;
    char *s;

    if (a->failed) {
        return;
    }
    if (a->n + 2 > a->cap) {
        int cap = a->cap ? a->cap * 2 : 32;
        char **v = realloc(a->v, cap * sizeof(*v));

        if (!v) {
            a->failed = true;
            return;
        }
        a->v = v;
        a->cap = cap;
    }
    va_start(ap, fmt);
    if (vasprintf(&s, fmt, ap) < 0) {
        a->failed = true;
    } else {
        a->v[a->n++] = s;
        a->v[a->n] = NULL;
    }
    va_end(ap);
}

void sim_argv_free(SimArgv *a)
{
    int i;

    for (i = 0; i < a->n; i++) {
        free(a->v[i]);
    }
    free(a->v);
    *a = (SimArgv) { 0 };
}

/* append bytes [@off, @off + @len) of the image in enclave memory to @fd */
static int write_range(SimEnclave *e, int fd, uint64_t off, uint64_t len)
{
    uint64_t skip = SIM_IMAGE_OFFSET + off, left = len;
    int i;

    for (i = 0; i < e->nregions && left; i++) {
        const uint8_t *p = (const uint8_t *)(uintptr_t)e->regions[i].addr;
        uint64_t n = e->regions[i].size;

        if (skip >= n) {
            skip -= n;
            continue;
        }
        p += skip;
        n -= skip;
        skip = 0;
        n = n < left ? n : left;
        left -= n;
        while (n) {
            ssize_t w = write(fd, p, n);

            if (w <= 0) {
                return w < 0 ? errno : EIO;
            }
            p += w;
            n -= w;
        }
    }
    return left ? EIO : 0;
}

/* @path: the @n parts of the image, each padded to 4 bytes but the last */
static int write_parts(SimEnclave *e, const char *path,
                       const SimEifPart *parts, unsigned n)
{
    static const char zeros[4];
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    int err = fd < 0 ? errno : 0;
    unsigned i;

    for (i = 0; !err && i < n; i++) {
        size_t pad = i + 1 < n ? -parts[i].len & 3 : 0;

        err = write_range(e, fd, parts[i].off, parts[i].len);
        if (!err && pad && write(fd, zeros, pad) != (ssize_t)pad) {
            err = EIO;
        }
    }
    if (fd >= 0) {
        sim_real.close(fd);
    }
    return err;
}

/* QEMU for @name: this process if it is that QEMU, else as a program */
static void default_qemu(const char *name, char *buf, size_t len)
{
    char self[PATH_MAX], rel[64];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);

    if (n > 0) {
        const char *base;

        self[n] = 0;
        base = strrchr(self, '/');
        if (!strcmp(base ? base + 1 : self, name)) {
            snprintf(buf, len, "%s", self);
            return;
        }
    }
    snprintf(rel, sizeof(rel), "../../%s", name);
    sim_boot_program(rel, name, buf, len);
}

/* the common options: QEMU, memory, vCPUs, no reboot, ttyS0 on stdout */
static void common_args(SimEnclave *e, const char *name, SimArgv *a)
{
    char qemu[PATH_MAX];

    if (e->cfg.qemu[0]) {
        snprintf(qemu, sizeof(qemu), "%s", e->cfg.qemu);
    } else {
        default_qemu(name, qemu, sizeof(qemu));
    }
    sim_argv_add(a, "%s", qemu);
    sim_argv_add(a, "-accel");
    sim_argv_add(a, "tcg");
    sim_argv_add(a, "-m");
    sim_argv_add(a, "%lluM", (unsigned long long)(e->mem_size / SIM_MIB));
    sim_argv_add(a, "-smp");
    sim_argv_add(a, "%d", e->nvcpus);
    sim_argv_add(a, "-nodefaults");
    sim_argv_add(a, "-display");
    sim_argv_add(a, "none");
    /* on Nitro, a reboot terminates the enclave */
    sim_argv_add(a, "-no-reboot");
    sim_argv_add(a, "-serial");
    sim_argv_add(a, "stdio");
}

static int x86_64_args(SimEnclave *e, const char *vhost, const char *att,
                       const char *module_id, SimArgv *a)
{
    char eif[PATH_MAX + 48];
    SimEifPart all = { 0, e->eif.size };
    int err;

    snprintf(eif, sizeof(eif), "%s.eif", e->boot_base);
    err = write_parts(e, eif, &all, 1);
    if (err) {
        return err;
    }
    common_args(e, "qemu-system-x86_64", a);
    sim_argv_add(a, "-M");
    sim_argv_add(a, "nitro-enclave,vsock=vsock0,acpi=on,id=%s", module_id);
    sim_argv_add(a, "-icount");
    sim_argv_add(a, "shift=1");
    sim_argv_add(a, "-chardev");
    sim_argv_add(a, "socket,id=vsock0,path=%s", vhost);
    sim_argv_add(a, "-global");
    sim_argv_add(a, "virtio-mmio.force-legacy=false");
    sim_argv_add(a, "-global");
    sim_argv_add(a, "virtio-nsm-device.private-key=%s/leaf.key", att);
    sim_argv_add(a, "-global");
    sim_argv_add(a, "virtio-nsm-device.certificate-chain=%s/chain.pem", att);
    sim_argv_add(a, "-global");
    sim_argv_add(a, "virtio-nsm-device.debug-mode=%s",
                 (e->flags & NE_ENCLAVE_DEBUG_MODE) ? "on" : "off");
    sim_argv_add(a, "-kernel");
    sim_argv_add(a, "%s", eif);
    return 0;
}

int sim_boot_machine(SimEnclave *e, const char *vhost, const char *att,
                     SimArgv *a)
{
    uint64_t instance = 14695981039346656037ULL;
    char module_id[64];
    int err;

    /*
     * module_id: an instance ID per simulation directory (FNV-1a of its
     * path), the slot as enclave ID
     */
    for (const char *c = e->cfg.dir; *c; c++) {
        instance = (instance ^ (uint8_t)*c) * 1099511628211ULL;
    }
    snprintf(module_id, sizeof(module_id), "i-%017llx-enc%016llx",
             (unsigned long long)instance, (unsigned long long)e->slot);
    err = x86_64_args(e, vhost, att, module_id, a);
    return err ? err : a->failed ? ENOMEM : 0;
}
