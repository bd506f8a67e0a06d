"""The DC-scan decoder for progressive JPEGs: libjpeg's own 1/8-scale output (±1), declines, fallback."""
from __future__ import annotations

import io
import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image, ImageChops, JpegImagePlugin

from sidecar.errors import SidecarError, Undecodable
from sidecar.transform import dcjpeg
from sidecar.transform.pipeline import STEPS, Settings, Work, decode, transform
from sidecar.url.grammar import Ops
from tests.support import jpegtools
from tests.support.corpus import require_corpus
from tests.support.paths import CORPUS, DATA, REPO, SAMPLES
from tests.support.stack import HANG, Stack, Stacks

SETTINGS = Settings(max_pixels=50_000_000, quality=82, background=(255, 255, 255))
LAYOUTS = jpegtools.layouts()


def drafted(data: bytes) -> Image.Image:
    """The image as the pipeline's draft step leaves it for a small rendition: libjpeg set to 1/8."""
    image = Image.open(io.BytesIO(data))
    image.draft(image.mode, (image.size[0] // 8, image.size[1] // 8))
    assert image.decoderconfig[0] == 8
    return image


def libjpeg_eighth(data: bytes) -> Image.Image:
    image = drafted(data)
    image.load()
    return image


def max_difference(a: Image.Image, b: Image.Image) -> int:
    assert a.mode == b.mode and a.size == b.size
    extrema = ImageChops.difference(a, b).getextrema()
    return max(high for _, high in extrema) if a.mode != "L" else extrema[1]


def corpus_progressive() -> dict[str, bytes]:
    """Real files: the corpus's progressive JPEGs, and progressive twins of its other JPEG layouts."""
    real = CORPUS / "real" / "jpeg"
    files: dict[str, bytes] = {}
    for name in ("progressive_cat_icc.jpg", "progressive_icc_profile_big.jpg"):
        if (real / name).is_file():
            files[name] = (real / name).read_bytes()
    for name in ("ycck_adobe.jpg", "cmyk_swop_icc.jpg", "cmyk_plain_noicc.jpg", "gray_gamma22_icc.jpg",
                 "baseline_testorig.jpg", "adobergb_a98_icc.jpg"):
        if (real / name).is_file():
            files[f"{name} (jpegtran -progressive)"] = jpegtools.progressive((real / name).read_bytes())
    for sample in sorted(SAMPLES.glob("*.jpg")):
        files[f"samples/{sample.name} (jpegtran -progressive)"] = jpegtools.progressive(sample.read_bytes())
    return files


REAL = corpus_progressive()


@pytest.mark.parametrize("name", sorted(LAYOUTS))
def test_matches_libjpegs_eighth_scale_decode(name: str) -> None:
    data = LAYOUTS[name]
    image = drafted(data)
    ours = dcjpeg.decode(data, image.size, image.mode)  # raises Declined if it would not decode it
    assert max_difference(ours, libjpeg_eighth(data)) <= 1


@pytest.mark.parametrize("seed", range(24))
def test_matches_libjpeg_for_random_scan_scripts(seed: int) -> None:
    rng = random.Random(seed)
    image = jpegtools.photo((rng.randint(64, 300), rng.randint(64, 300)), seed=seed)
    baseline = jpegtools.encode(image, quality=rng.randint(20, 98), subsampling=seed % 3)
    data = jpegtools.with_scans(baseline, jpegtools.random_scan_script(rng, 3))
    image = drafted(data)
    assert max_difference(dcjpeg.decode(data, image.size, image.mode), libjpeg_eighth(data)) <= 1


@pytest.mark.parametrize("name", sorted(REAL))
def test_matches_libjpeg_on_real_files(name: str) -> None:
    data = REAL[name]
    image = drafted(data)
    assert max_difference(dcjpeg.decode(data, image.size, image.mode), libjpeg_eighth(data)) <= 1


def test_real_files_include_every_colour_space() -> None:
    require_corpus()
    modes = {Image.open(io.BytesIO(data)).mode for data in REAL.values()}
    assert modes == {"L", "RGB", "CMYK"}
    assert any(b"Adobe" in data and data[data.index(b"Adobe") + 11] == 2 for data in REAL.values()), "no YCCK"


def test_camera_photo_with_420_chroma_matches_exactly() -> None:
    # 4:2:0 chroma goes through libjpeg's 2x2 IDCT at this scale: the decoder needs its AC scans too.
    data = jpegtools.progressive((SAMPLES / "road-1920x1080.jpg").read_bytes())
    image = drafted(data)
    assert max_difference(dcjpeg.decode(data, image.size, image.mode), libjpeg_eighth(data)) == 0


@pytest.mark.parametrize("name, data", [
    ("baseline", jpegtools.encode(jpegtools.photo((200, 120)))),
    ("arithmetic", jpegtools.jpegtran(LAYOUTS["420"], "-arithmetic", "-progressive")),
    ("dc only: libjpeg would smooth blocks", jpegtools.with_scans(LAYOUTS["444"], jpegtools.DC_ONLY)),
    ("truncated", LAYOUTS["420"][: len(LAYOUTS["420"]) // 2]),
    ("truncated in the last AC scan", LAYOUTS["420"][:-200]),
    ("no EOI", LAYOUTS["420"][:-2]),
])
def test_declines_what_it_does_not_decode_like_libjpeg(name: str, data: bytes) -> None:
    image = Image.open(io.BytesIO(data))
    size = ((image.size[0] + 7) // 8, (image.size[1] + 7) // 8)
    with pytest.raises(dcjpeg.Declined):
        dcjpeg.decode(data, size, image.mode)


def test_declines_a_size_or_mode_the_caller_does_not_expect() -> None:
    data = LAYOUTS["420"]
    with pytest.raises(dcjpeg.Declined, match="does not match"):
        dcjpeg.decode(data, (41, 30), "RGB")
    with pytest.raises(dcjpeg.Declined, match="does not match"):
        dcjpeg.decode(data, (40, 30), "L")


def test_pipeline_decodes_small_progressive_renditions_from_dc_scans() -> None:
    data = jpegtools.progressive((SAMPLES / "redpanda-nikond80-3872x2592.jpg").read_bytes())
    work = Work(data, Ops("jpeg", width=200), SETTINGS, None, None)
    for step in STEPS[: STEPS.index(decode) + 1]:
        step(work)
    assert not isinstance(work.image, JpegImagePlugin.JpegImageFile)  # libjpeg never decoded it
    assert work.image.size == (484, 324)
    fast = transform(data, Ops("jpeg", width=200), SETTINGS)
    with dcjpeg.disabled():
        normal = transform(data, Ops("jpeg", width=200), SETTINGS)
    a, b = Image.open(io.BytesIO(fast.data)), Image.open(io.BytesIO(normal.data))
    assert a.size == b.size == (200, 134)
    assert max_difference(a.convert("RGB"), b.convert("RGB")) <= 3  # ±1 before resizing and re-encoding


@pytest.mark.parametrize("width, used", [(200, True), (400, False), (1000, False)])
def test_only_a_one_eighth_draft_takes_the_dc_path(width: int, used: bool) -> None:
    data = jpegtools.progressive((SAMPLES / "redpanda-nikond80-3872x2592.jpg").read_bytes())
    work = Work(data, Ops("jpeg", width=width), SETTINGS, None, None)
    for step in STEPS[: STEPS.index(decode)]:
        step(work)
    assert (dcjpeg.reduced(work.image, data) is not None) == used


def test_baseline_jpegs_keep_libjpegs_draft() -> None:
    data = (SAMPLES / "redpanda-nikond80-3872x2592.jpg").read_bytes()
    assert dcjpeg.reduced(drafted(data), data) is None


def test_orientation_survives_the_dc_path() -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise for display
    image = Image.new("RGB", (1600, 800), (128, 128, 128))
    image.paste((255, 0, 0), (0, 0, 400, 200))
    data = jpegtools.encode(image, progressive=True, exif=exif.tobytes())
    assert dcjpeg.reduced(drafted(data), data) is not None
    result = Image.open(io.BytesIO(transform(data, Ops("jpeg", width=40), SETTINGS).data))
    assert result.size == (40, 80)
    red = result.convert("RGB").getpixel((35, 5))  # the marker, top-left when stored, is now top-right
    assert red[0] > 200 and red[1] < 80, red


def test_icc_profile_survives_the_dc_path() -> None:
    # Adobe RGB: if the DC path lost the profile, the colour step would leave the pixels unconverted.
    source = require_corpus() / "real" / "jpeg" / "adobergb_a98_icc.jpg"
    profile = Image.open(io.BytesIO(source.read_bytes())).info["icc_profile"]
    image = Image.new("RGB", (1600, 1600), (30, 200, 60))
    image.paste((200, 40, 220), (0, 0, 800, 1600))
    data = jpegtools.encode(image, progressive=True, icc_profile=profile)
    work = Work(data, Ops("jpeg", width=50), SETTINGS, None, None)
    for step in STEPS[: STEPS.index(decode) + 1]:
        step(work)
    assert not isinstance(work.image, JpegImagePlugin.JpegImageFile) and work.icc == profile
    fast = Image.open(io.BytesIO(transform(data, Ops("png", width=50), SETTINGS).data))
    with dcjpeg.disabled():
        normal = Image.open(io.BytesIO(transform(data, Ops("png", width=50), SETTINGS).data))
    plain = Image.open(io.BytesIO(transform(jpegtools.encode(image, progressive=True), Ops("png", width=50),
                                            SETTINGS).data))
    assert max_difference(fast.convert("RGB"), normal.convert("RGB")) <= 3
    assert max_difference(fast.convert("RGB"), plain.convert("RGB")) > 20  # the profile did change colours


def test_hostile_mutations_never_crash_and_fall_back() -> None:
    # A quick in-process mutation run (the fuzzer goes further): flipped bytes and cuts anywhere. The DC
    # decoder either decodes at the size and mode asked or declines; what it declines, the pipeline hands
    # to libjpeg, which gives an image or a clear 4xx.
    rng = random.Random(11)
    sources = [LAYOUTS["420"], LAYOUTS["restart-every-5-blocks"], LAYOUTS["cmyk"], LAYOUTS["411"]]
    decoded = declined = 0
    for i in range(600):
        data = bytearray(rng.choice(sources))
        for _ in range(rng.randint(1, 8)):
            data[rng.randrange(2, len(data))] = rng.randrange(256)
        if i % 5 == 0:
            data = data[: rng.randrange(2, len(data))]
        try:
            image = Image.open(io.BytesIO(bytes(data)))
        except (OSError, SyntaxError, ValueError):
            continue  # not a JPEG header Pillow reads: the pipeline never asks the DC decoder
        size = ((image.size[0] + 7) // 8, (image.size[1] + 7) // 8)
        try:
            made = dcjpeg.decode(bytes(data), size, image.mode)
        except dcjpeg.Declined:
            declined += 1
        else:
            decoded += 1
            assert made.size == size and made.mode == image.mode
            continue
        if declined % 10 == 1:  # the fallback, end to end, for every tenth declined input
            try:
                rendered = transform(bytes(data), Ops("png", width=max(1, size[0])), SETTINGS)
            except SidecarError as exc:
                assert 400 <= exc.status < 500, exc
            else:
                assert Image.open(io.BytesIO(rendered.data)).size[0] <= max(1, size[0])
    assert decoded > 50 and declined > 50, (decoded, declined)  # both ways were taken


@pytest.mark.parametrize("cut", [0.2, 0.5, 0.9, 0.999])
def test_truncated_progressive_files_are_still_undecodable(cut: float) -> None:
    data = jpegtools.progressive((SAMPLES / "road-1920x1080.jpg").read_bytes())
    with pytest.raises(Undecodable):
        transform(data[: int(len(data) * cut)], Ops("jpeg", width=100), SETTINGS)


@pytest.mark.parametrize("progressive", [True, False])
def test_without_the_compiled_modules_the_normal_path_decodes(progressive: bool) -> None:
    # A real failed import in a fresh interpreter (as on a machine that could not build the extensions).
    script = (
        "import sys; sys.modules['sidecar.transform._dcjpeg'] = sys.modules['sidecar.transform._jpegrows'] = None\n"
        "import io, subprocess\n"
        "from PIL import Image\n"
        "from sidecar.transform import dcjpeg, jpegrows\n"
        "from sidecar.transform.pipeline import Settings, transform\n"
        "from sidecar.url.grammar import Ops\n"
        "assert not dcjpeg.available() and not jpegrows.available()\n"
        f"data = open({str(SAMPLES / 'road-1920x1080.jpg')!r}, 'rb').read()\n"
        + ("data = subprocess.run(['jpegtran', '-copy', 'all', '-progressive'], input=data, capture_output=True,"
           " check=True).stdout\n" if progressive else "")
        + "out = transform(data, Ops('jpeg', width=100), Settings(50_000_000, 82, (255, 255, 255)))\n"
        "print(Image.open(io.BytesIO(out.data)).size)\n"
    )
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO, timeout=HANG)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "(100, 56)"


def test_progressive_original_through_nginx(stack_factory: Stacks, tmp_path_factory: pytest.TempPathFactory) -> None:
    source = tmp_path_factory.mktemp("progressive")
    source.chmod(0o755)
    (source / "road.jpg").write_bytes(jpegtools.progressive((SAMPLES / "road-1920x1080.jpg").read_bytes()))
    stack: Stack = stack_factory([source])
    reply = stack.get(stack.url("road.jpg", width=120))
    assert reply.status == 200 and reply.image().size == (120, 68)
    records = [json.loads(line) for line in stack.log_path.read_text().splitlines() if line.startswith("{")]
    # Each worker process says whether it has the decoder (the supervisor imports no image code).
    assert {(r["dc_jpeg"], r["jpeg_rows"]) for r in records if r.get("event") == "worker_ready"} == {(True, True)}


def test_short_fuzz_run_finds_no_crash(tmp_path: Path) -> None:
    """A few seconds of the atheris fuzzer (`make fuzz-dc` runs it longer, `make fuzz-dc-asan` under ASan)."""
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    for name, data in list(LAYOUTS.items())[:6]:
        (seeds / name).write_bytes(data)
    run = subprocess.run(
        [sys.executable, str(REPO / "fuzz" / "dcjpeg_fuzz.py"), "-max_total_time=4", "-max_len=65536", str(seeds)],
        capture_output=True, text=True, cwd=REPO, timeout=120, env={**os.environ, "PYTHONHASHSEED": "0"},
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert "Done " in run.stderr and "runs in" in run.stderr


CRASHES = DATA / "dcjpeg-crashes"


@pytest.mark.parametrize("path", sorted(CRASHES.glob("*.jpg")), ids=lambda path: path.name)
def test_fuzzer_findings_stay_fixed(path: Path) -> None:
    """Inputs that crashed the decoder under ASan while fuzzing; each is malformed and must be declined."""
    data = path.read_bytes()
    image = Image.open(io.BytesIO(data))
    with pytest.raises(dcjpeg.Declined):
        dcjpeg.decode(data, ((image.size[0] + 7) // 8, (image.size[1] + 7) // 8), image.mode)
