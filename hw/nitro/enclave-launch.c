/*
 * AWS Nitro Enclaves: the command lines that boot an enclave image in
 * QEMU's emulated -M nitro-enclave machine under TCG
 *
 * The machine runs under TCG with guest time following the instruction
 * count (-icount): on a loaded host, real-time TCG runs the kernel's TSC
 * calibration against the PIT too slowly, it fails and the kernel hangs.
 * 4 ns per instruction (shift=2) keeps guest time close to real time on
 * a 2-core host (0.9x; shift=1 made it 0.4x, and the boot waited out its
 * delays for 0.5 s more).
 * Its vsock device is served by contrib/vhost-user-vsock with the
 * enclave's CID; its ttyS0 (the debug console) is QEMU's stdout; ACPI
 * lets a Debian kernel find its virtio-mmio devices and power off.
 *
 * -M nitro-enclave is x86_64 only.  An arm64 image boots in
 * qemu-system-aarch64 -M virt (a Graviton2 CPU, neoverse-n1) from its
 * kernel, ramdisks and command line: the same vsock and NSM devices on
 * virtio-mmio, the NSM preset with the PCRs the image measures (PCR8 too,
 * for a signed image), guest
 * memory in a shared memfd for the vhost-user backend, and the machine's
 * PL011 (ttyAMA0, named on the command line) as the debug console.  The
 * generic timer needs no calibration: no -icount, and the vCPUs run in
 * threads of their own.
 *
 * No qemu/osdep.h: this file is also built into the simulator's preload
 * library (contrib/nitro-sim), which links libc only.
 *
 * Copyright (c) 2026 Nitro Enclaves for QEMU authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

#include "hw/nitro/enclave-launch.h"

#define FITS(buf, ...) (snprintf(buf, sizeof(buf), __VA_ARGS__) < \
                        (int)sizeof(buf))

/* -M virt's own options, for an arm64 image */
static bool virt_options(NitroEnclaveLaunch *l)
{
    return FITS(l->machine, "virt,gic-version=3,memory-backend=mem0") &&
           FITS(l->mem_backend, "memory-backend-memfd,id=mem0,size=%lluM,"
                "share=on", (unsigned long long)l->mem_mib) &&
           FITS(l->module_opt, "virtio-nsm-device.module-id=%s",
                l->module_id) &&
           FITS(l->append, "%s console=ttyAMA0", l->cmdline);
}

/* the machine and its devices */
static const char **machine_argv(NitroEnclaveLaunch *l, const char **q)
{
    *q++ = l->qemu;
    *q++ = "-M";
    *q++ = l->machine;
    *q++ = "-accel";
    *q++ = "tcg";
    if (l->aarch64) {
        *q++ = "-cpu";
        *q++ = "neoverse-n1";
        *q++ = "-object";
        *q++ = l->mem_backend;
    } else {
        *q++ = "-icount";
        *q++ = "shift=2";
    }
    *q++ = "-m";
    *q++ = l->mem;
    *q++ = "-smp";
    *q++ = l->smp;
    *q++ = "-nodefaults";
    *q++ = "-display";
    *q++ = "none";
    *q++ = "-no-reboot";
    *q++ = "-chardev";
    *q++ = l->chardev;
    if (l->aarch64) {
        /* -M nitro-enclave has both, and the module ID as its id */
        *q++ = "-device";
        *q++ = "vhost-user-vsock-device,chardev=vsock0";
        *q++ = "-device";
        *q++ = "virtio-nsm-device";
        *q++ = "-global";
        *q++ = l->module_opt;
    }
    return q;
}

bool nitro_enclave_launch_argv(NitroEnclaveLaunch *l)
{
    const char **q = l->qemu_argv, **b = l->backend_argv;
    int i;

    for (i = 0; i < NITRO_LAUNCH_PCRS; i++) {
        if (l->pcr[i] && !FITS(l->pcr_opt[i], "virtio-nsm-device.pcr%d=%s",
                               i, l->pcr[i])) {
            return false;
        }
    }

    if ((l->instance_id ?
         !FITS(l->module_id, "%s-enc%016llx", l->instance_id,
               (unsigned long long)l->slot) :
         !FITS(l->module_id, "i-%017llx-enc%016llx",
               (unsigned long long)l->instance,
               (unsigned long long)l->slot)) ||
        (l->aarch64 ? !virt_options(l) :
         !FITS(l->machine, "nitro-enclave,vsock=vsock0,acpi=on,id=%s",
               l->module_id)) ||
        !FITS(l->chardev, "socket,id=vsock0,path=%s", l->vhost) ||
        !FITS(l->mem, "%lluM", (unsigned long long)l->mem_mib) ||
        !FITS(l->smp, "%u", l->vcpus) ||
        !FITS(l->cid_str, "%u", l->cid) ||
        (l->nsm_key && !FITS(l->key_opt,
                             "virtio-nsm-device.private-key=%s",
                             l->nsm_key)) ||
        (l->nsm_chain && !FITS(l->chain_opt,
                               "virtio-nsm-device.certificate-chain=%s",
                               l->nsm_chain))) {
        return false;
    }

    q = machine_argv(l, q);
    *q++ = "-global";
    *q++ = "virtio-mmio.force-legacy=false";
    if (l->nsm_key) {
        *q++ = "-global";
        *q++ = l->key_opt;
    }
    if (l->nsm_chain) {
        *q++ = "-global";
        *q++ = l->chain_opt;
    }
    *q++ = "-global";
    *q++ = l->debug ? "virtio-nsm-device.debug-mode=on" :
                      "virtio-nsm-device.debug-mode=off";
    /* debug mode: PCR0-15 read as zero, presets are refused */
    for (i = 0; i < NITRO_LAUNCH_PCRS && !l->debug; i++) {
        if (l->pcr[i]) {
            *q++ = "-global";
            *q++ = l->pcr_opt[i];
        }
    }
    *q++ = "-serial";
    *q++ = "stdio";
    *q++ = "-kernel";
    if (l->aarch64) {
        *q++ = l->kernel;
        *q++ = "-initrd";
        *q++ = l->initrd;
        *q++ = "-append";
        *q++ = l->append;
    } else {
        *q++ = l->eif;
    }
    *q = NULL;

    *b++ = l->backend;
    *b++ = "--fd";
    *b++ = "3";
    *b++ = "--guest-cid";
    *b++ = l->cid_str;
    *b++ = "--uds-path";
    *b++ = l->gateway;
    if (l->vsock_host) {
        *b++ = "--vsock";
        *b++ = "--host-cid";
        *b++ = "3";
    }
    *b = NULL;
    return true;
}

pid_t nitro_enclave_spawn(const char *const argv[], char *const env[],
                          int fd3, int out, int err)
{
    pid_t pid = fork();

    if (pid == 0) {
        int devnull = open("/dev/null", O_RDWR);
        sigset_t none;

        /*
         * The forking thread may block signals (QEMU's vCPU threads block
         * them all) and exec keeps the mask: the child must see SIGTERM
         */
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        dup2(devnull, 0);
        dup2(out >= 0 ? out : devnull, 1);
        dup2(err, 2);
        if (fd3 >= 0) {
            dup2(fd3, 3);
        }
        syscall(SYS_close_range, fd3 >= 0 ? 4 : 3, ~0U, 0);
        if (strchr(argv[0], '/')) {
            execve(argv[0], (char *const *)argv, env);
        } else {
            execvpe(argv[0], (char *const *)argv, env);
        }
        dprintf(2, "cannot run %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    return pid;
}
