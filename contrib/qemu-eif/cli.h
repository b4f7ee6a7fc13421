/*
 * qemu-eif: what its commands share - option errors and input files
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef QEMU_EIF_CLI_H
#define QEMU_EIF_CLI_H

/*
 * cli_bad_option:
 * @c: what getopt_long() returned: ':' (an option without its argument,
 *     for an optstring that starts with "+:") or '?' (an unknown option)
 * @argv: the command's arguments, as given to getopt_long()
 *
 * Report the option that getopt_long() refused.
 *
 * Returns: 2, the exit status of a usage error.
 */
int cli_bad_option(int c, char **argv);

/*
 * cli_no_operands:
 * @argc: the command's argument count, as given to getopt_long()
 * @argv: the command's arguments
 *
 * Once getopt_long() has returned -1: report the first argument that is
 * not an option, if there is one.
 *
 * Returns: true if there is none.
 */
bool cli_no_operands(int argc, char **argv);

/*
 * cli_read_file:
 * @path: a regular file, or "-" for the standard input
 * @max: the largest size accepted, in bytes
 * @errp: pointer to a NULL-initialized error object
 *
 * Read @path whole.
 *
 * Returns: its bytes, or NULL with @errp set.
 */
GByteArray *cli_read_file(const char *path, size_t max, Error **errp);

#endif
