/*
 * nitro-sim: boot the enclave for real (NITRO_SIM_BOOT=qemu)
 *
 * Instead of playing the enclave, the simulated hypervisor runs the image
 * that was loaded into the donated memory in QEMU's emulated
 * `-M nitro-enclave` machine under TCG (an arm64 image: its kernel,
 * ramdisks and command line in qemu-system-aarch64 -M virt, see
 * hw/nitro/enclave-launch.c), with the enclave's memory size
 * and vCPU count, and contrib/vhost-user-vsock as its vsock device with
 * the enclave's CID.  The backend runs with this library preloaded and
 * NITRO_SIM_VSOCK_CID set, so the enclave's connections (its init's
 * heartbeat to (3, 9000)) come out of the enclave's CID in the
 * simulation's vsock space; parent connections to the enclave's CID reach
 * the backend's gateway (vsock.c).  Guest time follows the instruction
 * count (-icount): on a loaded host, real-time TCG runs the kernel's TSC
 * calibration against the PIT too slowly, it fails and the kernel hangs.
 * The machine's ttyS0 becomes the debug console.  As on Nitro, the
 * enclave stops when its kernel powers off (the machine exits), reboots
 * (its "Restarting system" line: a reboot terminates an enclave, it never
 * boots twice) or panics (once the panic is printed, up to its
 * "Rebooting in" or end line, instead of waiting panic= seconds); the
 * console gets every byte the machine wrote before it is ended.  Both
 * processes die with the thread that started them
 * (PR_SET_PDEATHSIG) and are ended when the enclave stops.
 *
 * Files, all removed at stop: $NITRO_SIM_DIR/enclave-<cid>.eif (the
 * image, as read from enclave memory; for arm64 .kernel and .initrd),
 * .vhost (vhost-user socket),
 * .vsock (the backend's gateway); enclave-<cid>.qemu.log keeps QEMU's
 * and the backend's messages.  The machine's virtio-nsm signs
 * attestation documents with a chain that qemu-eif make-attestation-chain
 * makes once per simulation directory, kept in
 * $NITRO_SIM_DIR/attestation/ (root.pem verifies them), module_id
 * <instance>-enc<slot> and, in debug mode, zero PCRs; else PCR3 and PCR4
 * are those of the parent's IAM role (NITRO_SIM_IAM_ROLE, if any) and
 * instance ID (NITRO_SIM_INSTANCE_ID, else made up per directory), which
 * Nitro extends once into a zero PCR, as AWS documents them:
 * SHA-384(48 zero bytes || the ARN or ID).  The rest of the document's
 * boot PCRs are what the machine measures.
 *
 * Copyright (c) 2026 Nitro Enclaves for QEMU authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include <dlfcn.h>
#include <gnutls/gnutls.h>
#include <gnutls/crypto.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>

#include "standard-headers/linux/nitro_enclaves.h"
#include "hw/nitro/enclave-launch.h"
#include "nitro-sim.h"

#define PANIC_LINE "Kernel panic - not syncing"
/* the last line of a panic: before panic= seconds, or the end marker */
#define PANIC_WAIT_LINE "Rebooting in "
#define PANIC_END_LINE "---[ end Kernel panic"
/* a panic's lines come this close together, and not for longer */
#define PANIC_QUIET_MS 1000
#define PANIC_MAX_MS 5000
/* printed by the kernel just before it resets the machine */
#define REBOOT_LINE "reboot: Restarting system"

static void boot_log(SimEnclave *e, const char *state, const char *detail)
{
    SimJson j;

    sim_json_begin(&j, "boot");
    sim_json_u64(&j, "cid", e->cid);
    sim_json_u64(&j, "slot_uid", e->slot);
    sim_json_str(&j, "state", state);
    if (detail) {
        sim_json_str(&j, "detail", detail);
    }
    sim_json_emit(&j, &e->cfg);
}

static int fail(SimEnclave *e, int err, const char *fmt, const char *arg)
{
    char msg[PATH_MAX + 256];

    snprintf(msg, sizeof(msg), fmt, arg);
    fprintf(stderr, "nitro-sim: NITRO_SIM_BOOT=qemu: %s\n", msg);
    boot_log(e, "error", msg);
    return err;
}

