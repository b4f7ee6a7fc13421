/*
 * nitro-sim: the JSON-lines event log
 *
 * One JSON object per line: {"ts": seconds, "pid": N, "event": "...", ...}.
 * Each line is appended with a single write() on a file opened with
 * O_APPEND for that line only, so that several processes can share the
 * log and a program that closes "foreign" fds cannot break it.
 *
 * Copyright (c) 2025 Nitro Enclaves for QEMU authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/syscall.h>

#include "nitro-sim.h"

static void put(SimJson *j, const char *s, size_t n)
{
    if (j->len + n + 1 > j->cap) {
        size_t cap = (j->cap ? j->cap * 2 : 256);
        char *b;

        while (cap < j->len + n + 1) {
            cap *= 2;
        }
        b = realloc(j->buf, cap);
        if (!b) {
            return;
        }
        j->buf = b;
        j->cap = cap;
    }
    memcpy(j->buf + j->len, s, n);
    j->len += n;
    j->buf[j->len] = 0;
}

static void __attribute__((format(printf, 2, 3)))
putf(SimJson *j, const char *fmt, ...)
{
    char tmp[128];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    put(j, tmp, n < (int)sizeof(tmp) ? n : (int)sizeof(tmp) - 1);
}

/* the length of the valid UTF-8 sequence at @s (2..4), 0 if invalid */
static size_t utf8_len(const unsigned char *s)
{
    uint32_t cp;
    size_t n, i;

    if (s[0] >= 0xc2 && s[0] <= 0xdf) {
        n = 2;
        cp = s[0] & 0x1f;
    } else if (s[0] >= 0xe0 && s[0] <= 0xef) {
        n = 3;
        cp = s[0] & 0x0f;
    } else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
        n = 4;
        cp = s[0] & 0x07;
    } else {
        return 0;
    }
    for (i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80) {
            return 0;           /* also the terminating NUL */
        }
        cp = cp << 6 | (s[i] & 0x3f);
    }
    /* overlong forms, UTF-16 surrogates, beyond U+10FFFF */
    if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
        cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
        return 0;
    }
    return n;
}

/*
 * A JSON string of @s: valid UTF-8 as is, each byte that is not part of
 * valid UTF-8 (an EIF's command line may hold any byte) as \u00XX, its
 * Latin-1 reading, so that the log stays UTF-8 and JSON.
 */
void sim_json_escape(SimJson *j, const char *s)
{
    const unsigned char *p = (const unsigned char *)s;

    put(j, "\"", 1);
    while (*p) {
        unsigned char c = *p;
        size_t n = c >= 0x80 ? utf8_len(p) : 1;

        if (c == '"' || c == '\\') {
            char e[2] = { '\\', c };
            put(j, e, 2);
        } else if (c == '\n') {
            put(j, "\\n", 2);
        } else if (c < 0x20 || c == 0x7f || !n) {
            putf(j, "\\u%04x", c);
        } else {
            put(j, (const char *)p, n);
            p += n;
            continue;
        }
        p++;
    }
    put(j, "\"", 1);
}

static void key(SimJson *j, const char *k)
{
    put(j, ",", 1);
    sim_json_escape(j, k);
    put(j, ":", 1);
}

void sim_json_begin(SimJson *j, const char *event)
{
    struct timespec ts;

    memset(j, 0, sizeof(*j));
    clock_gettime(CLOCK_REALTIME, &ts);
    putf(j, "{\"ts\":%lld.%03ld,\"pid\":%d", (long long)ts.tv_sec,
         ts.tv_nsec / 1000000, (int)getpid());
    putf(j, ",\"tid\":%ld", (long)syscall(SYS_gettid));
    sim_json_str(j, "event", event);
}

void sim_json_str(SimJson *j, const char *k, const char *val)
{
    key(j, k);
    if (val) {
        sim_json_escape(j, val);
    } else {
        put(j, "null", 4);
    }
}

void sim_json_u64(SimJson *j, const char *k, uint64_t val)
{
    key(j, k);
    putf(j, "%" PRIu64, val);
}

