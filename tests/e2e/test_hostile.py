"""What a hostile client could do (issue 21), each finding a regression test through real nginx.

Sources: a client picks the keys, so answers about one key (a redirect, a 403, S3 AccessDenied) must never
mark a source down for everyone.
"""
from __future__ import annotations

import contextlib
import io
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from PIL import Image

from sidecar import config as config_module
from sidecar.config import ConfigError
from sidecar.observe import memory
from sidecar.render import nginx as nginx_config
from sidecar.url.grammar import shard
from tests.support.paths import SAMPLES
from tests.support.servers import Origin, s3_env
from tests.support.stack import Stack


def small_jpeg(width: int = 160, height: int = 120) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (200, 80, 40)).save(out, "JPEG")
    return out.getvalue()


def quick(**settings: object) -> str:
    values: dict[str, object] = {"source_connect_timeout": 0.5, "source_first_byte_timeout": 1.0,
                                 "source_body_timeout": 1.0, "request_deadline": 3.0, "workers": 1}
    values.update(settings)
    return "".join(f"{key} = {value!r}\n" for key, value in values.items())


def test_keys_the_origin_refuses_never_mark_it_down(stack_factory, origin: Origin) -> None:  # type: ignore[no-untyped-def]
    origin.files["real.jpg"] = small_jpeg()
    stack: Stack = stack_factory([origin.base + "/files/"], signed=False,
                                 extra=quick(source_down_after=2, source_down_seconds=30))
    for i in range(3):  # a redirect (a directory on the origin) and a 403 for one object, past the threshold
        assert stack.get(stack.url(f"moved/dir{i}", width=50)).status == 404
        assert stack.get(stack.url(f"forbidden/secret{i}.jpg", width=50)).status == 404
    assert stack.sidecar_events("source_down") == []
    reply = stack.get(stack.url("real.jpg", width=50))
    assert reply.status == 200 and reply.image().width == 50
    scrape = stack.scrape()
    source = origin.base + "/files/"
    assert scrape.value("resize_sidecar_source_requests_total", source=source, outcome="refused") == 6
    assert scrape.value("resize_sidecar_source_down", source=source) == 0
    [refused, *_] = stack.sidecar_events("source_refused")
    assert "301" in str(refused["error"])


def test_s3_access_denied_for_keys_never_marks_the_bucket_down(stack_factory, origin: Origin) -> None:  # type: ignore[no-untyped-def]
    stack: Stack = stack_factory(["s3://denied"], signed=False, env=s3_env(origin.base),
                                 extra=quick(source_down_after=2, source_down_seconds=30))
    before = origin.requests["denied"]
    for i in range(4):
        assert stack.get(stack.url(f"k{i}.jpg", width=50)).status == 404
    assert origin.requests["denied"] - before == 4, "every request still asked the bucket: never skipped"
    assert stack.sidecar_events("source_down") == []
    assert stack.scrape().value("resize_sidecar_source_requests_total", source="s3://denied/",
                                outcome="refused") == 4


def test_origin_5xx_still_marks_it_down(stack_factory, origin: Origin) -> None:  # type: ignore[no-untyped-def]
    # The rule's other half: the source's own failures (here S3's 503 SlowDown) do count.
    stack: Stack = stack_factory(["s3://overloaded"], signed=False, env=s3_env(origin.base),
                                 extra=quick(source_down_after=2, source_down_seconds=30))
    for i in range(2):
        assert stack.get(stack.url(f"k{i}.jpg", width=50)).status == 502
    [down] = stack.sidecar_events("source_down")
    assert down["source"] == "s3://overloaded/"


# Disk: a miss that fails leaves nothing; no key can take the place of another key's rendition.

def dirs_under(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_dir())


@pytest.mark.parametrize("signed", [False, True])
def test_failed_misses_leave_nothing_on_disk(stack_factory, signed: bool) -> None:  # type: ignore[no-untyped-def]
    source = stack_factory.directory()
    stack: Stack = stack_factory([source], signed=signed)
    for i in range(20):
        key = "/".join(["a"] * 150) + f"{i}.jpg"  # 150 directories deep each, as in the finding
        assert stack.get(stack.url(key, width=100)).status == 404
    (source / "bad.jpg").write_bytes(b"not an image")
    assert stack.get(stack.url("bad.jpg", width=100)).status in (415, 422)
    assert [d for d in dirs_under(stack.config.cache.cache_dir) if d != "img"] == []


