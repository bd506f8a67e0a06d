/*
 * dcjpeg_decoder.c: a progressive JPEG decoded at 1/8 scale from the scans a 1/8 decode actually needs.
 *
 * libjpeg's 1/8-scale decode reads only the DC coefficient of each block (a 1x1 IDCT), except for
 * components it scales up by IDCT instead of upsampling (4:2:0 chroma gets a 2x2 IDCT, which reads
 * AC coefficients too). In a progressive file the DC coefficients travel in their own scans, so we
 * entropy-decode the DC scans, the AC scans of 2x2 components only, and skip every other AC scan by
 * looking for its end marker. The output is what libjpeg-turbo (2.x, default settings, as Pillow
 * calls it) produces at 1/8 scale: same dequantisation, same reduced IDCT and range limiting, the
 * same (box) upsampling it uses at that scale, and the same colour conversion.
 *
 * The input is untrusted. Every read is bounds-checked; anything unusual makes the decoder decline
 * (a non-zero status) and the caller falls back to libjpeg, which then decodes or reports the file.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dcjpeg_decoder.h"

#define MAX_COMPS 4
#define LOOKAHEAD 9

/* Zigzag index -> natural (row-major) index. */
static const uint8_t NATURAL[64] = {
    0,  1,  8,  16, 9,  2,  3,  10, 17, 24, 32, 25, 18, 11, 4,  5,  12, 19, 26, 33, 40, 48,
    41, 34, 27, 20, 13, 6,  7,  14, 21, 28, 35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23,
    30, 37, 44, 51, 58, 59, 52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62, 63};

typedef struct {
    int defined;
    uint8_t look_len[1 << LOOKAHEAD]; /* 0: code longer than LOOKAHEAD bits */
    uint8_t look_sym[1 << LOOKAHEAD];
    int32_t maxcode[18];              /* largest code of each length, -1 if none */
    int32_t valoffset[17];
    uint8_t symbols[256];
} huffman;

/* The AC coefficients of a block that a 2x2 IDCT reads: rows and columns 0, 1, 3, 5 and 7, that is
 * 24 of the 63, kept as a 5x5 grid without its DC corner. The others matter only for being non-zero:
 * a refinement scan sends each non-zero coefficient a correction bit. */
#define AC_SLOTS 24
typedef struct {
    uint64_t nonzero;       /* bit k: zigzag coefficient k is non-zero */
    int16_t value[AC_SLOTS];
} ac_block;

/* Row or column 0, 1, 3, 5, 7 -> 0..4 of the grid; -1 for the even ones the IDCT skips. */
static int grid(int x) { return x == 0 ? 0 : (x & 1) ? (x + 1) / 2 : -1; }

static int slot_of_natural(int n) {
    int row = grid(n >> 3), col = grid(n & 7);
    return n == 0 || row < 0 || col < 0 ? -1 : row * 5 + col - 1;
}

typedef struct {
    int id, h, v, tq;
    int ssize;              /* IDCT output size per block at 1/8 scale: 1, or 2 (reads AC too) */
    int bw, bh;             /* blocks per row / column, padded to whole MCUs */
    int scan_bw, scan_bh;   /* blocks a non-interleaved scan covers */
    int16_t *dc;            /* bw*bh DC coefficients */
    ac_block *ac;           /* bw*bh blocks when ssize == 2, else NULL */
    int16_t quant[64];      /* latched at the first scan holding the component, natural order */
    int latched;
    int8_t bits[64];        /* libjpeg's coef_bits: -1 never seen, else the pending point transform */
    int32_t dc_pred;
    uint8_t *plane;         /* IDCT output, (bw*ssize) x (bh*ssize) samples */
} component;

typedef struct {
    const uint8_t *data;
    size_t len, pos;        /* pos: next unread byte */
    uint16_t quant[4][64];  /* zigzag order, as stored */
    int quant_defined[4];
    huffman dc[4], ac[4];
    component comp[MAX_COMPS];
    int8_t slot[64];        /* zigzag index -> ac_block slot, -1 when the 2x2 IDCT does not read it */
    int ncomp, width, height, max_h, max_v, mcus_x, mcus_y, restart_interval;
    int out_w, out_h, channels; /* what the caller expects: checked before any allocation */
    int saw_sof, saw_jfif, saw_adobe, adobe_transform;
    /* scan */
    int scan_ncomp, scan_comp[MAX_COMPS], scan_dc[MAX_COMPS], scan_ac[MAX_COMPS];
    int ss, se, ah, al;
    uint32_t eobrun;
    /* bit reader: acc holds nbits bits, left-aligned; the lowest `zeros` of them are padding
     * invented after a marker, which a valid stream never consumes */
    uint64_t acc;
    int nbits, zeros, at_marker;
} decoder;

/* ---------------------------------------------------------------- bytes and markers */

static int read_u16(decoder *d, unsigned *out) {
    if (d->len - d->pos < 2) return DCJPEG_CORRUPT;
    *out = (unsigned)d->data[d->pos] << 8 | d->data[d->pos + 1];
    d->pos += 2;
    return DCJPEG_OK;
}

/* Move `pos` to the next marker that is not a restart marker; return it (0 at the end of data).
 * Entropy-coded data never holds 0xFF followed by anything but 0x00 or a restart marker. */
