/*
 * AWS Nitro Enclaves machine: the measurements (PCRs) of the image
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef HW_NITRO_MEASURE_H
#define HW_NITRO_MEASURE_H

#include "image.h"

typedef struct NitroMeasure NitroMeasure;

/*
 * Measure @img, which stays alive, on a thread of its own, from the files
 * it was loaded from (guest RAM is not QEMU's once the enclave runs).
 */
NitroMeasure *nitro_measure_start(const NitroImage *img);

/*
 * Returns: PCR @pcr in hex, or NULL with @errp set: while the thread is
 * still measuring ("still measuring"), when the measurement failed (a
 * file changed since it was loaded), or for PCR8 of an unsigned image.
 */
char *nitro_measure_get_pcr(NitroMeasure *m, EifPcr pcr, Error **errp);

#endif
