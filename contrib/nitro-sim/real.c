/*
 * nitro-sim: the real libc functions, the bottom layer of the library
 *
 * The library replaces libc's open, ioctl, close and socket functions
 * (intercept.c); everything in it that needs the real ones (the driver,
 * the enclave, the boot mode, vsock) calls them through this table,
 * resolved once with dlsym(RTLD_NEXT).  It depends on nothing else of
 * the simulator.
 *
 * Copyright (c) 2026 Nitro Enclaves for QEMU authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>

#include "nitro-sim.h"

SimReal sim_real;
static pthread_once_t real_once = PTHREAD_ONCE_INIT;

void *sim_real_next(const char *name)
{
    void *p = dlsym(RTLD_NEXT, name);

    if (!p) {
        fprintf(stderr, "nitro-sim: no next definition of %s\n", name);
        abort();
    }
    return p;
}

static void resolve(void)
{
    sim_real.open = sim_real_next("open");
    sim_real.openat = sim_real_next("openat");
    sim_real.ioctl = sim_real_next("ioctl");
    sim_real.close = sim_real_next("close");
    sim_real.socket = sim_real_next("socket");
    sim_real.bind = sim_real_next("bind");
    sim_real.listen = sim_real_next("listen");
    sim_real.accept = sim_real_next("accept");
    sim_real.accept4 = sim_real_next("accept4");
    sim_real.connect = sim_real_next("connect");
    sim_real.getsockname = sim_real_next("getsockname");
    sim_real.getpeername = sim_real_next("getpeername");
    sim_real.getsockopt = sim_real_next("getsockopt");
    sim_real.setsockopt = sim_real_next("setsockopt");
    sim_real.fopen = sim_real_next("fopen");
    sim_real.fopen64 = sim_real_next("fopen64");
    sim_real.uname = sim_real_next("uname");
}

void sim_real_init(void)
{
    pthread_once(&real_once, resolve);
}

