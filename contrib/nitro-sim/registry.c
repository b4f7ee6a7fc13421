/*
 * nitro-sim: the registry of enclaves of one simulation directory
 *
 * $NITRO_SIM_DIR/registry holds one line per enclave of every process
 * that uses the directory (slot, pid, state, CID, memory, vCPUs), so
 * that vCPUs and CIDs are unique across processes as on one parent
 * instance, and so that the CLI can list them.  Every access holds an
 * flock on $NITRO_SIM_DIR/registry.lock, from the read to the write of
 * what it changed; entries of processes that died without cleaning up
 * (killed, or zombies not reaped yet) are dropped on the next access,
 * with their stop logged and the files their running enclave kept in
 * the directory removed, as is a registry.tmp a killed writer left.
 * A write that fails (a full or broken file system) fails the access
 * with a reason that names the file.
 *
 * In the library, the enclaves of this process (sim_enclaves) and the
 * mutex that guards their state (sim_lock) are here too, with the
 * mirroring of an enclave into its registry line (sim_enclave_sync):
 * the driver and the enclave thread above both use them.
 *
 * Copyright (c) 2025 Nitro Enclaves for QEMU authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/file.h>
#include <sys/stat.h>

#include <stdint.h>
#include "standard-headers/linux/nitro_enclaves.h"

#include "nitro-sim.h"

/* the enclaves of this process, and the lock of everything about them */
pthread_mutex_t sim_lock = PTHREAD_MUTEX_INITIALIZER;
SimEnclave *sim_enclaves;

/* the files of a running enclave in the directory (enclave.c, boot.c) */
static const char *const enclave_files[] = {
    "console", "eif", "vhost", "vsock", "qemu.log",
};

/* state (field 3) and start time (field 22) of @pid; false if unknown */
static bool proc_stat(pid_t pid, char *state, unsigned long long *st)
{
    char path[64], buf[1024];
    const char *p;
    ssize_t n;
    int fd, field;

    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return false;
    }
    n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0) {
        return false;
    }
    buf[n] = 0;
    /* the comm field (2) may contain spaces and parentheses: skip it */
    p = strrchr(buf, ')');
    if (!p || sscanf(p + 1, " %c", state) != 1) {
        return false;
    }
    for (field = 2; p && field < 22; field++) {
        p = strchr(p + 1, ' ');
    }
    return p && sscanf(p + 1, "%llu", st) == 1;
}

unsigned long long sim_proc_starttime(pid_t pid)
{
    unsigned long long st;
    char state;

    return proc_stat(pid, &state, &st) ? st : 0;
}

/*
 * In state Z: a zombie (killed, not reaped yet), dead, unless other
 * threads of it still run (its first thread exited alone)
 */
static bool zombie(pid_t pid)
{
    char path[64];
    struct dirent *de;
    int threads = 0;
    DIR *d;

    snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
    d = opendir(path);
    if (!d) {
        return true;
    }
    while ((de = readdir(d))) {
        threads += de->d_name[0] != '.';
    }
    closedir(d);
    return threads <= 1;
}

/* a zombie is dead: it runs nothing any more, whatever its CID */
static bool alive(const SimRegEntry *e)
{
    unsigned long long st;
    char state;

    if (kill(e->pid, 0) < 0 && errno == ESRCH) {
        return false;
    }
    if (!proc_stat(e->pid, &state, &st)) {
        return !e->starttime;
    }
    if (state == 'X' || (state == 'Z' && zombie(e->pid))) {
        return false;
    }
    return !e->starttime || st == e->starttime;
}

static bool __attribute__((format(printf, 2, 3)))
reg_error(SimRegistry *r, const char *fmt, ...)
{
    int err = errno;
    size_t n;
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(r->err, sizeof(r->err), fmt, ap);
    va_end(ap);
    n = strlen(r->err);
    snprintf(r->err + n, sizeof(r->err) - n, ": %s", strerror(err));
    errno = err;
    return false;
}

