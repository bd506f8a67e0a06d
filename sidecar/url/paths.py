"""The paths nginx and the sidecar agree on beside renditions: the internal location, the admin API,
health and metrics, and the client-hint headers. Pure constants; the nginx config is rendered from them."""

#: nginx's `internal` location that serves a published rendition (see nginx/sidecar.conf).
INTERNAL_PREFIX = "/_rendition"
#: The application's API (purge; see `sidecar.app.admin` and nginx/sidecar.conf).
ADMIN_PREFIX = "/_sidecar"
#: The request headers a client-hint rendition depends on (nginx reads both spellings of each).
HINT_HEADERS = ("Sec-CH-Width", "Width", "Sec-CH-DPR", "DPR")

METRICS = "/metrics"
HEALTHZ = "/healthz"
READYZ = "/readyz"
#: What `sidecar.app.health` answers; none of them counts as a request in the metrics.
HEALTH_PATHS = frozenset({METRICS, HEALTHZ, READYZ})
