/*
 * EIF library internals: what its files share and users do not see
 *
 * The library is one API (hw/core/eif.h) in several files, one per job:
 *   eif.c           names, architectures, CRC-32, opening input files
 *   eif-parse.c     the validator: header, section table, section rules
 *   eif-signature.c the signature section: CBOR and signing certificate
 *   eif-measure.c   SHA-384 measurements (PCR0/1/2/8)
 *   eif-read.c      streaming reader of an image from a file descriptor
 *   eif-build.c     the builder, to memory or to a file descriptor
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef HW_CORE_EIF_INTERNAL_H
#define HW_CORE_EIF_INTERNAL_H

#include "qemu/units.h"
#include "hw/core/eif.h"

/* Streaming works in chunks of this size: memory use stays flat */
#define EIF_CHUNK_SIZE (1 * MiB)

/*
 * The validator, fed by whoever brings the bytes (memory or a file):
 * the header (with the section table) first, then each section header
 * and its data, in file order, then eif_parse_finish() checks the rules
 * about the image as a whole and the CRC.  The parser CRCs the header;
 * whoever brings the bytes after it CRCs those (and may record each
 * section's CRC in info->sections[]).
 */
typedef struct EifParser {
    EifInfo *info;
    /* The CRC that the header says the image has */
    uint32_t header_crc;
    /* The CRC of the header, up to its CRC field */
    uint32_t crc;
    unsigned count[EIF_SECTION__MAX];
    unsigned first[EIF_SECTION__MAX];
    /* The signature section, gathered to be checked at its end */
    GByteArray *signature;
} EifParser;

void eif_parser_init(EifParser *p, EifInfo *info);
void eif_parser_clear(EifParser *p);
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(EifParser, eif_parser_clear)

/* @buf: EIF_HEADER_SIZE bytes */
bool eif_parse_header(EifParser *p, const uint8_t *buf, Error **errp);
/* Check that the section table describes exactly @avail bytes */
bool eif_check_size(const EifInfo *info, uint64_t avail, Error **errp);
/* @buf: the EIF_SECTION_HEADER_SIZE bytes of the header of section @i */
bool eif_parse_section_header(EifParser *p, unsigned i, const uint8_t *buf,
                              Error **errp);
/* @len bytes of the data of @s, at @pos within its data, in order */
bool eif_parse_data(EifParser *p, const EifSection *s, uint64_t pos,
                    const uint8_t *data, size_t len, Error **errp);
/* @body_crc: the CRC of the bytes after the header */
bool eif_parse_finish(EifParser *p, uint32_t body_crc, Error **errp);

/*
 * eif_signing_certificate:
 * @sig: the data of a signature section
 * @len: its size
 * @errp: pointer to a NULL-initialized error object
 *
 * Check the structure of a signature section: a CBOR array of
 * { "signing_certificate": PEM, "signature": COSE_Sign1 } maps, the
 * first of which holds a PEM certificate whose DER can be extracted.
 *
 * Returns: the DER of the first signing certificate (what PCR8
 * measures), or NULL with @errp set.
 */
GByteArray *eif_signing_certificate(const uint8_t *sig, size_t len,
                                    Error **errp);

#endif