/* the owner of @e died: log the stop, remove its running enclave's files */
static void recover(SimRegistry *r, const SimRegEntry *e)
{
    char path[PATH_MAX + 64];
    SimJson j;
    size_t i;

    if (strcmp(e->state, "running")) {
        return;
    }
    sim_json_begin(&j, "stop");
    sim_json_u64(&j, "cid", e->cid);
    sim_json_u64(&j, "slot_uid", e->slot);
    sim_json_i64(&j, "owner_pid", e->pid);
    sim_json_str(&j, "reason", "process-exit");
    sim_json_emit(&j, r->cfg);
    for (i = 0; i < sizeof(enclave_files) / sizeof(enclave_files[0]); i++) {
        snprintf(path, sizeof(path), "%s/enclave-%u.%s", r->cfg->dir, e->cid,
                 enclave_files[i]);
        unlink(path);
    }
}

/* lock held: read the registry, dropping (and recovering) dead owners */
static bool reg_read(SimRegistry *r, bool *pruned)
{
    char path[PATH_MAX + 16];
    char line[1024];
    FILE *f;
    bool ok;

    snprintf(path, sizeof(path), "%s/registry", r->cfg->dir);
    f = fopen(path, "re");
    if (!f) {
        return errno == ENOENT || reg_error(r, "cannot read %s", path);
    }
    while (fgets(line, sizeof(line), f)) {
        SimRegEntry e;
        unsigned long long slot, mem, st;
        unsigned cid;
        int pid, debug;

        if (sscanf(line, "next_slot %llu", &slot) == 1) {
            r->next_slot = slot;
            continue;
        }
        memset(&e, 0, sizeof(e));
        if (sscanf(line, "enclave %llu %d %llu %15s %u %llu %d %511s",
                   &slot, &pid, &st, e.state, &cid, &mem, &debug,
                   e.vcpus) != 8) {
            continue;
        }
        e.slot = slot;
        e.pid = pid;
        e.starttime = st;
        e.cid = cid;
        e.mem = mem;
        e.debug = debug;
        if (!strcmp(e.vcpus, "-")) {
            e.vcpus[0] = 0;
        }
        if (!alive(&e)) {
            recover(r, &e);
            *pruned = true;
            continue;
        }
        *sim_reg_add(r) = e;
    }
    ok = !ferror(f) || reg_error(r, "cannot read %s", path);
    fclose(f);
    return ok;
}

/* lock held: write the registry as a whole, or say why it failed */
static bool reg_write(SimRegistry *r)
{
    char path[PATH_MAX + 16], tmp[PATH_MAX + 16];
    FILE *f;
    int i, fd;

    snprintf(path, sizeof(path), "%s/registry", r->cfg->dir);
    snprintf(tmp, sizeof(tmp), "%s/registry.tmp", r->cfg->dir);
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        return reg_error(r, "cannot write %s", tmp);
    }
    /* readable by every user of the directory, whatever the umask */
    fchmod(fd, 0644);
    f = fdopen(fd, "w");
    if (!f) {
        reg_error(r, "cannot write %s", tmp);
        close(fd);
        unlink(tmp);
        return false;
    }
    fprintf(f, "next_slot %llu\n", (unsigned long long)r->next_slot);
    for (i = 0; i < r->n; i++) {
        SimRegEntry *e = &r->e[i];

        fprintf(f, "enclave %llu %d %llu %s %u %llu %d %s\n",
                (unsigned long long)e->slot, (int)e->pid, e->starttime,
                e->state, e->cid, (unsigned long long)e->mem, e->debug,
                e->vcpus[0] ? e->vcpus : "-");
    }
    if (fflush(f) != 0 || ferror(f)) {
        reg_error(r, "cannot write %s", tmp);
        fclose(f);
        unlink(tmp);
        return false;
    }
    if (fclose(f) != 0) {
        reg_error(r, "cannot write %s", tmp);
        unlink(tmp);
        return false;
    }
    if (rename(tmp, path) < 0) {
        reg_error(r, "cannot replace %s", path);
        unlink(tmp);
        return false;
    }
    return true;
}