void sim_boot_gateway_path(const SimConfig *cfg, uint32_t cid, char *buf,
                           size_t len)
{
    snprintf(buf, len, "%s/enclave-%u.vsock", cfg->dir, cid);
}

/* @len bytes at @off into the image in enclave memory, to @fd */
static int copy_image(SimEnclave *e, int fd, uint64_t off, uint64_t len)
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
    return 0;
}

/* @n parts of the image (@off, @len) one after the other, to @path */
static int write_parts(SimEnclave *e, const char *path, const uint64_t *off,
                       const uint64_t *len, unsigned n)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    int err = 0;
    unsigned i;

    if (fd < 0) {
        return errno;
    }
    for (i = 0; i < n && !err; i++) {
        err = copy_image(e, fd, off[i], len[i]);
    }
    sim_real.close(fd);
    return err;
}

/*
 * What the machine boots, as the hypervisor finds it in enclave memory:
 * the image (x86_64), or its kernel and its ramdisks one after the other
 * (aarch64; the image too when it is signed, for its PCR8)
 */
static int write_image(SimEnclave *e, const char *path, const char *kernel,
                       const char *initrd)
{
    const uint64_t start = 0;
    bool aarch64 = e->eif.arch == SIM_ARCH_AARCH64;
    int err = 0;

    if (!aarch64 || e->eif.is_signed) {
        err = write_parts(e, path, &start, &e->eif.size, 1);
    }
    if (!err && aarch64) {
        err = write_parts(e, kernel, &e->eif.kernel_off,
                          &e->eif.kernel_size, 1);
    }
    if (!err && aarch64) {
        err = write_parts(e, initrd, e->eif.ramdisk_off,
                          e->eif.ramdisk_size, e->eif.nramdisks);
    }
    return err;
}

/* a program at @rel from this library (build tree, install), or in PATH */
static void default_program(const char *rel, const char *name, char *buf,
                            size_t len)
{
    Dl_info info;
    char lib[PATH_MAX];

    if (dladdr((void *)default_program, &info) && info.dli_fname &&
        realpath(info.dli_fname, lib)) {
        char *slash = strrchr(lib, '/');

        if (slash) {
            *slash = 0;
            snprintf(buf, len, "%s/%s", lib, rel);
            if (access(buf, X_OK) == 0) {
                return;
            }
        }
    }
    snprintf(buf, len, "%s", name);
}

/* qemu-system-@arch: this program, or next to the library, or in PATH */
static void default_qemu(const char *arch, char *buf, size_t len)
{
    char self[PATH_MAX], name[32], rel[48];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);

    snprintf(name, sizeof(name), "qemu-system-%s", arch);
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
    default_program(rel, name, buf, len);
}

/* environment of a child: ours, minus @drop, plus @add (may be NULL) */
static char **child_env(const char *drop, const char *add)
{
    size_t n = 0, k = 0, dl = strlen(drop);
    char **env;

    while (environ[n]) {
        n++;
    }
    env = calloc(n + 2, sizeof(*env));
    if (!env) {
        return NULL;
    }
    for (n = 0; environ[n]; n++) {
        if (strncmp(environ[n], drop, dl) || environ[n][dl] != '=') {
            env[k++] = environ[n];
        }
    }
    if (add) {
        env[k++] = (char *)add;
    }
    return env;
}

/* qemu-eif: next to this program (installed), or as default_program() */
static void eif_tool(char *buf, size_t len)
{
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    char *slash;

    if (n > 0) {
        self[n] = 0;
        slash = strrchr(self, '/');
        if (slash) {
            *slash = 0;
            if (snprintf(buf, len, "%s/qemu-eif", self) < (int)len &&
                access(buf, X_OK) == 0) {
                return;
            }
        }
    }
    default_program("../qemu-eif/qemu-eif", "qemu-eif", buf, len);
}

/*
 * PCR8 of the signed image @eif as qemu-eif describe measures it (the
 * simulator does not parse signatures) into @hex; false if it cannot
 */
