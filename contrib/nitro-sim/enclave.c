/*
 * nitro-sim: what a started enclave does
 *
 * One thread per started enclave plays the enclave and its hypervisor:
 * it boots (NITRO_SIM_BOOT_DELAY_MS), runs the official init's heartbeat
 * (connect to (3, 9000), send 0xB7, require 0xB7 back, no retry), serves
 * the debug console at (0, cid + 10000) (the whole log to each client,
 * then new lines), runs for NITRO_SIM_LIFETIME_MS or until stopped, and
 * on stop closes the console (EOF) and the write end of the enclave fd's
 * pipe (POLLHUP); NITRO_SIM_CONSOLE_TAIL_MS delays the console's last line
 * and EOF past the POLLHUP.  Until the enclave fd is closed, a console
 * client that connects after the stop gets the whole console and EOF.
 * A control socket lets `nitro-sim stop CID` stop it.
 *
 * Copyright (c) 2025 Nitro Enclaves for QEMU authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <stdint.h>
#include "standard-headers/linux/nitro_enclaves.h"

#include "nitro-sim.h"

enum { PH_BOOT, PH_HEARTBEAT, PH_RUN };

uint64_t sim_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000ULL + ts.tv_nsec / 1000000;
}

static void log_simple(SimEnclave *e, const char *event, const char *k1,
                       const char *v1, const char *k2, const char *v2)
{
    SimJson j;

    sim_json_begin(&j, event);
    sim_json_u64(&j, "cid", e->cid);
    sim_json_u64(&j, "slot_uid", e->slot);
    if (k1) {
        sim_json_str(&j, k1, v1);
    }
    if (k2) {
        sim_json_str(&j, k2, v2);
    }
    sim_json_emit(&j, &e->cfg);
}

static void drop_client(SimEnclave *e, int i, const char *why)
{
    SimJson j;

    sim_json_begin(&j, "console");
    sim_json_u64(&j, "cid", e->cid);
    sim_json_u64(&j, "port", e->cid + SIM_CONSOLE_PORT_BASE);
    sim_json_str(&j, "state", "closed");
    sim_json_str(&j, "by", why);
    sim_json_emit(&j, &e->cfg);
    sim_real.close(e->clients[i]);
    e->clients[i] = e->clients[--e->nclients];
}

/* A console client has this long to make room, else it is dropped */
#define SIM_CONSOLE_STALL_MS 1000
/* ... except for NITRO_SIM_CONSOLE_BYTES, whose test client stalls */
#define SIM_CONSOLE_FILL_STALL_MS 60000

static bool send_all_within(int fd, const char *p, size_t n, int stall_ms)
{
    while (n) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);

        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w < 0 && errno == EAGAIN) {
            struct pollfd pfd = { .fd = fd, .events = POLLOUT };

            if (poll(&pfd, 1, stall_ms) <= 0) {
                return false;
            }
            continue;
        }
        if (w <= 0) {
            return false;
        }
        p += w;
        n -= w;
    }
    return true;
}

static bool send_all(int fd, const char *p, size_t n)
{
    return send_all_within(fd, p, n, SIM_CONSOLE_STALL_MS);
}

/*
 * bytes of the serial console: kept, written to the file, streamed to
 * the clients, which get @stall_ms to make room
 */
static void con_raw_within(SimEnclave *e, const char *line, size_t n,
                           int stall_ms)
{
    int i, fd;

    if (e->con_len + n > e->con_cap) {
        size_t cap = e->con_cap ? e->con_cap * 2 : 4096;
        char *b;

        while (cap < e->con_len + n) {
            cap *= 2;
        }
        b = realloc(e->con_buf, cap);
        if (!b) {
            return;
        }
        e->con_buf = b;
        e->con_cap = cap;
    }
    memcpy(e->con_buf + e->con_len, line, n);
    e->con_len += n;
    if (e->console_path[0]) {
        fd = open(e->console_path, O_WRONLY | O_APPEND | O_CLOEXEC);
        if (fd >= 0) {
            ssize_t w = write(fd, line, n);
            (void)w;
            sim_real.close(fd);
        }
    }
    for (i = e->nclients - 1; i >= 0; i--) {
        if (!send_all_within(e->clients[i], line, n, stall_ms)) {
            drop_client(e, i, "error");
        }
    }
}