static int next_marker(decoder *d) {
    while (d->pos < d->len) {
        const uint8_t *ff = memchr(d->data + d->pos, 0xFF, d->len - d->pos);
        if (ff == NULL) break;
        size_t at = (size_t)(ff - d->data);
        size_t next = at + 1;
        while (next < d->len && d->data[next] == 0xFF) next++; /* fill bytes */
        if (next >= d->len) break;
        uint8_t code = d->data[next];
        if (code == 0x00 || (code >= 0xD0 && code <= 0xD7)) {
            d->pos = next + 1;
            continue;
        }
        d->pos = next + 1;
        return code;
    }
    d->pos = d->len;
    return 0;
}

/* ---------------------------------------------------------------- bit reader */

static void bits_reset(decoder *d) { d->acc = 0; d->nbits = d->zeros = d->at_marker = 0; }

static void bits_fill(decoder *d) {
    if (d->nbits > 56) return;
    /* Fast path: the next bytes hold no 0xFF (no stuffing, no marker): take them all at once. */
    if (!d->at_marker && d->len - d->pos >= 8) {
        uint64_t word = 0;
        for (int i = 0; i < 8; i++) word = word << 8 | d->data[d->pos + i];
        uint64_t inverted = ~word; /* a 0xFF byte is a zero byte here */
        if (((inverted - 0x0101010101010101ULL) & ~inverted & 0x8080808080808080ULL) == 0) {
            int take = (64 - d->nbits) >> 3;
            d->acc |= word >> (64 - 8 * take) << (64 - 8 * take - d->nbits);
            d->nbits += 8 * take;
            d->pos += (size_t)take;
            return;
        }
    }
    while (d->nbits <= 56) {
        uint64_t byte = 0;
        if (!d->at_marker && d->pos < d->len) {
            byte = d->data[d->pos];
            if (byte == 0xFF) {
                if (d->pos + 1 < d->len && d->data[d->pos + 1] == 0x00) {
                    d->pos += 2;
                } else {
                    d->at_marker = 1; /* leave pos on the marker */
                    byte = 0;
                }
            } else {
                d->pos++;
            }
        } else {
            d->at_marker = 1;
        }
        if (d->at_marker) d->zeros += 8;
        d->acc |= byte << (56 - d->nbits);
        d->nbits += 8;
    }
}

static inline int bits_consume(decoder *d, int n) {
    d->acc <<= n;
    d->nbits -= n;
    return d->nbits < d->zeros ? DCJPEG_CORRUPT : DCJPEG_OK; /* read past the segment's data */
}

static inline int get_bits(decoder *d, int n, int32_t *out) {
    if (n == 0) {
        *out = 0;
        return DCJPEG_OK;
    }
    if (d->nbits < n) bits_fill(d);
    *out = (int32_t)(d->acc >> (64 - n));
    return bits_consume(d, n);
}

static inline int32_t extend(int32_t v, int s) { return v < (1 << (s - 1)) ? v - (1 << s) + 1 : v; }

static inline int decode_symbol(decoder *d, const huffman *t, int *sym) {
    if (d->nbits < 16) bits_fill(d);
    unsigned look = (unsigned)(d->acc >> (64 - LOOKAHEAD));
    if (t->look_len[look]) {
        *sym = t->look_sym[look];
        return bits_consume(d, t->look_len[look]);
    }
    for (int l = LOOKAHEAD + 1; l <= 16; l++) {
        int32_t code = (int32_t)(d->acc >> (64 - l));
        if (code <= t->maxcode[l]) {
            int index = t->valoffset[l] + code;
            if (index < 0 || index > 255) return DCJPEG_CORRUPT;
            *sym = t->symbols[index];
            return bits_consume(d, l);
        }
    }
    return DCJPEG_CORRUPT; /* no code of 16 bits or less */
}

/* ---------------------------------------------------------------- marker segments */

static int build_huffman(huffman *t, const uint8_t counts[16], const uint8_t *symbols, int total) {
    memset(t, 0, sizeof(*t));
    memcpy(t->symbols, symbols, (size_t)total);
    int32_t code = 0;
    int k = 0;
    for (int l = 1; l <= 16; l++) {
        int n = counts[l - 1];
        if (code + n >= (1 << l)) return DCJPEG_CORRUPT; /* codes overflow their length (or are all ones) */
        t->valoffset[l] = k - code;
        if (n) {
            for (int i = 0; i < n; i++, k++, code++) {
                if (l <= LOOKAHEAD) {
                    int shift = LOOKAHEAD - l;
                    for (int fill = 0; fill < (1 << shift); fill++) {
                        int slot = (code << shift) | fill;
                        t->look_len[slot] = (uint8_t)l;
                        t->look_sym[slot] = symbols[k];
                    }
                }
            }
            t->maxcode[l] = code - 1;
        } else {
            t->maxcode[l] = -1;
        }
        code <<= 1;
    }
    t->maxcode[17] = INT32_MAX;
    t->defined = 1;
    return DCJPEG_OK;
}

