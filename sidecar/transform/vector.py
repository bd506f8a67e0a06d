"""Vector originals (SVG, PDF) as Pillow images that are drawn at the size the rendition needs.

`draft(mode, size)` works as libjpeg's does for JPEG: it asks for at least `size` pixels, and `load()`
then draws the whole picture at that size, never at a default size that would be scaled up. The pixels
drawn are capped by `Image.MAX_IMAGE_PIXELS` (the decode step sets it to `max_pixels`) whatever the
declared size (the intrinsic size too, keeping its shape), so a vector file's own numbers never decide
the memory spent on it.
"""
from __future__ import annotations

from abc import abstractmethod

from PIL import Image, ImageFile

from sidecar.errors import Undecodable

#: A declared side beyond this is not a picture but an attack on arithmetic (sizes are floats in both).
MAX_DECLARED_SIDE = 1 << 24


class VectorImageFile(ImageFile.ImageFile):
    """Subclasses set `_size` (the intrinsic size, in CSS pixels) and `_mode` in `_open`, and draw in
    `render`."""

    _drawn_size: tuple[int, int] | None = None

    def draft(self, mode: str | None, size: tuple[int, int] | None) -> None:  # type: ignore[override]
        """Draw at `size` (or the intrinsic size without one), within the pixel budget."""
        if size is not None:
            self._drawn_size = size

    def drawn_size(self) -> tuple[int, int]:
        """The size `load()` will draw: the drafted one, scaled down into the pixel budget if over it."""
        return checked_size(*(self._drawn_size or self.size), self.format or "vector")

    def load_prepare(self) -> None:
        pass  # ImageFile's would allocate an image of the intrinsic size

    def load(self) -> Image.core.PixelAccess | None:  # type: ignore[name-defined]
        if self._im is None:
            drawn = self.render(self.drawn_size())
            drawn.load()
            self.im, self._mode, self._size = drawn.im, drawn.mode, drawn.size
            self.tile = []
        return Image.Image.load(self)

    @abstractmethod
    def render(self, size: tuple[int, int]) -> Image.Image:
        """The whole picture drawn to fill `size` (its aspect ratio kept)."""


def checked_size(width: float, height: float, what: str) -> tuple[int, int]:
    """An intrinsic size as whole pixels, scaled down into the pixel budget (keeping its shape: a
    drawing declared at 10,000,000 px square is a square, not a bomb); Undecodable when it is empty or
    absurd."""
    if not (0 < width <= MAX_DECLARED_SIDE and 0 < height <= MAX_DECLARED_SIDE):
        raise Undecodable(f"{what} declares a size of {width}x{height}")
    budget = Image.MAX_IMAGE_PIXELS
    if budget is not None and width * height > budget:
        factor = (budget / (width * height)) ** 0.5
        width, height = width * factor, height * factor
    return max(1, round(width)), max(1, round(height))