static void con_raw(SimEnclave *e, const char *line, size_t n)
{
    con_raw_within(e, line, n, SIM_CONSOLE_STALL_MS);
}

/* one line of the serial console */
static void __attribute__((format(printf, 2, 3)))
con(SimEnclave *e, const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(line, sizeof(line) - 1, fmt, ap);
    va_end(ap);
    if (n < 0) {
        return;
    }
    if (n > (int)sizeof(line) - 2) {
        n = sizeof(line) - 2;
    }
    line[n++] = '\n';
    con_raw(e, line, n);
}

/*
 * NITRO_SIM_CONSOLE_BYTES: a chatty enclave, numbered lines of 1 KiB,
 * about @bytes in all, then "console fill done"; a console client that
 * does not read holds the enclave up (for a minute at most), as a full
 * vsock connection would.
 */
static void console_fill(SimEnclave *e, uint64_t bytes)
{
    uint64_t done = 0, line = 0;

    if (!bytes) {
        return;
    }
    while (done < bytes) {
        char buf[1024];
        int n = snprintf(buf, sizeof(buf), "nitro-sim: console fill %08"
                         PRIu64 " ", line++);

        memset(buf + n, '.', sizeof(buf) - n - 1);
        buf[sizeof(buf) - 1] = '\n';
        con_raw_within(e, buf, sizeof(buf), SIM_CONSOLE_FILL_STALL_MS);
        done += sizeof(buf);
    }
    con(e, "nitro-sim: console fill done");
}

static void log_heartbeat(SimEnclave *e, const char *result,
                          const char *detail)
{
    log_simple(e, "heartbeat", "result", result, detail ? "detail" : NULL,
               detail);
}

/*
 * The console's last bytes, delivered NITRO_SIM_CONSOLE_TAIL_MS after the
 * enclave stopped (after its POLLHUP), as a hypervisor may still have
 * them in flight: a launcher must read the console to EOF.
 */
typedef struct SimConsoleTail {
    int *fds;
    int nfds;
    char *bytes;
    size_t len;
    unsigned delay_ms;
} SimConsoleTail;

static void *console_tail_main(void *opaque)
{
    SimConsoleTail *t = opaque;
    struct timespec ts = { .tv_sec = t->delay_ms / 1000,
                           .tv_nsec = (t->delay_ms % 1000) * 1000000L };
    int i;

    while (nanosleep(&ts, &ts) && errno == EINTR) {
        /* the rest of the delay */
    }
    for (i = 0; i < t->nfds; i++) {
        send_all(t->fds[i], t->bytes, t->len);
        sim_real.close(t->fds[i]);
    }
    free(t->fds);
    free(t->bytes);
    free(t);
    return NULL;
}

/* lock held: hand the console clients over to a tail thread, or NULL */
static SimConsoleTail *console_tail_take(SimEnclave *e)
{
    SimConsoleTail *t;
    SimJson j;

    if (!e->cfg.console_tail_ms || !e->nclients) {
        return NULL;
    }
    t = calloc(1, sizeof(*t));
    if (!t) {
        return NULL;
    }
    t->fds = e->clients;
    t->nfds = e->nclients;
    t->delay_ms = e->cfg.console_tail_ms;
    e->clients = NULL;
    e->nclients = 0;
    sim_json_begin(&j, "console");
    sim_json_u64(&j, "cid", e->cid);
    sim_json_u64(&j, "port", e->cid + SIM_CONSOLE_PORT_BASE);
    sim_json_str(&j, "state", "tail");
    sim_json_u64(&j, "clients", t->nfds);
    sim_json_u64(&j, "delay_ms", t->delay_ms);
    sim_json_emit(&j, &e->cfg);
    return t;
}

/* lock held: send @len bytes at @p to the tail's clients, later */
static void console_tail_start(SimConsoleTail *t, const char *p, size_t len)
{
    pthread_attr_t attr;
    pthread_t thread;
    int err;

    t->bytes = malloc(len);
    if (t->bytes) {
        memcpy(t->bytes, p, len);
        t->len = len;
    }
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    err = pthread_create(&thread, &attr, console_tail_main, t);
    pthread_attr_destroy(&attr);
    if (err) {
        t->delay_ms = 0;    /* no thread: at once */
        console_tail_main(t);
    }
}

