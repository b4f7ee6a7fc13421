/*
 * qemu-eif: write an output file whole or not at all
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef QEMU_EIF_OUTPUT_H
#define QEMU_EIF_OUTPUT_H

/*
 * output_open:
 * @path: the file to write in the end
 * @errp: pointer to a NULL-initialized error object
 *
 * Create a temporary file next to @path (same directory, so that it can
 * be renamed over it), which SIGINT, SIGTERM and SIGHUP remove before the
 * tool dies.  At most one output is open at a time.
 *
 * Returns: its file descriptor, or -1 with @errp set.
 */
int output_open(const char *path, Error **errp);

/*
 * output_commit:
 * @fd: what output_open() returned
 * @ok: whether writing it succeeded
 * @errp: pointer to a NULL-initialized error object
 *
 * Close @fd and, if @ok, rename the temporary file to the path given to
 * output_open(); else, or if that fails, remove it, leaving whatever was
 * at that path untouched.
 *
 * Returns: true if the output is in place, false (with @errp set if @ok)
 * otherwise.
 */
bool output_commit(int fd, bool ok, Error **errp);

#endif