static int read_dht(decoder *d, size_t end) {
    while (d->pos < end) {
        uint8_t info = d->data[d->pos++];
        int cls = info >> 4, index = info & 15;
        if (cls > 1 || index > 3 || end - d->pos < 16) return DCJPEG_CORRUPT;
        const uint8_t *counts = d->data + d->pos;
        int total = 0;
        for (int i = 0; i < 16; i++) total += counts[i];
        d->pos += 16;
        if (total > 256 || end - d->pos < (size_t)total) return DCJPEG_CORRUPT;
        const uint8_t *symbols = d->data + d->pos;
        if (cls == 0)
            for (int i = 0; i < total; i++)
                if (symbols[i] > 15) return DCJPEG_CORRUPT; /* libjpeg refuses such DC tables */
        int rc = build_huffman(cls == 0 ? &d->dc[index] : &d->ac[index], counts, symbols, total);
        if (rc) return rc;
        d->pos += (size_t)total;
    }
    return d->pos == end ? DCJPEG_OK : DCJPEG_CORRUPT;
}

static int read_dqt(decoder *d, size_t end) {
    while (d->pos < end) {
        uint8_t info = d->data[d->pos++];
        int precision = info >> 4, index = info & 15;
        if (precision > 1 || index > 3) return DCJPEG_CORRUPT;
        size_t need = precision ? 128 : 64;
        if (end - d->pos < need) return DCJPEG_CORRUPT;
        for (int i = 0; i < 64; i++)
            d->quant[index][i] = precision ? (uint16_t)(d->data[d->pos + 2 * i] << 8 | d->data[d->pos + 2 * i + 1])
                                           : d->data[d->pos + i];
        d->quant_defined[index] = 1;
        d->pos += need;
    }
    return d->pos == end ? DCJPEG_OK : DCJPEG_CORRUPT;
}

static int read_sof(decoder *d, size_t end) {
    if (d->saw_sof) return DCJPEG_UNSUPPORTED;
    d->saw_sof = 1;
    if (end - d->pos < 6) return DCJPEG_CORRUPT;
    const uint8_t *p = d->data + d->pos;
    if (p[0] != 8) return DCJPEG_UNSUPPORTED; /* 12-bit */
    d->height = p[1] << 8 | p[2];
    d->width = p[3] << 8 | p[4];
    d->ncomp = p[5];
    if (d->height == 0) return DCJPEG_UNSUPPORTED; /* height from a DNL marker */
    if (d->width == 0) return DCJPEG_CORRUPT;
    if (d->ncomp != 1 && d->ncomp != 3 && d->ncomp != 4) return DCJPEG_UNSUPPORTED;
    if (d->ncomp != d->channels || (d->width + 7) / 8 != d->out_w || (d->height + 7) / 8 != d->out_h)
        return DCJPEG_MISMATCH;
    if (end - d->pos != 6 + 3 * (size_t)d->ncomp) return DCJPEG_CORRUPT;
    d->max_h = d->max_v = 1;
    for (int c = 0; c < d->ncomp; c++) {
        component *comp = &d->comp[c];
        comp->id = p[6 + 3 * c];
        comp->h = p[7 + 3 * c] >> 4;
        comp->v = p[7 + 3 * c] & 15;
        comp->tq = p[8 + 3 * c];
        if (comp->h < 1 || comp->h > 4 || comp->v < 1 || comp->v > 4 || comp->tq > 3) return DCJPEG_CORRUPT;
        for (int o = 0; o < c; o++)
            if (d->comp[o].id == comp->id) return DCJPEG_CORRUPT;
        if (comp->h > d->max_h) d->max_h = comp->h;
        if (comp->v > d->max_v) d->max_v = comp->v;
    }
    d->mcus_x = (d->width + 8 * d->max_h - 1) / (8 * d->max_h);
    d->mcus_y = (d->height + 8 * d->max_v - 1) / (8 * d->max_v);
    for (int c = 0; c < d->ncomp; c++) {
        component *comp = &d->comp[c];
        /* libjpeg (jdmaster.c) scales a component up by IDCT while its ratio to the largest
         * sampling factor stays even in both directions. */
        int ssize = 1;
        while (ssize < 8 && d->max_h % (comp->h * ssize * 2) == 0 && d->max_v % (comp->v * ssize * 2) == 0)
            ssize *= 2;
        if (ssize > 2) return DCJPEG_UNSUPPORTED;
        if (d->max_h % (comp->h * ssize) || d->max_v % (comp->v * ssize))
            return DCJPEG_UNSUPPORTED; /* fractional upsampling: libjpeg refuses too */
        comp->ssize = ssize;
        comp->bw = d->mcus_x * comp->h;
        comp->bh = d->mcus_y * comp->v;
        long samples_w = ((long)d->width * comp->h + d->max_h - 1) / d->max_h;
        long samples_h = ((long)d->height * comp->v + d->max_v - 1) / d->max_v;
        comp->scan_bw = (int)((samples_w + 7) / 8);
        comp->scan_bh = (int)((samples_h + 7) / 8);
        memset(comp->bits, -1, sizeof(comp->bits));
        size_t blocks = (size_t)comp->bw * (size_t)comp->bh;
        comp->dc = calloc(blocks, sizeof(int16_t));
        if (comp->dc == NULL) return DCJPEG_NOMEM;
        if (ssize == 2 && (comp->ac = calloc(blocks, sizeof(ac_block))) == NULL) return DCJPEG_NOMEM;
    }
    d->pos = end;
    return DCJPEG_OK;
}

