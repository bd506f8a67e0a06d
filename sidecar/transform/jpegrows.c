/* libjpeg-turbo read row by row, straight into the 4-byte pixels Pillow keeps (RGBX), so that rows can
 * be resized while later ones are still being decoded (jpegrows.py). Decoding is libjpeg's default,
 * as Pillow does it (accurate integer IDCT, smooth chroma upsampling). Any warning (corrupt data,
 * premature end) ends the decode with JPEGROWS_CORRUPT: the caller then decodes the usual way, so
 * broken files get exactly the answer they got before. */
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <jpeglib.h>
#include "jpegrows.h"

struct jpegrows {
    struct jpeg_decompress_struct cinfo;
    struct jpeg_error_mgr err;
    jmp_buf jump;
    int status;
    int started;
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
    h->started = 1;
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

void jpegrows_close(jpegrows *h) {
    if (h == NULL) return;
    jpeg_destroy_decompress(&h->cinfo);
    free(h);
}