static bool accept_console(SimEnclave *e);

/*
 * lock held: everything that makes the enclave stopped.  Its console is
 * complete: the emulated machine's last bytes are copied, and a client
 * that connected and was not accepted yet gets it all before its EOF.
 */
static void do_stop(SimEnclave *e, const char *reason)
{
    SimConsoleTail *tail;
    size_t from;
    SimJson j;

    if (e->cfg.boot == SIM_BOOT_QEMU) {
        sim_boot_drain(e, con_raw);
    }
    while (e->console_listen >= 0 && accept_console(e)) {
        /* each gets the console so far */
    }
    tail = console_tail_take(e);
    from = e->con_len;
    if (e->cfg.boot == SIM_BOOT_QEMU) {
        sim_boot_stop(e);
        if (e->line_len) {
            con_raw(e, "\n", 1);   /* end the kernel's last line */
        }
    }
    con(e, "nitro-sim: enclave stopped (%s)", reason);
    if (tail) {
        console_tail_start(tail, e->con_buf + from, e->con_len - from);
    }
    sim_json_begin(&j, "stop");
    sim_json_u64(&j, "cid", e->cid);
    sim_json_u64(&j, "slot_uid", e->slot);
    sim_json_str(&j, "reason", reason);
    if (e->at_exit) {
        sim_json_bool(&j, "at_exit", true);
    }
    sim_json_emit(&j, &e->cfg);
    while (e->nclients) {
        drop_client(e, e->nclients - 1, "enclave-stop");
    }
    if (e->ctl_listen >= 0) {
        sim_real.close(e->ctl_listen);
        e->ctl_listen = -1;
    }
    if (e->wr_fd >= 0) {
        sim_real.close(e->wr_fd);   /* POLLHUP on the enclave fd */
        e->wr_fd = -1;
    }
    e->state = SIM_ST_STOPPED;
    e->stop_reason = reason;
    sim_enclave_sync(e, false);
    pthread_cond_broadcast(&e->cond);
}

/* a client of the console connects: false if none was waiting */
static bool accept_console(SimEnclave *e)
{
    int fd = sim_real.accept4(e->console_listen, NULL, NULL,
                              SOCK_CLOEXEC | SOCK_NONBLOCK);
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    uint32_t pcid = 0, pport = 0;
    SimJson j;

    if (fd < 0) {
        return false;
    }
    if (sim_real.getpeername(fd, (struct sockaddr *)&ss, &sl) == 0) {
        sim_vsock_parse_name((struct sockaddr *)&ss, sl, &pcid, &pport);
    }
    e->clients = realloc(e->clients, (e->nclients + 1) * sizeof(int));
    e->clients[e->nclients++] = fd;
    sim_json_begin(&j, "console");
    sim_json_u64(&j, "cid", e->cid);
    sim_json_u64(&j, "port", e->cid + SIM_CONSOLE_PORT_BASE);
    sim_json_str(&j, "state", "connected");
    sim_json_u64(&j, "peer_cid", pcid);
    sim_json_u64(&j, "peer_port", pport);
    sim_json_u64(&j, "replayed", e->con_len);
    sim_json_emit(&j, &e->cfg);
    if (e->con_len && !send_all(fd, e->con_buf, e->con_len)) {
        drop_client(e, e->nclients - 1, "error");
    }
    return true;
}

/* a command from `nitro-sim`; returns the stop reason or NULL */
static const char *ctl_command(SimEnclave *e, int *ctl_client)
{
    int fd = sim_real.accept4(e->ctl_listen, NULL, NULL, SOCK_CLOEXEC);
    struct pollfd pfd = { .fd = fd, .events = POLLIN };
    char buf[64] = "";
    ssize_t n;

    if (fd < 0) {
        return NULL;
    }
    if (poll(&pfd, 1, 1000) == 1) {
        n = recv(fd, buf, sizeof(buf) - 1, 0);
        buf[n > 0 ? n : 0] = 0;
    }
    if (!strncmp(buf, "stop", 4)) {
        if (*ctl_client >= 0) {
            sim_real.close(*ctl_client);
        }
        *ctl_client = fd;
        return "cli-stop";
    }
    send_all(fd, "error: unknown command\n", 23);
    sim_real.close(fd);
    return NULL;
}