static int read_sos(decoder *d, size_t end) {
    if (!d->saw_sof) return DCJPEG_CORRUPT;
    if (end - d->pos < 1) return DCJPEG_CORRUPT;
    int n = d->data[d->pos++];
    if (n < 1 || n > d->ncomp || end - d->pos != 2 * (size_t)n + 3) return DCJPEG_CORRUPT;
    int blocks = 0;
    for (int i = 0; i < n; i++) {
        int id = d->data[d->pos], tables = d->data[d->pos + 1];
        d->pos += 2;
        int c = 0;
        while (c < d->ncomp && d->comp[c].id != id) c++;
        if (c == d->ncomp) return DCJPEG_CORRUPT;
        for (int o = 0; o < i; o++)
            if (d->scan_comp[o] == c) return DCJPEG_CORRUPT;
        d->scan_comp[i] = c;
        d->scan_dc[i] = tables >> 4;
        d->scan_ac[i] = tables & 15;
        if (d->scan_dc[i] > 3 || d->scan_ac[i] > 3) return DCJPEG_CORRUPT;
        blocks += d->comp[c].h * d->comp[c].v;
    }
    if (n > 1 && blocks > 10) return DCJPEG_CORRUPT; /* libjpeg's limit on blocks per MCU */
    d->scan_ncomp = n;
    d->ss = d->data[d->pos];
    d->se = d->data[d->pos + 1];
    d->ah = d->data[d->pos + 2] >> 4;
    d->al = d->data[d->pos + 2] & 15;
    d->pos = end;
    /* The checks of libjpeg's jdphuff.c; where it only warns, we decline. */
    if (d->ss == 0 ? d->se != 0 : (d->se < d->ss || d->se > 63 || n != 1)) return DCJPEG_CORRUPT;
    if ((d->ah != 0 && d->al != d->ah - 1) || d->al > 13) return DCJPEG_CORRUPT;
    for (int i = 0; i < n; i++) {
        component *comp = &d->comp[d->scan_comp[i]];
        if (d->ss > 0 && comp->bits[0] < 0) return DCJPEG_CORRUPT; /* AC before any DC */
        for (int k = d->ss; k <= d->se; k++) {
            int expected = comp->bits[k] < 0 ? 0 : comp->bits[k];
            if (d->ah != expected) return DCJPEG_CORRUPT;
            comp->bits[k] = (int8_t)d->al;
        }
        if (!comp->latched) {
            if (!d->quant_defined[comp->tq]) return DCJPEG_CORRUPT;
            for (int k = 0; k < 64; k++) comp->quant[NATURAL[k]] = (int16_t)d->quant[comp->tq][k];
            comp->latched = 1;
        }
        /* Tables libjpeg would need, even for scans we skip: without them it fails, and so do we. */
        if (d->ss == 0 && d->ah == 0 && !d->dc[d->scan_dc[i]].defined) return DCJPEG_CORRUPT;
        if (d->ss > 0 && !d->ac[d->scan_ac[i]].defined) return DCJPEG_CORRUPT;
    }
    return DCJPEG_OK;
}

/* ---------------------------------------------------------------- entropy decoding (jdphuff.c) */

static inline int dc_first(decoder *d, component *comp, const huffman *t, int16_t *block) {
    int s, rc;
    int32_t bits;
    if ((rc = decode_symbol(d, t, &s))) return rc;
    if ((rc = get_bits(d, s, &bits))) return rc;
    int64_t value = (int64_t)comp->dc_pred + (s ? extend(bits, s) : 0);
    if (value > INT32_MAX || value < INT32_MIN) return DCJPEG_CORRUPT;
    comp->dc_pred = (int32_t)value;
    block[0] = (int16_t)(uint16_t)((uint32_t)value << d->al);
    return DCJPEG_OK;
}

static inline int dc_refine(decoder *d, int16_t *block) {
    int32_t bit;
    int rc = get_bits(d, 1, &bit);
    if (bit) block[0] = (int16_t)(block[0] | (1 << d->al));
    return rc;
}

static inline int ac_first(decoder *d, const huffman *t, ac_block *block) {
    if (d->eobrun > 0) {
        d->eobrun--;
        return DCJPEG_OK;
    }
    for (int k = d->ss; k <= d->se; k++) {
        int sym, rc;
        int32_t bits;
        if ((rc = decode_symbol(d, t, &sym))) return rc;
        int r = sym >> 4, s = sym & 15;
        if (s) {
            k += r;
            if (k > d->se) return DCJPEG_CORRUPT;
            if ((rc = get_bits(d, s, &bits))) return rc;
            int16_t value = (int16_t)(uint16_t)((uint32_t)extend(bits, s) << d->al);
            if (value) block->nonzero |= (uint64_t)1 << k;
            if (d->slot[k] >= 0) block->value[d->slot[k]] = value;
        } else if (r == 15) {
            k += 15;
        } else {
            d->eobrun = 1u << r;
            if ((rc = get_bits(d, r, &bits))) return rc;
            d->eobrun += (uint32_t)bits - 1;
            break;
        }
    }
    return DCJPEG_OK;
}

