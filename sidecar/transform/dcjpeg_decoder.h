/* The DC-scan decoder's interface (also the cdef that cffi reads: keep it plain declarations). */
#include <stddef.h>
#include <stdint.h>

enum {
    DCJPEG_OK = 0,
    DCJPEG_UNSUPPORTED = 1, /* a valid file this decoder does not handle: decode it the normal way */
    DCJPEG_CORRUPT = 2,     /* malformed, truncated or odd: let libjpeg decide */
    DCJPEG_NOMEM = 3,
    DCJPEG_MISMATCH = 4     /* not the size or number of components the caller expects */
};

/* Decode `data` (a progressive JPEG) at 1/8 scale into `out`: out_w x out_h pixels of `channels`
 * bytes (1 grey, 3 RGB, 4 CMYK as libjpeg outputs it). Returns DCJPEG_OK or why it declined. */
int dcjpeg_decode(const uint8_t *data, size_t len, uint8_t *out, int out_w, int out_h, int channels);

const char *dcjpeg_reason(int status);