/* the state of the enclave thread's loop */
typedef struct SimRun {
    int phase;                  /* PH_* */
    uint64_t deadline;          /* of the phase, 0: none */
    int hb;                     /* the heartbeat connection */
    int ctl_client;             /* `nitro-sim stop` waiting for "stopped" */
} SimRun;

/* lock held: what the simulated kernel prints first */
static void banner(SimEnclave *e)
{
    char vl[64] = "";
    int i;

    for (i = 0; i < e->nvcpus && strlen(vl) < sizeof(vl) - 12; i++) {
        sprintf(vl + strlen(vl), "%s%u", i ? "," : "", e->vcpus[i]);
    }
    con(e, "nitro-sim: simulated Nitro Enclave, no kernel is executed");
    con(e, "Linux version nitro-sim (%s)", sim_arch_name(e->eif.arch));
    con(e, "Kernel command line: %s", e->eif.cmdline ? e->eif.cmdline : "");
    con(e, "nitro-sim: arch %s", sim_arch_name(e->eif.arch));
    con(e, "nitro-sim: cid %u", e->cid);
    con(e, "nitro-sim: memory %llu MiB, %d vCPUs (%s)",
        (unsigned long long)(e->mem_size / SIM_MIB), e->nvcpus, vl);
    con(e, "nitro-sim: EIF version %u, %u sections, %u ramdisks, %llu bytes",
        e->eif.version, e->eif.nsections, e->eif.nramdisks,
        (unsigned long long)e->eif.size);
    for (i = 0; i < 3; i++) {
        con(e, "nitro-sim: PCR%d %s", i, e->eif.pcr_hex[i]);
    }
}

/* the fds the loop polls; fixed slots first, then the console clients */
enum {
    PF_WAKE, PF_ENCLAVE_FD, PF_CONSOLE, PF_CTL, PF_HEARTBEAT, PF_SERIAL,
    PF_QEMU, PF_BACKEND, PF_CLIENTS
};

/* lock held: fill *@pfd (grown as needed); the number of fds */
static int poll_set(SimEnclave *e, const SimRun *run, struct pollfd **pfd)
{
    bool boot = e->cfg.boot == SIM_BOOT_QEMU;
    struct pollfd *p = realloc(*pfd, (PF_CLIENTS + e->nclients) *
                                     sizeof(*p));
    int i;

    if (!p) {
        return -1;
    }
    *pfd = p;
    p[PF_WAKE] = (struct pollfd) { .fd = e->wake[0], .events = POLLIN };
    p[PF_ENCLAVE_FD] = (struct pollfd) { .fd = e->wr_fd, .events = 0 };
    p[PF_CONSOLE] = (struct pollfd) { .fd = e->console_listen,
                                      .events = POLLIN };
    p[PF_CTL] = (struct pollfd) { .fd = e->ctl_listen, .events = POLLIN };
    p[PF_HEARTBEAT] = (struct pollfd) { .fd = run->hb, .events = POLLIN };
    p[PF_SERIAL] = (struct pollfd) { .fd = boot ? e->serial_fd : -1,
                                     .events = POLLIN };
    p[PF_QEMU] = (struct pollfd) { .fd = boot ? e->qemu_pidfd : -1,
                                   .events = POLLIN };
    p[PF_BACKEND] = (struct pollfd) { .fd = boot ? e->backend_pidfd : -1,
                                      .events = POLLIN };
    for (i = 0; i < e->nclients; i++) {
        p[PF_CLIENTS + i] = (struct pollfd) { .fd = e->clients[i],
                                              .events = POLLIN };
    }
    return PF_CLIENTS + e->nclients;
}

