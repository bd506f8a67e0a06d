/* libjpeg-turbo read row by row, straight into the 4-byte pixels Pillow keeps (RGBX), so that rows can
 * be resized while later ones are still being decoded (jpegrows.py). Decoding is libjpeg's default,
 * as Pillow does it (accurate integer IDCT, smooth chroma upsampling). Any warning (corrupt data,
 * premature end) ends the decode with JPEGROWS_CORRUPT: the caller then decodes the usual way, so
 * broken files get exactly the answer they got before. */
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jpeglib.h>
#include "jpegrows.h"

struct jpegrows {
    struct jpeg_decompress_struct cinfo;
    struct jpeg_error_mgr err;
    jmp_buf jump;
    int status;
    uint8_t *copy; /* jpegrows_open_from's rewritten file, owned */
};

static void on_error(j_common_ptr cinfo) {
    jpegrows *h = (jpegrows *)cinfo->client_data;
    h->status = JPEGROWS_CORRUPT;
    longjmp(h->jump, 1);
}

static void on_message(j_common_ptr cinfo, int level) {
    if (level < 0) on_error(cinfo); /* a warning; levels 0 and up are traces */
}

jpegrows *jpegrows_open(const uint8_t *data, size_t len, int denom, int *width, int *height, int *status) {
    jpegrows *h = calloc(1, sizeof *h);
    if (h == NULL) {
        *status = JPEGROWS_NOMEM;
        return NULL;
    }
    j_decompress_ptr c = &h->cinfo;
    c->err = jpeg_std_error(&h->err);
    h->err.error_exit = on_error;
    h->err.emit_message = on_message;
    c->client_data = h;
    if (setjmp(h->jump)) {
        *status = h->status;
        jpeg_destroy_decompress(c);
        free(h);
        return NULL;
    }
    jpeg_create_decompress(c);
    jpeg_mem_src(c, (const unsigned char *)data, (unsigned long)len);
    jpeg_read_header(c, TRUE);
    int rgb = c->jpeg_color_space == JCS_YCbCr || c->jpeg_color_space == JCS_RGB;
    if (c->num_components != 3 || !rgb || c->data_precision != 8 ||
        !(denom == 1 || denom == 2 || denom == 4 || denom == 8)) {
        jpeg_destroy_decompress(c);
        free(h);
        *status = JPEGROWS_UNSUPPORTED;
        return NULL;
    }
    c->out_color_space = JCS_EXT_RGBX;
    c->scale_num = 1;
    c->scale_denom = (unsigned int)denom;
    jpeg_start_decompress(c);
    *width = (int)c->output_width;
    *height = (int)c->output_height;
    *status = JPEGROWS_OK;
    return h;
}

int jpegrows_read(jpegrows *h, uint8_t *out, int rows) {
    j_decompress_ptr c = &h->cinfo;
    size_t stride = (size_t)c->output_width * 4;
    if (setjmp(h->jump)) return -1;
    JDIMENSION end = c->output_scanline + (JDIMENSION)rows;
    if (end > c->output_height) end = c->output_height;
    while (c->output_scanline < end) {
        JSAMPROW row[16];
        int want = (int)(end - c->output_scanline);
        if (want > 16) want = 16;
        for (int i = 0; i < want; i++) row[i] = out + (size_t)(c->output_scanline + (JDIMENSION)i) * stride;
        if (jpeg_read_scanlines(c, row, (JDIMENSION)want) == 0) {
            h->status = JPEGROWS_CORRUPT; /* suspended: a memory source never should */
            return -1;
        }
    }
    return (int)c->output_scanline;
}

int jpegrows_status(const jpegrows *h) { return h->status; }

int jpegrows_rows(const jpegrows *h) { return (int)h->cinfo.output_scanline; }

void jpegrows_close(jpegrows *h) {
    if (h == NULL) return;
    jpeg_destroy_decompress(&h->cinfo);
    free(h->copy);
    free(h);
}

/* ---- cutting a file at a restart marker ---- */

typedef struct {
    size_t sof;        /* offset of the frame header's segment (its marker) */
    size_t scan;       /* offset of the entropy-coded data (after the SOS segment) */
    int width, height, mcu_width, mcu_height, restart; /* restart: interval in MCUs */
} layout;

static int u16(const uint8_t *p) { return (p[0] << 8) | p[1]; }

