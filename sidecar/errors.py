"""One exception hierarchy: every failure a client can cause or see carries its HTTP status.

Errors are raised where the failure is understood and carry a short public message; the protocol layer
(`sidecar.server.protocol`) is the only place that turns them into responses. Anything that is not a
`SidecarError` is a bug and becomes a 500 with no details.
"""
from __future__ import annotations


class SidecarError(Exception):
    """Base class. `status` is the HTTP status; `public` is safe to show to the client."""

    status: int = 500
    public: str = "internal error"
    headers: tuple[tuple[str, str], ...] = ()  # sent with the error response

    def __init__(self, public: str | None = None, *, detail: str | None = None) -> None:
        if type(self) is SidecarError:
            raise TypeError("raise a subclass of SidecarError, not SidecarError itself")
        if public is not None:
            self.public = public
        self.detail = detail  # for logs only, never sent
        super().__init__(self.public if detail is None else f"{self.public} ({detail})")


class BadRequest(SidecarError):
    """The URL or its parameters are malformed or not canonical."""

    status, public = 400, "bad request"


class Forbidden(SidecarError):
    """Missing or wrong signature."""

    status, public = 403, "invalid signature"


class Expired(Forbidden):
    """A signed URL whose expiry (`e{unix time}`) has passed."""

    public = "URL expired"


class UriTooLong(SidecarError):
    """The request path is longer than `max_url_length`."""

    status, public = 414, "URL too long"


class NotFound(SidecarError):
    """No source has the original."""

    status, public = 404, "original not found"


class MethodNotAllowed(SidecarError):
    status, public = 405, "method not allowed"


class TooLarge(SidecarError):
    """The original exceeds a byte or pixel limit."""

    status, public = 413, "image too large"


class Unsupported(SidecarError):
    """The original is not in a format we decode."""

    status, public = 415, "unsupported image format"


class Undecodable(SidecarError):
    """The original claims a supported format but cannot be decoded."""

    status, public = 422, "image could not be decoded"


class SourceUnavailable(SidecarError):
    """A source failed (IO error, refused, broken) and none had the original."""

    status, public = 502, "source unavailable"


class SourceRefused(NotFound):
    """A source answered, but refused this one key (a redirect, 403 for one object, S3 AccessDenied):
    the key's answer, not a failure of the source, so it never counts towards marking the source down.
    Clients see a plain 404 (what the origin said stays in the logs)."""


class Unauthorized(SidecarError):
    """An admin request (purge) without the right token."""

    status, public = 401, "missing or wrong token"
    headers = (("WWW-Authenticate", 'Bearer realm="resize-sidecar"'),)


class Overloaded(SidecarError):
    """The queue of misses is full. Answered at once, with `Retry-After`."""

    status, public = 503, "overloaded, retry later"
    headers = (("Retry-After", "1"),)


class SourceTimeout(SidecarError):
    """A source did not answer within its timeout and none had the original."""

    status, public = 504, "source timed out"


class DeadlineExceeded(SidecarError):
    """The request's deadline passed before its rendition was made. The work goes on (shared by every
    request for that rendition) and lands in the cache, so a retry is usually a hit."""

    status, public = 504, "request deadline exceeded"
    headers = (("Retry-After", "1"),)


class ResolverUnavailable(SidecarError):
    """The database that maps image IDs to originals failed or did not answer within `resolver_timeout`.
    Only misses that need it get this: hits are served by nginx without asking anyone."""

    status, public = 503, "image database unavailable, retry later"
    headers = (("Retry-After", "1"),)
