"""The command line: `resize-sidecar run | serve | nginx-config | gc | purge | warm | url | health`. A thin
layer over the modules."""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from sidecar import config as config_module
from sidecar.config import Config, ConfigError
from sidecar.errors import BadRequest, SidecarError
from sidecar.resources import samples_dir
from sidecar.transform.pillow import WrongPillow, require_simd
from sidecar.url.operations import FLAGS, flag_keywords


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="resize-sidecar", description="On-the-fly image resizing behind nginx.")
    commands = top.add_subparsers(dest="command", required=True)

    def with_config(name: str, help: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help, description=help)
        sub.add_argument("--config", type=Path, help="TOML config file (SIDECAR_* variables override it)")
        return sub

    run = with_config("run", "run the sidecar and a private nginx in the foreground")
    run.add_argument("--source", action="append", dest="sources", metavar="SRC",
                     help="where originals are: a directory, s3://bucket/prefix or http(s)://host/prefix; "
                          "repeat to fall back in order (default: the samples)")
    run.add_argument("--listen", metavar="HOST:PORT", help="where nginx listens (default 127.0.0.1:8080)")
    run.add_argument("--cache", dest="cache_dir", type=Path, metavar="DIR",
                     help="cache directory (default ./var/cache)")

    with_config("serve", "run the sidecar alone, for a production nginx")
    nginx = with_config("nginx-config", "print the nginx config for a production nginx")
    nginx.add_argument("--front", nargs="+", metavar="NODE",
                       help="print a front's config instead: consistent hashing over these cache nodes "
                            "(HOST:PORT, each an nginx rendered by nginx-config)")
    nginx.add_argument("--upstream-include", type=Path, metavar="FILE",
                       help="take the upstream's servers from FILE (rendered by Verwalter) instead of `socket`")

    deploy = with_config("deploy-config", "print a systemd unit or the Lithos container config")
    deploy.add_argument("kind", choices=("systemd-service", "systemd-socket", "lithos"))
    deploy.add_argument("--installed-config", type=Path, metavar="PATH",
                        help="where the service reads its config "
                             "(default: --config, or /etc/resize-sidecar/sidecar.toml)")
    deploy.add_argument("--executable", type=Path, metavar="PATH",
                        help="the resize-sidecar command on the target (default: the one running now)")

    gc = with_config("gc", "evict least recently used renditions down to cache_max_bytes, sweep leftovers")
    gc.add_argument("--dry-run", action="store_true", help="report what would be evicted, remove nothing")

    purge = with_config("purge", "remove every rendition of the given originals")
    purge.add_argument("keys", nargs="+", metavar="KEY", help="the original's key (path in the sources)")
    purge.add_argument("--id", action="store_true", dest="ids",
                       help="the arguments are image IDs, looked up by the resolver; their routes' links go too")

    warm = with_config("warm", "make renditions of the given presets before anyone asks for them")
    warm.add_argument("keys_file", nargs="?", default="-", metavar="FILE",
                      help="keys, one per line (default: stdin)")
    warm.add_argument("--preset", action="append", required=True, dest="presets",
                      help="a preset from the config; repeat for several")
    warm.add_argument("--concurrency", type=int, default=0, metavar="N",
                      help="renditions made at a time (default: one per worker process the config allows)")
    warm.add_argument("--id", action="store_true", dest="ids",
                      help="the lines are image IDs, looked up by the resolver (its watermark and preset apply)")

    health = with_config("health", "ask the running sidecar, over its socket, whether it is alive (exit 0) "
                                   "or not (exit 1)")
    health.add_argument("--ready", action="store_true",
                        help="ask whether it is ready instead: cache writable and a source reachable")
    health.add_argument("--timeout", type=float, default=10.0, metavar="SECONDS",
                        help="give up after this long (default 10)")

    url = with_config("url", "print the signed path of a rendition (or, with --info, of the original's facts)")
    url.add_argument("key", help="the original's key (path in the sources)")
    url.add_argument("--info", action="store_true", help="the info JSON of the original instead of a rendition")
    for op, flag in FLAGS:  # from the table of operations
        if flag.switch:
            url.add_argument(flag.name(op.name), action="store_true", default=None, help=flag.help)
        elif flag.bare is not None:
            url.add_argument(flag.name(op.name), type=flag.type, nargs="?", const=flag.bare,
                             metavar=flag.metavar, help=flag.help)
        else:
            url.add_argument(flag.name(op.name), type=flag.type, choices=flag.choices, metavar=flag.metavar,
                             help=flag.help)
    url.add_argument("--preset", help="a preset from the config; the other options override its values")
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    flags = {name: getattr(args, name, None) for name in ("sources", "listen", "cache_dir")}
    if flags["sources"] is not None:
        flags["sources"] = tuple(flags["sources"])
    try:
        config = config_module.load(args.config, flags=flags)
        if args.command == "run":
            return _run(config)
        if args.command == "serve":
            return _serve(config)
        if args.command == "gc":
            return _gc(config, args.dry_run)
        if args.command == "purge":
            return _purge_ids(config, args.keys) if args.ids else _purge(config, args.keys)
        if args.command == "warm":
            return _warm(config, args)
        if args.command == "health":
            return _health(config, args.ready, args.timeout)
        if args.command == "nginx-config":
            return _nginx_config(config, args)
        if args.command == "deploy-config":
            return _deploy_config(config, args)
        return _url(config, args)
    except ConfigError as exc:
        print(f"config error: {exc}", file=sys.stderr)
        return 2
    except WrongPillow as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 3


