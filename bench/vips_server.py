"""The libvips peer for bench/scoreboard.py: pyvips `thumbnail_buffer` behind aiohttp, nothing else.

    bench/.venv/bin/python -m bench.vips_server --root DIR --port N

`GET /{width}/{name}` returns `name` (a file in DIR) at that width, aspect kept, never enlarged, as JPEG
at quality 82 with no metadata, converted to sRGB. This is the engine imgproxy wraps, without imgproxy's
own work (signatures, limits, format negotiation): a floor for what a libvips server costs. There is no
cache, so its warm requests do the whole work again, as imgproxy does without a CDN in front.
"""
from __future__ import annotations

import argparse
import asyncio
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pyvips
from aiohttp import web

QUALITY = 82


def thumbnail(path: Path, width: int) -> bytes:
    image = pyvips.Image.thumbnail_buffer(path.read_bytes(), width, height=10_000_000, size="down",
                                          export_profile="srgb")
    if image.hasalpha():
        image = image.flatten(background=[255, 255, 255])
    return image.jpegsave_buffer(Q=QUALITY, keep="none")


def app(root: Path, threads: int) -> web.Application:
    pool = ThreadPoolExecutor(threads)  # libvips releases the GIL while it works

    async def resize(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        path = root / name
        if "/" in name or name.startswith(".") or not path.is_file():
            raise web.HTTPNotFound()
        data = await asyncio.get_running_loop().run_in_executor(pool, thumbnail, path,
                                                                int(request.match_info["width"]))
        return web.Response(body=data, content_type="image/jpeg")

    application = web.Application()
    application.router.add_get(r"/{width:[1-9][0-9]{0,4}}/{name}", resize)
    return application


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--root", type=Path, required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    pyvips.cache_set_max(0)  # every cold request must really decode; no operation cache between requests
    web.run_app(app(args.root.resolve(), args.threads), host="127.0.0.1", port=args.port, print=None,
                access_log=None)


if __name__ == "__main__":
    main()