static bool signed_pcr8(const char *eif, char hex[2 * 48 + 1], char **env,
                        int logfd)
{
    char tool[PATH_MAX], out[16384], *p;
    const char *const argv[] = { tool, "describe", eif, NULL };
    size_t got = 0;
    ssize_t n;
    int pipefd[2];
    pid_t pid;

    if (pipe2(pipefd, O_CLOEXEC) < 0) {
        return false;
    }
    eif_tool(tool, sizeof(tool));
    pid = nitro_enclave_spawn(argv, env, -1, pipefd[1], logfd);
    sim_real.close(pipefd[1]);
    while (got < sizeof(out) - 1 &&
           (n = read(pipefd[0], out + got, sizeof(out) - 1 - got)) != 0) {
        if (n < 0 && errno != EINTR) {
            break;
        }
        got += n > 0 ? n : 0;
    }
    out[got] = 0;
    sim_real.close(pipefd[0]);
    while (pid > 0 && waitpid(pid, NULL, 0) < 0 && errno == EINTR) {
        continue;
    }
    p = strstr(out, "\"PCR8\": \"");
    if (!p || strspn(p + 9, "0123456789abcdef") != 2 * 48) {
        return false;
    }
    memcpy(hex, p + 9, 2 * 48);
    hex[2 * 48] = 0;
    return true;
}

/*
 * The chain of $NITRO_SIM_DIR/attestation, made by the first enclave that
 * boots (under a lock: enclaves of several processes share it); false if
 * it cannot be made (the reason is in @logfd)
 */
static bool attestation_chain(SimEnclave *e, char *dir, size_t len,
                              char **env, int logfd)
{
    char tool[PATH_MAX], path[PATH_MAX + 64];
    const char *const argv[] = {
        tool, "make-attestation-chain", "--dir", dir, NULL
    };
    int lock;
    pid_t pid;

    snprintf(dir, len, "%s/attestation", e->cfg.dir);
    snprintf(path, sizeof(path), "%s/attestation.lock", e->cfg.dir);
    lock = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (lock < 0 || flock(lock, LOCK_EX) < 0) {
        dprintf(logfd, "nitro-sim: %s: %s\n", path, strerror(errno));
    } else {
        snprintf(path, sizeof(path), "%s/chain.pem", dir);
        if (access(path, R_OK)) {
            eif_tool(tool, sizeof(tool));
            pid = nitro_enclave_spawn(argv, env, -1, logfd, logfd);
            while (pid > 0 && waitpid(pid, NULL, 0) < 0 && errno == EINTR) {
                continue;
            }
        }
    }
    if (lock >= 0) {
        sim_real.close(lock);
    }
    snprintf(path, sizeof(path), "%s/chain.pem", dir);
    return access(path, R_OK) == 0;
}

/* The PCR that Nitro makes of @text, in hex: SHA-384(48 zeros || @text) */
static bool nitro_pcr_of(char hex[2 * 48 + 1], const char *text)
{
    size_t tl = strlen(text), i;
    uint8_t *msg = calloc(1, 48 + tl), pcr[48];
    bool ok = msg;

    if (ok) {
        memcpy(msg + 48, text, tl);
        ok = !gnutls_hash_fast(GNUTLS_DIG_SHA384, msg, 48 + tl, pcr);
    }
    free(msg);
    for (i = 0; ok && i < sizeof(pcr); i++) {
        snprintf(hex + 2 * i, 3, "%02x", pcr[i]);
    }
    return ok;
}

static int pidfd(pid_t pid)
{
    return syscall(SYS_pidfd_open, pid, 0);
}

