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

/* Rows complete so far. */
int jpegrows_rows(const jpegrows *handle);

/* The layout of a baseline, single-scan JPEG with restart markers: how many MCU rows it has, how many
 * pixel rows one MCU row is, and every how many MCU rows a restart marker starts a row (0: never, or
 * not a file this can cut). */
int jpegrows_layout(const uint8_t *data, size_t len, int *mcu_rows, int *mcu_height, int *rows_per_restart);

/* Like jpegrows_open, for the picture from MCU row `first_row` down only: decoded from a copy of `data`
 * whose frame header says the rows left and whose scan starts at the restart marker that begins that
 * row (its markers renumbered from RST0). NULL with JPEGROWS_UNSUPPORTED: no marker begins that row. */
jpegrows *jpegrows_open_from(const uint8_t *data, size_t len, int denom, int first_row, int *width, int *height,
                             int *status);

void jpegrows_close(jpegrows *handle);
