"""PDF originals: the first page, drawn by PDFium at the rendition's size, on white.

No forms environment is ever created, so no JavaScript (AcroForm or XFA) runs and form fields are not
drawn; only page 1 is parsed beyond the cross-reference table. Drawing is progressive with a pause
callback, so a page that takes longer than `RENDER_SECONDS` is abandoned (413) instead of holding a
worker thread. PDFium is not thread-safe: one lock serialises every call into it in this process.
"""
from __future__ import annotations

import threading
import time

import pypdfium2 as pdfium  # type: ignore[import-untyped]
import pypdfium2.raw as pdfium_c  # type: ignore[import-untyped]
from PIL import Image

from sidecar.errors import TooLarge, Undecodable
from sidecar.transform.vector import VectorImageFile, checked_size

#: The PDF specification's largest page side (200 inches), in points; a larger one is malformed.
MAX_PAGE_POINTS = 14_400
#: Seconds one page may take to draw.
RENDER_SECONDS = 10.0
POINT_PIXELS = 1.0  # a page's intrinsic size: one pixel per point (72 dpi), as PDF viewers start

_LOCK = threading.Lock()


class PdfImageFile(VectorImageFile):
    format = "PDF"
    format_description = "PDF, first page (drawn by PDFium)"

    def _open(self) -> None:
        assert self.fp is not None
        self._data = self.fp.read()
        with _document(self._data) as document:
            if len(document) < 1:
                raise Undecodable("PDF has no pages")
            page = document[0]
            width, height = page.get_size()
            page.close()
        if not (0 < width <= MAX_PAGE_POINTS and 0 < height <= MAX_PAGE_POINTS):
            raise Undecodable(f"PDF page is {width}x{height} points")
        self._size = checked_size(width * POINT_PIXELS, height * POINT_PIXELS, "PDF")
        self._mode = "RGB"

    def render(self, size: tuple[int, int]) -> Image.Image:
        with _document(self._data) as document:
            page = document[0]
            bitmap = pdfium.PdfBitmap.new_native(*size, format=pdfium_c.FPDFBitmap_BGR, rev_byteorder=True)
            bitmap.fill_rect((255, 255, 255, 255), 0, 0, *size)
            try:
                _draw(bitmap, page, size, time.monotonic() + RENDER_SECONDS)
                return bitmap.to_pil().copy()  # the bitmap's buffer goes with the document
            finally:
                bitmap.close()
                page.close()


def _draw(bitmap: pdfium.PdfBitmap, page: pdfium.PdfPage, size: tuple[int, int], deadline: float) -> None:
    # NeedToPauseNow asks for a pause at every chance: each one is a look at the clock here.
    pause = pdfium_c.IFSDK_PAUSE(version=1)
    pause.NeedToPauseNow = type(pause.NeedToPauseNow)(lambda _: True)
    flags = pdfium_c.FPDF_ANNOT | pdfium_c.FPDF_REVERSE_BYTE_ORDER
    status = pdfium_c.FPDF_RenderPageBitmap_Start(bitmap, page, 0, 0, *size, 0, flags, pause)
    try:
        while status == pdfium_c.FPDF_RENDER_TOBECONTINUED:
            if time.monotonic() > deadline:
                raise TooLarge(f"PDF page took more than {RENDER_SECONDS:g} s to draw")
            status = pdfium_c.FPDF_RenderPage_Continue(page, pause)
        if status != pdfium_c.FPDF_RENDER_DONE:
            raise Undecodable("PDFium could not draw the page")
    finally:
        pdfium_c.FPDF_RenderPage_Close(page)


class _document:
    """A PdfDocument under the process-wide PDFium lock, closed on exit; one PDFium cannot open is a
    SyntaxError, Pillow's way for a plugin to say the file is not its format."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def __enter__(self) -> pdfium.PdfDocument:
        _LOCK.acquire()
        try:
            self.document = pdfium.PdfDocument(self.data)
        except pdfium.PdfiumError as exc:
            _LOCK.release()
            raise SyntaxError(f"PDFium: {exc}") from None  # Pillow's "not this format"
        return self.document

    def __exit__(self, *exc: object) -> None:
        try:
            self.document.close()
        finally:
            _LOCK.release()


def accept(prefix: bytes) -> bool:
    """The PDF header within the first 16 bytes (what Pillow shows a plugin; `sniff` asks the same)."""
    return b"%PDF-" in prefix[:16]


Image.register_open(PdfImageFile.format, PdfImageFile, accept)
