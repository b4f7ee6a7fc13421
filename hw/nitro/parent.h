/*
 * AWS Nitro Enclaves machine: the PCRs of the parent instance
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef HW_NITRO_PARENT_H
#define HW_NITRO_PARENT_H

/*
 * nitro_parent_check_instance_id:
 * @id: an EC2 instance ID
 * @errp: pointer to a NULL-initialized error object
 *
 * Returns: true if @id is i- and 8 or 17 lowercase hex digits, else false
 * with @errp set.
 */
bool nitro_parent_check_instance_id(const char *id, Error **errp);

/*
 * nitro_parent_pcr:
 * @text: the parent's IAM role ARN (PCR3) or instance ID (PCR4)
 * @errp: pointer to a NULL-initialized error object
 *
 * Returns: the PCR that Nitro makes of @text, in hex:
 * SHA-384(48 zero bytes || @text), as AWS documents PCR3 and PCR4; NULL
 * with @errp set on failure.
 */
char *nitro_parent_pcr(const char *text, Error **errp);

#endif
