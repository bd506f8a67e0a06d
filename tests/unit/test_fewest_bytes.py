"""Issue 18: the automatic quality (`qauto`), the byte budget (`mb{bytes}`) and the perceptual score they
rest on, with real encoders on real photos, judged by scores, sizes and byte counts."""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFilter

from sidecar.config import Config, ConfigError, load
from sidecar.transform import autoquality, encoders, perceptual
from sidecar.transform.pipeline import Settings, transform
from sidecar.transform.quality import estimate_quality
from sidecar.url.grammar import Ops
from tests.support.images import encoded, opened
from tests.support.paths import SAMPLES

SETTINGS = Settings(max_pixels=50_000_000, quality=82, background=(255, 255, 255))
PHOTO = SAMPLES / "road-1920x1080.jpg"


def photo(width: int = 800) -> Image.Image:
    image = Image.open(PHOTO).convert("RGB")
    return image.resize((width, round(image.height * width / image.width)), Image.Resampling.LANCZOS)


def jpeg_quality(data: bytes) -> int:
    return estimate_quality(Image.open(io.BytesIO(data)).quantization[0])  # type: ignore[attr-defined]


def score_of(image: Image.Image, data: bytes) -> float:
    return perceptual.score(perceptual.luma(image), perceptual.luma(opened(data)))


# --- the score ----------------------------------------------------------------------------------------------

def test_the_score_is_one_for_identical_pixels_and_falls_with_the_loss() -> None:
    image = photo(400)
    reference = perceptual.luma(image)
    assert perceptual.score(reference, reference) == pytest.approx(1.0)
    scores = [score_of(image, encoders.save(image, "jpeg", q)) for q in (95, 70, 40, 10)]
    assert scores == sorted(scores, reverse=True) and scores[0] > 0.97 and scores[-1] < 0.85
    blurred = perceptual.luma(image.filter(ImageFilter.GaussianBlur(2)))
    assert perceptual.score(reference, blurred) < 0.9


def test_the_score_sees_blocking_on_the_jpeg_grid() -> None:
    """8×8 blocks each of one flat value (what a very low quality leaves) against a smooth ramp."""
    ramp = np.tile(np.linspace(0, 255, 256, dtype=np.float32), (256, 1))
    blocky = ramp.reshape(256, 32, 8).mean(axis=2, keepdims=True).repeat(8, axis=2).reshape(256, 256)
    assert perceptual.score(ramp, blocky) < 0.999
    noise = ramp + np.random.default_rng(1).normal(0, 20, ramp.shape).astype(np.float32)
    assert perceptual.score(ramp, noise) < perceptual.score(ramp, ramp + 1)


def test_the_score_refuses_different_shapes_and_handles_tiny_images() -> None:
    with pytest.raises(ValueError, match="shapes differ"):
        perceptual.score(np.zeros((10, 10), np.float32), np.zeros((10, 11), np.float32))
    tiny = np.full((5, 5), 100, np.float32)
    assert perceptual.score(tiny, tiny) == 1.0 and perceptual.score(tiny, tiny + 51) == pytest.approx(0.8)


def test_the_luma_of_any_mode() -> None:
    for mode in ("RGB", "RGBA", "L", "LA", "P", "CMYK"):
        assert perceptual.luma(Image.new(mode, (20, 10))).shape == (10, 20)


# --- the automatic quality --------------------------------------------------------------------------------

def probe(image: Image.Image, quality: int) -> bytes:
    return encoders.probe(image, "jpeg", quality)


@pytest.mark.parametrize("target", [0.90, 0.95, 0.98])
def test_the_search_finds_a_low_quality_that_keeps_the_target(target: float) -> None:
    image = photo(400)  # small enough to be searched whole
    quality = autoquality.lowest_quality(image, probe, target, 95, probes=7)
    assert score_of(image, probe(image, quality)) >= target
    if quality > autoquality.LOWEST:
        assert score_of(image, probe(image, quality - 1)) < target  # seven probes over 30..95: exact


def test_a_higher_target_costs_a_higher_quality_and_more_bytes() -> None:
    image = photo()
    qualities = [autoquality.lowest_quality(image, probe, target, 95) for target in (0.9, 0.95, 0.98)]
    assert qualities == sorted(qualities) and qualities[0] < qualities[-1]


