"""The input check: colour fundus photographs pass, B-scans, screenshots, natural photos and blank frames do not."""
from pathlib import Path

import numpy as np
import pytest
from skimage import data as skdata

from eyeoct.data.images import read_rgb
from eyeoct.data.phantom import PhantomConfig, render_case
from eyeoct.data.phantom.export import two_panel_slices
from eyeoct.inference.input_check import (BLANK, GRAYSCALE, NO_FIELD_OF_VIEW, NOT_FUNDUS_COLOURS, OK,
                                          check_fundus_photo)

REALDATA = Path("/work/shared/realdata")
needs_realdata = pytest.mark.skipif(not (REALDATA / "fundus").is_dir(), reason="real sample images not on this machine")
CONFIG = PhantomConfig(cf_size=128, oct_height=64, oct_width=96)


def as_rgb(gray: np.ndarray) -> np.ndarray:
    return np.repeat(gray[:, :, None], 3, axis=2)


@pytest.mark.parametrize("index", range(6))
def test_phantom_cfs_pass_centred_and_off_centre(index):
    cf = render_case(0, index, CONFIG).cf
    assert check_fundus_photo(cf) == OK
    canvas = np.zeros((200, 360, 3), np.uint8)
    canvas[40:168, 200:328] = cf
    assert check_fundus_photo(canvas) == OK


def test_real_fundus_photo_from_skimage_passes():
    assert check_fundus_photo(skdata.retina()) == OK


def test_grayscale_images_are_flagged():
    case = render_case(0, 1, CONFIG)
    for bscan in case.oct[:2]:
        assert check_fundus_photo(as_rgb(bscan)) == GRAYSCALE
    export = two_panel_slices(case, CONFIG, 0, 1)[0]  # infrared fundus panel | B-scan
    assert check_fundus_photo(as_rgb(export)) == GRAYSCALE
    gray_fundus = as_rgb(case.cf.mean(axis=2).astype(np.uint8))  # a disc on black, but no colour
    assert check_fundus_photo(gray_fundus) == GRAYSCALE


@pytest.mark.parametrize("name", ["astronaut", "coffee", "chelsea", "rocket"])
def test_natural_photos_are_flagged(name):
    assert check_fundus_photo(getattr(skdata, name)()) == NO_FIELD_OF_VIEW


def test_a_disc_of_the_wrong_colours_is_flagged():
    cf = render_case(0, 2, CONFIG).cf
    assert check_fundus_photo(cf[..., ::-1].copy()) == NOT_FUNDUS_COLOURS  # a blue fundus
    pale = (0.35 * cf + 0.65 * cf.mean(axis=2, keepdims=True)).astype(np.uint8)  # washed-out colours
    assert check_fundus_photo(pale) == NOT_FUNDUS_COLOURS


def test_blank_frames_are_flagged():
    rng = np.random.default_rng(0)
    frames = [np.zeros((64, 80, 3), np.uint8), np.full((64, 80, 3), 255, np.uint8),
              np.full((30, 30, 3), (200, 90, 40), np.uint8),
              (120 + rng.integers(-1, 2, (50, 50, 3))).astype(np.uint8)]
    assert [check_fundus_photo(frame) for frame in frames] == [BLANK] * 4


@needs_realdata
def test_real_photos_pass_and_bscans_and_screenshots_do_not():
    fundus = sorted((REALDATA / "fundus").iterdir())
    others = [*sorted((REALDATA / "robustness").glob("*.jpg")), *sorted((REALDATA / "oct").rglob("*.*")),
              REALDATA / "paired" / "mmc_amd" / "test-o-p.jpg",
              *sorted((REALDATA / "paired" / "spectralis_linescan").glob("*.png"))]
    assert len(fundus) == 4 and len(others) >= 20
    assert {p.name: check_fundus_photo(read_rgb(p)) for p in fundus} == {p.name: OK for p in fundus}
    verdicts = {p.name: check_fundus_photo(read_rgb(p)) for p in others}
    assert OK not in verdicts.values(), verdicts
    assert {verdicts[p.name] for p in others if "pseudocolour" in p.name} == {NO_FIELD_OF_VIEW}
