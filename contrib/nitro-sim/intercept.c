/*
 * nitro-sim: the libc entry points the LD_PRELOAD library replaces
 *
 * Opening /dev/nitro_enclaves (open, open64, openat, openat64, __open_2,
 * __open64_2, __openat_2, __openat64_2, fopen, fopen64; access and
 * faccessat say it exists) and the simulated sysfs files (sysfs.c),
 * ioctl on the simulated fds, close (to notice the last close of an
 * enclave fd at once), the socket calls of AF_VSOCK sockets, and uname
 * (the machine is the simulated host's, NITRO_SIM_ARCH).  Everything
 * else goes to the next definition (dlsym(RTLD_NEXT)), normally libc's,
 * through the table of real.c.
 *
 * Copyright (c) 2025 Nitro Enclaves for QEMU authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

/* our definitions must be the plain symbols, not fortified or 64-bit ones */
#undef _FORTIFY_SOURCE
#undef _FILE_OFFSET_BITS
#undef _TIME_BITS
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "nitro-sim.h"

#define EXPORT __attribute__((visibility("default")))

static __attribute__((constructor)) void sim_init(void)
{
    sim_real_init();
}

static __attribute__((destructor)) void sim_fini(void)
{
    sim_process_exit();
}

static bool is_device(const char *path)
{
    return path && !strcmp(path, SIM_DEVICE_PATH);
}

static bool is_special(const char *path)
{
    return is_device(path) || sim_sysfs_path(path);
}

/* the device or a file of the simulated sysfs */
static int special_open(const char *path, int flags, const char *via)
{
    if (is_device(path)) {
        return sim_device_open(flags, via);
    }
    sim_real_init();
    return sim_sysfs_open(path, flags);
}