/* The correction bit of the non-zero coefficient k: its magnitude grows by p1 when set. */
static inline int refine_nonzero(decoder *d, ac_block *block, int k, int p1) {
    int32_t bit;
    int rc = get_bits(d, 1, &bit);
    if (bit && d->slot[k] >= 0) {
        int16_t *coef = &block->value[d->slot[k]];
        if ((*coef & p1) == 0) *coef = (int16_t)(*coef >= 0 ? *coef + p1 : *coef - p1);
    }
    return rc;
}

static inline int ac_refine(decoder *d, const huffman *t, ac_block *block) {
    int p1 = 1 << d->al;
    int k = d->ss, rc;
    int32_t bits;
    if (d->eobrun == 0) {
        for (; k <= d->se; k++) {
            int sym, value = 0;
            if ((rc = decode_symbol(d, t, &sym))) return rc;
            int r = sym >> 4, s = sym & 15;
            if (s) {
                if (s != 1) return DCJPEG_CORRUPT;
                if ((rc = get_bits(d, 1, &bits))) return rc;
                value = bits ? p1 : -p1;
            } else if (r != 15) {
                d->eobrun = 1u << r;
                if ((rc = get_bits(d, r, &bits))) return rc;
                d->eobrun += (uint32_t)bits;
                break;
            }
            /* Skip r zero coefficients (refining the non-zero ones passed over), then place the new one. */
            for (; k <= d->se; k++) {
                if (block->nonzero >> k & 1) {
                    if ((rc = refine_nonzero(d, block, k, p1))) return rc;
                } else if (--r < 0) {
                    break;
                }
            }
            if (value) {
                if (k > d->se) return DCJPEG_CORRUPT;
                block->nonzero |= (uint64_t)1 << k;
                if (d->slot[k] >= 0) block->value[d->slot[k]] = (int16_t)value;
            }
        }
    }
    if (d->eobrun > 0) {
        /* The rest of the band: only the non-zero coefficients take a correction bit. */
        uint64_t rest = k > 63 ? 0 : block->nonzero >> k << k;
        if (d->se < 63) rest &= ((uint64_t)2 << d->se) - 1;
        while (rest) {
            int at = __builtin_ctzll(rest);
            rest &= rest - 1;
            if ((rc = refine_nonzero(d, block, at, p1))) return rc;
        }
        d->eobrun--;
    }
    return DCJPEG_OK;
}

static int restart(decoder *d, int *expected) {
    bits_reset(d);
    int marker = 0;
    /* Like next_marker, but stop at restart markers. */
    while (d->pos + 1 < d->len) {
        if (d->data[d->pos] == 0xFF && d->data[d->pos + 1] != 0x00 && d->data[d->pos + 1] != 0xFF) {
            marker = d->data[d->pos + 1];
            break;
        }
        d->pos++;
    }
    if (marker != 0xD0 + *expected) return DCJPEG_CORRUPT; /* libjpeg would resynchronise; we decline */
    d->pos += 2;
    *expected = (*expected + 1) & 7;
    for (int c = 0; c < d->ncomp; c++) d->comp[c].dc_pred = 0;
    d->eobrun = 0;
    return DCJPEG_OK;
}

enum { DC_FIRST, DC_REFINE, AC_FIRST, AC_REFINE };

static inline __attribute__((always_inline)) int decode_block(decoder *d, const int kind, int i, int bx, int by) {
    component *comp = &d->comp[d->scan_comp[i]];
    size_t index = (size_t)by * (size_t)comp->bw + (size_t)bx;
    switch (kind) {
    case DC_FIRST: return dc_first(d, comp, &d->dc[d->scan_dc[i]], comp->dc + index);
    case DC_REFINE: return dc_refine(d, comp->dc + index);
    case AC_FIRST: return ac_first(d, &d->ac[d->scan_ac[i]], comp->ac + index);
    default: return ac_refine(d, &d->ac[d->scan_ac[i]], comp->ac + index);
    }
}

/* Every block of the scan in order (MCUs for an interleaved scan), with restart markers. The kind
 * is a constant in each caller, so the compiler makes one tight loop per kind. */
static inline __attribute__((always_inline)) int scan_blocks(decoder *d, const int kind) {
    int rc, expected_rst = 0;
    long mcus = 0, until_restart = d->restart_interval;
    bits_reset(d);
    d->eobrun = 0;
    for (int c = 0; c < d->ncomp; c++) d->comp[c].dc_pred = 0;
    if (d->scan_ncomp > 1) {
        for (int my = 0; my < d->mcus_y; my++)
            for (int mx = 0; mx < d->mcus_x; mx++, mcus++) {
                if (d->restart_interval && until_restart-- == 0) {
                    if ((rc = restart(d, &expected_rst))) return rc;
                    until_restart = d->restart_interval - 1;
                }
                for (int i = 0; i < d->scan_ncomp; i++) {
                    component *comp = &d->comp[d->scan_comp[i]];
                    for (int y = 0; y < comp->v; y++)
                        for (int x = 0; x < comp->h; x++)
                            if ((rc = decode_block(d, kind, i, mx * comp->h + x, my * comp->v + y))) return rc;
                }
            }
    } else {
        component *comp = &d->comp[d->scan_comp[0]];
        for (int by = 0; by < comp->scan_bh; by++)
            for (int bx = 0; bx < comp->scan_bw; bx++, mcus++) {
                if (d->restart_interval && until_restart-- == 0) {
                    if ((rc = restart(d, &expected_rst))) return rc;
                    until_restart = d->restart_interval - 1;
                }
                if ((rc = decode_block(d, kind, 0, bx, by))) return rc;
            }
    }
    bits_reset(d);
    return DCJPEG_OK;
}

