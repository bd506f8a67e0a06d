"""Estimate a JPEG's encoder quality from its luminance quantization table (IJG scaling)."""
from __future__ import annotations

from collections.abc import Sequence

# ITU-T T.81 Annex K, table K.1: the luminance table every IJG-style encoder scales by quality.
_STANDARD_LUMA = (
    16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55,
    14, 13, 16, 24, 40, 57, 69, 56, 14, 17, 22, 29, 51, 87, 80, 62,
    18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
    49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99,
)


def _table_sum(quality: int) -> int:
    scale = 5000 // quality if quality < 50 else 200 - 2 * quality
    return sum(min(255, max(1, (q * scale + 50) // 100)) for q in _STANDARD_LUMA)


# Sums do not depend on coefficient order, so zigzag and natural-order tables compare alike.
_SUMS = {quality: _table_sum(quality) for quality in range(1, 101)}


def estimate_quality(luma_table: Sequence[int]) -> int:
    """The IJG quality whose scaled standard table is closest to this one (1 to 100)."""
    total = sum(luma_table)
    return min(_SUMS, key=lambda quality: (abs(_SUMS[quality] - total), -quality))
