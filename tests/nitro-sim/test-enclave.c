/*
 * nitro-sim tests: launching simulated enclaves as nitro-cli does
 *
 * The full launch (heartbeat, debug console byte for byte, PCRs, CLI
 * list and stop), every way an enclave stops (heartbeat failure, wrong
 * heartbeat byte, closing the enclave fd, lifetime, process exit, a
 * killed process), donated memory faulting after the start, EIF
 * verdicts, CIDs, and two launchers started at the same instant.
 * Runs with the simulator preloaded; needs 2 MiB huge pages.
 *
 * Copyright (c) 2025 Nitro Enclaves for QEMU authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <stdint.h>
#include "standard-headers/linux/nitro_enclaves.h"

#include "tap.h"
#include "eif-writer.h"
#include "launcher.h"

#define PCR_EMPTY "21b9efbc184807662e966d34f390821309eeac6802309798826296bf" \
                  "3e8bec7c10edb30948c90ba67310f7b964fc500a"


static const char *const env_vars[] = {
    "NITRO_SIM_HEARTBEAT", "NITRO_SIM_LIFETIME_MS", "NITRO_SIM_BOOT_DELAY_MS",
    "NITRO_SIM_ARCH", NULL,
};

static EifSpec spec;
static uint8_t *eif;
static size_t eif_len;

static void fresh(const char *tag)
{
    int i;

    for (i = 0; env_vars[i]; i++) {
        unsetenv(env_vars[i]);
    }
    nl_new_sim_dir(tag);
}

static long long now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

static bool launch(NlEnclave *e, bool debug, uint64_t cid, bool listen)
{
    NlParams p = {
        .eif = eif, .eif_len = eif_len, .debug = debug, .cid = cid,
        .no_heartbeat_listen = !listen,
    };

    if (nl_launch(&p, e) < 0) {
        tap_diag("launch failed at %s: %s", e->failed_step,
                 strerror(e->err));
        return false;
    }
    return true;
}

/* run the CLI; its stdout (malloc'd) and exit status */
static char *cli(const char *args, int *status)
{
    char cmd[512];
    FILE *f;
    char *out = malloc(65536);
    size_t n;

    snprintf(cmd, sizeof(cmd), "%s %s", getenv("NITRO_SIM_CLI"), args);
    f = popen(cmd, "r");
    n = fread(out, 1, 65535, f);
    out[n] = 0;
    *status = pclose(f);
    return out;
}

static char *expected_console(uint64_t cid, const EifSpec *s, size_t len,
                              const char *vcpus)
{
    char pcr[3][97];
    char *b = malloc(8192);

    eif_pcrs(s, pcr);
    snprintf(b, 8192,
             "nitro-sim: simulated Nitro Enclave, no kernel is executed\n"
             "Linux version nitro-sim (%s)\n"
             "Kernel command line: %s\n"
             "nitro-sim: arch %s\n"
             "nitro-sim: cid %llu\n"
             "nitro-sim: memory 64 MiB, 2 vCPUs (%s)\n"
             "nitro-sim: EIF version 4, %d sections, %d ramdisks, %zu bytes\n"
             "nitro-sim: PCR0 %s\n"
             "nitro-sim: PCR1 %s\n"
             "nitro-sim: PCR2 %s\n"
             "nitro-sim: init: heartbeat to CID 3 port 9000\n"
             "nitro-sim: heartbeat ok\n"
             "nitro-sim: running\n",
             eif_host_arch(), s->cmdline, eif_host_arch(),
             (unsigned long long)cid, vcpus,
             3 + s->nramdisks, s->nramdisks, len, pcr[0], pcr[1], pcr[2]);
    return b;
}