int sim_boot_start(SimEnclave *e)
{
    char qemu[PATH_MAX], backend[PATH_MAX], eif[PATH_MAX + 48];
    char kernel[PATH_MAX + 48], initrd[PATH_MAX + 48];
    char vhost[PATH_MAX + 48], gateway[PATH_MAX + 48], log[PATH_MAX + 48];
    char vsock_cid[48], att[PATH_MAX + 16], nsm_key[PATH_MAX + 32];
    char nsm_chain[PATH_MAX + 32], instance_id[32];
    char pcr3[2 * 48 + 1], pcr4[2 * 48 + 1], pcr8[2 * 48 + 1];
    struct sockaddr_un sun = { .sun_family = AF_UNIX };
    bool aarch64 = e->eif.arch == SIM_ARCH_AARCH64;
    bool has_pcr8 = aarch64 && e->eif.is_signed;
    int sv[2] = { -1, -1 }, lsock = -1, logfd = -1, err;
    char **qenv = NULL, **benv = NULL;
    NitroEnclaveLaunch l = { 0 };

    e->qemu_pid = e->backend_pid = 0;
    e->qemu_pidfd = e->backend_pidfd = e->serial_fd = -1;
    e->line_len = 0;
    if (e->cfg.qemu[0]) {
        snprintf(qemu, sizeof(qemu), "%s", e->cfg.qemu);
    } else {
        default_qemu(sim_arch_name(e->eif.arch), qemu, sizeof(qemu));
    }
    if (e->cfg.backend[0]) {
        snprintf(backend, sizeof(backend), "%s", e->cfg.backend);
    } else {
        default_program("../vhost-user-vsock/vhost-user-vsock",
                        "vhost-user-vsock", backend, sizeof(backend));
        if (!strchr(backend, '/')) {
            /* installed: PREFIX/lib/nitro-sim/ and PREFIX/bin/ */
            default_program("../../bin/vhost-user-vsock", "vhost-user-vsock",
                            backend, sizeof(backend));
        }
    }
    snprintf(e->boot_base, sizeof(e->boot_base), "%s/enclave-%u",
             e->cfg.dir, e->cid);
    snprintf(eif, sizeof(eif), "%s.eif", e->boot_base);
    snprintf(kernel, sizeof(kernel), "%s.kernel", e->boot_base);
    snprintf(initrd, sizeof(initrd), "%s.initrd", e->boot_base);
    snprintf(log, sizeof(log), "%s.qemu.log", e->boot_base);
    sim_boot_gateway_path(&e->cfg, e->cid, gateway, sizeof(gateway));
    if (snprintf(vhost, sizeof(vhost), "%s.vhost", e->boot_base) >=
        (int)sizeof(sun.sun_path) || strlen(gateway) >= sizeof(sun.sun_path)) {
        return fail(e, ENAMETOOLONG, "NITRO_SIM_DIR %s is too long for "
                    "the enclave's sockets (108 bytes)", e->cfg.dir);
    }

    err = write_image(e, eif, kernel, initrd);
    if (err) {
        return fail(e, err, "cannot write the image to %s", eif);
    }
    /* the backend's vhost-user socket, listening before QEMU starts */
    unlink(vhost);
    memcpy(sun.sun_path, vhost, strlen(vhost) + 1);
    lsock = sim_real.socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (lsock < 0 ||
        sim_real.bind(lsock, (struct sockaddr *)&sun, sizeof(sun)) < 0 ||
        sim_real.listen(lsock, 1) < 0) {
        err = fail(e, errno, "cannot listen on %s", vhost);
        goto out;
    }
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
        err = fail(e, errno, "socketpair: %s", strerror(errno));
        goto out;
    }
    logfd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (logfd < 0) {
        err = fail(e, errno, "cannot create %s", log);
        goto out;
    }

    snprintf(vsock_cid, sizeof(vsock_cid), "NITRO_SIM_VSOCK_CID=%u", e->cid);
    benv = child_env("NITRO_SIM_VSOCK_CID", vsock_cid);
    qenv = child_env("LD_PRELOAD", NULL);
    if (!benv || !qenv) {
        err = fail(e, ENOMEM, "%s", "out of memory");
        goto out;
    }
    if (!attestation_chain(e, att, sizeof(att), qenv, logfd)) {
        err = fail(e, EIO, "cannot make the attestation chain in %s", att);
        goto out;
    }
    if (has_pcr8 && !signed_pcr8(eif, pcr8, qenv, logfd)) {
        err = fail(e, EIO, "cannot measure PCR8 of the signed image %s",
                   eif);
        goto out;
    }
    snprintf(nsm_key, sizeof(nsm_key), "%s/leaf.key", att);
    snprintf(nsm_chain, sizeof(nsm_chain), "%s/chain.pem", att);
    /* module_id: the parent's instance ID, the slot as enclave ID */
    sim_instance_id(&e->cfg, instance_id, sizeof(instance_id));
    if (!nitro_pcr_of(pcr3, e->cfg.iam_role) ||
        !nitro_pcr_of(pcr4, instance_id)) {
        err = fail(e, ENOMEM, "cannot compute PCR3 and PCR4 (%s)",
                   instance_id);
        goto out;
    }
    l = (NitroEnclaveLaunch) {
        .qemu = qemu, .backend = backend, .eif = eif, .vhost = vhost,
        .gateway = gateway, .vsock_host = true, .cid = e->cid,
        .mem_mib = e->mem_size / SIM_MIB, .vcpus = e->nvcpus,
        .debug = e->flags & NE_ENCLAVE_DEBUG_MODE, .nsm_key = nsm_key,
        .nsm_chain = nsm_chain, .instance_id = instance_id, .slot = e->slot,
        .pcr = {
            /* -M nitro-enclave measures the image itself, -M virt not */
            [0] = aarch64 ? e->eif.pcr_hex[0] : NULL,
            [1] = aarch64 ? e->eif.pcr_hex[1] : NULL,
            [2] = aarch64 ? e->eif.pcr_hex[2] : NULL,
            [3] = e->cfg.iam_role[0] ? pcr3 : NULL, [4] = pcr4,
            [8] = has_pcr8 ? pcr8 : NULL,
        },
        .aarch64 = aarch64, .kernel = kernel, .initrd = initrd,
        .cmdline = e->eif.cmdline ? e->eif.cmdline : "",
    };
    if (!nitro_enclave_launch_argv(&l)) {
        err = fail(e, ENAMETOOLONG, "NITRO_SIM_DIR %s is too long for "
                   "QEMU's command line", e->cfg.dir);
        goto out;
    }
    e->backend_pid = nitro_enclave_spawn(l.backend_argv, benv, lsock, -1,
                                         logfd);
    e->qemu_pid = nitro_enclave_spawn(l.qemu_argv, qenv, -1, sv[1], logfd);
    if (e->backend_pid < 0 || e->qemu_pid < 0) {
        err = fail(e, errno, "fork: %s", strerror(errno));
        goto out;
    }
    e->qemu_pidfd = pidfd(e->qemu_pid);
    e->backend_pidfd = pidfd(e->backend_pid);
    if (e->qemu_pidfd < 0 || e->backend_pidfd < 0) {
        err = fail(e, errno, "pidfd_open: %s", strerror(errno));
        goto out;
    }
    e->serial_fd = sv[0];
    sv[0] = -1;
    fcntl(e->serial_fd, F_SETFL, O_NONBLOCK);
    boot_log(e, "started", qemu);
    err = 0;
