"""The `observability` section: nginx's access log (which the supervisor follows to count hits), the
metric files the processes share, and who may read `/metrics` and the health checks."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sidecar.config.fields import Where, networks, setting


@dataclass(frozen=True)
class ObservabilitySection:
    """Where logs and metrics go and who may see them."""

    access_log: Path = setting(Path("var/log/access.log"), "nginx's JSON access log for the sidecar's server; the "
                               "supervisor follows it to count hits and misses (see "
                               "[operations.md](operations.md#observability)). nginx does not create its directory: "
                               "`run` does, `nginx-config` says when it is missing")
    metrics_dir: Path = setting(Path("var/run/metrics"), "where the processes keep their metric values "
                                "(prometheus-client's multiprocess files); emptied at every start, so one directory "
                                "per sidecar. Best on a tmpfs (`/run/...`)")
    metrics_allow: tuple[str, ...] = setting(("127.0.0.1", "::1"), "addresses or networks (`10.0.0.0/8`) nginx lets "
                                             "see `/metrics`, `/healthz` and `/readyz`; everyone else gets 403")

    def check(self, where: Where) -> None:
        networks(self, where, "metrics_allow")
