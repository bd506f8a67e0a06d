"""Face gravity: find faces, and put a `fill` crop where it keeps them.

The detector is OpenCV's frontal-face Haar cascade (`haarcascade_frontalface_default.xml`, shipped inside
opencv-python-headless: nothing is downloaded at run time). No package on the registries ships YuNet's
ONNX model, and the cascade is fast on a small picture: it runs on a thumbnail of `DETECT_SIDE` pixels,
so a face must be at least `MIN_FACE` of them (about a thirteenth of the longest side) to be found. Boxes
are fractions of the picture, so they hold at every size and can be cached per original.
"""
from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
from PIL import Image

from sidecar.transform import orientation

#: A face box: (left, top, right, bottom) as fractions of the width and height.
Face = tuple[float, float, float, float]

DETECT_SIDE = 256
#: The decode's least longest side for detection, near twice the detector's (a JPEG is drafted no
#: smaller): a 12 MP photo's 1/8 scale (504 px) is enough.
DECODE_SIDE = 480
MIN_FACE = 20
_SCALE_FACTOR = 1.1
_MIN_NEIGHBOURS = 2
#: The cascade alone takes some textures for faces: a face's middle must be at least this share of skin
#: tones (any skin: the classic YCrCb range), unless the picture has no colour.
_MIN_SKIN = 0.3
#: Room kept around a face: each side in face widths, above (the hair, some air) and below (the chin,
#: the neck) in face heights.
_HEADROOM = (0.35, 0.6, 0.35)

cv2.setNumThreads(1)  # one transform per worker thread: OpenCV's own threads would only compete
_CASCADE = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")  # type: ignore[attr-defined]


def detect(image: Image.Image, upright: Image.Transpose | None = None) -> tuple[Face, ...]:
    """The faces in `image` turned by `upright` (its EXIF orientation), as fractions of the turned
    picture, largest first (CPU, tens of milliseconds)."""
    scale = min(1.0, DETECT_SIDE / max(image.size))
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    thumb = image.resize(size, Image.Resampling.BILINEAR, reducing_gap=2.0)
    if upright is not None:
        thumb = thumb.transpose(upright)
    grey = np.asarray(thumb.convert("L"))
    found = _CASCADE.detectMultiScale(cv2.equalizeHist(grey), scaleFactor=_SCALE_FACTOR,
                                      minNeighbors=_MIN_NEIGHBOURS, minSize=(MIN_FACE, MIN_FACE))
    if thumb.mode not in ("L", "LA") and len(found):
        skin = _skin(thumb.convert("RGB"))
        found = [(x, y, w, h) for x, y, w, h in found
                 if skin[y + h // 4: y + 3 * h // 4, x + w // 4: x + 3 * w // 4].mean() >= _MIN_SKIN]
    width, height = thumb.size
    faces = [(float(x / width), float(y / height), float((x + w) / width), float((y + h) / height))
             for x, y, w, h in found]
    return tuple(sorted(faces, key=lambda f: (f[2] - f[0]) * (f[3] - f[1]), reverse=True))


def _skin(image: Image.Image) -> np.ndarray:
    """Which pixels have a skin tone (Cr 133-173, Cb 77-127), as a boolean array."""
    ycbcr = np.asarray(image.convert("YCbCr"))
    cb, cr = ycbcr[:, :, 1], ycbcr[:, :, 2]
    return (cr >= 133) & (cr <= 173) & (cb >= 77) & (cb <= 127)


def focus(faces: Sequence[Face], crop: tuple[float, float]) -> tuple[float, float] | None:
    """Where to centre a crop of `crop` (fractions of the picture) to keep every face, with headroom
    where it fits; else the largest face (with headroom where it fits), as near to the others as it
    allows. None without faces."""
    if not faces:
        return None
    for room in (_HEADROOM, (0.0, 0.0, 0.0)):
        left, top, right, bottom = _around(faces, room)
        if right - left <= crop[0] and bottom - top <= crop[1]:
            return (left + right) / 2, (top + bottom) / 2
    every = _around(faces, (0.0, 0.0, 0.0))
    for room in (_HEADROOM, (0.0, 0.0, 0.0)):
        largest = _around(faces[:1], room)
        if largest[2] - largest[0] <= crop[0] and largest[3] - largest[1] <= crop[1]:
            break
    return (_nearest((every[0] + every[2]) / 2, largest[0], largest[2], crop[0]),
            _nearest((every[1] + every[3]) / 2, largest[1], largest[3], crop[1]))


def _nearest(centre: float, low: float, high: float, window: float) -> float:
    """The centre nearest `centre` for a window of `window` holding low..high (or centred on it)."""
    if high - low > window:
        return (low + high) / 2
    return min(max(centre, high - window / 2), low + window / 2)


def contains(box: tuple[float, float, float, float], face: Face) -> bool:
    """Whether a crop `box` (fractions) holds the whole face."""
    return box[0] <= face[0] and box[1] <= face[1] and face[2] <= box[2] and face[3] <= box[3]


def shown_box(method: Image.Transpose | None, box: Face) -> Face:
    """A box as fractions of the stored pixels, as fractions of the picture turned by `method`."""
    x0, y0 = orientation.shown_point(method, (box[0], box[1]))
    x1, y1 = orientation.shown_point(method, (box[2], box[3]))
    return min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)


def _around(faces: Sequence[Face], room: tuple[float, float, float]) -> Face:
    """The box holding every face with its room, inside the picture."""
    side, above, below = room
    boxes = []
    for left, top, right, bottom in faces:
        w, h = right - left, bottom - top
        boxes.append((max(0.0, left - side * w), max(0.0, top - above * h),
                      min(1.0, right + side * w), min(1.0, bottom + below * h)))
    return (min(b[0] for b in boxes), min(b[1] for b in boxes),
            max(b[2] for b in boxes), max(b[3] for b in boxes))


def turned(faces: Sequence[Face], degrees: int, flip: bool) -> tuple[Face, ...]:
    """The boxes after the URL's clockwise rotation, then its mirror (as `filters.turn` does)."""
    out = []
    for left, top, right, bottom in faces:
        if degrees == 90:
            left, top, right, bottom = 1 - bottom, left, 1 - top, right
        elif degrees == 180:
            left, top, right, bottom = 1 - right, 1 - bottom, 1 - left, 1 - top
        elif degrees == 270:
            left, top, right, bottom = top, 1 - right, bottom, 1 - left
        if flip:
            left, right = 1 - right, 1 - left
        out.append((left, top, right, bottom))
    return tuple(out)


def within(faces: Sequence[Face], box: Face) -> tuple[Face, ...]:
    """The boxes as fractions of `box` (a part of the picture, in fractions), cut to it; those outside
    it dropped."""
    left, top, right, bottom = box
    w, h = right - left, bottom - top
    out = []
    for face in faces:
        cut = (max(0.0, (face[0] - left) / w), max(0.0, (face[1] - top) / h),
               min(1.0, (face[2] - left) / w), min(1.0, (face[3] - top) / h))
        if cut[0] < cut[2] and cut[1] < cut[3]:
            out.append(cut)
    return tuple(out)
