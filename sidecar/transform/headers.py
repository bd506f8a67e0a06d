"""What a file declares about its size, read from its structure alone, for limits before any decode.

Pillow either decodes before it knows (GIF frames beyond the first) or refuses before it tells
(libavif's own dimension limit): for those formats we read the declarations ourselves.
"""
from __future__ import annotations

from dataclasses import dataclass

from sidecar.errors import Undecodable


@dataclass(frozen=True)
class GifLayout:
    frames: int
    #: The canvas every frame must fit on: Pillow grows the image to any frame that sticks out.
    canvas: tuple[int, int]
    #: Each frame's delay in milliseconds, as written (graphic control extensions; 0 without one).
    delays: tuple[int, ...] = ()


def gif_layout(data: bytes) -> GifLayout:
    """Walk the blocks of a GIF; raise Undecodable if the structure is broken before the first frame."""
    if len(data) < 13:
        raise Undecodable("truncated GIF header")
    width, height = _u16(data, 6), _u16(data, 8)
    pos = 13 + _color_table(data[10])
    frames = 0
    delays: list[int] = []
    delay = 0
    while pos < len(data):
        block = data[pos]
        if block == 0x3B:  # trailer
            break
        if block == 0x21:  # extension: label, then sub-blocks
            if pos + 7 < len(data) and data[pos + 1] == 0xF9 and data[pos + 2] >= 4:  # graphic control
                delay = _u16(data, pos + 4) * 10
            pos = _skip_sub_blocks(data, pos + 2)
        elif block == 0x2C:  # image descriptor
            if pos + 10 > len(data):
                break
            left, top, w, h = (_u16(data, pos + 1 + 2 * i) for i in range(4))
            width, height = max(width, left + w), max(height, top + h)
            frames += 1
            delays.append(delay)
            delay = 0
            pos = _skip_sub_blocks(data, pos + 10 + _color_table(data[pos + 9]) + 1)
        else:
            break  # garbage after the last frame: decoders stop here too
    if frames == 0:
        raise Undecodable("GIF has no frames")
    return GifLayout(frames, (width, height), tuple(delays))


def gif_stripped(data: bytes) -> bytes | None:
    """A GIF without comments and application extensions (but the loop count), or None unless every
    block is whole and the trailer ends the file."""
    if len(data) < 13 or data[:6] not in (b"GIF87a", b"GIF89a"):
        return None
    pos = 13 + _color_table(data[10])
    out = [data[:pos]]
    while pos < len(data):
        block = data[pos]
        if block == 0x3B:
            return b"".join(out) + b"\x3b" if pos == len(data) - 1 else None
        if block == 0x21 and pos + 1 < len(data):
            end = _skip_sub_blocks(data, pos + 2)
            label = data[pos + 1]
            if label not in (0xFE, 0xFF) or data[pos + 3 : pos + 14] in _LOOP_APPLICATIONS:
                out.append(data[pos:end])
        elif block == 0x2C and pos + 10 <= len(data):
            end = _skip_sub_blocks(data, pos + 10 + _color_table(data[pos + 9]) + 1)
            out.append(data[pos:end])
        else:
            return None
        if end > len(data) or data[end - 1] != 0:
            return None  # a sub-block chain runs past the end
        pos = end
    return None


#: Application extensions that hold the loop count (the second is Netscape's older name).
_LOOP_APPLICATIONS = (b"NETSCAPE2.0", b"ANIMEXTS1.0")


def _u16(data: bytes, pos: int) -> int:
    return data[pos] | data[pos + 1] << 8


def _color_table(packed: int) -> int:
    return 3 << ((packed & 7) + 1) if packed & 0x80 else 0


def _skip_sub_blocks(data: bytes, pos: int) -> int:
    while pos < len(data):
        size = data[pos]
        pos += 1 + size
        if size == 0:
            break
    return pos


def avif_declared_size(data: bytes) -> tuple[int, int] | None:
    """The largest image size an AVIF declares in its `ispe` (image spatial extents) properties."""
    largest: tuple[int, int] | None = None
    pos = data.find(b"ispe", 0, 65536)
    while pos >= 4 and pos + 16 <= len(data):
        width = int.from_bytes(data[pos + 8 : pos + 12], "big")
        height = int.from_bytes(data[pos + 12 : pos + 16], "big")
        if largest is None or width * height > largest[0] * largest[1]:
            largest = (width, height)
        pos = data.find(b"ispe", pos + 4, 65536)
    return largest


def ico_largest(data: bytes) -> tuple[int, int] | None:
    """The largest size among an ICO's (or CUR's) entries, as each entry's own header says: the
    directory's one-byte sizes stop at 256, but an embedded PNG can be of any size."""
    count = int.from_bytes(data[4:6], "little")
    largest: tuple[int, int] | None = None
    for index in range(count):
        entry = 6 + 16 * index
        if entry + 16 > len(data):
            break
        size = (data[entry] or 256, data[entry + 1] or 256)
        offset = int.from_bytes(data[entry + 12 : entry + 16], "little")
        if data[offset : offset + 8] == b"\x89PNG\r\n\x1a\n" and offset + 24 <= len(data):
            size = (int.from_bytes(data[offset + 16 : offset + 20], "big"),
                    int.from_bytes(data[offset + 20 : offset + 24], "big"))
        elif offset + 12 <= len(data):
            # A BMP info header: its height counts the XOR and the AND mask, hence the half.
            bmp = (abs(int.from_bytes(data[offset + 4 : offset + 8], "little", signed=True)),
                   abs(int.from_bytes(data[offset + 8 : offset + 12], "little", signed=True)) // 2)
            size = (max(size[0], bmp[0]), max(size[1], bmp[1]))
        if largest is None or size[0] * size[1] > largest[0] * largest[1]:
            largest = size
    return largest
