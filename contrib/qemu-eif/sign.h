/*
 * qemu-eif: signed enclave images, and PCRs of files, as nitro-cli makes
 * and computes them
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef QEMU_EIF_SIGN_H
#define QEMU_EIF_SIGN_H

#include "hw/core/eif.h"

/*
 * cmd_pcr:
 * qemu-eif pcr --input FILE | --signing-certificate CERT
 *
 * Returns: 0 once {"PCR": HEX} (or {"PCR8": HEX}) is printed, 1 with the
 * reason on stderr, 2 on a usage error.
 */
int cmd_pcr(int argc, char **argv);

/*
 * cmd_sign:
 * qemu-eif sign --eif-path FILE --signing-certificate CERT
 *               --private-key KEY [-o OUTPUT]
 *
 * Returns: 0 once the image (OUTPUT, else FILE in place) is signed, 1
 * with the reason on stderr, 2 on a usage error.
 */
int cmd_sign(int argc, char **argv);

/*
 * eif_sign_fd:
 * @fd: a valid image, open for reading and writing
 * @cert_path: the PEM signing certificate
 * @key_path: its ECDSA private key (PEM: PKCS#8 or SEC1)
 * @errp: pointer to a NULL-initialized error object
 *
 * Sign the image in @fd: its signature section (replaced if it is the
 * last section, else appended) signs PCR0 with the key, and the CRC is
 * updated.
 *
 * Returns: true on success, false with @errp set.
 */
bool eif_sign_fd(int fd, const char *cert_path, const char *key_path,
                 Error **errp);

/*
 * eif_signature_check:
 * @sig: the data of an image's signature section
 * @len: its size
 * @pcr0: the image's PCR0
 * @errp: pointer to a NULL-initialized error object
 *
 * Check the first entry of the section as nitro-cli's describe-eif does:
 * its COSE_Sign1 verifies with the key of its signing certificate and
 * signs PCR0.
 *
 * Returns: true if it does, false with the reason in @errp.
 */
bool eif_signature_check(const uint8_t *sig, size_t len,
                         const uint8_t pcr0[EIF_PCR_LEN], Error **errp);

#endif
