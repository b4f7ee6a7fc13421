/*
 * EIF library: the streaming reader
 *
 * eif_read_fd() validates (and measures) an image of any size read from
 * a file descriptor - a file or a pipe - with a small, constant buffer,
 * handing each section's data to its caller on the way.  The checks and
 * their errors are the validator's (eif-parse.c).  eif_measure_file()
 * measures an EIF file again this way.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qapi/error.h"

#include "hw/core/eif-internal.h"

typedef struct EifReader {
    int fd;
    /* A chunk of the image */
    uint8_t *buf;
    /* The CRC of what was read after the header, and of the section */
    uint32_t crc;
    uint32_t section_crc;
    /* Bytes of the image read so far */
    uint64_t pos;
    EifDataFunc fn;
    void *opaque;
} EifReader;

/* Read exactly @len bytes at @buf: 1 if done, 0 at end of file, -1 on error */
static int eif_read_full(EifReader *r, uint8_t *buf, size_t len, Error **errp)
{
    size_t done = 0;
    ssize_t n;

    while (done < len) {
        n = read(r->fd, buf + done, len - done);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            error_setg_errno(errp, errno, "cannot read the image at offset %"
                             PRIu64, r->pos + done);
            return -1;
        }
        if (!n) {
            r->pos += done;
            return 0;
        }
        done += n;
    }
    r->pos += len;
    return 1;
}

/*
 * Read the next @len bytes of @s (of its header while its type is not
 * known) into the chunk buffer
 */
static const uint8_t *eif_reader_next(EifReader *r, size_t len,
                                      const EifSection *s, Error **errp)
{
    int ret = eif_read_full(r, r->buf, len, errp);

    if (ret > 0 && s->type == EIF_SECTION_INVALID) {
        r->crc = eif_crc32(r->crc, r->buf, len);
    } else if (ret > 0) {
        r->section_crc = eif_crc32(r->section_crc, r->buf, len);
    }
    if (!ret && s->type == EIF_SECTION_INVALID) {
        error_setg(errp, "image truncated at offset %" PRIu64 ", in the "
                   "header of section %u", r->pos, s->index);
    } else if (!ret) {
        error_setg(errp, "image truncated at offset %" PRIu64 ", in section "
                   "%u (%s), which ends at %" PRIu64, r->pos, s->index,
                   eif_section_type_name(s->type), s->data_offset + s->size);
    }
    return ret > 0 ? r->buf : NULL;
}

static bool eif_read_image(EifReader *r, EifInfo *info,
                           EifMeasurements *pcrs, Error **errp)
{
    g_autoptr(EifMeasure) m = NULL;
    uint8_t header[EIF_HEADER_SIZE];
    const uint8_t *data;
    struct stat st;
    g_auto(EifParser) p = { 0 };
    off_t start;
    int64_t avail = -1;
    ssize_t n;
    int ret;

    eif_parser_init(&p, info);
    if (pcrs) {
        m = eif_measure_new(errp);
        if (!m) {
            return false;
        }
    }
    /* A regular file: report size mismatches as eif_validate() does */
    if (!fstat(r->fd, &st) && S_ISREG(st.st_mode)) {
        start = lseek(r->fd, 0, SEEK_CUR);
        if (start >= 0 && st.st_size >= start) {
            avail = st.st_size - start;
        }
    }
    if (avail >= 0 && avail < EIF_HEADER_SIZE) {
        error_setg(errp, "image of %" PRId64 " bytes is smaller than the "
                   "%d-byte header", avail, EIF_HEADER_SIZE);
        return false;
    }
    ret = eif_read_full(r, header, sizeof(header), errp);
    if (!ret) {
        error_setg(errp, "image truncated at offset %" PRIu64 ", in the "
                   "%d-byte header", r->pos, EIF_HEADER_SIZE);
    }
    if (ret <= 0 || !eif_parse_header(&p, header, errp)) {
        return false;
    }
    if (avail >= 0 && !eif_check_size(info, avail, errp)) {
        return false;
    }
    r->buf = g_malloc(MIN(info->size, EIF_CHUNK_SIZE));

    for (unsigned i = 0; i < info->nr_sections; i++) {
        EifSection *s = &info->sections[i];

        data = eif_reader_next(r, EIF_SECTION_HEADER_SIZE, s, errp);
        if (!data || !eif_parse_section_header(&p, i, data, errp)) {
            return false;
        }
        r->section_crc = 0;
        for (uint64_t pos = 0; pos < s->size; pos += n) {
            n = MIN(s->size - pos, EIF_CHUNK_SIZE);
            data = eif_reader_next(r, n, s, errp);
            if (!data || !eif_parse_data(&p, s, pos, data, n, errp) ||
                (m && !eif_measure_update(m, s, data, n, errp)) ||
                (r->fn && !r->fn(s, pos, data, n, r->opaque, errp))) {
                return false;
            }
        }
        s->crc32 = r->section_crc;
        r->crc = eif_crc32_combine(r->crc, s->crc32, s->size);
    }
    info->has_section_crc = true;
    do {
        n = read(r->fd, header, 1);
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
        error_setg_errno(errp, errno, "cannot read the image at offset %"
                         PRIu64, r->pos);
        return false;
    }
    if (n) {
        error_setg(errp, "trailing data after the last section, which ends "
                   "at %" PRIu64, info->size);
        return false;
    }
    return eif_parse_finish(&p, r->crc, errp) &&
           (!m || eif_measure_finish(m, pcrs, errp));
}

bool eif_read_fd(int fd, EifDataFunc fn, void *opaque, EifInfo *info,
                 EifMeasurements *pcrs, Error **errp)
{
    EifReader r = { .fd = fd, .fn = fn, .opaque = opaque };
    bool ok = eif_read_image(&r, info, pcrs, errp);

    g_free(r.buf);
    return ok;
}

bool eif_measure_file(const char *path, const EifInfo *loaded,
                      EifMeasurements *out, Error **errp)
{
    EifInfo info;
    bool ok;
    int fd = eif_open_file(path, errp);

    if (fd < 0) {
        return false;
    }
    ok = eif_read_fd(fd, NULL, NULL, &info, out, errp);
    close(fd);
    if (!ok) {
        error_prepend(errp, "%s: changed since it was loaded: ", path);
        return false;
    }
    if (info.crc32 != loaded->crc32 || info.size != loaded->size) {
        error_setg(errp, "%s: changed since it was loaded", path);
        return false;
    }
    return true;
}
