/*
 * nitro-sim: the registry of enclaves of one simulation directory
 *
 * $NITRO_SIM_DIR/registry holds one line per enclave of every process
 * that uses the directory (slot, pid, state, CID, memory, vCPUs), so
 * that vCPUs and CIDs are unique across processes as on one parent
 * instance, and so that the CLI can list them.  Every access holds an
 * flock on $NITRO_SIM_DIR/registry.lock; entries of processes that died
 * without cleaning up are dropped (and their stop logged) on the next
 * access.
 *
 * Copyright (c) 2025 Nitro Enclaves for QEMU authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/file.h>

#include "nitro-sim.h"

unsigned long long sim_proc_starttime(pid_t pid)
{
    char path[64], buf[1024];
    unsigned long long st = 0;
    const char *p;
    ssize_t n;
    int fd, field;

    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return 0;
    }
    n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0) {
        return 0;
    }
    buf[n] = 0;
    /* field 22; the comm field (2) may contain spaces: skip past ')' */
    p = strrchr(buf, ')');
    for (field = 2; p && field < 22; field++) {
        p = strchr(p + 1, ' ');
    }
    if (p) {
        sscanf(p + 1, "%llu", &st);
    }
    return st;
}

static bool alive(const SimRegEntry *e)
{
    if (kill(e->pid, 0) < 0 && errno == ESRCH) {
        return false;
    }
    return !e->starttime || sim_proc_starttime(e->pid) == e->starttime;
}

bool sim_reg_open(SimRegistry *r, const SimConfig *cfg)
{
    char path[PATH_MAX + 16];
    char line[1024];
    FILE *f;
    bool pruned = false;

    memset(r, 0, sizeof(*r));
    r->cfg = cfg;
    r->next_slot = 1;
    snprintf(path, sizeof(path), "%s/registry.lock", cfg->dir);
    r->lockfd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (r->lockfd < 0) {
        return false;
    }
    while (flock(r->lockfd, LOCK_EX) < 0) {
        if (errno != EINTR) {
            close(r->lockfd);
            return false;
        }
    }
    snprintf(path, sizeof(path), "%s/registry", cfg->dir);
    f = fopen(path, "re");
    if (!f) {
        return true;
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
            if (!strcmp(e.state, "running")) {
                SimJson j;

                sim_json_begin(&j, "stop");
                sim_json_u64(&j, "cid", e.cid);
                sim_json_u64(&j, "slot_uid", e.slot);
                sim_json_i64(&j, "owner_pid", e.pid);
                sim_json_str(&j, "reason", "process-exit");
                sim_json_emit(&j, cfg);
            }
            pruned = true;
            continue;
        }
        *sim_reg_add(r) = e;
    }
    fclose(f);
    if (pruned) {
        /* write the pruned list back, keep the lock */
        sim_reg_close(r, true);
        return sim_reg_open(r, cfg);
    }
    return true;
}

void sim_reg_close(SimRegistry *r, bool write)
{
    char path[PATH_MAX + 16], tmp[PATH_MAX + 48];
    FILE *f;
    int i;

    if (write) {
        snprintf(path, sizeof(path), "%s/registry", r->cfg->dir);
        snprintf(tmp, sizeof(tmp), "%s/registry.tmp.%d", r->cfg->dir,
                 (int)getpid());
        f = fopen(tmp, "we");
        if (f) {
            fprintf(f, "next_slot %llu\n", (unsigned long long)r->next_slot);
            for (i = 0; i < r->n; i++) {
                SimRegEntry *e = &r->e[i];

                fprintf(f, "enclave %llu %d %llu %s %u %llu %d %s\n",
                        (unsigned long long)e->slot, (int)e->pid,
                        e->starttime, e->state, e->cid,
                        (unsigned long long)e->mem, e->debug,
                        e->vcpus[0] ? e->vcpus : "-");
            }
            if (fclose(f) == 0) {
                rename(tmp, path);
            } else {
                unlink(tmp);
            }
        }
    }
    free(r->e);
    r->e = NULL;
    r->n = 0;
    close(r->lockfd);
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