void sim_json_i64(SimJson *j, const char *k, int64_t val)
{
    key(j, k);
    putf(j, "%" PRId64, val);
}

void sim_json_hex(SimJson *j, const char *k, uint64_t val)
{
    key(j, k);
    putf(j, "\"0x%" PRIx64 "\"", val);
}

void sim_json_bool(SimJson *j, const char *k, bool val)
{
    key(j, k);
    put(j, val ? "true" : "false", val ? 4 : 5);
}

void sim_json_raw(SimJson *j, const char *k, const char *raw)
{
    key(j, k);
    put(j, raw, strlen(raw));
}

static const char *const ne_errs[] = {
    "NE_ERR_VCPU_ALREADY_USED", "NE_ERR_VCPU_NOT_IN_CPU_POOL",
    "NE_ERR_VCPU_INVALID_CPU_CORE", "NE_ERR_INVALID_MEM_REGION_SIZE",
    "NE_ERR_INVALID_MEM_REGION_ADDR", "NE_ERR_UNALIGNED_MEM_REGION_ADDR",
    "NE_ERR_MEM_REGION_ALREADY_USED", "NE_ERR_MEM_NOT_HUGE_PAGE",
    "NE_ERR_MEM_DIFFERENT_NUMA_NODE", "NE_ERR_MEM_MAX_REGIONS",
    "NE_ERR_NO_MEM_REGIONS_ADDED", "NE_ERR_NO_VCPUS_ADDED",
    "NE_ERR_ENCLAVE_MEM_MIN_SIZE", "NE_ERR_FULL_CORES_NOT_USED",
    "NE_ERR_NOT_IN_INIT_STATE", "NE_ERR_INVALID_VCPU",
    "NE_ERR_NO_CPUS_AVAIL_IN_POOL", "NE_ERR_INVALID_PAGE_SIZE",
    "NE_ERR_INVALID_FLAG_VALUE", "NE_ERR_INVALID_ENCLAVE_CID",
};

const char *sim_errno_name(int err)
{
    if (err >= 256 && err <= 275) {
        return ne_errs[err - 256];
    }
    switch (err) {
    case EINVAL: return "EINVAL";
    case EFAULT: return "EFAULT";
    case ENOMEM: return "ENOMEM";
    case ENOTTY: return "ENOTTY";
    case EADDRINUSE: return "EADDRINUSE";
    case EADDRNOTAVAIL: return "EADDRNOTAVAIL";
    case ECONNREFUSED: return "ECONNREFUSED";
    case EIO: return "EIO";
    case EBADF: return "EBADF";
    case EAGAIN: return "EAGAIN";
    case ENOENT: return "ENOENT";
    case EPERM: return "EPERM";
    case EACCES: return "EACCES";
    case ENOSPC: return "ENOSPC";
    case ETIMEDOUT: return "ETIMEDOUT";
    case ECONNRESET: return "ECONNRESET";
    case EISCONN: return "EISCONN";
    case ENOTCONN: return "ENOTCONN";
    case EAFNOSUPPORT: return "EAFNOSUPPORT";
    default: return "other";
    }
}

void sim_json_result(SimJson *j, int err)
{
    if (!err) {
        sim_json_i64(j, "result", 0);
    } else {
        sim_json_i64(j, "result", -1);
        sim_json_i64(j, "errno", err);
        sim_json_str(j, "error", sim_errno_name(err));
    }
}

void sim_json_emit(SimJson *j, const SimConfig *cfg)
{
    int saved = errno;
    int fd;

    put(j, "}\n", 2);
    if (j->buf && cfg && cfg->log[0]) {
        /* the CLI (read-only) appends to an existing log only */
        fd = open(cfg->log, O_WRONLY | O_APPEND | O_CLOEXEC |
                  (cfg->readonly ? 0 : O_CREAT), 0644);
        if (fd >= 0) {
            ssize_t r = write(fd, j->buf, j->len);
            (void)r;
            close(fd);
        }
    }
    free(j->buf);
    j->buf = NULL;
    errno = saved;
}
