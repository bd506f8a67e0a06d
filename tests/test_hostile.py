"""What a hostile client could do (issue 21), each finding a regression test through real nginx.

Sources: a client picks the keys, so answers about one key (a redirect, a 403, S3 AccessDenied) must never
mark a source down for everyone.
"""
from __future__ import annotations

import io

from conftest import Stack
from PIL import Image
from servers import Origin, s3_env


def small_jpeg(width: int = 160, height: int = 120) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (200, 80, 40)).save(out, "JPEG")
    return out.getvalue()


def quick(**settings: object) -> str:
    values: dict[str, object] = dict(source_connect_timeout=0.5, source_first_byte_timeout=1.0,
                                     source_body_timeout=1.0, request_deadline=3.0, workers=1)
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
