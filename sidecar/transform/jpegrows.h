/* libjpeg-turbo read row by row into 4-byte pixels (also the cdef that cffi reads: plain declarations). */
#include <stddef.h>
#include <stdint.h>

enum {
    JPEGROWS_OK = 0,
    JPEGROWS_UNSUPPORTED = 1, /* not a 3-component 8-bit JPEG at a scale libjpeg offers: decode it the usual way */
    JPEGROWS_CORRUPT = 2,     /* libjpeg reported an error or a warning: decode it the usual way */
    JPEGROWS_NOMEM = 3
};

typedef struct jpegrows jpegrows;

/* Parse the header of `data` (which must outlive the handle) and start decoding at 1/`denom` scale
 * (1, 2, 4 or 8) into RGBX; *width and *height get the decoded size. NULL with *status set: declined. */
jpegrows *jpegrows_open(const uint8_t *data, size_t len, int denom, int *width, int *height, int *status);

/* Decode up to `rows` more rows into `out` (the whole image's buffer, `width` * 4 bytes per row) and
 * return how many rows are complete now, or -1 when libjpeg failed (see jpegrows_status). */
int jpegrows_read(jpegrows *handle, uint8_t *out, int rows);

int jpegrows_status(const jpegrows *handle);

void jpegrows_close(jpegrows *handle);