/* lock held: what poll() reported, but the heartbeat; a stop reason */
static const char *poll_events(SimEnclave *e, SimRun *run,
                               const struct pollfd *pfd, int n)
{
    const char *reason = NULL;
    int i, k;

    if (e->stop_req) {
        reason = e->stop_req;
    } else if (pfd[PF_ENCLAVE_FD].revents & (POLLERR | POLLHUP)) {
        reason = "fd-closed";
    } else if (pfd[PF_CTL].revents & POLLIN) {
        reason = ctl_command(e, &run->ctl_client);
    }
    if (!reason && (pfd[PF_CONSOLE].revents & POLLIN)) {
        accept_console(e);
    }
    if (!reason && (pfd[PF_SERIAL].revents & (POLLIN | POLLHUP | POLLERR))) {
        reason = sim_boot_serial(e, con_raw);
    }
    if (!reason && ((pfd[PF_QEMU].revents | pfd[PF_BACKEND].revents) &
                    POLLIN)) {
        reason = sim_boot_exited(e);
    }
    /* console clients: only their hangup matters */
    for (i = n - 1; !reason && i >= PF_CLIENTS; i--) {
        char junk[256];

        if (pfd[i].revents & (POLLIN | POLLHUP | POLLERR)) {
            ssize_t r = recv(pfd[i].fd, junk, sizeof(junk), MSG_DONTWAIT);

            if (r == 0 || (r < 0 && errno != EAGAIN)) {
                for (k = 0; k < e->nclients; k++) {
                    if (e->clients[k] == pfd[i].fd) {
                        drop_client(e, k, "client");
                        break;
                    }
                }
            }
        }
    }
    return reason;
}

static void panic(SimEnclave *e, const char *why)
{
    con(e, "nitro-sim: heartbeat fail (%s)", why);
    con(e, "Kernel panic - not syncing: Attempted to kill init!"
        " exitcode=0x00000100");
    log_heartbeat(e, "fail", why);
}

/* lock held: the boot delay is over, the init connects to (3, 9000) */
static const char *heartbeat_send(SimEnclave *e, SimRun *run, uint64_t now)
{
    const SimConfig *cfg = &e->cfg;
    uint8_t b = cfg->heartbeat == SIM_HB_OK ? SIM_HEARTBEAT_BYTE : 0x00;
    char d[128];

    if (cfg->heartbeat == SIM_HB_NONE) {
        con(e, "nitro-sim: init: no heartbeat (NITRO_SIM_HEARTBEAT=none)");
        log_heartbeat(e, "none", NULL);
        run->phase = PH_RUN;
        run->deadline = cfg->lifetime_ms ? now + cfg->lifetime_ms : 0;
        return NULL;
    }
    con(e, "nitro-sim: init: heartbeat to CID %u port %u", SIM_PARENT_CID,
        SIM_HEARTBEAT_PORT);
    run->hb = sim_vsock_connect_as(cfg, e->cid, SIM_PARENT_CID,
                                   SIM_HEARTBEAT_PORT);
    if (run->hb < 0 || send(run->hb, &b, 1, MSG_NOSIGNAL) != 1) {
        snprintf(d, sizeof(d), "connect: %s",
                 strerror(run->hb < 0 ? -run->hb : errno));
        panic(e, d);
        return "heartbeat-failed";
    }
    run->phase = PH_HEARTBEAT;
    run->deadline = now + cfg->heartbeat_timeout_ms;
    return NULL;
}

/* lock held: the parent answered (@readable) or the time is up */
static const char *heartbeat_reply(SimEnclave *e, SimRun *run,
                                   bool readable, uint64_t now)
{
    const SimConfig *cfg = &e->cfg;
    const char *reason = NULL;
    uint8_t b = 0;
    ssize_t r = readable ? recv(run->hb, &b, 1, MSG_DONTWAIT) : -2;
    char d[128];

    if (r == 1 && b == SIM_HEARTBEAT_BYTE && cfg->heartbeat == SIM_HB_OK) {
        /* logged first: whoever reads the console sees it done */
        log_heartbeat(e, "ok", NULL);
        con(e, "nitro-sim: heartbeat ok");
        con(e, "nitro-sim: running");
        console_fill(e, cfg->console_bytes);
        run->phase = PH_RUN;
        run->deadline = cfg->lifetime_ms ? now + cfg->lifetime_ms : 0;
    } else {
        if (r == 1) {
            snprintf(d, sizeof(d), "%s; reply 0x%02x",
                     cfg->heartbeat == SIM_HB_BAD ?
                     "sent 0x00 (NITRO_SIM_HEARTBEAT=bad)" : "sent 0xb7", b);
        } else {
            snprintf(d, sizeof(d), "%s",
                     r == 0 ? "parent closed the connection" :
                     r == -2 ? "no reply in time" : strerror(errno));
        }
        panic(e, d);
        reason = "heartbeat-failed";
    }
    sim_real.close(run->hb);
    run->hb = -1;
    return reason;
}