def _run(config: Config) -> int:
    require_simd()
    if not config.fetch.sources:
        config = config.replace(sources=(str(samples_dir()),))
    from sidecar.runner import run

    return run(config)


def _serve(config: Config) -> int:
    require_simd()
    if not config.fetch.sources:
        raise ConfigError("sources: at least one source is required (SIDECAR_SOURCES or sources = [...])")
    if not config.urls.signed and not config.urls.allow_unsigned:
        raise ConfigError("SIDECAR_SIGNING_KEYS: not set; refusing to serve unsigned URLs "
                          "(set allow_unsigned = true to do so on purpose)")
    from sidecar.log import log
    from sidecar.server.supervisor import serve

    # Warnings, not refusals: a container may map root to an unprivileged user, and tests run as root.
    if os.geteuid() == 0:
        log("warning_running_as_root", advice="run serve as an unprivileged user that can read the sources "
            "and write cache_dir")
    if config.server.socket_mode & 0o002:
        log("warning_socket_world_writable", socket_mode=oct(config.server.socket_mode),
            advice="any local user could bypass nginx; use 0660 and put nginx's user in the group")
    serve(config)
    return 0


def _nginx_config(config: Config, args: argparse.Namespace) -> int:
    from sidecar.render import nginx as nginx_config

    if args.front:
        for node in args.front:
            if not config_module.is_host_port(node):
                raise ConfigError(f"--front: {node!r} must be HOST:PORT")
        if args.upstream_include is not None:
            raise ConfigError("--upstream-include: a front has no sidecar upstream; give one or the other")
        print(nginx_config.front(config, args.front))
    else:
        print(nginx_config.site(config, upstream_include=args.upstream_include))
        # Said, not done: this command only prints, often on another host or as another user than nginx's.
        logs = config.observability.access_log.parent
        if not logs.is_dir():
            print(f"nginx-config: access_log's directory {logs} does not exist and nginx will not create it "
                  f"(nginx -t fails until it does): mkdir -p {logs}", file=sys.stderr)
    return 0


def _deploy_config(config: Config, args: argparse.Namespace) -> int:
    from sidecar.render import units as deploy_config

    config_path = args.installed_config or (args.config.resolve() if args.config else deploy_config.DEFAULT_CONFIG_PATH)
    executable = args.executable
    if executable is None:
        here = Path(sys.executable).parent / "resize-sidecar"  # the venv's console script
        executable = here if here.exists() else deploy_config.DEFAULT_EXECUTABLE
    for path, flag in ((config_path, "--installed-config"), (executable, "--executable")):
        if not path.is_absolute():
            raise ConfigError(f"{flag}: {path} must be an absolute path")
    if args.kind == "systemd-socket":
        print(deploy_config.systemd_socket(config), end="")
    elif args.kind == "systemd-service":
        print(deploy_config.systemd_service(config, config_path=config_path, executable=executable), end="")
    else:
        print(deploy_config.lithos(config, config_path=config_path, executable=executable), end="")
    return 0


