/*
 * nitro-sim tests: the registry that the processes of a simulation
 * directory share
 *
 * Launchers at the same instant never get the same CPU; an owner killed
 * with SIGKILL (simulated or booted enclave) leaves nothing once the next
 * reader of the registry has run, and a zombie owner holds no CID; a
 * full file system fails the operation with a reason, a simulation
 * directory that is not one says so; the CLI creates nothing, answers
 * --help, names the enclave it cannot find and the file it cannot read.
 * Runs with the simulator preloaded; needs 2 MiB huge pages.
 *
 * Copyright (c) 2026 Nitro Enclaves for QEMU authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <stdint.h>
#include "standard-headers/linux/nitro_enclaves.h"

#include "tap.h"
#include "eif-writer.h"
#include "launcher.h"

#define LAUNCHERS 8
#define ROUNDS 50
#define NOBODY 65534

static const char *const env_vars[] = {
    "NITRO_SIM_HEARTBEAT", "NITRO_SIM_CPUS", "NITRO_SIM_HOST_CPUS",
    "NITRO_SIM_BOOT", "NITRO_SIM_QEMU", "NITRO_SIM_VSOCK_BACKEND", NULL,
};

static uint8_t *eif;
static size_t eif_len;

/* a new simulation directory; the enclaves run without heartbeat */
static const char *fresh(const char *tag)
{
    int i;

    for (i = 0; env_vars[i]; i++) {
        unsetenv(env_vars[i]);
    }
    setenv("NITRO_SIM_HEARTBEAT", "none", 1);
    return nl_new_sim_dir(tag);
}

static long long now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

/* wait (up to 30 s) until @cond(@arg) holds */
static bool wait_for(bool (*cond)(const char *), const char *arg)
{
    long long end = now_ms() + 30000;

    while (!cond(arg)) {
        if (now_ms() > end) {
            return false;
        }
        usleep(10000);
    }
    return true;
}

static bool exists(const char *path)
{
    return access(path, F_OK) == 0;
}

static bool launch(NlEnclave *e, bool debug, uint64_t cid)
{
    NlParams p = {
        .eif = eif, .eif_len = eif_len, .debug = debug, .cid = cid,
        .no_heartbeat_listen = true,
    };

    if (nl_launch(&p, e) < 0) {
        tap_diag("launch failed at %s: %s", e->failed_step,
                 strerror(e->err));
        return false;
    }
    return true;
}

/* the CLI, as @uid if not 0: exit status, stdout and stderr (malloc'd) */
typedef struct Cli {
    int status;
    char *out, *err;
} Cli;