/*
 * After the stop, until the enclave is released (its fd closed, when
 * sim_enclave_stop() sets linger_end): as the hypervisor keeps the
 * enclave's slot, a console client that connects late still gets the
 * whole console, then EOF.  No lock: the stopped enclave's console does
 * not change, and the releaser waits for this thread.
 */
static void linger_console(SimEnclave *e)
{
    char junk[64];

    while (e->console_listen >= 0 &&
           !__atomic_load_n(&e->linger_end, __ATOMIC_SEQ_CST)) {
        struct pollfd pfd[2] = {
            { .fd = e->wake[0], .events = POLLIN },
            { .fd = e->console_listen, .events = POLLIN },
        };
        int fd;

        if (poll(pfd, 2, -1) < 0 && errno != EINTR) {
            break;
        }
        while (read(e->wake[0], junk, sizeof(junk)) > 0) {
            /* woken: look at linger_end again */
        }
        fd = sim_real.accept4(e->console_listen, NULL, NULL, SOCK_CLOEXEC);
        if (fd >= 0) {
            send_all(fd, e->con_buf, e->con_len);
            sim_real.close(fd);
        }
    }
    if (e->console_listen >= 0) {
        sim_real.close(e->console_listen);
        e->console_listen = -1;
    }
}

static void *enclave_main(void *opaque)
{
    SimEnclave *e = opaque;
    const SimConfig *cfg = &e->cfg;
    SimRun run = { .phase = PH_BOOT, .hb = -1, .ctl_client = -1 };
    const char *reason = NULL;
    struct pollfd *pfd = NULL;

    pthread_mutex_lock(&sim_lock);
    if (cfg->boot == SIM_BOOT_QEMU) {
        /* the real init does the heartbeat; the console is the real ttyS0 */
        run.phase = PH_RUN;
        run.deadline = cfg->lifetime_ms ? sim_now_ms() + cfg->lifetime_ms : 0;
    } else {
        run.deadline = sim_now_ms() + cfg->boot_delay_ms;
        banner(e);
    }
    pthread_mutex_unlock(&sim_lock);

    while (!reason) {
        int n, timeout = -1;
        bool hb_ready;
        uint64_t now, stop_at;

        pthread_mutex_lock(&sim_lock);
        n = poll_set(e, &run, &pfd);
        pthread_mutex_unlock(&sim_lock);

        now = sim_now_ms();
        stop_at = cfg->boot == SIM_BOOT_QEMU ? sim_boot_deadline(e) : 0;
        if (run.deadline && (!stop_at || run.deadline < stop_at)) {
            stop_at = run.deadline;
        }
        if (stop_at) {
            timeout = stop_at > now ? (int)(stop_at - now) : 0;
        }
        if (n < 0 || (poll(pfd, n, timeout) < 0 && errno != EINTR)) {
            reason = "internal-error";
            break;
        }
        pthread_mutex_lock(&sim_lock);
        reason = poll_events(e, &run, pfd, n);
        hb_ready = pfd[PF_HEARTBEAT].revents & (POLLIN | POLLHUP | POLLERR);
        now = sim_now_ms();
        if (!reason && run.phase == PH_BOOT && now >= run.deadline) {
            reason = heartbeat_send(e, &run, now);
        } else if (!reason && run.phase == PH_HEARTBEAT &&
                   (hb_ready || now >= run.deadline)) {
            reason = heartbeat_reply(e, &run, hb_ready, now);
        } else if (!reason && run.phase == PH_RUN && run.deadline &&
                   now >= run.deadline) {
            reason = "lifetime";
        }
        if (!reason && cfg->boot == SIM_BOOT_QEMU && sim_boot_deadline(e) &&
            now >= sim_boot_deadline(e)) {
            reason = "kernel-panic";
        }
        if (reason) {
            if (run.hb >= 0) {
                sim_real.close(run.hb);
                run.hb = -1;
            }
            do_stop(e, reason);
            if (run.ctl_client >= 0) {
                send_all(run.ctl_client, "stopped\n", 8);
                sim_real.close(run.ctl_client);
            }
        }
        pthread_mutex_unlock(&sim_lock);
    }
    free(pfd);
    linger_console(e);
    return NULL;
}