def colliding_key(victim: str, name: str) -> str:
    """An attacker's key in the victim's shard whose directories would hold the victim's rendition name."""
    for i in range(1_000_000):
        key = f"{victim}/{name}/z{i}"
        if shard(key) == shard(victim):
            return key
    raise AssertionError("no colliding key found")


def test_no_key_can_take_the_place_of_another_keys_rendition(stack_factory) -> None:  # type: ignore[no-untyped-def]
    victims, attackers = stack_factory.directory(), stack_factory.directory()
    stack: Stack = stack_factory([victims, attackers], signed=False)
    victim = "sub/panda.jpg"
    attacker = colliding_key(victim, "w50.jpg")
    for source, key in ((victims, victim), (attackers, attacker)):
        (source / key).parent.mkdir(parents=True, exist_ok=True)
        (source / key).write_bytes(small_jpeg())
    # The attacker's key is served and cached, so its directories stay (a missing one leaves none at all).
    assert stack.get(stack.url(attacker, width=40)).status == 200
    first = stack.get(stack.url(victim, width=50))
    assert first.status == 200 and first.headers["cache-control"].startswith("public")
    misses = len(stack.sidecar_requests())
    again = stack.get(stack.url(victim, width=50))
    assert again.status == 200 and again.body == first.body
    assert len(stack.sidecar_requests()) == misses, "the second request was not a hit"
    assert stack.cache_file(stack.url(victim, width=50)).is_file()


# Canonical form: every other spelling of a URL answers the same before and after the rendition exists.

SPELLINGS = {
    "%61": lambda p: p.replace("/panda", "/p%61nda"),
    "%2F": lambda p: p.replace("sub/panda", "sub%2Fpanda"),
    "//": lambda p: p.replace("/sub/", "//sub/"),
    "/./": lambda p: p.replace("/sub/", "/sub/./"),
    "x/../": lambda p: p.replace("/sub/", "/sub/x/../"),
    "%2e%2e": lambda p: p.replace("/sub/", "/sub/x/%2e%2e/"),
    "/img/../img/": lambda p: p.replace("/img/", "/img/../img/", 1),
    "%2ejpg": lambda p: p[: -len(".jpg")] + "%2ejpg",
    "%2e (a dot)": lambda p: p.replace("panda.jpg", "panda%2ejpg"),
}


def test_every_other_spelling_answers_the_same_before_and_after_the_rendition_exists(stack_factory) -> None:  # type: ignore[no-untyped-def]
    source = stack_factory.directory()
    (source / "sub").mkdir()
    (source / "sub/panda.jpg").write_bytes(small_jpeg())
    stack: Stack = stack_factory([source])
    canonical = stack.url("sub/panda.jpg", width=77)
    spellings = {name: spell(canonical) for name, spell in SPELLINGS.items()}
    spellings["absolute-form"] = f"http://127.0.0.1:{stack.port}{canonical}"
    assert all(s != canonical for name, s in spellings.items() if name != "absolute-form")
    before = {name: stack.get(path).status for name, path in spellings.items()}
    assert stack.get(canonical).status == 200
    misses = len(stack.sidecar_requests())
    assert stack.get(canonical).status == 200 and len(stack.sidecar_requests()) == misses  # a hit
    after = {name: stack.get(path).status for name, path in spellings.items()}
    assert after == before
    print(before)
    assert all(status in (400, 403, 404) for name, status in before.items() if name != "absolute-form"), before


# Pixels: the rendition's size is capped before any work, and the memory budget holds the worst URL.

PHOTO = "road-1920x1080.jpg"


def tiny_gif() -> bytes:
    out = io.BytesIO()
    Image.new("P", (200, 150), 3).save(out, "GIF")
    return out.getvalue()


