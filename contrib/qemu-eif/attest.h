/*
 * qemu-eif: attestation documents without AWS
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef QEMU_EIF_ATTEST_H
#define QEMU_EIF_ATTEST_H

/*
 * cmd_verify_attestation:
 * qemu-eif verify-attestation --root CERT [--eif FILE] [--pcr N=HEX]...
 *                             [--nonce HEX] [--time SECONDS] DOC|-
 *
 * Returns: 0 if the document verifies (its payload printed as JSON), 1
 * with the reason on stderr if it does not, 2 on a usage error.
 */
int cmd_verify_attestation(int argc, char **argv);

/*
 * cmd_make_attestation_chain:
 * qemu-eif make-attestation-chain --dir DIR [--module-id ID] [--days N]
 *
 * Returns: 0 once the root, intermediate and leaf are written in DIR, 1
 * with the reason on stderr otherwise, 2 on a usage error.
 */
int cmd_make_attestation_chain(int argc, char **argv);

#endif