/* Walk the segments up to the scan: baseline or extended Huffman, one scan holding every component. */
static int parse(const uint8_t *d, size_t len, layout *out) {
    memset(out, 0, sizeof *out);
    if (len < 4 || d[0] != 0xFF || d[1] != 0xD8) return 0;
    size_t pos = 2;
    int components = 0, have_sof = 0;
    while (pos + 4 <= len) {
        if (d[pos] != 0xFF) return 0;
        int marker = d[pos + 1];
        if (marker == 0xFF) { pos++; continue; } /* fill byte */
        size_t size = (size_t)u16(d + pos + 2);
        if (size < 2 || pos + 2 + size > len) return 0;
        const uint8_t *body = d + pos + 4;
        if (marker == 0xC0 || marker == 0xC1) {
            if (have_sof || size < 8) return 0;
            have_sof = 1;
            out->sof = pos;
            out->height = u16(body + 1);
            out->width = u16(body + 3);
            components = body[5];
            if (components < 1 || components > 4 || size < 8 + 3 * (size_t)components) return 0;
            int max_h = 1, max_v = 1;
            for (int i = 0; i < components; i++) {
                int h = body[7 + 3 * i] >> 4, v = body[7 + 3 * i] & 15;
                if (h < 1 || h > 4 || v < 1 || v > 4) return 0;
                if (h > max_h) max_h = h;
                if (v > max_v) max_v = v;
            }
            out->mcu_width = 8 * max_h;
            out->mcu_height = 8 * max_v;
        } else if ((marker >= 0xC2 && marker <= 0xCF && marker != 0xC4 && marker != 0xC8 && marker != 0xCC)) {
            return 0; /* progressive, lossless, arithmetic...: not cut here */
        } else if (marker == 0xDD) {
            if (size != 4) return 0;
            out->restart = u16(body);
        } else if (marker == 0xDA) {
            if (!have_sof || size < 3 || body[0] != components || out->height == 0) return 0; /* one scan, all */
            out->scan = pos + 2 + size;
            return out->restart > 0;
        } else if (marker == 0xD9 || (marker >= 0xD0 && marker <= 0xD7)) {
            return 0;
        }
        pos += 2 + size;
    }
    return 0;
}

static int gcd(int a, int b) {
    while (b) { int t = a % b; a = b; b = t; }
    return a;
}

int jpegrows_layout(const uint8_t *data, size_t len, int *mcu_rows, int *mcu_height, int *rows_per_restart) {
    layout l;
    *mcu_rows = *mcu_height = *rows_per_restart = 0;
    if (!parse(data, len, &l)) return JPEGROWS_UNSUPPORTED;
    int per_row = (l.width + l.mcu_width - 1) / l.mcu_width;
    *mcu_rows = (l.height + l.mcu_height - 1) / l.mcu_height;
    *mcu_height = l.mcu_height;
    *rows_per_restart = l.restart / gcd(per_row, l.restart);
    return JPEGROWS_OK;
}

/* The file from MCU row `first` on, or NULL. */
static uint8_t *cut(const uint8_t *d, size_t len, int first, size_t *out_len) {
    layout l;
    if (!parse(d, len, &l) || first <= 0) return NULL;
    long per_row = (l.width + l.mcu_width - 1) / l.mcu_width;
    long mcu = first * per_row;
    if (mcu % l.restart != 0 || (long)first * l.mcu_height >= l.height) return NULL;
    long wanted = mcu / l.restart; /* the marker after this many intervals */
    size_t pos = l.scan, start = 0;
    long seen = 0;
    while (pos + 1 < len) {
        const uint8_t *p = memchr(d + pos, 0xFF, len - pos - 1);
        if (p == NULL) return NULL;
        pos = (size_t)(p - d);
        int next = d[pos + 1];
        if (next >= 0xD0 && next <= 0xD7) {
            if (++seen == wanted) {
                start = pos + 2;
                break;
            }
        } else if (next != 0x00 && next != 0xFF) {
            return NULL; /* the end of the scan (EOI, DNL...) before that row */
        }
        pos += 1 + (next != 0xFF);
    }
    if (start == 0) return NULL;
    uint8_t *copy = malloc(l.scan + (len - start) + 2);
    if (copy == NULL) return NULL;
    memcpy(copy, d, l.scan);
    int rows = l.height - first * l.mcu_height;
    copy[l.sof + 5] = (uint8_t)(rows >> 8); /* marker(2) length(2) precision(1), then the height */
    copy[l.sof + 6] = (uint8_t)(rows & 0xFF);
    size_t n = l.scan;
    int renumbered = 0;
    for (size_t i = start; i < len; i++) {
        uint8_t byte = d[i];
        copy[n++] = byte;
        if (byte == 0xFF && i + 1 < len && d[i + 1] >= 0xD0 && d[i + 1] <= 0xD7) {
            copy[n++] = (uint8_t)(0xD0 + (renumbered++ & 7));
            i++;
        }
    }
    *out_len = n;
    return copy;
}

jpegrows *jpegrows_open_from(const uint8_t *data, size_t len, int denom, int first_row, int *width, int *height,
                             int *status) {
    size_t size = 0;
    uint8_t *copy = cut(data, len, first_row, &size);
    if (copy == NULL) {
        *status = JPEGROWS_UNSUPPORTED;
        return NULL;
    }
    jpegrows *h = jpegrows_open(copy, size, denom, width, height, status);
    if (h == NULL) {
        free(copy);
        return NULL;
    }
    h->copy = copy;
    return h;
}
