/*
 * AWS Nitro Enclaves machine: the measurements (PCRs) of the image
 *
 * SHA-384 is slow next to reading a file: measuring the image in guest
 * RAM would take most of the launch time of a big enclave, and the RAM
 * is not QEMU's once the enclave runs.  A thread measures the image from
 * the files it was loaded from instead, on another core, while the
 * enclave starts, and checks that those files still hold what was loaded
 * (the EIF's CRC, or each section of a built image), and that the
 * signature of a signed image signs its PCR0.  The PCRs are
 * machine properties: reading one while the thread still measures is an
 * error that says so, so that no monitor ever waits for the thread.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qemu/atomic.h"
#include "qemu/thread.h"
#include "measure.h"
#include "trace.h"

struct NitroMeasure {
    const NitroImage *img;
    QemuThread thread;
    /* Written by the thread before it sets done, then read-only */
    bool done;
    Error *err;
    EifMeasurements pcrs;
    char hex[EIF_NR_PCRS][EIF_PCR_HEX_LEN + 1];
};

static void *nitro_measure_thread(void *opaque)
{
    NitroMeasure *m = opaque;
    const NitroImage *img = m->img;
    bool ok = img->is_eif ?
              eif_measure_file(img->build.kernel, &img->info, &m->pcrs,
                               &m->err) :
              eif_measure_inputs(&img->build, &img->info, &m->pcrs, &m->err);
    int i;

    /* The signature verified when the image was loaded: does it sign it? */
    if (ok && img->is_signed &&
        !eif_signature_signs_pcr0(&img->signature, m->pcrs.pcr[EIF_PCR0],
                                  &m->err)) {
        error_prepend(&m->err, "%s: ", img->build.kernel);
        ok = false;
    }
    if (ok) {
        for (i = 0; i < EIF_NR_PCRS; i++) {
            eif_pcr_to_hex(m->pcrs.pcr[i], m->hex[i]);
        }
        trace_nitro_measured(m->hex[EIF_PCR0], m->hex[EIF_PCR1],
                             m->hex[EIF_PCR2]);
    }
    qatomic_store_release(&m->done, true);
    return NULL;
}

NitroMeasure *nitro_measure_start(const NitroImage *img)
{
    NitroMeasure *m = g_new0(NitroMeasure, 1);

    m->img = img;
    qemu_thread_create(&m->thread, "nitro-measure", nitro_measure_thread, m,
                       QEMU_THREAD_DETACHED);
    return m;
}

char *nitro_measure_get_pcr(NitroMeasure *m, EifPcr pcr, Error **errp)
{
    ERRP_GUARD();

    if (!m) {
        error_setg(errp, "the enclave image is not loaded yet");
        return NULL;
    }
    if (!qatomic_load_acquire(&m->done)) {
        error_setg(errp, "still measuring the enclave image");
        error_append_hint(errp, "The PCRs are computed on another thread "
                          "while the enclave starts; read them again in a "
                          "moment.\n");
        return NULL;
    }
    if (m->err) {
        error_propagate(errp, error_copy(m->err));
        return NULL;
    }
    if (pcr == EIF_PCR8 && !m->pcrs.has_pcr8) {
        error_setg(errp, "the enclave image is not signed: it has no PCR8");
        return NULL;
    }
    return g_strdup(m->hex[pcr]);
}