static int scan_dc_first(decoder *d) { return scan_blocks(d, DC_FIRST); }
static int scan_dc_refine(decoder *d) { return scan_blocks(d, DC_REFINE); }
static int scan_ac_first(decoder *d) { return scan_blocks(d, AC_FIRST); }
static int scan_ac_refine(decoder *d) { return scan_blocks(d, AC_REFINE); }

static int decode_scan(decoder *d) {
    if (d->ss == 0) return d->ah == 0 ? scan_dc_first(d) : scan_dc_refine(d);
    return d->ah == 0 ? scan_ac_first(d) : scan_ac_refine(d);
}

/* ---------------------------------------------------------------- reduced IDCT (jidctred.c) */

/* libjpeg's post-IDCT range limit: clamps to 0..255 near the valid range, wraps like its
 * 1024-entry table beyond it. `x` is the descaled value before the +128 level shift. */
static inline uint8_t idct_limit(int32_t x) {
    int i = x & 1023;
    if (i < 128) return (uint8_t)(i + 128);
    if (i < 512) return 255;
    if (i < 896) return 0;
    return (uint8_t)(i - 896);
}

/* libjpeg stores its IDCT workspace in `int`: hostile coefficients wrap there, and so they do here. */
static inline int32_t wrap32(int64_t x) { return (int32_t)(uint32_t)(uint64_t)x; }

#define DESCALE(x, n) (((x) + ((int64_t)1 << ((n)-1))) >> (n))

static inline uint8_t idct_1x1(int16_t coef, const int16_t *quant, const uint8_t limit[1024]) {
    int32_t dc = (int32_t)coef * quant[0];
    return limit[wrap32(DESCALE((int64_t)dc, 3)) & 1023];
}

/* jidctred.c's jpeg_idct_2x2, reading the 5x5 grid of an ac_block (rows and columns 0, 1, 3, 5, 7). */
static void idct_2x2(int16_t dc, const ac_block *ac, const int16_t *quant, uint8_t *out, size_t stride) {
    enum { CONST_BITS = 13, PASS1_BITS = 2 };
    const int64_t F0_720959822 = 5906, F0_850430095 = 6967, F1_272758580 = 10426, F3_624509785 = 29692;
    static const uint8_t lines[5] = {0, 1, 3, 5, 7};
    int32_t work[2][5]; /* pass 1 output: 2 rows of the 5 columns */
    for (int gc = 0; gc < 5; gc++) {
        int col = lines[gc];
        /* dequantized coefficients of this column, rows 0, 1, 3, 5, 7 */
        int32_t z[5];
        z[0] = (int32_t)(gc == 0 ? dc : ac->value[gc - 1]) * quant[col];
        for (int gr = 1; gr < 5; gr++) z[gr] = (int32_t)ac->value[gr * 5 + gc - 1] * quant[lines[gr] * 8 + col];
        if (z[1] == 0 && z[2] == 0 && z[3] == 0 && z[4] == 0) {
            work[0][gc] = work[1][gc] = wrap32((int64_t)z[0] * (1 << PASS1_BITS));
            continue;
        }
        int64_t tmp10 = (int64_t)z[0] * ((int64_t)1 << (CONST_BITS + 2));
        int64_t tmp0 = (int64_t)z[4] * -F0_720959822 + (int64_t)z[3] * F0_850430095 +
                       (int64_t)z[2] * -F1_272758580 + (int64_t)z[1] * F3_624509785;
        work[0][gc] = wrap32(DESCALE(tmp10 + tmp0, CONST_BITS - PASS1_BITS + 2));
        work[1][gc] = wrap32(DESCALE(tmp10 - tmp0, CONST_BITS - PASS1_BITS + 2));
    }
    for (int row = 0; row < 2; row++) {
        const int32_t *w = work[row];
        uint8_t *o = out + (size_t)row * stride;
        if (w[1] == 0 && w[2] == 0 && w[3] == 0 && w[4] == 0) {
            o[0] = o[1] = idct_limit(wrap32(DESCALE((int64_t)w[0], PASS1_BITS + 3)));
            continue;
        }
        int64_t tmp10 = (int64_t)w[0] * ((int64_t)1 << (CONST_BITS + 2));
        int64_t tmp0 = (int64_t)w[4] * -F0_720959822 + (int64_t)w[3] * F0_850430095 +
                       (int64_t)w[2] * -F1_272758580 + (int64_t)w[1] * F3_624509785;
        o[0] = idct_limit(wrap32(DESCALE(tmp10 + tmp0, CONST_BITS + PASS1_BITS + 3 + 2)));
        o[1] = idct_limit(wrap32(DESCALE(tmp10 - tmp0, CONST_BITS + PASS1_BITS + 3 + 2)));
    }
}

