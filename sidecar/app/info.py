"""Info documents: an original's facts as JSON (`/img/.../info.{sig}.json`), published where nginx finds
them next time, like a rendition."""
from __future__ import annotations

import json

from sidecar.app.response import Response
from sidecar.app.work import Work
from sidecar.sources import SourceChain
from sidecar.transform import info
from sidecar.transform.pipeline import Settings
from sidecar.url.grammar import Info
from sidecar.url.paths import internal_path

INFO_CONTENT_TYPE = "application/json"


class InfoDocuments:
    """Answers info URLs: fetch the original, describe it in the transform threads, publish the JSON."""

    def __init__(self, work: Work, sources: SourceChain, settings: Settings) -> None:
        self.work, self.sources, self.settings = work, sources, settings

    async def serve(self, target: Info, signature: str | None, deadline: float) -> Response:
        original = await self.sources.fetch(target.key, deadline)
        facts = await self.work.in_time(deadline, lambda: info.describe(original.data, self.settings))
        self.work.metrics.info_documents.inc()
        data = json.dumps(facts, separators=(",", ":")).encode()
        prefix = self.work.config.urls.url_prefix
        headers = [("X-Image-Source", original.source)]
        file_path = target.file_path(prefix, signature)
        if not await self.work.publish(file_path, data):
            return Response(200, [("Content-Type", INFO_CONTENT_TYPE), ("Cache-Control", "no-store"),
                                  *headers], data)
        return Response(200, [("X-Accel-Redirect", internal_path(file_path)), *headers])