bool sim_reg_open(SimRegistry *r, const SimConfig *cfg)
{
    char path[PATH_MAX + 16];
    bool pruned = false;

    memset(r, 0, sizeof(*r));
    r->cfg = cfg;
    r->next_slot = 1;
    snprintf(path, sizeof(path), "%s/registry.lock", cfg->dir);
    /* read-only: a lock file another user created works as well */
    r->lockfd = open(path, O_RDONLY | O_CLOEXEC |
                     (cfg->readonly ? 0 : O_CREAT), 0644);
    if (r->lockfd < 0) {
        if (cfg->readonly && errno == ENOENT) {
            return true;        /* no enclave was ever created here */
        }
        return reg_error(r, "cannot open %s", path);
    }
    while (flock(r->lockfd, LOCK_EX) < 0) {
        if (errno != EINTR) {
            reg_error(r, "cannot lock %s", path);
            sim_reg_close(r, false);
            return false;
        }
    }
    /* a writer killed before its rename */
    snprintf(path, sizeof(path), "%s/registry.tmp", cfg->dir);
    unlink(path);
    if (!reg_read(r, &pruned)) {
        sim_reg_close(r, false);
        return false;
    }
    if (pruned && !reg_write(r)) {
        /* the next write tries again; the entries are dropped here */
        r->err[0] = 0;
    }
    return true;
}

bool sim_reg_close(SimRegistry *r, bool write)
{
    bool ok = !write || r->lockfd < 0 || reg_write(r);
    int err = errno;

    free(r->e);
    r->e = NULL;
    r->n = 0;
    if (r->lockfd >= 0) {
        close(r->lockfd);
        r->lockfd = -1;
    }
    errno = err;
    return ok;
}

SimRegEntry *sim_reg_find(SimRegistry *r, pid_t pid, uint64_t slot)
{
    int i;

    for (i = 0; i < r->n; i++) {
        if (r->e[i].pid == pid && r->e[i].slot == slot) {
            return &r->e[i];
        }
    }
    return NULL;
}

SimRegEntry *sim_reg_add(SimRegistry *r)
{
    SimRegEntry *n = realloc(r->e, (r->n + 1) * sizeof(*n));

    if (!n) {
        abort();
    }
    r->e = n;
    memset(&r->e[r->n], 0, sizeof(*n));
    return &r->e[r->n++];
}

void sim_reg_remove(SimRegistry *r, SimRegEntry *e)
{
    int i = e - r->e;

    memmove(&r->e[i], &r->e[i + 1], (r->n - i - 1) * sizeof(*e));
    r->n--;
}

bool sim_reg_cpu_used(SimRegistry *r, unsigned cpu)
{
    int i;

    for (i = 0; i < r->n; i++) {
        const char *p = r->e[i].vcpus;

        while (*p) {
            uint64_t c;

            if (!sim_parse_u64(p, &p, &c)) {
                break;
            }
            if (c == cpu) {
                return true;
            }
            p += !!*p;
        }
    }
    return false;
}

bool sim_reg_cid_used(SimRegistry *r, uint32_t cid)
{
    int i;

    for (i = 0; i < r->n; i++) {
        if (!strcmp(r->e[i].state, "running") && r->e[i].cid == cid) {
            return true;
        }
    }
    return false;
}

int sim_reg_fail(SimRegistry *r)
{
    int err = errno ? errno : EIO;

    fprintf(stderr, "nitro-sim: %s\n", r->err);
    return -err;
}

/* ---- the enclaves of this process in the registry ---- */

void sim_reg_put(SimRegistry *r, SimEnclave *e, bool remove)
{
    SimRegEntry *re = sim_reg_find(r, e->owner, e->slot);
    char *p;
    int i;

    if (remove) {
        if (re) {
            sim_reg_remove(r, re);
        }
        return;
    }
    if (!re) {
        re = sim_reg_add(r);
        re->slot = e->slot;
        re->pid = e->owner;
        re->starttime = sim_proc_starttime(e->owner);
    }
    snprintf(re->state, sizeof(re->state), "%s",
             e->state == SIM_ST_INIT ? "init" :
             e->state == SIM_ST_RUNNING ? "running" : "stopped");
    re->cid = e->cid;
    re->mem = e->mem_size;
    re->debug = !!(e->flags & NE_ENCLAVE_DEBUG_MODE);
    p = re->vcpus;
    *p = 0;
    for (i = 0; i < e->nvcpus && p < re->vcpus + sizeof(re->vcpus) - 12;
         i++) {
        p += sprintf(p, "%s%u", i ? "," : "", e->vcpus[i]);
    }
}

int sim_enclave_sync(SimEnclave *e, bool remove)
{
    SimRegistry r;

    if (!sim_reg_open(&r, &e->cfg)) {
        return sim_reg_fail(&r);
    }
    sim_reg_put(&r, e, remove);
    if (!sim_reg_close(&r, true)) {
        return sim_reg_fail(&r);
    }
    return 0;
}