static int render_planes(decoder *d) {
    uint8_t limit[1024];
    for (int i = 0; i < 1024; i++) limit[i] = idct_limit(i);
    for (int c = 0; c < d->ncomp; c++) {
        component *comp = &d->comp[c];
        size_t stride = (size_t)comp->bw * (size_t)comp->ssize;
        comp->plane = malloc(stride * (size_t)comp->bh * (size_t)comp->ssize);
        if (comp->plane == NULL) return DCJPEG_NOMEM;
        for (int by = 0; by < comp->bh; by++)
            for (int bx = 0; bx < comp->bw; bx++) {
                size_t index = (size_t)by * (size_t)comp->bw + (size_t)bx;
                if (comp->ssize == 1)
                    comp->plane[index] = idct_1x1(comp->dc[index], comp->quant, limit);
                else
                    idct_2x2(comp->dc[index], comp->ac + index, comp->quant, comp->plane + 2 * (size_t)by * stride + 2 * (size_t)bx,
                             stride);
            }
    }
    return DCJPEG_OK;
}

/* ---------------------------------------------------------------- colour (jdcolor.c) */

static inline uint8_t clamp(int32_t x) { return x < 0 ? 0 : x > 255 ? 255 : (uint8_t)x; }

typedef struct {
    int32_t cr_r[256], cb_b[256], cr_g[256], cb_g[256];
} ycc_tables;

static void build_ycc(ycc_tables *t) {
    enum { SCALEBITS = 16 };
    const int64_t one_half = (int64_t)1 << (SCALEBITS - 1);
#define FIX(x) ((int64_t)((x) * (1L << SCALEBITS) + 0.5))
    for (int i = 0; i < 256; i++) {
        int64_t x = i - 128;
        t->cr_r[i] = (int32_t)((FIX(1.40200) * x + one_half) >> SCALEBITS);
        t->cb_b[i] = (int32_t)((FIX(1.77200) * x + one_half) >> SCALEBITS);
        t->cr_g[i] = (int32_t)(-FIX(0.71414) * x);
        t->cb_g[i] = (int32_t)(-FIX(0.34414) * x + one_half);
    }
#undef FIX
}

static int write_output(decoder *d, uint8_t *out, int out_w, int out_h) {
    enum { GREY, RGB, YCC, CMYK, YCCK } space;
    if (d->ncomp == 1) {
        space = GREY;
    } else if (d->ncomp == 3) {
        /* libjpeg's guess (jdapimin.c) */
        if (d->saw_jfif)
            space = YCC;
        else if (d->saw_adobe)
            space = d->adobe_transform == 0 ? RGB : YCC;
        else if (d->comp[0].id == 82 && d->comp[1].id == 71 && d->comp[2].id == 66)
            space = RGB;
        else
            space = YCC;
    } else {
        space = d->saw_adobe && d->adobe_transform != 0 ? YCCK : CMYK;
    }
    ycc_tables tables;
    if (space == YCC || space == YCCK) build_ycc(&tables);
    const uint8_t *planes[MAX_COMPS];
    size_t strides[MAX_COMPS], rows[MAX_COMPS];
    int hx[MAX_COMPS], vx[MAX_COMPS];
    int *columns = malloc(sizeof(int) * (size_t)out_w * MAX_COMPS);
    if (columns == NULL) return DCJPEG_NOMEM;
    for (int c = 0; c < d->ncomp; c++) {
        component *comp = &d->comp[c];
        /* At 1/8 scale libjpeg upsamples by replication only (jdsample.c: no fancy upsampling
         * when the smallest IDCT is 1x1). */
        hx[c] = d->max_h / (comp->h * comp->ssize);
        vx[c] = d->max_v / (comp->v * comp->ssize);
        strides[c] = (size_t)comp->bw * (size_t)comp->ssize;
        rows[c] = (size_t)comp->bh * (size_t)comp->ssize;
        planes[c] = comp->plane;
        if ((size_t)((out_w - 1) / hx[c]) >= strides[c] || (size_t)((out_h - 1) / vx[c]) >= rows[c]) {
            free(columns);
            return DCJPEG_CORRUPT; /* cannot happen for a consistent header; never read outside */
        }
        for (int x = 0; x < out_w; x++) columns[c * out_w + x] = x / hx[c];
    }
    size_t pixel = (size_t)d->ncomp;
    for (int y = 0; y < out_h; y++) {
        const uint8_t *row[MAX_COMPS];
        for (int c = 0; c < d->ncomp; c++) row[c] = planes[c] + (size_t)(y / vx[c]) * strides[c];
        uint8_t *o = out + (size_t)y * (size_t)out_w * pixel;
        for (int x = 0; x < out_w; x++, o += pixel) {
            int s[MAX_COMPS];
            for (int c = 0; c < d->ncomp; c++) s[c] = row[c][columns[c * out_w + x]];
            if (space == YCC || space == YCCK) {
                int32_t y0 = s[0], cb = s[1], cr = s[2];
                int32_t r = y0 + tables.cr_r[cr];
                int32_t g = y0 + (int32_t)(((int64_t)tables.cb_g[cb] + tables.cr_g[cr]) >> 16);
                int32_t b = y0 + tables.cb_b[cb];
                if (space == YCC) {
                    o[0] = clamp(r), o[1] = clamp(g), o[2] = clamp(b);
                } else {
                    o[0] = clamp(255 - r), o[1] = clamp(255 - g), o[2] = clamp(255 - b), o[3] = (uint8_t)s[3];
                }
            } else {
                for (int c = 0; c < d->ncomp; c++) o[c] = (uint8_t)s[c];
            }
        }
    }
    free(columns);
    return DCJPEG_OK;
}

