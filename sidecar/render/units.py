"""The systemd units and the Lithos container config, rendered from the sidecar's config like nginx's.

What a supervisor must know comes from the same settings the sidecar runs with: the socket's path and
mode, the cache (the one writable path), how long a stop may take (the drain, plus a margin) and how
much memory the processes may hold. Templates are `deploy/*.in`, with `{{ name }}` placeholders only.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

from sidecar.config import SOCKET_INSTANCE, Config, to_environ
from sidecar.observe.memory import WORKER_BASE_BYTES
from sidecar.resources import deploy_template, render
from sidecar.server.listen import BACKLOG
from sidecar.server.supervisor import STOP_GRACE

#: Seconds a supervisor (systemd, Lithos) waits beyond `drain_timeout` before it kills: our own
#: supervisor kills a worker that has not drained STOP_GRACE seconds after it, then closes and exits.
STOP_MARGIN = math.ceil(STOP_GRACE) + 5
#: Memory beyond `memory_budget` (which bounds the workers): our supervisor process, and dirty pages of
#: renditions being written, which the cgroup counts until they reach the disk.
MEMORY_SLACK = WORKER_BASE_BYTES + 64 * 1024 * 1024
FILENO_LIMIT = 65536  # connections from nginx, pooled connections to sources, files being written
SYSTEMD_USER = "resize-sidecar"
NGINX_GROUP = "www-data"  # Debian's nginx workers
#: Lithos runs processes with numeric ids, allowed by the sandbox: an unprivileged user, and nginx's
#: group (www-data is 33 on Debian) so that the socket's group mode is what lets nginx in.
LITHOS_USER_ID = 1
LITHOS_GROUP_ID = 33
LITHOS_IMAGE_PATH = "/config/resize-sidecar.yaml"
#: Sandbox paths (`writable-paths` in /etc/lithos/sandboxes/<sandbox>.yaml) behind the two volumes.
LITHOS_SOCKET_VOLUME = "/resize-sidecar-run"
LITHOS_CACHE_VOLUME = "/resize-sidecar-cache"
LITHOS_LOGS_VOLUME = "/resize-sidecar-logs"
LITHOS_METRICS_DIR = "/tmp/resize-sidecar-metrics"
DEFAULT_EXECUTABLE = Path("/opt/resize-sidecar/bin/resize-sidecar")
DEFAULT_CONFIG_PATH = Path("/etc/resize-sidecar/sidecar.toml")


def stop_timeout(config: Config) -> int:
    """Seconds between SIGTERM and SIGKILL: longer than the drain, always."""
    return config.processes.drain_timeout + STOP_MARGIN


def memory_limit_mib(config: Config) -> int:
    """The cgroup's hard limit for all the sidecar's processes, in MiB: the budget plus the slack."""
    return math.ceil((config.processes.memory_budget + MEMORY_SLACK) / 1024**2)


def systemd_socket(config: Config, *, nginx_group: str = NGINX_GROUP) -> str:
    """`resize-sidecar.socket`: systemd binds `config.server.socket` and hands it to the service."""
    return render(deploy_template("resize-sidecar.socket.in"), socket=config.server.socket,
                  socket_mode=f"{config.server.socket_mode:04o}", nginx_group=nginx_group, backlog=BACKLOG)


def systemd_service(config: Config, *, config_path: Path = DEFAULT_CONFIG_PATH,
                    executable: Path = DEFAULT_EXECUTABLE) -> str:
    """`resize-sidecar.service`: the sidecar as an unprivileged, hardened service on the socket unit."""
    # Under /run, systemd makes the metrics' directory, owned by the service, and removes it after.
    metrics = config.observability.metrics_dir
    metrics_dir = f"RuntimeDirectory={metrics.name}" if metrics.parent == Path("/run") else f"ReadWritePaths={metrics}"
    return render(deploy_template("resize-sidecar.service.in"), config_path=config_path, executable=executable,
                  metrics_dir=metrics_dir,
                  user=SYSTEMD_USER, stop_timeout=stop_timeout(config), memory_max=memory_limit_mib(config),
                  memory_budget_mib=config.processes.memory_budget // 1024**2, fileno_limit=FILENO_LIMIT,
                  cache_dir=config.cache.cache_dir)


def lithos(config: Config, *, config_path: Path = DEFAULT_CONFIG_PATH,
           executable: Path = DEFAULT_EXECUTABLE) -> str:
    """The Lithos container config: every setting in `environ`, the socket per instance in a volume.

    Tables (`[watermarks.*]`, `[routes.*]`) cannot travel in variables: when there are any, the sidecar
    also reads `config_path`, which the image must then contain.
    """
    environ = to_environ(config)
    socket_dir = config.server.socket.parent
    environ["SIDECAR_SOCKET"] = f"{socket_dir}/{SOCKET_INSTANCE}.sock"
    environ["SIDECAR_INSTANCE"] = "@{lithos:name}"  # Lithos puts the instance's name here
    environ["SIDECAR_METRICS_DIR"] = LITHOS_METRICS_DIR
    environ = {"PATH": f"{executable.parent}:/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": "/tmp",
               "PYTHONUNBUFFERED": "1", **environ}
    tables = config.transform.watermarks or config.urls.routes
    arguments = ["serve", "--config", str(config_path)] if tables else ["serve"]
    return render(
        deploy_template("lithos.yaml.in"), image_path=LITHOS_IMAGE_PATH,
        user_id=LITHOS_USER_ID, group_id=LITHOS_GROUP_ID, executable=executable, arguments=json.dumps(arguments),
        environ="\n".join(f"  {name}: {json.dumps(value)}" for name, value in environ.items()),
        socket_dir=socket_dir, socket_volume=LITHOS_SOCKET_VOLUME, cache_dir=config.cache.cache_dir,
        cache_volume=LITHOS_CACHE_VOLUME, access_log_dir=config.observability.access_log.parent,
        logs_volume=LITHOS_LOGS_VOLUME, memory_limit=memory_limit_mib(config),
        memory_budget_mib=config.processes.memory_budget // 1024**2, fileno_limit=FILENO_LIMIT,
        stop_timeout=stop_timeout(config),
    )