def test_an_easy_picture_gets_the_floor_and_a_hopeless_target_the_ceiling() -> None:
    flat = Image.new("RGB", (800, 600), (40, 90, 200))
    assert autoquality.lowest_quality(flat, probe, 0.95, 90) <= autoquality.LOWEST + 2  # five probes: within 2
    assert autoquality.lowest_quality(photo(), probe, 0.99999, 90) == 90


def test_big_renditions_are_searched_on_a_mosaic_of_grid_aligned_tiles() -> None:
    image = photo(1600)
    sample = autoquality._sample(image)
    side = autoquality.TILES * autoquality.TILE
    assert sample.size == (side, side)
    assert sample.crop((0, 0, 96, 96)).tobytes() == image.crop((0, 0, 96, 96)).tobytes()
    assert autoquality._sample(photo(400)) .size == (400, 225)
    # The sample's answer holds for the whole rendition, within a little.
    quality = autoquality.lowest_quality(image, probe, 0.95, 95)
    assert score_of(image, probe(image, quality)) >= 0.94


def test_qauto_renditions_are_smaller_than_q82_yet_keep_the_target() -> None:
    data = PHOTO.read_bytes()
    fixed = transform(data, Ops("jpeg", width=800), SETTINGS)
    auto = transform(data, Ops("jpeg", width=800, quality="auto"), SETTINGS)
    assert auto.size == fixed.size == (800, 450)
    reference = opened(transform(data, Ops("png", width=800), SETTINGS).data)
    assert score_of(reference, auto.data) >= SETTINGS.quality_target - 0.01
    assert len(auto.data) < len(fixed.data)
    strict = transform(data, Ops("jpeg", width=800, quality="auto"), Settings(**{**SETTINGS.__dict__,
                                                                                "quality_target": 0.985}))
    assert len(strict.data) > len(auto.data) and jpeg_quality(strict.data) > jpeg_quality(auto.data)


def test_qauto_never_goes_above_the_sources_own_jpeg_quality() -> None:
    source = encoded(photo(1200), "JPEG", quality=45)
    result = transform(source, Ops("jpeg", width=600, quality="auto"),
                       Settings(**{**SETTINGS.__dict__, "quality_target": 0.999}))
    assert jpeg_quality(result.data) <= 45


@pytest.mark.parametrize("fmt", ["webp", "avif"])
def test_qauto_searches_webp_and_avif_too(fmt: str) -> None:
    data = PHOTO.read_bytes()
    loose = transform(data, Ops(fmt, width=400, quality="auto"), Settings(**{**SETTINGS.__dict__,
                                                                            "quality_target": 0.85}))
    strict = transform(data, Ops(fmt, width=400, quality="auto"), Settings(**{**SETTINGS.__dict__,
                                                                             "quality_target": 0.98}))
    assert opened(loose.data).format == fmt.upper() and len(loose.data) < len(strict.data)


def test_the_configs_auto_quality_applies_where_the_url_names_none() -> None:
    data = PHOTO.read_bytes()
    auto = Settings(**{**SETTINGS.__dict__, "auto_quality": True, "quality_target": 0.9})
    searched = transform(data, Ops("jpeg", width=800), auto)
    fixed = transform(data, Ops("jpeg", width=800, quality=82), auto)
    assert len(searched.data) < len(fixed.data) and jpeg_quality(fixed.data) == 82


# --- the byte budget --------------------------------------------------------------------------------------

def test_the_highest_quality_that_fits_the_budget() -> None:
    image = photo()
    def save(img: Image.Image, q: int) -> bytes:
        return encoders.save(img, "jpeg", q)
    budget = len(save(image, 60)) + 1
    fitted = autoquality.fitting_quality(image, save, budget, 90)
    assert fitted.fits and len(fitted.data) <= budget and fitted.quality >= 60
    assert len(save(image, fitted.quality + 1)) > budget
    roomy = autoquality.fitting_quality(image, save, 10**8, 90)
    assert roomy.fits and roomy.quality == 90


def test_mb_keeps_the_rendition_under_the_budget() -> None:
    data = PHOTO.read_bytes()
    full = transform(data, Ops("jpeg", width=800), SETTINGS)
    budget = len(full.data) // 2
    result = transform(data, Ops("jpeg", width=800, max_bytes=budget), SETTINGS)
    assert result.fits and len(result.data) <= budget and result.size == (800, 450)
    assert jpeg_quality(result.data) < 82