static bool wants_mode(int flags)
{
    return (flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE;
}

EXPORT int open(const char *path, int flags, ...)
{
    mode_t mode = 0;

    if (wants_mode(flags)) {
        va_list ap;

        va_start(ap, flags);
        mode = va_arg(ap, mode_t);
        va_end(ap);
    }
    if (is_special(path)) {
        return special_open(path, flags, "open");
    }
    sim_real_init();
    return sim_real.open(path, flags, mode);
}

EXPORT int open64(const char *path, int flags, ...)
{
    mode_t mode = 0;

    if (wants_mode(flags)) {
        va_list ap;

        va_start(ap, flags);
        mode = va_arg(ap, mode_t);
        va_end(ap);
    }
    if (is_special(path)) {
        return special_open(path, flags, "open64");
    }
    sim_real_init();
    return sim_real.open(path, flags | O_LARGEFILE, mode);
}

EXPORT int openat(int dirfd, const char *path, int flags, ...)
{
    mode_t mode = 0;

    if (wants_mode(flags)) {
        va_list ap;

        va_start(ap, flags);
        mode = va_arg(ap, mode_t);
        va_end(ap);
    }
    if (is_special(path)) {
        return special_open(path, flags, "openat");
    }
    sim_real_init();
    return sim_real.openat(dirfd, path, flags, mode);
}

EXPORT int openat64(int dirfd, const char *path, int flags, ...)
{
    mode_t mode = 0;

    if (wants_mode(flags)) {
        va_list ap;

        va_start(ap, flags);
        mode = va_arg(ap, mode_t);
        va_end(ap);
    }
    if (is_special(path)) {
        return special_open(path, flags, "openat64");
    }
    sim_real_init();
    return sim_real.openat(dirfd, path, flags | O_LARGEFILE, mode);
}

/* the _FORTIFY_SOURCE variants (no mode: they abort on O_CREAT) */
EXPORT int __open_2(const char *path, int flags)
{
    if (is_special(path)) {
        return special_open(path, flags, "__open_2");
    }
    sim_real_init();
    return sim_real.open(path, flags);
}

EXPORT int __open64_2(const char *path, int flags)
{
    if (is_special(path)) {
        return special_open(path, flags, "__open64_2");
    }
    sim_real_init();
    return sim_real.open(path, flags | O_LARGEFILE);
}

EXPORT int __openat_2(int dirfd, const char *path, int flags)
{
    if (is_special(path)) {
        return special_open(path, flags, "__openat_2");
    }
    sim_real_init();
    return sim_real.openat(dirfd, path, flags);
}

EXPORT int __openat64_2(int dirfd, const char *path, int flags)
{
    if (is_special(path)) {
        return special_open(path, flags, "__openat64_2");
    }
    sim_real_init();
    return sim_real.openat(dirfd, path, flags | O_LARGEFILE);
}

static FILE *device_fopen(const char *path, const char *mode,
                          const char *via)
{
    int flags = (strchr(mode, '+') || *mode != 'r' ? O_RDWR : O_RDONLY) |
                (strchr(mode, 'e') ? O_CLOEXEC : 0);
    int fd = special_open(path, is_device(path) ? flags | O_RDWR : flags,
                          via);
    FILE *f;

    if (fd < 0) {
        return NULL;
    }
    f = fdopen(fd, mode);
    if (!f) {
        int e = errno;

        sim_real.close(fd);
        errno = e;
    }
    return f;
}

EXPORT FILE *fopen(const char *path, const char *mode)
{
    if (is_special(path)) {
        return device_fopen(path, mode, "fopen");
    }
    sim_real_init();
    return sim_real.fopen(path, mode);
}

EXPORT FILE *fopen64(const char *path, const char *mode)
{
    if (is_special(path)) {
        return device_fopen(path, mode, "fopen64");
    }
    sim_real_init();
    return sim_real.fopen64(path, mode);
}

EXPORT int access(const char *path, int mode)
{
    static int (*real_access)(const char *, int);

    if (is_device(path)) {
        return 0;
    }
    if (!real_access) {
        real_access = sim_real_next("access");
    }
    return real_access(path, mode);
}

EXPORT int faccessat(int dirfd, const char *path, int mode, int flags)
{
    static int (*real_faccessat)(int, const char *, int, int);

    if (is_device(path)) {
        return 0;
    }
    if (!real_faccessat) {
        real_faccessat = sim_real_next("faccessat");
    }
    return real_faccessat(dirfd, path, mode, flags);
}

EXPORT int ioctl(int fd, unsigned long req, ...)
{
    va_list ap;
    void *arg;
    int ret;

    va_start(ap, req);
    arg = va_arg(ap, void *);
    va_end(ap);
    if (sim_ioctl(fd, req, arg, &ret)) {
        return ret;
    }
    sim_real_init();
    return sim_real.ioctl(fd, req, arg);
}

EXPORT int close(int fd)
{
    bool enclave = false;
    struct stat st;
    dev_t dev = 0;
    ino_t ino = 0;
    int ret, saved;

    sim_real_init();
    sim_before_close(fd, &enclave, &dev, &ino);
    if (!enclave && sim_vsock_active && fstat(fd, &st) == 0 &&
        S_ISSOCK(st.st_mode)) {
        sim_vsock_forget(st.st_dev, st.st_ino);
    }
    ret = sim_real.close(fd);
    saved = errno;
    if (enclave) {
        sim_after_close(dev, ino);
    }
    errno = saved;
    return ret;
}

EXPORT int socket(int domain, int type, int protocol)
{
    return sim_vsock_socket(domain, type, protocol);
}

EXPORT int bind(int fd, const struct sockaddr *sa, socklen_t len)
{
    int ret;

    if (sim_vsock_active && sim_vsock_bind(fd, sa, len, &ret)) {
        return ret;
    }
    sim_real_init();
    return sim_real.bind(fd, sa, len);
}

EXPORT int listen(int fd, int backlog)
{
    int ret;

    if (sim_vsock_active && sim_vsock_listen(fd, backlog, &ret)) {
        return ret;
    }
    sim_real_init();
    return sim_real.listen(fd, backlog);
}

EXPORT int accept(int fd, struct sockaddr *sa, socklen_t *len)
{
    int ret;

    if (sim_vsock_active && sim_vsock_accept(fd, sa, len, 0, &ret)) {
        return ret;
    }
    sim_real_init();
    return sim_real.accept(fd, sa, len);
}

EXPORT int accept4(int fd, struct sockaddr *sa, socklen_t *len, int flags)
{
    int ret;

    if (sim_vsock_active && sim_vsock_accept(fd, sa, len, flags, &ret)) {
        return ret;
    }
    sim_real_init();
    return sim_real.accept4(fd, sa, len, flags);
}

EXPORT int connect(int fd, const struct sockaddr *sa, socklen_t len)
{
    int ret;

    if (sim_vsock_active && sim_vsock_connect(fd, sa, len, &ret)) {
        return ret;
    }
    sim_real_init();
    return sim_real.connect(fd, sa, len);
}

EXPORT int getsockname(int fd, struct sockaddr *sa, socklen_t *len)
{
    int ret;

    if (sim_vsock_active && sim_vsock_getname(fd, sa, len, false, &ret)) {
        return ret;
    }
    sim_real_init();
    return sim_real.getsockname(fd, sa, len);
}

EXPORT int getpeername(int fd, struct sockaddr *sa, socklen_t *len)
{
    int ret;

    if (sim_vsock_active && sim_vsock_getname(fd, sa, len, true, &ret)) {
        return ret;
    }
    sim_real_init();
    return sim_real.getpeername(fd, sa, len);
}

EXPORT int getsockopt(int fd, int level, int name, void *val, socklen_t *len)
{
    int ret;

    if (sim_vsock_active &&
        sim_vsock_getsockopt(fd, level, name, val, len, &ret)) {
        return ret;
    }
    sim_real_init();
    return sim_real.getsockopt(fd, level, name, val, len);
}

EXPORT int setsockopt(int fd, int level, int name, const void *val,
                      socklen_t len)
{
    int ret;

    if (sim_vsock_active &&
        sim_vsock_setsockopt(fd, level, name, val, len, &ret)) {
        return ret;
    }
    sim_real_init();
    return sim_real.setsockopt(fd, level, name, val, len);
}

/* The simulated parent's architecture, as a launcher asks for it */
EXPORT int uname(struct utsname *buf)
{
    const char *arch = getenv("NITRO_SIM_ARCH");
    int ret;

    sim_real_init();
    ret = sim_real.uname(buf);
    if (!ret && arch && (!strcmp(arch, "x86_64") ||
                         !strcmp(arch, "aarch64"))) {
        snprintf(buf->machine, sizeof(buf->machine), "%s", arch);
    }
    return ret;
}