out:
    free(benv);
    free(qenv);
    if (lsock >= 0) {
        sim_real.close(lsock);
    }
    if (logfd >= 0) {
        sim_real.close(logfd);
    }
    if (sv[0] >= 0) {
        sim_real.close(sv[0]);
    }
    if (sv[1] >= 0) {
        sim_real.close(sv[1]);
    }
    if (err) {
        sim_boot_stop(e);
    }
    return err;
}

/*
 * Copy @n bytes of the machine's ttyS0 to the console: the stop reason
 * they say (a reboot, the end of a panic) or NULL
 */
static const char *serial_bytes(SimEnclave *e, const char *buf, ssize_t n,
                                void (*out)(SimEnclave *, const char *,
                                            size_t))
{
    const char *reason = NULL;
    uint64_t now = sim_now_ms();
    ssize_t i;

    out(e, buf, n);
    if (e->panic_ms) {
        e->panic_quiet_ms = now + PANIC_QUIET_MS;
    }
    for (i = 0; i < n; i++) {
        if (buf[i] == '\n' || e->line_len == sizeof(e->line) - 1) {
            e->line[e->line_len] = 0;
            if (!e->panic_ms && strstr(e->line, PANIC_LINE)) {
                e->panic_ms = now + PANIC_MAX_MS;
                e->panic_quiet_ms = now + PANIC_QUIET_MS;
            } else if (e->panic_ms && (strstr(e->line, PANIC_WAIT_LINE) ||
                                       strstr(e->line, PANIC_END_LINE))) {
                reason = "kernel-panic";
            } else if (strstr(e->line, REBOOT_LINE)) {
                /* on Nitro a reboot terminates the enclave: never boot twice */
                reason = "reboot";
            }
            e->line_len = 0;
        } else if (buf[i] != '\r') {
            e->line[e->line_len++] = buf[i];
        }
    }
    return reason;
}