static void test_full_launch(void)
{
    NlEnclave e;
    char why[256], path[4200], key[128];
    char pcr[3][97];
    char *expect, *got, *again, *file, *out, *rest;
    int cfd, cfd2, st;
    pid_t pid;
    bool eof;

    fresh("launch");
    eif_pcrs(&spec, pcr);
    if (!tap_ok(launch(&e, true, 0, true) && e.cid == 16,
                "launch in debug mode: NE_START_ENCLAVE gives CID 16")) {
        nl_close(&e);
        return;
    }
    /* a client may connect right after the start, before the heartbeat */
    cfd = nl_console_connect(e.cid);
    tap_ok(nl_heartbeat(&e, 10000, why, sizeof(why)) == 0,
           "heartbeat: 0xB7 from the enclave on (3, 9000), answered");
    expect = expected_console(e.cid, &spec, eif_len, "1,5");
    got = cfd >= 0 ? nl_read_until(cfd, "nitro-sim: running\n", 10000, NULL)
                   : strdup("");
    if (!tap_ok(!strcmp(got, expect) &&
                nl_log_count("\"event\":\"heartbeat\"",
                             "\"result\":\"ok\"", NULL) == 1,
                "console (0, 10016): boot log with cmdline, arch, PCRs and "
                "heartbeat result, byte for byte; heartbeat ok logged")) {
        tap_diag("got:\n%s", got);
        tap_diag("expected:\n%s", expect);
    }
    tap_ok(!strcmp(pcr[2], PCR_EMPTY) &&
           nl_log_count("\"event\":\"eif\"", "\"verdict\":\"ok\"", pcr[0]) == 1,
           "eif event: verdict ok with PCR0 as computed independently; "
           "PCR2 of one ramdisk is extend(\"\")");
    snprintf(path, sizeof(path), "%s/enclave-16.console",
             getenv("NITRO_SIM_DIR"));
    file = nl_read_file(path, NULL);
    tap_ok(file && !strcmp(file, got),
           "enclave-16.console holds the same bytes");
    free(file);

    cfd2 = nl_console_connect(e.cid);
    again = cfd2 >= 0 ? nl_read_until(cfd2, "nitro-sim: running\n", 10000,
                                      NULL) : strdup("");
    tap_ok(!strcmp(again, expect), "a late console client gets the log "
           "from the start");

    /* the parent may not touch donated memory any more */
    pid = fork();
    if (pid == 0) {
        volatile uint8_t x = e.region[0][8 << 20]; /* a real read */
        (void)x;
        _exit(0);
    }
    waitpid(pid, &st, 0);
    tap_ok(WIFSIGNALED(st) && WTERMSIG(st) == SIGSEGV,
           "donated memory faults (SIGSEGV) after the start");

    out = cli("list", &st);
    snprintf(key, sizeof(key), "\"cid\": %llu", (unsigned long long)e.cid);
    tap_ok(st == 0 && strstr(out, key) && strstr(out, "\"running\"") &&
           strstr(out, "\"vcpus\": [1,5]") && strstr(out, "\"debug\": true"),
           "nitro-sim list shows the running enclave");
    free(out);

    out = cli("stop 16", &st);
    free(out);
    rest = cfd >= 0 ? nl_read_all(cfd, 5000, NULL, &eof) : strdup("");
    tap_ok(st == 0 && eof &&
           !strcmp(rest, "nitro-sim: enclave stopped (cli-stop)\n"),
           "nitro-sim stop 16: the console says why and closes (EOF)");
    tap_ok(nl_wait_hup(e.efd, 5000) &&
           nl_log_count("\"event\":\"stop\"", "\"reason\":\"cli-stop\"",
                        NULL) == 1,
           "... and the enclave fd reports POLLHUP, stop logged (cli-stop)");
    out = cli("list", &st);
    tap_ok(!strstr(out, "\"running\""), "nitro-sim list: nothing running");
    free(out);
    free(expect);
    free(got);
    free(again);
    free(rest);
    if (cfd >= 0) {
        close(cfd);
    }
    if (cfd2 >= 0) {
        close(cfd2);
    }
    nl_close(&e);
}

