/*
 * qemu-eif: write an output file whole or not at all
 *
 * An image is written to a temporary file in the output's directory and
 * renamed over the output once complete: a failed or interrupted build
 * leaves neither a truncated output nor a temporary file, and a previous
 * output stays as it was (a symbolic link there is replaced, not
 * followed).  A signal that ends the tool (SIGINT, SIGTERM, SIGHUP)
 * removes the temporary file first, unless it was ignored when the tool
 * started (nohup).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "output.h"

static const int output_signals[] = { SIGINT, SIGTERM, SIGHUP };

/* The temporary file, for the signal handler; its final name */
static char *volatile output_tmp;
static char *output_path;

static void output_signal(int sig)
{
    char *tmp = output_tmp;

    if (tmp) {
        unlink(tmp);
    }
    /* SA_RESETHAND restored the default action: die of @sig */
    raise(sig);
}

static void output_block_signals(sigset_t *old)
{
    sigset_t set;

    sigemptyset(&set);
    for (unsigned i = 0; i < ARRAY_SIZE(output_signals); i++) {
        sigaddset(&set, output_signals[i]);
    }
    sigprocmask(SIG_BLOCK, &set, old);
}

int output_open(const char *path, Error **errp)
{
    g_autofree char *dir = g_path_get_dirname(path);
    g_autofree char *base = g_path_get_basename(path);
    g_autofree char *tmp = g_strdup_printf("%s/.%s.XXXXXX", dir, base);
    struct sigaction sa = {
        .sa_handler = output_signal,
        .sa_flags = SA_RESETHAND | SA_NODEFER,
    };
    sigset_t old;
    int fd;

    g_assert(!output_tmp);
    output_block_signals(&old);
    for (unsigned i = 0; i < ARRAY_SIZE(output_signals); i++) {
        struct sigaction prev;

        if (!sigaction(output_signals[i], NULL, &prev) &&
            prev.sa_handler != SIG_IGN) {
            sigaction(output_signals[i], &sa, NULL);
        }
    }
    fd = g_mkstemp_full(tmp, O_RDWR | O_CLOEXEC, 0644);
    if (fd < 0) {
        error_setg_errno(errp, errno, "cannot create a temporary file in "
                         "'%s'", dir);
    } else {
        output_path = g_strdup(path);
        output_tmp = g_steal_pointer(&tmp);
    }
    sigprocmask(SIG_SETMASK, &old, NULL);
    return fd;
}

bool output_commit(int fd, bool ok, Error **errp)
{
    sigset_t old;

    if (close(fd) && ok) {
        error_setg_errno(errp, errno, "cannot write '%s'", output_path);
        ok = false;
    }
    /* Not interrupted between the rename and forgetting the name */
    output_block_signals(&old);
    if (ok && rename(output_tmp, output_path)) {
        error_setg_errno(errp, errno, "cannot rename '%s' to '%s'",
                         output_tmp, output_path);
        ok = false;
    }
    if (!ok) {
        unlink(output_tmp);
    }
    g_free(output_tmp);
    output_tmp = NULL;
    g_free(output_path);
    output_path = NULL;
    sigprocmask(SIG_SETMASK, &old, NULL);
    return ok;
}