const char *sim_boot_serial(SimEnclave *e, void (*out)(SimEnclave *,
                                                       const char *, size_t))
{
    char buf[4096];
    ssize_t n = read(e->serial_fd, buf, sizeof(buf));

    if (n <= 0) {
        if (n < 0 && errno == EAGAIN) {
            return NULL;
        }
        /* QEMU closed its stdout: it is exiting, its pidfd says how */
        sim_real.close(e->serial_fd);
        e->serial_fd = -1;
        return NULL;
    }
    return serial_bytes(e, buf, n, out);
}

/*
 * A panicked kernel would wait panic= seconds, then reboot: once its
 * panic is printed, stop it
 */
static void end(pid_t *pid, int *fd)
{
    int i;

    if (*pid > 0) {
        kill(*pid, SIGTERM);
        for (i = 0; i < 200; i++) {
            if (waitpid(*pid, NULL, WNOHANG) == *pid) {
                break;
            }
            if (i == 100) {
                kill(*pid, SIGKILL);
            }
            nanosleep(&(struct timespec){ 0, 10 * 1000 * 1000 }, NULL);
        }
        *pid = 0;
    }
    if (*fd >= 0) {
        sim_real.close(*fd);
        *fd = -1;
    }
}

uint64_t sim_boot_deadline(SimEnclave *e)
{
    if (!e->panic_ms) {
        return 0;
    }
    return e->panic_quiet_ms < e->panic_ms ? e->panic_quiet_ms : e->panic_ms;
}

void sim_boot_drain(SimEnclave *e, void (*out)(SimEnclave *, const char *,
                                               size_t))
{
    char buf[4096];
    int waits = 0;

    end(&e->qemu_pid, &e->qemu_pidfd);
    /* QEMU is gone: the rest of what it wrote, up to EOF */
    while (e->serial_fd >= 0 && waits < 100) {
        ssize_t n = read(e->serial_fd, buf, sizeof(buf));

        if (n > 0) {
            serial_bytes(e, buf, n, out);
        } else if (n < 0 && errno == EAGAIN) {
            struct pollfd pfd = { .fd = e->serial_fd, .events = POLLIN };

            poll(&pfd, 1, 10);
            waits++;
        } else if (n == 0 || errno != EINTR) {
            break;
        }
    }
}

const char *sim_boot_exited(SimEnclave *e)
{
    int st = 0, i;
    pid_t r = waitpid(e->qemu_pid, &st, WNOHANG);

    if (r == 0 && waitpid(e->backend_pid, NULL, WNOHANG) == e->backend_pid) {
        e->backend_pid = 0;
        /*
         * The backend exits when QEMU closes the vhost-user socket, which
         * QEMU does as it exits: give QEMU up to 2 s to tell why.
         */
        for (i = 0; i < 100 && r == 0; i++) {
            nanosleep(&(struct timespec){ 0, 20 * 1000 * 1000 }, NULL);
            r = waitpid(e->qemu_pid, &st, WNOHANG);
        }
        if (r == 0) {
            boot_log(e, "exited", "the vsock backend exited");
            return "vsock-backend-exited";
        }
    }
    if (r != e->qemu_pid) {
        return NULL;
    }
    e->qemu_pid = 0;
    if (WIFEXITED(st) && !WEXITSTATUS(st) && e->panic_ms) {
        boot_log(e, "exited", "after a kernel panic");
        return "kernel-panic";
    }
    if (WIFEXITED(st) && !WEXITSTATUS(st)) {
        boot_log(e, "exited", "powered off");
        return "poweroff";
    }
    boot_log(e, "exited", "QEMU failed");
    return "qemu-failed";
}


void sim_boot_stop(SimEnclave *e)
{
    static const char *const files[] = {
        "eif", "kernel", "initrd", "vhost", "vsock"
    };
    char path[PATH_MAX + 48];
    size_t i;

    end(&e->qemu_pid, &e->qemu_pidfd);
    end(&e->backend_pid, &e->backend_pidfd);
    if (e->serial_fd >= 0) {
        sim_real.close(e->serial_fd);
        e->serial_fd = -1;
    }
    if (!e->boot_base[0]) {
        return;
    }
    for (i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        snprintf(path, sizeof(path), "%s.%s", e->boot_base, files[i]);
        unlink(path);
    }
    e->boot_base[0] = 0;
}
