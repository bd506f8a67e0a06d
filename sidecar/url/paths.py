"""The paths nginx and the sidecar agree on beside renditions: the internal location, the admin API,
health and metrics, and the client-hint headers. Pure constants; the nginx config is rendered from them."""
from urllib.parse import quote

#: nginx's `internal` location that serves a published rendition (see nginx/sidecar.conf).
INTERNAL_PREFIX = "/_rendition"


def internal_path(file_path: str) -> str:
    """The X-Accel-Redirect for the cache file `file_path` (relative to the cache root). nginx decodes the
    redirect once, and cache names are URLs as sent, percent signs included: so they are encoded again."""
    return INTERNAL_PREFIX + quote(file_path, safe="/")


#: The application's API (purge; see `sidecar.app.admin` and nginx/sidecar.conf).
ADMIN_PREFIX = "/_sidecar"
#: The request headers a client-hint rendition depends on (nginx reads both spellings of each).
HINT_HEADERS = ("Sec-CH-Width", "Width", "Sec-CH-DPR", "DPR")

METRICS = "/metrics"
HEALTHZ = "/healthz"
READYZ = "/readyz"
#: What `sidecar.app.health` answers; none of them counts as a request in the metrics.
HEALTH_PATHS = frozenset({METRICS, HEALTHZ, READYZ})