static void cli_run(Cli *c, uid_t uid, const char *a1, const char *a2)
{
    int o[2], e[2], st;
    pid_t pid;

    if (pipe(o) < 0 || pipe(e) < 0) {
        abort();
    }
    pid = fork();
    if (pid == 0) {
        /*
         * opened before dropping root: @uid may not be able to reach the
         * build (a checkout under /root)
         */
        int cli = open(getenv("NITRO_SIM_CLI"), O_RDONLY | O_CLOEXEC);
        char *argv[] = { (char *)"nitro-sim", (char *)a1, (char *)a2, NULL };

        dup2(o[1], 1);
        dup2(e[1], 2);
        if (uid && (setgroups(0, NULL) < 0 || setgid(uid) < 0 ||
                    setuid(uid) < 0)) {
            _exit(126);
        }
        fexecve(cli, argv, environ);
        _exit(127);
    }
    close(o[1]);
    close(e[1]);
    c->out = nl_read_all(o[0], 30000, NULL, NULL);
    c->err = nl_read_all(e[0], 30000, NULL, NULL);
    close(o[0]);
    close(e[0]);
    waitpid(pid, &st, 0);
    c->status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void cli_free(Cli *c)
{
    free(c->out);
    free(c->err);
}

/*
 * the names in @dir, but the files every directory has (and the
 * attestation chain that a real boot makes once for all its enclaves)
 * unless @all
 */
static char *dir_names(const char *dir, bool all)
{
    static const char *const shared[] = {
        "registry", "registry.lock", "events.jsonl", "attestation",
        "attestation.lock", NULL,
    };
    char *names = calloc(1, 4096);
    struct dirent *de;
    DIR *d = opendir(dir);
    int i;

    while (d && (de = readdir(d))) {
        bool skip = !strcmp(de->d_name, ".") || !strcmp(de->d_name, "..");

        for (i = 0; !all && shared[i]; i++) {
            skip |= !strcmp(de->d_name, shared[i]);
        }
        if (!skip && strlen(names) + strlen(de->d_name) + 2 < 4096) {
            strcat(names, " ");
            strcat(names, de->d_name);
        }
    }
    if (d) {
        closedir(d);
    }
    return names;
}

/* ---- no CPU handed out twice ---- */

static void __attribute__((noreturn))
vcpu_child(int go, int hold, int res, uint32_t idx)
{
    uint32_t rec[4] = { idx, 0, 0, 0 };
    uint64_t slot;
    int dev, efd, k;
    char c;

    if (read(go, &c, 1) < 0) {
        _exit(1);
    }
    dev = open("/dev/nitro_enclaves", O_RDWR | O_CLOEXEC);
    efd = dev < 0 ? -1 : ioctl(dev, NE_CREATE_VM, &slot);
    if (efd < 0) {
        rec[1] = errno;
    }
    for (k = 0; !rec[1] && k < 2; k++) {
        uint32_t id = 0;

        if (ioctl(efd, NE_ADD_VCPU, &id) < 0) {
            rec[1] = errno;
        } else {
            rec[2 + k] = id;
        }
    }
    if (write(res, rec, sizeof(rec)) != sizeof(rec) ||
        read(hold, &c, 1) < 0) {
        _exit(1);
    }
    _exit(0);
}

/* one round: the CPUs of LAUNCHERS enclaves created at once; "" if fine */
static void vcpu_round(char *why, size_t len)
{
    uint32_t recs[LAUNCHERS][4];
    bool seen[64] = { false };
    int go[2], hold[2], res[2], i, k;
    pid_t pid[LAUNCHERS];
    size_t got = 0;

    if (pipe(go) < 0 || pipe(hold) < 0 || pipe(res) < 0) {
        abort();
    }
    for (i = 0; i < LAUNCHERS; i++) {
        pid[i] = fork();
        if (pid[i] == 0) {
            close(go[1]);
            close(hold[1]);
            close(res[0]);
            vcpu_child(go[0], hold[0], res[1], i);
        }
    }
    close(go[0]);
    close(hold[0]);
    close(res[1]);
    close(go[1]);                   /* all at once */
    while (got < sizeof(recs)) {
        ssize_t n = read(res[0], (char *)recs + got, sizeof(recs) - got);

        if (n <= 0) {
            break;
        }
        got += n;
    }
    why[0] = 0;
    if (got < sizeof(recs)) {
        snprintf(why, len, "only %zu of %d launchers answered",
                 got / sizeof(recs[0]), LAUNCHERS);
    }
    for (i = 0; !why[0] && i < LAUNCHERS; i++) {
        if (recs[i][1]) {
            snprintf(why, len, "launcher %u: %s (errno %u)", recs[i][0],
                     strerror(recs[i][1]), recs[i][1]);
        }
        for (k = 2; !why[0] && k < 4; k++) {
            if (recs[i][k] >= 64 || seen[recs[i][k]]) {
                snprintf(why, len, "CPU %u handed out twice", recs[i][k]);
            } else {
                seen[recs[i][k]] = true;
            }
        }
    }
    close(hold[1]);
    close(res[0]);
    for (i = 0; i < LAUNCHERS; i++) {
        waitpid(pid[i], NULL, 0);
    }
}

static void test_concurrent_vcpus(void)
{
    char why[256] = "";
    long long t0 = now_ms();
    int round;

    fresh("vcpus");
    /* 18 cores of 2 threads (siblings N and N + 18); 8 in the pool */
    setenv("NITRO_SIM_HOST_CPUS", "36", 1);
    setenv("NITRO_SIM_CPUS", "1-8,19-26", 1);
    for (round = 0; round < ROUNDS && !why[0]; round++) {
        vcpu_round(why, sizeof(why));
    }
    if (!tap_ok(!why[0], "%d launchers at once, %d rounds (%lld ms): every "
                "NE_CREATE_VM and NE_ADD_VCPU succeeds, no CPU handed out "
                "twice", LAUNCHERS, ROUNDS, now_ms() - t0)) {
        tap_diag("round %d: %s", round, why);
    }
}

/* ---- owners that die ---- */

/* a child that launches an enclave and waits to be killed */
static pid_t launch_child(bool debug, uint64_t cid, int *ready)
{
    int p[2];
    pid_t pid;

    if (pipe(p) < 0) {
        abort();
    }
    pid = fork();
    if (pid == 0) {
        NlEnclave e;
        char ok;

        close(p[0]);
        ok = launch(&e, debug, cid) ? 'y' : 'n';
        if (write(p[1], &ok, 1) != 1 || ok != 'y') {
            _exit(1);
        }
        for (;;) {
            pause();
        }
    }
    close(p[1]);
    *ready = p[0];
    return pid;
}

static bool child_launched(int fd)
{
    struct pollfd pfd = { .fd = fd, .events = POLLIN };
    char c = 0;
    bool ok = poll(&pfd, 1, 30000) == 1 && read(fd, &c, 1) == 1 && c == 'y';

    close(fd);
    return ok;
}

/* the enclave files of CID 16 that exist, space separated */
static char *files_of_16(const char *dir)
{
    static const char *const ext[] = {
        "console", "eif", "vhost", "vsock", "qemu.log", NULL,
    };
    char *s = calloc(1, 256), path[4200];
    int i;

    for (i = 0; ext[i]; i++) {
        snprintf(path, sizeof(path), "%s/enclave-16.%s", dir, ext[i]);
        if (exists(path)) {
            strcat(s, " ");
            strcat(s, ext[i]);
        }
    }
    return s;
}

/* kill -9 the owner of a running enclave, then `nitro-sim list` */
static void kill_and_recover(const char *mode, const char *dir,
                             const char *expect_files, const char *wait_file)
{
    char path[4200], *before, *left;
    bool launched, ready;
    int ready_fd, fd;
    pid_t pid;
    Cli c;

    pid = launch_child(true, 0, &ready_fd);
    launched = child_launched(ready_fd);
    snprintf(path, sizeof(path), "%s/%s", dir, wait_file);
    ready = launched && wait_for(exists, path);
    before = files_of_16(dir);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    /* what a writer killed before its rename leaves */
    snprintf(path, sizeof(path), "%s/registry.tmp", dir);
    fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    if (fd >= 0 && write(fd, "next_slot 1\n", 12) == 12) {
        close(fd);
    }
    cli_run(&c, 0, "list", NULL);
    left = dir_names(dir, false);
    if (!tap_ok(ready && !strcmp(before, expect_files) && c.status == 0 &&
                !strstr(c.out, "\"cid\"") && !left[0] &&
                nl_log_count("\"event\":\"stop\"",
                             "\"reason\":\"process-exit\"", NULL) == 1,
                "%s: kill -9 of the owner, then nitro-sim list: the "
                "enclave is gone, its files (%s) and a registry.tmp "
                "removed, its stop logged", mode, expect_files + 1)) {
        tap_diag("launched %d, files before the kill:%s; list: %s%s; "
                 "left:%s", launched, before, c.out, c.err, left);
    }
    cli_free(&c);
    free(before);
    free(left);
}

static void test_kill_sim(void)
{
    const char *dir = fresh("kill");

    kill_and_recover("NITRO_SIM_BOOT=sim", dir, " console",
                     "enclave-16.console");
}

static void write_script(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");

    fputs(text, f);
    fclose(f);
    chmod(path, 0755);
}

/*
 * The boot mode's files come from the simulator (image, vhost-user
 * socket, log) and the backend (gateway): stand-ins for QEMU and the
 * backend make them without booting anything.
 */
static void test_kill_boot(void)
{
    char qemu[4200], backend[4200];
    const char *tools, *dir;

    if (strcmp(eif_host_arch(), "x86_64")) {
        tap_ok(true, "kill -9 in NITRO_SIM_BOOT=qemu # SKIP x86_64 only");
        return;
    }
    tools = nl_new_sim_dir("boot-tools");
    snprintf(qemu, sizeof(qemu), "%s/qemu", tools);
    snprintf(backend, sizeof(backend), "%s/backend", tools);
    write_script(qemu, "#!/bin/sh\nexec sleep 600\n");
    write_script(backend, "#!/bin/sh\n"
                 "while [ $# -gt 0 ]; do\n"
                 "    [ \"$1\" = --uds-path ] && : > \"$2\"\n"
                 "    shift\n"
                 "done\n"
                 "exec sleep 600\n");
    dir = fresh("kill-boot");
    setenv("NITRO_SIM_BOOT", "qemu", 1);
    setenv("NITRO_SIM_QEMU", qemu, 1);
    setenv("NITRO_SIM_VSOCK_BACKEND", backend, 1);
    kill_and_recover("NITRO_SIM_BOOT=qemu", dir,
                     " console eif vhost vsock qemu.log", "enclave-16.vsock");
}

static char zombie_stat[64];

static bool is_zombie(const char *path)
{
    char *s = nl_read_file(path, NULL);
    char *p = s ? strrchr(s, ')') : NULL;
    bool z = p && p[1] == ' ' && p[2] == 'Z';

    free(s);
    return z;
}

static void test_zombie(void)
{
    NlEnclave e;
    bool launched, zombie, again;
    int ready_fd;
    pid_t pid;

    fresh("zombie");
    pid = launch_child(false, 55, &ready_fd);
    launched = child_launched(ready_fd);
    kill(pid, SIGKILL);
    snprintf(zombie_stat, sizeof(zombie_stat), "/proc/%d/stat", (int)pid);
    zombie = wait_for(is_zombie, zombie_stat);
    again = launch(&e, false, 55) && e.cid == 55;
    tap_ok(launched && zombie && again, "a killed owner not reaped yet "
           "(a zombie) holds no CID: CID 55 can be launched again");
    nl_close(&e);
    waitpid(pid, NULL, 0);
}

/* ---- a full file system ---- */

static char full_dir[4096];

static void fill_fs(void)
{
    static char buf[65536];
    char path[4200];
    int fd;

    snprintf(path, sizeof(path), "%s/filler", full_dir);
    fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    while (fd >= 0 && write(fd, buf, sizeof(buf)) > 0) {
        continue;
    }
    if (fd >= 0) {
        close(fd);
    }
}

/* in a private mount namespace, @full_dir a small tmpfs; results in @res */
static void __attribute__((noreturn)) full_child(const char *errpath,
                                                 int res)
{
    NlParams p = {
        .eif = eif, .eif_len = eif_len, .no_heartbeat_listen = true,
        .before_start = fill_fs,
    };
    int r[3] = { -1, 0, -1 };
    NlEnclave e, e2;
    int fd;
    Cli c;

    if (unshare(CLONE_NEWNS) < 0 ||
        mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
        mount("tmpfs", full_dir, "tmpfs", 0, "size=1m") < 0) {
        _exit(2);
    }
    fd = open(errpath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    dup2(fd, 2);
    if (nl_launch(&p, &e) < 0 && !strcmp(e.failed_step, "NE_START_ENCLAVE")) {
        r[0] = e.err;
    }
    cli_run(&c, 0, "list", NULL);
    r[1] = c.status == 0 && strstr(c.out, "\"state\": \"init\"") &&
           !strstr(c.out, "running");
    cli_free(&c);
    p.before_start = NULL;
    if (nl_launch(&p, &e2) < 0 && !strcmp(e2.failed_step, "NE_CREATE_VM")) {
        r[2] = e2.err;
    }
    if (write(res, r, sizeof(r)) != sizeof(r)) {
        _exit(1);
    }
    _exit(0);
}

static void test_full_dir(void)
{
    char errpath[4200], *err;
    int res[2], r[3] = { 0 }, st;
    pid_t pid;

    if (geteuid()) {
        tap_ok(true, "a full file system # SKIP mounting a tmpfs needs "
               "root");
        return;
    }
    snprintf(errpath, sizeof(errpath), "%s/stderr",
             nl_new_sim_dir("full-err"));
    snprintf(full_dir, sizeof(full_dir), "%s", fresh("full"));
    if (pipe(res) < 0) {
        abort();
    }
    pid = fork();
    if (pid == 0) {
        close(res[0]);
        full_child(errpath, res[1]);
    }
    close(res[1]);
    if (read(res[0], r, sizeof(r)) != sizeof(r)) {
        r[0] = r[2] = -1;
    }
    close(res[0]);
    waitpid(pid, &st, 0);
    err = nl_read_file(errpath, NULL);
    if (!tap_ok(r[0] == ENOSPC && r[1] && r[2] == ENOSPC && err &&
                strstr(err, "/registry.tmp") &&
                strstr(err, "No space left on device"),
                "a full simulation directory: NE_START_ENCLAVE fails with "
                "ENOSPC naming the file, the enclave is not listed as "
                "running, the next NE_CREATE_VM fails as well")) {
        tap_diag("child status %d; start: %d, list ok: %d, create: %d; "
                 "stderr: %s", st, r[0], r[1], r[2], err ? err : "");
    }
    free(err);
}

/* ---- a simulation directory that is not one ---- */

static void test_not_a_dir(void)
{
    char path[4200], errpath[4200], *err;
    int saved, fd, dev, e;
    Cli c;

    snprintf(errpath, sizeof(errpath), "%s/stderr", fresh("notdir"));
    snprintf(path, sizeof(path), "%s/file", getenv("NITRO_SIM_DIR"));
    fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    close(fd);
    setenv("NITRO_SIM_DIR", path, 1);
    fflush(stderr);
    saved = dup(2);
    fd = open(errpath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    dup2(fd, 2);
    close(fd);
    dev = open("/dev/nitro_enclaves", O_RDWR | O_CLOEXEC);
    e = errno;
    dup2(saved, 2);
    close(saved);
    err = nl_read_file(errpath, NULL);
    if (!tap_ok(dev < 0 && e == ENOTDIR && err &&
                strstr(err, "is not a directory") &&
                !strstr(err, "Permission denied"),
                "NITRO_SIM_DIR a regular file: the open fails with ENOTDIR, "
                "saying it is not a directory")) {
        tap_diag("open: %d %s; stderr: %s", dev, strerror(e), err);
    }
    if (dev >= 0) {
        close(dev);
    }
    free(err);
    cli_run(&c, 0, "list", NULL);
    tap_ok(c.status == 1 && !c.out[0] && strstr(c.err, "is not a directory"),
           "... and nitro-sim list says so");
    cli_free(&c);
}

/* ---- the CLI ---- */

static void test_cli_help(void)
{
    Cli c;

    cli_run(&c, 0, "--help", NULL);
    tap_ok(c.status == 0 && strstr(c.out, "usage: nitro-sim list") &&
           !c.err[0], "nitro-sim --help: the usage on stdout, status 0");
    cli_free(&c);
}

/* list, console 99 and stop 99 in $NITRO_SIM_DIR; true if as expected */
static bool read_only_commands(char *why, size_t len)
{
    static const char *const cmds[][2] = {
        { "list", NULL }, { "console", "99" }, { "stop", "99" },
    };
    bool ok = true;
    int i;

    why[0] = 0;
    for (i = 0; i < 3; i++) {
        Cli c;
        bool good;

        cli_run(&c, 0, cmds[i][0], cmds[i][1]);
        good = cmds[i][1] ? c.status == 1 &&
                            strstr(c.err, "no running enclave with CID 99") :
               c.status == 0 && !strcmp(c.out, "[]\n");
        if (!good) {
            snprintf(why, len, "%s: status %d, %s%s", cmds[i][0], c.status,
                     c.out, c.err);
        }
        ok &= good;
        cli_free(&c);
    }
    return ok;
}

static void test_cli_read_only(void)
{
    char none[4200], why[512], *names;
    const char *dir = fresh("readonly");
    bool ok;

    snprintf(none, sizeof(none), "%s/none", dir);
    setenv("NITRO_SIM_DIR", none, 1);
    ok = read_only_commands(why, sizeof(why));
    if (!tap_ok(ok && !exists(none), "nitro-sim list, console and stop "
                "in a missing directory: nothing there, and nothing "
                "created")) {
        tap_diag("%s; created: %d", why, exists(none));
    }
    setenv("NITRO_SIM_DIR", dir, 1);
    ok = read_only_commands(why, sizeof(why));
    names = dir_names(dir, true);
    if (!tap_ok(ok && !names[0], "... in an empty directory: no file "
                "created (no lock, no log)")) {
        tap_diag("%s; created:%s", why, names);
    }
    free(names);
}

static void test_cli_console(void)
{
    NlEnclave a, b;
    Cli c;

    fresh("console");
    if (!launch(&a, true, 0) || !launch(&b, false, 0)) {
        tap_ok(false, "nitro-sim console: launches");
        tap_ok(false, "(not run)");
        nl_close(&a);
        return;
    }
    cli_run(&c, 0, "console", "99");
    tap_ok(c.status == 1 && !c.out[0] &&
           strstr(c.err, "no running enclave with CID 99 in ") &&
           !strstr(c.err, "refused"),
           "nitro-sim console 99: no running enclave with CID 99");
    cli_free(&c);
    cli_run(&c, 0, "console", "17");
    tap_ok(c.status == 1 && strstr(c.err, "not started in debug mode"),
           "nitro-sim console of an enclave without debug mode says so");
    cli_free(&c);
    nl_close(&b);
    nl_close(&a);
}

/* what an earlier `nitro-sim list` as root left: a root-owned lock file */
static void test_foreign_lock(void)
{
    char path[4200];
    const char *dir;
    int fd, st;
    pid_t pid;

    if (geteuid()) {
        tap_ok(true, "a lock file of another user # SKIP needs root");
        return;
    }
    dir = fresh("foreign-lock");
    snprintf(path, sizeof(path), "%s/registry.lock", dir);
    fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    close(fd);
    if (chown(dir, NOBODY, NOBODY) < 0) {
        abort();
    }
    pid = fork();
    if (pid == 0) {
        uint64_t slot;
        int dev;

        if (setgroups(0, NULL) < 0 || setgid(NOBODY) < 0 ||
            setuid(NOBODY) < 0) {
            _exit(2);
        }
        dev = open("/dev/nitro_enclaves", O_RDWR | O_CLOEXEC);
        _exit(dev >= 0 && ioctl(dev, NE_CREATE_VM, &slot) >= 0 ? 0 : 1);
    }
    waitpid(pid, &st, 0);
    tap_ok(WIFEXITED(st) && WEXITSTATUS(st) == 0,
           "a launcher of another user than the owner of registry.lock "
           "(root) creates its enclave");
}

static void test_unreadable_registry(void)
{
    char path[4200];
    const char *dir = fresh("unreadable");
    uid_t uid = geteuid() ? 0 : NOBODY;
    int fd;
    Cli c;

    snprintf(path, sizeof(path), "%s/registry.lock", dir);
    fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    close(fd);
    snprintf(path, sizeof(path), "%s/registry", dir);
    fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    close(fd);
    if (uid) {
        if (chown(dir, uid, uid) < 0) {
            abort();
        }
    } else {
        chmod(path, 0);
    }
    cli_run(&c, uid, "list", NULL);
    if (!tap_ok(c.status == 1 && !c.out[0] && strstr(c.err, path) &&
                strstr(c.err, "Permission denied"),
                "an unreadable registry: nitro-sim list fails naming it")) {
        tap_diag("status %d: %s%s", c.status, c.out, c.err);
    }
    cli_free(&c);
}

int main(void)
{
    EifSpec spec;
    char why[256];

    if (nl_hugepages(64, why, sizeof(why)) < 0) {
        tap_skip_all(why);
    }
    eif_default(&spec);
    eif = eif_build(&spec, &eif_len);
    tap_plan(14);
    test_concurrent_vcpus();
    test_kill_sim();
    test_kill_boot();
    test_zombie();
    test_full_dir();
    test_not_a_dir();
    test_cli_help();
    test_cli_read_only();
    test_cli_console();
    test_foreign_lock();
    test_unreadable_registry();
    free(eif);
    return tap_done();
}
