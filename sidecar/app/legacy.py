"""Old URLs (`routes`): the URL shapes a shop already has, served as the canonical rendition they map to,
then linked in the cache so nginx finds them the next time without us."""
from __future__ import annotations

from sidecar.app.renditions import Renditions
from sidecar.app.resolver import Resolver, with_row
from sidecar.app.response import Response
from sidecar.builder import build_url, preset_fields
from sidecar.log import log
from sidecar.url import grammar as url
from sidecar.url import routes


class LegacyRoutes:
    """Resolves a matched old URL (by key, or by ID through the resolver) and serves its rendition."""

    def __init__(self, renditions: Renditions, resolver: Resolver | None) -> None:
        self.renditions, self.resolver = renditions, resolver
        self.config, self.work = renditions.config, renditions.work
        self.routes = tuple(self.config.urls.routes.values())

    def match(self, path: str) -> routes.RouteMatch | None:
        """The route `path` matches, if it is outside the canonical prefix and any route is configured."""
        if not self.routes or path.startswith(self.config.urls.url_prefix + "/"):
            return None
        url.check_length(path, self.config.urls.max_url_length)
        return routes.match(self.routes, path)

    async def resolve(self, found: routes.RouteMatch) -> str:
        """The canonical path of what an old URL asks for (see `resolver.with_row` for the order)."""
        fields = preset_fields(self.config, found.route.preset)
        if not found.route.by_id:
            return build_url(self.config, found.identity, operations={**fields, **found.fields()})
        assert self.resolver is not None  # the config refuses {id} routes without one
        resolved = await self.resolver.resolve(found.identity)
        return build_url(self.config, resolved.key,
                         operations=with_row(self.config, resolved, fields, found.fields()))

    async def serve(self, found: routes.RouteMatch) -> Response:
        """An old URL: the canonical rendition's miss, then a link nginx finds the next time."""
        signed = self.renditions.signer is not None
        parsed = url.parse(await self.resolve(found), prefix=self.config.urls.url_prefix, signed=signed)
        assert isinstance(parsed.target, url.Rendition)
        response, published = await self.renditions.serve(found.path, parsed.target, parsed.signature, None, None)
        if published is not None:
            try:
                await self.work.cache.link(found.link_path, published)
                self.work.metrics.route_links.inc()
            except OSError as exc:  # the image is served all the same; the next request tries again
                log("route_link_failed", path=found.link_path, error=str(exc))
        return response
