/*
 * AWS Nitro Enclaves machine: the signature of a signed image
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef HW_NITRO_SIGNATURE_H
#define HW_NITRO_SIGNATURE_H

#include "hw/core/eif.h"

/*
 * nitro_signature_verify:
 * @s: the parsed signature of an image
 * @now: the time at which its certificate must be valid
 * @errp: pointer to a NULL-initialized error object
 *
 * Returns: true if @s's COSE_Sign1 verifies with the key of its signing
 * certificate (ECDSA, the algorithm of the key's curve) and the
 * certificate is valid at @now; false with the reason in @errp.
 */
bool nitro_signature_verify(const EifSignature *s, time_t now, Error **errp);

#endif