def _gc(config: Config, dry_run: bool) -> int:
    from sidecar.cache.gc import collect

    root = config.cache.cache_dir / config.urls.url_prefix.lstrip("/")
    report = collect(root, config.cache.cache_max_bytes, dry_run=dry_run)
    if report.skipped:
        print("gc: another collector is running; nothing done", file=sys.stderr)
        return 1
    mib = 1024 * 1024
    verb = "would evict" if dry_run else "evicted"
    budget = config.cache.cache_max_bytes
    print(f"gc: {report.files} files, {report.bytes / mib:.1f} MiB (budget {budget / mib:.1f} MiB); "
          f"{verb} {report.evicted_files} files, {report.evicted_bytes / mib:.1f} MiB; "
          f"removed {report.stale_removed} stale temporary or lock files, "
          f"{report.empty_dirs_removed} empty directories")
    return 0


def _purge(config: Config, keys: list[str]) -> int:
    from sidecar.cache.purge import purge

    status = 0
    for key in keys:
        try:
            print(f"{key}: removed {purge(config.cache.cache_dir, config.urls.url_prefix, key)} renditions")
        except SidecarError as exc:
            print(f"{key}: {exc.public}", file=sys.stderr)
            status = 2
    return status


def _purge_ids(config: Config, ids: list[str]) -> int:
    import asyncio

    from sidecar.app.resolver import lookup_ids
    from sidecar.cache.purge import purge, purge_links

    try:
        found = asyncio.run(lookup_ids(config, ids))
    except SidecarError as exc:
        print(f"purge: {exc}", file=sys.stderr)
        return 2
    for image_id, resolved in found.items():
        links = purge_links(config.cache.cache_dir, config.urls.routes.values(), image_id)
        if resolved is None:
            print(f"{image_id}: gone; removed {links} links")
            continue
        removed = purge(config.cache.cache_dir, config.urls.url_prefix, resolved.key)
        print(f"{image_id} ({resolved.key}): removed {removed} renditions and {links} links")
    return 0


def _warm(config: Config, args: argparse.Namespace) -> int:
    import asyncio

    from sidecar.app.warm import read_keys, warm

    require_simd()
    for preset in args.presets:
        if preset not in config.urls.presets:
            raise ConfigError(f"--preset: no preset {preset!r} in the config")
    if args.keys_file == "-":
        keys = list(read_keys(sys.stdin))
    else:
        with open(args.keys_file) as file:
            keys = list(read_keys(file))
    concurrency = args.concurrency or config.worker_processes * config.processes.worker_threads
    summary = asyncio.run(warm(config, keys, args.presets, concurrency, ids=args.ids))
    print(summary.line())
    return 1 if summary.failed else 0


def _health(config: Config, ready: bool, timeout: float) -> int:
    from sidecar.app.health import ask
    from sidecar.url.paths import HEALTHZ, READYZ

    path = READYZ if ready else HEALTHZ
    try:
        status, body = ask(config.server.socket, path, timeout)
    except (OSError, ValueError) as exc:
        print(f"health: no answer on {config.server.socket}: {exc}", file=sys.stderr)
        return 1
    print(f"{status} {body.decode(errors='replace').strip()}")
    return 0 if status == 200 else 1


def _url(config: Config, args: argparse.Namespace) -> int:
    from sidecar.builder import build_info_url, build_url

    try:
        if args.info:
            given = [flag.name(op.name) for op, flag in FLAGS if getattr(args, flag.dest(op.name)) is not None]
            given += ["--preset"] if args.preset is not None else []
            if given:
                raise BadRequest(f"--info takes no rendition options (got {given[0]})")
            print(build_info_url(config, args.key))
            return 0
        print(build_url(config, args.key, preset=args.preset, **flag_keywords(lambda dest: getattr(args, dest))))
    except SidecarError as exc:
        print(f"error: {exc.public}", file=sys.stderr)
        return 2
    return 0