static void test_heartbeat_fail(void)
{
    NlEnclave e;
    char why[256];

    fresh("hbfail");
    /* nobody listens on port 9000: init panics, no retry */
    if (launch(&e, false, 0, false)) {
        struct epoll_event ev = { .events = EPOLLIN }, got = { 0 };
        int ep = epoll_create1(EPOLL_CLOEXEC);

        epoll_ctl(ep, EPOLL_CTL_ADD, e.efd, &ev);
        tap_ok(epoll_wait(ep, &got, 1, 5000) == 1 &&
               (got.events & EPOLLHUP),
               "epoll on the enclave fd reports EPOLLHUP when it stops");
        close(ep);
        tap_ok(nl_wait_hup(e.efd, 5000) &&
               nl_log_count("\"event\":\"heartbeat\"", "\"result\":\"fail\"",
                            NULL) == 1 &&
               nl_log_count("\"event\":\"stop\"",
                            "\"reason\":\"heartbeat-failed\"", NULL) == 1,
               "no heartbeat listener: the enclave stops, POLLHUP");
    } else {
        tap_ok(false, "no heartbeat listener: launch");
        tap_ok(false, "no heartbeat listener: epoll");
    }
    nl_close(&e);

    fresh("hbbad");
    setenv("NITRO_SIM_HEARTBEAT", "bad", 1);
    if (launch(&e, false, 0, true)) {
        int r = nl_heartbeat(&e, 5000, why, sizeof(why));

        tap_ok(r < 0 && strstr(why, "wrong heartbeat byte 0x00"),
               "NITRO_SIM_HEARTBEAT=bad: the launcher sees a wrong byte");
        tap_ok(nl_wait_hup(e.efd, 5000) &&
               nl_log_count("\"event\":\"stop\"",
                            "\"reason\":\"heartbeat-failed\"", NULL) == 1,
               "... gives no answer, and the enclave stops, POLLHUP");
    } else {
        tap_ok(false, "NITRO_SIM_HEARTBEAT=bad: launch");
        tap_ok(false, "NITRO_SIM_HEARTBEAT=bad: stop");
    }
    nl_close(&e);

    /* the official init requires 0xB7 back: any other answer panics it */
    fresh("hbanswer");
    unsetenv("NITRO_SIM_HEARTBEAT");
    if (launch(&e, false, 0, true)) {
        tap_ok(nl_heartbeat_answer(&e, 5000, 0xB6, why, sizeof(why)) == 0 &&
               nl_wait_hup(e.efd, 5000) &&
               nl_log_count("\"result\":\"fail\"", "reply 0xb6",
                            NULL) == 1 &&
               nl_log_count("\"event\":\"stop\"",
                            "\"reason\":\"heartbeat-failed\"", NULL) == 1,
               "answered 0xB6: the enclave's init fails, it stops, POLLHUP");
    } else {
        tap_ok(false, "answered 0xB6: launch");
    }
    nl_close(&e);

    fresh("hbnone");
    setenv("NITRO_SIM_HEARTBEAT", "none", 1);
    if (launch(&e, false, 0, true)) {
        int r = nl_heartbeat(&e, 500, why, sizeof(why));

        tap_ok(r < 0 && !nl_wait_hup(e.efd, 100) &&
               nl_log_count("\"event\":\"heartbeat\"", "\"result\":\"none\"",
                            NULL) == 1,
               "NITRO_SIM_HEARTBEAT=none: no heartbeat, enclave keeps "
               "running");
    } else {
        tap_ok(false, "NITRO_SIM_HEARTBEAT=none: launch");
    }
    nl_close(&e);
}

static void test_fd_close(void)
{
    NlEnclave e;
    char why[256];
    int dupfd, st;
    char *out;

    fresh("fdclose");
    if (!launch(&e, false, 0, true) ||
        nl_heartbeat(&e, 5000, why, sizeof(why)) < 0) {
        tap_ok(false, "launch for the fd close test");
        tap_ok(false, "(not run)");
        nl_close(&e);
        return;
    }
    dupfd = dup(e.efd);
    close(e.efd);
    e.efd = -1;
    out = cli("list", &st);
    tap_ok(strstr(out, "\"running\"") && !nl_wait_hup(dupfd, 200) &&
           nl_log_count("\"event\":\"stop\"", NULL, NULL) == 0,
           "closing one of two dup'ed enclave fds keeps the enclave");
    free(out);
    close(dupfd);
    out = cli("list", &st);
    tap_ok(nl_log_count("\"event\":\"stop\"", "\"reason\":\"fd-closed\"",
                        NULL) == 1 && !strstr(out, "\"cid\""),
           "closing the last one stops it (reason fd-closed) and releases "
           "it");
    free(out);
    nl_close(&e);
}

