/*
 * AWS Nitro Enclaves machine: the PCRs of the parent instance
 *
 * Nitro extends PCR3 with the ARN of the parent instance's IAM role and
 * PCR4 with its instance ID, once each from zero, so that a key policy
 * can pin the parent: PCRn = SHA-384(48 zero bytes || the text), the
 * computation that AWS documents for such policies.  The parent knows
 * both (instance metadata), QEMU does not: the machine computes them from
 * its options parent-role and parent-id.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "crypto/hash.h"
#include "hw/core/eif.h"
#include "parent.h"

bool nitro_parent_check_instance_id(const char *id, Error **errp)
{
    size_t n = strlen(id);

    if (!g_str_has_prefix(id, "i-") || (n != 10 && n != 19) ||
        strspn(id + 2, "0123456789abcdef") != n - 2) {
        error_setg(errp, "'%s' is not an EC2 instance ID", id);
        error_append_hint(errp, "An instance ID is i- and 8 or 17 lowercase "
                          "hex digits, such as i-0123456789abcdef0.\n");
        return false;
    }
    return true;
}

char *nitro_parent_pcr(const char *text, Error **errp)
{
    size_t len = strlen(text);
    g_autofree uint8_t *msg = g_malloc0(EIF_PCR_LEN + len);
    g_autofree uint8_t *pcr = NULL;
    size_t pcr_len = 0;
    char hex[EIF_PCR_HEX_LEN + 1];

    memcpy(msg + EIF_PCR_LEN, text, len);
    if (qcrypto_hash_bytes(QCRYPTO_HASH_ALGO_SHA384, (char *)msg,
                           EIF_PCR_LEN + len, &pcr, &pcr_len, errp) < 0) {
        return NULL;
    }
    eif_pcr_to_hex(pcr, hex);
    return g_strdup(hex);
}
