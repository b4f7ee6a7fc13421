/*
 * AWS Nitro Enclaves: the command lines that boot an enclave image in
 * QEMU's emulated -M nitro-enclave machine (x86_64), or an arm64 image's
 * kernel in -M virt, under TCG
 *
 * Shared by the simulator's real-boot mode (contrib/nitro-sim/boot.c,
 * NITRO_SIM_BOOT=qemu) and the hypervisor side of the emulated PCI
 * device (hw/nitro/ne-pci.c).  Plain C and POSIX, no glib: the
 * simulator's preload library links libc only.
 *
 * Copyright (c) 2026 Nitro Enclaves for QEMU authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef HW_NITRO_ENCLAVE_LAUNCH_H
#define HW_NITRO_ENCLAVE_LAUNCH_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/* PCR0 to PCR8: the ones virtio-nsm can preset */
#define NITRO_LAUNCH_PCRS 9

/* What the enclave is booted with */
typedef struct NitroEnclaveLaunch {
    const char *qemu;           /* qemu-system-x86_64 */
    const char *backend;        /* contrib/vhost-user-vsock */
    const char *eif;            /* the image, as read from enclave memory */
    const char *vhost;          /* the backend's vhost-user socket */
    const char *gateway;        /* the backend's host side (--uds-path) */
    /* the guest's host ports go out as AF_VSOCK (seen from CID 3) */
    bool vsock_host;
    uint32_t cid;
    uint64_t mem_mib;
    unsigned vcpus;
    bool debug;
    /* virtio-nsm's signing key and chain, or NULL for the device's own */
    const char *nsm_key;
    const char *nsm_chain;
    /* module_id i-<instance>-enc<slot>, or <instance_id>-enc<slot> */
    uint64_t instance;
    const char *instance_id;
    uint64_t slot;
    /*
     * virtio-nsm's preset PCRs (hex) by number, or NULL; not in debug
     * mode.  PCR3 and PCR4 (the parent's); for an arm64 image also the
     * PCR0-2 (and PCR8 of a signed one) that -M nitro-enclave measures
     */
    const char *pcr[NITRO_LAUNCH_PCRS];
    /*
     * An arm64 image: qemu-system-aarch64 -M virt boots its kernel,
     * ramdisks (concatenated) and command line, as read from enclave
     * memory; eif is unused
     */
    bool aarch64;
    const char *kernel;
    const char *initrd;
    const char *cmdline;

    /* Filled in by nitro_enclave_launch_argv() */
    char machine[128];
    char chardev[PATH_MAX + 48];
    char mem[32];
    char smp[16];
    char cid_str[16];
    char key_opt[PATH_MAX + 64];
    char chain_opt[PATH_MAX + 64];
    char pcr_opt[NITRO_LAUNCH_PCRS][160];
    char module_id[96];
    char module_opt[128];
    char mem_backend[64];
    char append[4096];
    const char *qemu_argv[56];
    const char *backend_argv[16];
} NitroEnclaveLaunch;

/*
 * Fill in @l's qemu_argv (the machine, with its ttyS0 on stdout) and
 * backend_argv (its listening vhost-user socket inherited as fd 3).
 * Returns false if a path does not fit.
 */
bool nitro_enclave_launch_argv(NitroEnclaveLaunch *l);

/*
 * fork + exec @argv with @env (execvpe if argv[0] has no '/'), @fd3 as
 * fd 3 (if >= 0), stdout to @out (/dev/null if < 0), stderr to @err,
 * nothing else open, no signal blocked; the child gets SIGKILL when the
 * forking thread ends.
 * Returns the pid, or -1 with errno.
 */
pid_t nitro_enclave_spawn(const char *const argv[], char *const env[],
                          int fd3, int out, int err);

#endif