static void test_lifetime(void)
{
    NlEnclave e;
    char why[256];
    char *text, *late;
    bool eof = false;
    int cfd;

    fresh("lifetime");
    setenv("NITRO_SIM_LIFETIME_MS", "300", 1);
    if (!launch(&e, true, 0, true)) {
        tap_ok(false, "lifetime: launch");
        nl_close(&e);
        return;
    }
    cfd = nl_console_connect(e.cid);
    nl_heartbeat(&e, 5000, why, sizeof(why));
    text = nl_read_all(cfd, 5000, NULL, &eof);
    tap_ok(eof && strstr(text, "nitro-sim: enclave stopped (lifetime)\n") &&
           nl_wait_hup(e.efd, 1000) &&
           nl_log_count("\"event\":\"stop\"", "\"reason\":\"lifetime\"",
                        NULL) == 1,
           "NITRO_SIM_LIFETIME_MS=300: console EOF, POLLHUP, reason "
           "lifetime");
    close(cfd);
    /* stopped, its fd still open: a late client gets it all, then EOF */
    cfd = nl_console_connect(e.cid);
    late = cfd >= 0 ? nl_read_all(cfd, 5000, NULL, &eof) : strdup("");
    tap_ok(eof && !strcmp(late, text),
           "a console client after the stop gets the whole console, EOF");
    free(late);
    free(text);
    if (cfd >= 0) {
        close(cfd);
    }
    nl_close(&e);
}

static void test_boot_delay(void)
{
    NlEnclave e;
    char why[256];
    long long t0, t;

    fresh("delay");
    setenv("NITRO_SIM_BOOT_DELAY_MS", "400", 1);
    t0 = now_ms();
    if (launch(&e, false, 0, true) &&
        nl_heartbeat(&e, 5000, why, sizeof(why)) == 0) {
        t = now_ms() - t0;
        tap_ok(t >= 400 && t < 3000, "NITRO_SIM_BOOT_DELAY_MS=400: the "
               "heartbeat comes after %lld ms", t);
    } else {
        tap_ok(false, "boot delay: launch and heartbeat");
    }
    nl_close(&e);
}

static void bad_eif(const char *tag, EifSpec *s, const char *message)
{
    uint8_t *img;
    size_t len;
    NlParams p = { 0 };
    NlEnclave e;
    int r;

    fresh(tag);
    img = eif_build(s, &len);
    p.eif = img;
    p.eif_len = len;
    r = nl_launch(&p, &e);
    tap_ok(r < 0 && e.err == ENOEXEC &&
           !strcmp(e.failed_step, "NE_START_ENCLAVE") &&
           nl_log_count("\"event\":\"eif\"", "\"verdict\":\"error\"",
                        message) == 1 &&
           nl_log_count("\"event\":\"start\"", NULL, NULL) == 0,
           "EIF %s: NE_START_ENCLAVE fails with ENOEXEC, eif verdict error",
           tag);
    nl_close(&e);
    free(img);
}

static void test_eif_errors(void)
{
    EifSpec s;
    s = spec;
    s.bad_crc = true;
    bad_eif("bad-crc", &s, "\"crc_ok\":false");
    char msg[64];

    s = spec;
    s.aarch64 = !spec.aarch64;
    snprintf(msg, sizeof(msg), "the simulated host is %s", eif_host_arch());
    bad_eif("other-arch", &s, msg);
    s = spec;
    s.bad_magic = true;
    bad_eif("bad-magic", &s, "bad magic");
    s = spec;
    s.nramdisks = 0;
    bad_eif("no-ramdisk", &s, "no ramdisk");
}