/* ---------------------------------------------------------------- driver */

static int complete(const decoder *d) {
    /* Without every scan that sets the DC and AC coefficients 1..9 to full precision, libjpeg
     * smooths blocks (jdcoefct.c), which we do not imitate. */
    for (int c = 0; c < d->ncomp; c++) {
        for (int k = 0; k < 10; k++)
            if (d->comp[c].bits[k] != 0) return 0;
    }
    return 1;
}

static int run(decoder *d, uint8_t *out) {
    int rc;
    if (d->len < 4 || d->data[0] != 0xFF || d->data[1] != 0xD8) return DCJPEG_CORRUPT;
    d->pos = 2;
    for (;;) {
        int marker = next_marker(d);
        if (marker == 0) return DCJPEG_CORRUPT; /* no EOI: truncated */
        if (marker == 0xD9) break;
        if (marker == 0x01 || (marker >= 0xD0 && marker <= 0xD8)) return DCJPEG_CORRUPT;
        unsigned length;
        if ((rc = read_u16(d, &length))) return rc;
        if (length < 2 || d->len - d->pos < length - 2) return DCJPEG_CORRUPT;
        size_t end = d->pos + length - 2;
        switch (marker) {
        case 0xC2:
            if ((rc = read_sof(d, end))) return rc;
            break;
        case 0xC0: case 0xC1: case 0xC3: case 0xC5: case 0xC6: case 0xC7:
        case 0xC9: case 0xCA: case 0xCB: case 0xCD: case 0xCE: case 0xCF:
        case 0xCC: /* arithmetic coding conditioning */
        case 0xDC: /* DNL */
            return DCJPEG_UNSUPPORTED;
        case 0xC4:
            if ((rc = read_dht(d, end))) return rc;
            break;
        case 0xDB:
            if ((rc = read_dqt(d, end))) return rc;
            break;
        case 0xDD:
            if (length != 4) return DCJPEG_CORRUPT;
            d->restart_interval = d->data[d->pos] << 8 | d->data[d->pos + 1];
            d->pos = end;
            break;
        case 0xE0: /* JFIF, as libjpeg recognises it (jdmarker.c examine_app0) */
            if (length - 2 >= 14 && memcmp(d->data + d->pos, "JFIF\0", 5) == 0) d->saw_jfif = 1;
            d->pos = end;
            break;
        case 0xEE: /* Adobe (examine_app14) */
            if (length - 2 >= 12 && memcmp(d->data + d->pos, "Adobe", 5) == 0) {
                d->saw_adobe = 1;
                d->adobe_transform = d->data[d->pos + 11];
            }
            d->pos = end;
            break;
        case 0xDA:
            if ((rc = read_sos(d, end))) return rc;
            /* DC scans, and AC scans of components with a 2x2 IDCT, are decoded; the others are
             * skipped: the next marker ends them, and next_marker steps over entropy-coded data. */
            if ((d->ss == 0 || d->comp[d->scan_comp[0]].ssize == 2) && (rc = decode_scan(d))) return rc;
            break;
        default: /* APPn, COM, JPGn: skipped */
            d->pos = end;
            break;
        }
    }
    if (!d->saw_sof) return DCJPEG_CORRUPT;
    if (!complete(d)) return DCJPEG_UNSUPPORTED;
    if ((rc = render_planes(d))) return rc;
    return write_output(d, out, d->out_w, d->out_h);
}

int dcjpeg_decode(const uint8_t *data, size_t len, uint8_t *out, int out_w, int out_h, int channels) {
    if (data == NULL || out == NULL || out_w <= 0 || out_h <= 0) return DCJPEG_MISMATCH;
    decoder *d = calloc(1, sizeof(decoder));
    if (d == NULL) return DCJPEG_NOMEM;
    d->data = data;
    d->len = len;
    d->out_w = out_w, d->out_h = out_h, d->channels = channels;
    for (int k = 0; k < 64; k++) d->slot[k] = (int8_t)slot_of_natural(NATURAL[k]);
    int rc = run(d, out);
    for (int c = 0; c < MAX_COMPS; c++) {
        free(d->comp[c].dc);
        free(d->comp[c].ac);
        free(d->comp[c].plane);
    }
    free(d);
    return rc;
}

const char *dcjpeg_reason(int status) {
    switch (status) {
    case DCJPEG_OK: return "ok";
    case DCJPEG_UNSUPPORTED: return "unsupported";
    case DCJPEG_CORRUPT: return "corrupt";
    case DCJPEG_NOMEM: return "out of memory";
    case DCJPEG_MISMATCH: return "header does not match the expected size or components";
    default: return "unknown";
    }
}