def test_huge_renditions_of_a_small_original_are_refused_before_any_work(stack_factory) -> None:  # type: ignore[no-untyped-def]
    source = stack_factory.directory()
    (source / "t.gif").write_bytes(tiny_gif())
    stack: Stack = stack_factory([source], signed=False)
    prefix = stack.url("t.gif", width=10).rsplit("/", 1)[0]
    for name, status in [("w8192-h8192-pad-bg336699.avif", 400),  # the URL alone says 67 megapixels
                         ("w8192-h8192-force-up.png", 400),
                         ("w8192-up.png", 413),  # 8192×6144 once the original's size is known
                         ("w4000-h4000.png", 200)]:  # fit: no more than the original's own 200×150
        started = time.monotonic()
        reply = stack.get(f"{prefix}/{name}")
        assert reply.status == status, (name, reply.body)
        assert time.monotonic() - started < 2, name
    assert b"pixels" in stack.get(f"{prefix}/w8192-h8192-pad-bg336699.avif").body


def noisy_jpeg(width: int, height: int) -> bytes:
    image = Image.effect_noise((width, height), 60).convert("RGB")
    out = io.BytesIO()
    image.save(out, "JPEG", quality=85)
    return out.getvalue()


def peak_rss(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        return next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmHWM:"))


def test_the_worst_allowed_urls_stay_within_the_memory_budget_under_concurrency(stack_factory) -> None:  # type: ignore[no-untyped-def]
    # A small deployment (16 megapixels in, a quarter of that out) so that the worst case runs in seconds:
    # two transform threads, each at the limits (an original at max_pixels, a rendition at
    # max_output_pixels, AVIF, the hungriest encoder), at once in one worker.
    source = stack_factory.directory()
    (source / "big.jpg").write_bytes(noisy_jpeg(4000, 4000))
    (source / "t.gif").write_bytes(tiny_gif())
    stack: Stack = stack_factory([source], signed=False, extra=(
        "max_pixels = 16000000\nmax_source_bytes = 16000000\nworkers = 1\nthreads = 2\n"
        "memory_budget = 1073741824\nrequest_deadline = 120.0\n"))
    config = stack.config
    assert config.limits.output_pixels == 4_000_000
    worst = [stack.url("big.jpg", width=2000, height=2000, fit="pad", background="336699", format="avif"),
             stack.url("big.jpg", width=2000, height=2000, fit="force", format="avif"),
             stack.url("t.gif", width=2000, height=2000, fit="force", enlarge=True, format="avif"),
             stack.url("big.jpg", width=2000, height=2000, fit="fill", enlarge=True, format="webp")]
    with ThreadPoolExecutor(len(worst)) as pool:
        statuses = list(pool.map(lambda path: stack.get(path, timeout=150).status, worst))
    assert statuses == [200] * len(worst)
    [worker] = stack.worker_pids()
    peak = peak_rss(worker)
    print(f"worker peak RSS {peak / 2**20:.0f} MiB; budget per worker {config.worker_bytes / 2**20:.0f} MiB")
    assert peak <= config.worker_bytes
    limits = config.limits
    transform = memory.transform_bytes(limits.max_pixels, limits.max_source_bytes, limits.output_pixels)
    assert peak > memory.WORKER_BASE_BYTES / 2 + transform / 2, "the test did not reach the worst case"


# Connections: a slow-header flood neither stops other clients' hits nor holds nginx past the timeout.

FLOOD = 300  # bounded: loopback only, and every socket is closed when the test ends


def closed_by_peer(conn: socket.socket) -> bool:
    conn.settimeout(1)
    try:
        return conn.recv(1024) == b""  # a 408 would be data: nginx closes without answering
    except ConnectionResetError:  # reset_timedout_connection
        return True
    except TimeoutError:
        return False


def test_a_slow_header_flood_does_not_stop_another_clients_hits(stack_factory) -> None:  # type: ignore[no-untyped-def]
    stack: Stack = stack_factory([SAMPLES], extra="nginx_client_header_timeout = 2\n")
    assert nginx_config.worker_connections(stack.config) >= 4 * FLOOD
    hit = stack.url(PHOTO, width=64)
    assert stack.get(hit).status == 200
    flood: list[socket.socket] = []
    try:
        started = time.monotonic()
        for _ in range(FLOOD):
            conn = socket.create_connection(("127.0.0.1", stack.port), timeout=5)
            conn.sendall(f"GET {hit} HTTP/1.1\r\nHost: x\r\n".encode())  # the header never ends
            flood.append(conn)
        for second in range(3):  # trickling keeps the flood alive as long as nginx lets it
            for conn in flood:
                with contextlib.suppress(OSError):
                    conn.sendall(b"X")
            reply = stack.get(hit, timeout=2)
            assert reply.status == 200 and reply.image().width == 64, f"a hit failed {second} s into the flood"
            time.sleep(0.5)
        # Past client_header_timeout (2 s) every flooding connection has been closed by nginx.
        time.sleep(max(0.0, started + 2 + 1.5 - time.monotonic()))
        assert sum(closed_by_peer(conn) for conn in flood) == FLOOD
    finally:
        for conn in flood:
            conn.close()
    assert stack.get(hit).status == 200


def test_rendered_connection_hygiene_is_configurable(tmp_path: Path) -> None:
    config = config_module.load(env={"SIDECAR_CACHE_DIR": str(tmp_path), "SIDECAR_NGINX_LIMIT_CONN": "0",
                                     "SIDECAR_NGINX_WORKER_CONNECTIONS": "4096",
                                     "SIDECAR_NGINX_CLIENT_HEADER_TIMEOUT": "7"})
    site = nginx_config.site(config)
    assert "limit_conn resize_sidecar_conn" not in site and "client_header_timeout 7s;" in site
    whole = nginx_config.standalone(config, tmp_path, user=None)
    assert "worker_connections 4096;" in whole and "worker_rlimit_nofile 8192;" in whole
    default = nginx_config.site(config_module.load(env={"SIDECAR_CACHE_DIR": str(tmp_path)}))
    assert "limit_conn resize_sidecar_conn 128;" in default and "reset_timedout_connection on;" in default
    with pytest.raises(ConfigError, match="SIDECAR_NGINX_CLIENT_BODY_TIMEOUT"):
        config_module.load(env={"SIDECAR_CACHE_DIR": str(tmp_path), "SIDECAR_NGINX_CLIENT_BODY_TIMEOUT": "0"})


def test_client_hint_files_per_auto_url_are_bounded_by_buckets_times_variants(stack_factory) -> None:  # type: ignore[no-untyped-def]
    source = stack_factory.directory()
    (source / "p.jpg").write_bytes(small_jpeg(400, 300))
    stack: Stack = stack_factory([source], extra=(
        "client_hints = true\nclient_hints_widths = [100, 200]\nclient_hints_dprs = [1.0, 2.0]\n"))
    path = stack.url("p.jpg", width=150, client_hints=True, format="auto")
    accepts = ["image/avif", "image/webp", "*/*", "image/avif;q=0,image/webp", "text/html", ""]
    hints = [{}, {"Sec-CH-Width": "1"}, {"Sec-CH-Width": "150"}, {"Width": "99999"}, {"Sec-CH-DPR": "1.5"},
             {"DPR": "7"}, {"Sec-CH-DPR": "x"}, {"Sec-CH-Width": "-3", "DPR": "2"}]
    for accept in accepts:
        for hint in hints:
            assert stack.get(path, headers={"Accept": accept, **hint}).status == 200
    files = [f for f in stack.cache_file(path).parent.iterdir() if not f.name.startswith(".")]
    assert len(files) == (2 + 2) * 3, sorted(f.name for f in files)  # (widths + ratios) × three variants


def test_old_urls_answer_every_spelling_the_same_before_and_after_their_link_exists(stack_factory) -> None:  # type: ignore[no-untyped-def]
    source = stack_factory.directory()
    (source / "sub").mkdir()
    (source / "sub/panda.jpg").write_bytes(small_jpeg())
    stack: Stack = stack_factory([source], signed=False,
                                 extra='[routes.thumbs]\npattern = "/thumbs/{w}x{h}/{key}"\n')
    old = "/thumbs/80x60/sub/panda.jpg"
    spellings = {name: spell(old) for name, spell in SPELLINGS.items() if name not in ("/img/../img/", "%2ejpg")}
    before = {name: stack.get(path).status for name, path in spellings.items()}
    assert stack.get(old).status == 200
    misses = len(stack.sidecar_requests())
    assert stack.get(old).status == 200 and len(stack.sidecar_requests()) == misses  # the link: a hit
    after = {name: stack.get(path).status for name, path in spellings.items()}
    assert after == before, (before, after)
    print(before)