static void test_eif_regions(void)
{
    EifSpec s = spec;
    size_t big = 12 << 20, i, len;
    uint8_t *rd = malloc(big), *img;
    char pcr[3][97];
    NlParams p = { 0 };
    NlEnclave e;

    fresh("regions");
    setenv("NITRO_SIM_HEARTBEAT", "none", 1);
    for (i = 0; i < big; i++) {
        rd[i] = (uint8_t)(i * 31 + (i >> 12));
    }
    s.ramdisk[1] = rd;
    s.ramdisk_len[1] = big;
    s.nramdisks = 2;
    img = eif_build(&s, &len);
    eif_pcrs(&s, pcr);
    p.eif = img;
    p.eif_len = len;
    p.region_mib = 8;               /* 8 regions; the EIF spans 2 of them */
    p.no_heartbeat_listen = true;
    tap_ok(nl_launch(&p, &e) == 0 &&
           nl_log_count("\"event\":\"eif\"", pcr[0], pcr[1]) == 1 &&
           nl_log_count("\"event\":\"eif\"", pcr[2], "\"ramdisks\":2") == 1 &&
           nl_log_count("\"event\":\"start\"", "\"regions\":8", NULL) == 1,
           "EIF across regions in donation order, two ramdisks: PCR0/1/2 "
           "as computed independently");
    nl_close(&e);
    free(img);
    free(rd);
}

static void test_large_eif(void)
{
    EifSpec s = spec;
    size_t big = 256 << 20, i, len;
    uint8_t *rd = malloc(big), *img;
    char pcr[3][97];
    NlParams p = { 0 };
    NlEnclave e;
    long long t0, t;
    bool ok;

    fresh("large");
    setenv("NITRO_SIM_HEARTBEAT", "none", 1);
    for (i = 0; i < big; i += 4096) {
        memset(rd + i, (int)(i >> 12), 4096);
    }
    s.ramdisk[0] = rd;
    s.ramdisk_len[0] = big;
    img = eif_build(&s, &len);
    eif_pcrs(&s, pcr);
    p.eif = img;
    p.eif_len = len;
    p.mem_mib = 272;
    p.no_heartbeat_listen = true;
    t0 = now_ms();
    ok = nl_launch(&p, &e) == 0;
    t = now_ms() - t0;
    tap_ok(ok && nl_log_count("\"event\":\"eif\"", pcr[0], pcr[1]) == 1 &&
           t < 20000, "a 256 MiB EIF: copied, checked and measured in "
           "%lld ms", t);
    nl_close(&e);
    free(img);
    free(rd);
}

static void test_cli_pcr(void)
{
    char path[128], args[256], pcr[3][97];
    char *out;
    FILE *f;
    int st;

    snprintf(path, sizeof(path), "%s/test.eif", getenv("NITRO_SIM_DIR"));
    f = fopen(path, "w");
    fwrite(eif, 1, eif_len, f);
    fclose(f);
    eif_pcrs(&spec, pcr);
    snprintf(args, sizeof(args), "pcr %s", path);
    out = cli(args, &st);
    tap_ok(st == 0 && strstr(out, "\"verdict\": \"ok\"") &&
           strstr(out, pcr[0]) && strstr(out, pcr[1]) && strstr(out, pcr[2]),
           "nitro-sim pcr FILE prints the PCRs of an EIF file");
    free(out);

    /* Its output is JSON, whatever the file */
    snprintf(args, sizeof(args), "pcr %s | python3 -c 'import json, sys; "
             "print(json.load(sys.stdin)[\"pcr0\"])'", path);
    out = cli(args, &st);
    tap_ok(st == 0 && !strncmp(out, pcr[0], 96),
           "nitro-sim pcr FILE prints JSON");
    free(out);

    /* A bad image: a message on stderr, nothing on stdout, exit 1 */
    f = fopen(path, "w");
    fwrite("EIF.", 1, 4, f);
    fwrite(eif + 4, 1, eif_len - 4, f);
    fclose(f);
    snprintf(args, sizeof(args), "pcr %s 2>/dev/null", path);
    out = cli(args, &st);
    tap_ok(WIFEXITED(st) && WEXITSTATUS(st) == 1 && !out[0],
           "nitro-sim pcr BAD-FILE prints nothing on stdout, exits 1");
    free(out);
    snprintf(args, sizeof(args), "pcr %s 2>&1 >/dev/null", path);
    out = cli(args, &st);
    tap_ok(strstr(out, "nitro-sim: ") && strstr(out, "bad magic"),
           "nitro-sim pcr BAD-FILE says why on stderr");
    free(out);
    unlink(path);

    /* Not a regular file: refused, not read (a FIFO would hang) */
    snprintf(path, sizeof(path), "%s/fifo", getenv("NITRO_SIM_DIR"));
    mkfifo(path, 0600);
    snprintf(args, sizeof(args), "pcr %s 2>&1", path);
    out = cli(args, &st);
    tap_ok(WIFEXITED(st) && WEXITSTATUS(st) == 1 &&
           strstr(out, "not a regular file"),
           "nitro-sim pcr FIFO is refused");
    free(out);
    unlink(path);
}