int sim_enclave_launch(SimEnclave *e)
{
    struct sockaddr_storage ss;
    socklen_t sl;
    int fd, err;

    e->qemu_pidfd = e->backend_pidfd = e->serial_fd = -1;
    if (pipe2(e->wake, O_CLOEXEC | O_NONBLOCK) < 0) {
        return errno;
    }
    if (e->flags & NE_ENCLAVE_DEBUG_MODE) {
        e->console_listen = sim_vsock_listen_as(&e->cfg, SIM_HYPERVISOR_CID,
                                                e->cid +
                                                SIM_CONSOLE_PORT_BASE);
        if (e->console_listen < 0) {
            err = -e->console_listen;
            e->console_listen = -1;
            goto fail;
        }
        snprintf(e->console_path, sizeof(e->console_path),
                 "%s/enclave-%u.console", e->cfg.dir, e->cid);
        fd = open(e->console_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
                  0644);
        if (fd >= 0) {
            sim_real.close(fd);
        } else {
            e->console_path[0] = 0;
        }
        log_simple(e, "console", "state", "listening", NULL, NULL);
    }
    e->ctl_listen = sim_real.socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC |
                                    SOCK_NONBLOCK, 0);
    sl = sim_ctl_name(&e->cfg, e->cid, (struct sockaddr *)&ss);
    if (e->ctl_listen < 0 ||
        sim_real.bind(e->ctl_listen, (struct sockaddr *)&ss, sl) < 0 ||
        sim_real.listen(e->ctl_listen, 8) < 0) {
        err = errno;
        goto fail;
    }
    if (e->cfg.boot == SIM_BOOT_QEMU) {
        err = sim_boot_start(e);
        if (err) {
            goto fail;
        }
    }
    err = pthread_create(&e->thread, NULL, enclave_main, e);
    if (err) {
        if (e->cfg.boot == SIM_BOOT_QEMU) {
            sim_boot_stop(e);
        }
        goto fail;
    }
    e->thread_running = true;
    return 0;

fail:
    if (e->console_listen >= 0) {
        sim_real.close(e->console_listen);
        e->console_listen = -1;
    }
    if (e->ctl_listen >= 0) {
        sim_real.close(e->ctl_listen);
        e->ctl_listen = -1;
    }
    sim_real.close(e->wake[0]);
    sim_real.close(e->wake[1]);
    e->wake[0] = e->wake[1] = -1;
    if (e->console_path[0]) {
        unlink(e->console_path);
        e->console_path[0] = 0;
    }
    return err;
}

/* lock held, the enclave stopped: end its thread's linger_console() */
static void join(SimEnclave *e)
{
    __atomic_store_n(&e->linger_end, true, __ATOMIC_SEQ_CST);
    if (write(e->wake[1], "x", 1) < 0) {
        /* the pipe is full: the thread is awake anyway */
    }
    pthread_join(e->thread, NULL);
    e->thread_running = false;
}

void sim_enclave_stop(SimEnclave *e, const char *reason)
{
    struct timespec ts;

    if (e->state != SIM_ST_RUNNING || !e->thread_running ||
        pthread_equal(pthread_self(), e->thread)) {
        if (e->state == SIM_ST_STOPPED && e->thread_running &&
            !pthread_equal(pthread_self(), e->thread)) {
            join(e);
        }
        return;
    }
    if (!e->stop_req) {
        e->stop_req = reason;
    }
    if (write(e->wake[1], "x", 1) < 0) {
        /* the pipe is full: the thread is awake anyway */
    }
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += 5;
    while (e->state == SIM_ST_RUNNING) {
        if (pthread_cond_timedwait(&e->cond, &sim_lock, &ts) == ETIMEDOUT) {
            return;
        }
    }
    /* the thread only returns after do_stop(): safe to join, lock held */
    join(e);
}
