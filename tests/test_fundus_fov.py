"""The fundus field of view: found on phantom CFs placed anywhere on black canvases and on real photos, and the
square crop (padded past the border) that CF preprocessing uses for training data and inference alike."""
import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from skimage import data as skdata

from eyeoct.data.cache import code_fingerprint
from eyeoct.data.datasets import ImageFilesDataset
from eyeoct.data.fundus_fov import FRAME_PER_DIAMETER, brightness, find_fov, fit_circle
from eyeoct.data.images import read_rgb
from eyeoct.data.phantom import PhantomConfig, render_case
from eyeoct.data.transforms import center_crop_square, crop_cf_square, preprocess_cf

REALDATA = Path("/work/shared/realdata")
needs_realdata = pytest.mark.skipif(not (REALDATA / "fundus").is_dir(), reason="real sample images not on this machine")


def phantom_cf(index: int = 1, size: int = 128) -> np.ndarray:
    return render_case(0, 20000 + index, PhantomConfig(cf_size=size, oct_height=32, oct_width=32)).cf


def place(image: np.ndarray, height: int, width: int, top: int, left: int) -> tuple[np.ndarray, np.ndarray]:
    """`image` pasted at (top, left) on a black canvas (parts outside are cut), and `image` with those parts black."""
    canvas, seen = np.zeros((height, width, 3), np.uint8), np.zeros_like(image)
    h, w = image.shape[:2]
    rows = slice(max(top, 0), min(top + h, height))
    cols = slice(max(left, 0), min(left + w, width))
    canvas[rows, cols] = image[rows.start - top:rows.stop - top, cols.start - left:cols.stop - left]
    seen[rows.start - top:rows.stop - top, cols.start - left:cols.stop - left] = canvas[rows, cols]
    return canvas, seen


def test_circle_fit_recovers_a_circle_from_an_arc():
    angles = np.linspace(-0.3, 2.0, 40)
    points = np.stack([12.5 + 30 * np.cos(angles), -4 + 30 * np.sin(angles)], axis=1)
    assert fit_circle(points) == pytest.approx((12.5, -4.0, 30.0), abs=1e-9)


@pytest.mark.parametrize("height,width,top,left", [
    (220, 400, 60, 37),     # off centre on a wide canvas
    (300, 200, 150, 30),    # tall canvas, low
    (200, 300, 50, -20),    # the disc runs past the left border
    (128, 300, -10, 150),   # ... and past the top, in a wide strip
])
def test_crop_recovers_a_phantom_cf_placed_anywhere(height, width, top, left):
    cf = phantom_cf()
    canvas, seen = place(cf, height, width, top, left)
    fov = find_fov(canvas)
    # the phantom's field stop: a disc of radius size / (2 * FRAME_PER_DIAMETER) centred in its square
    assert fov.cx - left == pytest.approx(63.5, abs=0.2) and fov.cy - top == pytest.approx(63.5, abs=0.2)
    assert fov.radius == pytest.approx(128 / (2 * FRAME_PER_DIAMETER), abs=0.3)
    np.testing.assert_array_equal(crop_cf_square(canvas), seen)  # parts past the canvas come back black


@pytest.mark.parametrize("size", [32, 64, 128, 256])
def test_a_phantom_cf_is_its_own_crop(size):
    """The crop frames the disc as the phantom renders it, so phantom files read back unchanged."""
    for index in range(4):
        cf = phantom_cf(index, size)
        np.testing.assert_array_equal(crop_cf_square(cf), cf)
        np.testing.assert_array_equal(preprocess_cf(cf, size), cf)


def test_jpeg_phantom_exports_are_kept_as_they_are():
    """JPEG noise moves the fitted rim by a fraction of a pixel; a framed square image is not resampled for that."""
    for index in range(6):
        buffer = io.BytesIO()
        Image.fromarray(phantom_cf(index, 48)).save(buffer, "JPEG", quality=95)
        photo = np.asarray(Image.open(buffer))
        np.testing.assert_array_equal(crop_cf_square(photo), photo)


def test_crop_of_an_upscaled_jpeg_canvas_is_the_phantom_within_a_few_grey_levels():
    cf = phantom_cf()
    canvas, _ = place(cf, 220, 400, 60, 37)
    photo = Image.fromarray(canvas).resize((1320, 726), Image.BICUBIC)  # 3.3x, as a camera sensor would be
    buffer = io.BytesIO()
    photo.save(buffer, "JPEG", quality=90)
    out = preprocess_cf(np.asarray(Image.open(buffer)), 128)
    assert np.abs(out.astype(float) - cf).mean() < 3.0  # measured 2.1 (resampling and JPEG)
    shifted = np.abs(np.roll(out, 2, axis=1).astype(float) - cf).mean()
    assert shifted > 4.0  # a 2-pixel misplacement would show


def test_no_disc_falls_back_to_the_centred_square():
    for photo in (skdata.astronaut(), skdata.coffee(), np.zeros((40, 60, 3), np.uint8)):
        assert find_fov(photo) is None
        np.testing.assert_array_equal(crop_cf_square(photo), center_crop_square(photo))


def test_retina_disc_is_found_and_kept_whole():
    retina = skdata.retina()
    fov = find_fov(retina)
    assert fov.cx == pytest.approx(704, abs=3) and fov.cy == pytest.approx(703, abs=3)
    assert fov.radius == pytest.approx(696, abs=4)
    assert fov.fit_error < 0.005 and fov.visible_arc > 0.95


def test_cache_key_covers_the_field_of_view_code(repo_root):
    folder = repo_root / "eyeoct" / "data"
    code = ImageFilesDataset([], cf_size=32, oct_size=(32, 32)).cache_settings()["code"]
    assert code == code_fingerprint([folder / "images.py", folder / "transforms.py", folder / "fundus_fov.py"])
    assert code != code_fingerprint([folder / "images.py", folder / "transforms.py"])


@needs_realdata
@pytest.mark.parametrize("name", ["CHASEDB1_08L.png", "DRIVE_22.png", "HRF_07_dr.jpg", "topcon_fds.jpg"])
def test_real_photos_keep_their_whole_disc(name):
    rgb = read_rgb(REALDATA / "fundus" / name)
    fov = find_fov(rgb)
    assert fov is not None and fov.fit_error < 0.01
    crop = crop_cf_square(rgb)
    assert crop.shape[0] == crop.shape[1] == fov.crop_box()[2]
    assert crop.shape[0] == pytest.approx(2 * fov.radius * FRAME_PER_DIAMETER, abs=1)
    bright = lambda image: brightness(image)[brightness(image) > 40].sum()  # noqa: E731  (the fundus)
    assert bright(crop) >= 0.999 * bright(rgb)  # nothing of the fundus is cut away
    if name == "HRF_07_dr.jpg":  # 3504x2336, the disc cut at top and bottom: the crop pads instead
        assert crop.shape[0] > rgb.shape[0] and bright(center_crop_square(rgb)) < 0.9 * bright(rgb)
        assert (crop[0] == 0).all() and (crop[-1] == 0).all()