static void test_cids(void)
{
    NlEnclave a, b, c;

    fresh("cid");
    setenv("NITRO_SIM_HEARTBEAT", "none", 1);
    tap_ok(launch(&a, false, 100, false) && a.cid == 100,
           "a requested CID (100) is used");
    tap_ok(!launch(&b, false, 100, false) && b.err == EADDRINUSE &&
           !strcmp(b.failed_step, "NE_START_ENCLAVE"),
           "a CID in use fails NE_START_ENCLAVE with EADDRINUSE");
    nl_close(&b);
    tap_ok(launch(&c, false, 0, false) && c.cid == 16,
           "automatic CIDs start at 16");
    nl_close(&a);
    nl_close(&c);
}

static char *run_launcher(long long start_at, pid_t *pid, int *outfd)
{
    int p[2];
    char at[32];

    if (pipe(p) < 0) {
        return NULL;
    }
    snprintf(at, sizeof(at), "%lld", start_at);
    *pid = fork();
    if (*pid == 0) {
        dup2(p[1], 1);
        close(p[0]);
        execl(getenv("NITRO_SIM_LAUNCH"), "nitro-sim-launch", "--start-at",
              at, "--hold", "200", NULL);
        _exit(127);
    }
    close(p[1]);
    *outfd = p[0];
    return NULL;
}

static void test_two_launchers(void)
{
    struct timespec ts;
    long long at;
    pid_t pid[2];
    int fd[2], st[2], i, ok = 0, inuse = 0;
    char *out[2];

    fresh("two");
    /*
     * What happens on a real parent: both launchers bind (3, 9000) before
     * NE_START_ENCLAVE; only one can hold the port.  The first to bind
     * keeps it until its heartbeat comes, which the boot delay makes
     * last 1 s; the second's bind fails with EADDRINUSE and it never
     * starts its enclave.
     */
    setenv("NITRO_SIM_BOOT_DELAY_MS", "1000", 1);
    clock_gettime(CLOCK_REALTIME, &ts);
    at = ts.tv_sec * 1000LL + ts.tv_nsec / 1000000 + 300;
    for (i = 0; i < 2; i++) {
        run_launcher(at, &pid[i], &fd[i]);
    }
    for (i = 0; i < 2; i++) {
        out[i] = nl_read_all(fd[i], 20000, NULL, NULL);
        close(fd[i]);
        waitpid(pid[i], &st[i], 0);
        tap_diag("launcher %d: %s", i, out[i]);
        if (WIFEXITED(st[i]) && WEXITSTATUS(st[i]) == 0 &&
            strstr(out[i], "\"launch\": \"ok\"")) {
            ok++;
        }
        if (WIFEXITED(st[i]) && WEXITSTATUS(st[i]) == 1 &&
            strstr(out[i], "\"step\": \"bind-heartbeat\", \"errno\": 98")) {
            inuse++;
        }
        free(out[i]);
    }
    tap_ok(ok == 1 && inuse == 1,
           "two launchers at the same instant: one launches, the other's "
           "bind of (3, 9000) fails with EADDRINUSE");
    tap_ok(nl_log_count("\"event\":\"start\"", NULL, NULL) == 1 &&
           nl_log_count("\"op\":\"bind\"", "\"port\":9000",
                        "\"error\":\"EADDRINUSE\"") == 1,
           "... and only one enclave was started");
}

