"""The fallback image: what a page gets instead of a broken-image icon when the original cannot be shown.

Off unless configured: globally (`fallback_image`) or per preset (`[presets.NAME] fallback_image`, found
through the `fb{NAME}` token that the builder writes into that preset's URLs; presets are expanded into
plain operations, so the URL must name the preset for the sidecar to know it). It is rendered with the
request's own operations (enlarged if it is smaller), so it fills the same box, and answered with the real status
(404, 413, 415 or
422) and a short cache lifetime. It is never written to the cache: the rendition's path stays free for
the real image, which is served as soon as the original appears.
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import replace
from pathlib import Path

from sidecar.config import Config
from sidecar.errors import BadRequest, SidecarError
from sidecar.transform.pipeline import Rendered, Settings, transform
from sidecar.url.grammar import Ops

#: The original is missing, too large, not an image we read, or broken: the page would show nothing.
STATUSES = frozenset({404, 413, 415, 422})
_MEMO_SIZE = 64


class Fallbacks:
    """Finds the fallback image for a request and renders it, remembering recent renderings."""

    def __init__(self, config: Config, settings: Settings) -> None:
        self.config, self.settings = config, settings
        self._memo: OrderedDict[tuple[object, ...], Rendered] = OrderedDict()
        self._lock = threading.Lock()

    def check(self, ops: Ops) -> None:
        """Raise BadRequest if the URL names a preset that has no fallback image."""
        if ops.fallback is not None:
            preset = self.config.urls.presets.get(ops.fallback)
            if preset is None or preset.fallback_image is None:
                raise BadRequest(f"no preset named {ops.fallback!r} with a fallback_image")

    def image_for(self, ops: Ops, error: SidecarError) -> Path | None:
        """The fallback image for this request and failure, or None (then the error stands)."""
        if error.status not in STATUSES:
            return None
        if ops.fallback is not None:
            return self.config.urls.presets[ops.fallback].fallback_image
        return self.config.cache.fallback_image

    def render(self, image: Path, ops: Ops, variant: str | None) -> Rendered:
        """The fallback image with the request's operations, enlarged if need be to fill the requested
        box as the rendition would have (blocking: file IO and CPU)."""
        if ops.width is not None or ops.height is not None:
            ops = replace(ops, enlarge=True)
        key = (image, image.stat().st_mtime_ns, ops, variant)
        with self._lock:
            if key in self._memo:
                self._memo.move_to_end(key)
                return self._memo[key]
        rendered = transform(image.read_bytes(), ops, self.settings, variant=variant)
        with self._lock:
            self._memo[key] = rendered
            while len(self._memo) > _MEMO_SIZE:
                self._memo.popitem(last=False)
        return rendered