def test_an_impossible_budget_returns_the_smallest_we_can_make_and_says_so() -> None:
    data = PHOTO.read_bytes()
    result = transform(data, Ops("jpeg", width=800, max_bytes=1000), SETTINGS)
    assert not result.fits and result.size == (800, 450)  # the dimensions asked for: resizing is not allowed
    assert jpeg_quality(result.data) == autoquality.LOWEST_FOR_BYTES


@pytest.mark.parametrize("fmt", ["jpeg", "webp", "png"])
def test_with_resizing_allowed_the_budget_shrinks_the_dimensions(fmt: str) -> None:
    resize = Settings(**{**SETTINGS.__dict__, "max_bytes_resize": True})
    result = transform(PHOTO.read_bytes(), Ops(fmt, width=800, max_bytes=6000), resize)
    assert result.fits and len(result.data) <= 6000
    assert result.size[0] < 800 and opened(result.data).size == result.size
    assert abs(result.size[0] / result.size[1] - 800 / 450) < 0.05


def test_a_budget_the_original_meets_passes_it_through() -> None:
    source = encoded(photo(300), "JPEG", quality=70)
    result = transform(source, Ops("jpeg", max_bytes=len(source) + 100), SETTINGS)
    assert result.original and result.fits
    squeezed = transform(source, Ops("jpeg", max_bytes=len(source) // 2), SETTINGS)
    assert not squeezed.original and len(squeezed.data) <= len(source) // 2


# --- the settings -------------------------------------------------------------------------------------------

def test_the_config_takes_auto_quality_and_checks_the_target(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text('quality = "auto"\nquality_target = 0.97\nmax_bytes_resize = true\n')
    config = load(path, env={})
    made = config.transform
    assert (made.quality, made.quality_target, made.max_bytes_resize) == ("auto", 0.97, True)
    assert load(None, env={"SIDECAR_QUALITY": "auto"}).transform.quality == "auto"
    assert load(None, env={"SIDECAR_QUALITY": "70"}).transform.quality == 70
    for bad, key in (('quality = "best"', "quality"), ("quality_target = 1.2", "quality_target"),
                     ("quality = 0", "quality")):
        path.write_text(bad + "\n")
        with pytest.raises(ConfigError, match=key):
            load(path, env={})
    assert Config().transform.quality == 82


# --- JPEG XL, and what the cascade may derive from -----------------------------------------------------------

def test_jxl_is_a_fixed_format_and_the_auto_variant_for_clients_that_accept_it() -> None:
    data = PHOTO.read_bytes()
    fixed = transform(data, Ops("jxl", width=400), SETTINGS)
    auto = transform(data, Ops("auto", width=400), SETTINGS, variant="jxl")
    for result in (fixed, auto):
        image = opened(result.data)
        assert (result.format, result.content_type, image.format, image.size) == ("jxl", "image/jxl", "JXL", (400, 225))
    assert score_of(photo(400), fixed.data) > 0.9
    assert len(fixed.data) < len(transform(data, Ops("jpeg", width=400), SETTINGS).data)


def test_searched_budgeted_and_jxl_renditions_are_no_base_for_smaller_ones() -> None:
    from sidecar.cache import cascade
    from sidecar.transform.pipeline import Source

    directory, photo = "/img/ab/cd/photo.jpg", Source((4000, 2000), "JPEG", 90, False)
    target = Ops("jpeg", width=400)
    names = [cascade.SOURCE_RECORD]
    for name in ("w2000-qauto.jpg", "w2000-mb90000.jpg", "w2000.jxl"):
        names.append(name)
        assert cascade.choose(directory, photo, names, target, None, SETTINGS) is None, name
    auto = Settings(**{**SETTINGS.__dict__, "auto_quality": True})
    names.append("w2000-q90.jpg")
    assert cascade.choose(directory, photo, names, target, None, auto) is not None  # a fixed quality is a base
    names.append("w1000.jpg")  # made with the config's auto quality: unknown
    found = cascade.choose(directory, photo, names, target, None, auto)
    assert found is not None and found.file_path.endswith("w2000-q90.jpg")