static void test_process_exit(void)
{
    NlEnclave e;
    pid_t pid;
    int st;
    char *out;

    fresh("exit");
    setenv("NITRO_SIM_HEARTBEAT", "none", 1);
    pid = fork();
    if (pid == 0) {
        _exit(launch(&e, false, 0, false) ? 0 : 1);   /* fds left open */
    }
    waitpid(pid, &st, 0);
    /* _exit() skips the destructors: exit() runs them */
    pid = fork();
    if (pid == 0) {
        exit(launch(&e, false, 0, false) ? 0 : 1);
    }
    waitpid(pid, &st, 0);
    tap_ok(WIFEXITED(st) && WEXITSTATUS(st) == 0 &&
           nl_log_count("\"reason\":\"fd-closed\"", "\"at_exit\":true",
                        NULL) == 1,
           "exit() with the enclave fd open: stop logged, fd-closed at exit");

    pid = fork();
    if (pid == 0) {
        if (launch(&e, false, 0, false)) {
            raise(SIGKILL);
        }
        _exit(1);
    }
    waitpid(pid, &st, 0);
    out = cli("list", &st);
    tap_ok(!strstr(out, "\"cid\"") &&
           nl_log_count("\"event\":\"stop\"", "\"reason\":\"process-exit\"",
                        NULL) == 2,
           "killed owners (SIGKILL, _exit): their enclaves are dropped, "
           "stop logged as process-exit");
    free(out);
}

/* an EIF's command line may hold any byte: the log stays UTF-8 and JSON */
static void test_log_utf8(void)
{
    static const char py[] =
        "import json, sys\n"
        "for line in open(sys.argv[1], encoding='utf-8'):\n"
        "    event = json.loads(line)\n"
        "    if event['event'] == 'eif':\n"
        "        print(ascii(event['cmdline']))\n";
    EifSpec s = spec;
    NlParams p = { 0 };
    NlEnclave e;
    char script[4200], cmd[8600], out[512] = "";
    uint8_t *img;
    size_t len, n = 0;
    bool launched;
    FILE *f;

    fresh("utf8");
    setenv("NITRO_SIM_HEARTBEAT", "none", 1);
    s.cmdline = "console=ttyS0 caf\xc3\xa9 \xff\xfe bad\xc3( \xed\xa0\x80 end";
    img = eif_build(&s, &len);
    p.eif = img;
    p.eif_len = len;
    p.no_heartbeat_listen = true;
    launched = nl_launch(&p, &e) == 0;
    snprintf(script, sizeof(script), "%s/check.py", getenv("NITRO_SIM_DIR"));
    f = fopen(script, "w");
    fputs(py, f);
    fclose(f);
    snprintf(cmd, sizeof(cmd), "python3 '%s' '%s' 2>&1", script,
             nl_log_path());
    f = popen(cmd, "r");
    n = fread(out, 1, sizeof(out) - 1, f);
    out[n] = 0;
    pclose(f);
    if (!tap_ok(launched && !strcmp(out, "'console=ttyS0 caf\\xe9 \\xff\\xfe "
                                    "bad\\xc3( \\xed\\xa0\\x80 end'\n"),
                "a command line with bytes that are not UTF-8: "
                "events.jsonl is UTF-8 and JSON, the bytes escaped")) {
        tap_diag("%s", out);
    }
    nl_close(&e);
    free(img);
}

int main(void)
{
    char why[256];

    if (nl_hugepages(200, why, sizeof(why)) < 0) {
        tap_skip_all(why);
    }
    eif_default(&spec);
    eif = eif_build(&spec, &eif_len);
    tap_plan(41);
    test_full_launch();
    test_heartbeat_fail();
    test_fd_close();
    test_lifetime();
    test_boot_delay();
    test_eif_errors();
    test_eif_regions();
    test_large_eif();
    test_cli_pcr();
    test_cids();
    test_two_launchers();
    test_process_exit();
    test_log_utf8();
    free(eif);
    return tap_done();
}
