"""Image reading: bit depths and modes, corrupt files, and finding the B-scan panel from the content."""
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from skimage.data import retina

from data_synthetic import bscan_panel, fundus_panel, save
from eyeoct.data.errors import ImageReadError
from eyeoct.data.images import crop_bscan_panel, locate_bscan_panel, read_gray, read_oct_slice, read_rgb
from eyeoct.inference.input_check import OK, check_fundus_photo
from eyeoct.volume_io import read_volume

REALDATA = Path("/work/shared/realdata")


def test_read_rgb_converts_gray_rgba_palette_and_16bit(tmp_path):
    rng = np.random.default_rng(0)
    gray = rng.integers(0, 256, (12, 10), dtype=np.uint8)
    rgba = rng.integers(0, 256, (12, 10, 4), dtype=np.uint8)
    deep = rng.integers(0, 65536, (12, 10), dtype=np.uint16)

    out = read_rgb(save(gray, tmp_path / "g.png"))
    assert out.dtype == np.uint8 and out.shape == (12, 10, 3)
    assert all(np.array_equal(out[..., c], gray) for c in range(3))
    rgba[..., 3] = np.where(rgba[..., 3] > 127, 255, 0)  # opaque or transparent: exact on black
    assert np.array_equal(read_rgb(save(rgba, tmp_path / "a.png")), rgba[..., :3] * (rgba[..., 3:] // 255))
    out16 = read_rgb(save(deep, tmp_path / "d.png"))
    assert np.array_equal(out16[..., 1], np.rint(deep / 257.0).astype(np.uint8))
    palette = Image.fromarray(rgba[..., :3]).convert("P")
    palette.save(tmp_path / "p.png")
    assert np.array_equal(read_rgb(tmp_path / "p.png"), np.asarray(palette.convert("RGB")))


def test_read_gray_accepts_grey_rgb_and_16bit(tmp_path):
    gray = np.random.default_rng(1).integers(0, 256, (9, 7), dtype=np.uint8)
    assert np.array_equal(read_gray(save(np.repeat(gray[..., None], 3, 2), tmp_path / "rgb.png")), gray)
    assert np.array_equal(read_gray(save(gray.astype(np.uint16) * 257, tmp_path / "16.png")), gray)


def test_corrupt_missing_and_colour_images_raise_naming_the_file(tmp_path):
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"not a jpeg at all")
    with pytest.raises(ImageReadError, match="broken.jpg"):
        read_rgb(bad)
    good = save(fundus_panel(64, 64, 0), tmp_path / "cut.jpg")
    truncated = tmp_path / "truncated.jpg"
    truncated.write_bytes(good.read_bytes()[: len(good.read_bytes()) // 2])
    with pytest.raises(ImageReadError, match="truncated.jpg"):
        read_gray(truncated)
    with pytest.raises(ImageReadError, match="nowhere.png"):
        read_gray(tmp_path / "nowhere.png")
    colour = np.zeros((16, 16, 3), np.uint8)
    colour[..., 0] = 200
    with pytest.raises(ImageReadError, match="colour image"):
        read_gray(save(colour, tmp_path / "pseudo.png"))


@pytest.mark.parametrize("height,fundus_width,bscan_width", [(64, 64, 96), (96, 96, 192), (96, 150, 144)])
def test_two_panel_export_crops_exactly_the_bscan(height, fundus_width, bscan_width):
    bscan = bscan_panel(height, bscan_width, seed=3)
    export = np.concatenate([fundus_panel(height, fundus_width, seed=4), bscan], axis=1)
    rows, cols = locate_bscan_panel(export)
    assert (rows.start, rows.stop, cols.start, cols.stop) == (0, height, fundus_width, fundus_width + bscan_width)
    assert np.array_equal(crop_bscan_panel(export), bscan)


def test_bscan_on_the_left_white_gap_and_padding_below():
    bscan = bscan_panel(80, 120, seed=5)
    export = np.full((130, 120 + 12 + 80), 255, np.uint8)
    export[:80, :120] = bscan
    export[:, 132:] = fundus_panel(130, 80, seed=6)
    assert np.array_equal(crop_bscan_panel(export), bscan)


def test_black_rows_at_the_bottom_of_the_bscan_are_kept():
    bscan = bscan_panel(64, 96, seed=10)
    bscan[-12:] = 0
    export = np.concatenate([fundus_panel(64, 64, seed=11), bscan], axis=1)
    assert np.array_equal(crop_bscan_panel(export), bscan)


def test_single_panel_kept_whole_and_bright_padding_filled():
    bscan = bscan_panel(64, 96, seed=7)
    assert np.array_equal(crop_bscan_panel(bscan), bscan)
    padded = bscan.copy()
    padded[:6] = 255
    out = crop_bscan_panel(padded)
    assert out.shape == bscan.shape
    assert np.array_equal(out[6:], bscan[6:])
    assert out[:6].max() == out[:6].min() == np.percentile(bscan[6:], 5).astype(np.uint8)


def test_read_oct_slice_from_a_two_panel_png(tmp_path):
    bscan = bscan_panel(48, 72, seed=8)
    path = save(np.concatenate([fundus_panel(48, 48, seed=9), bscan], axis=1), tmp_path / "x_0.png")
    assert np.array_equal(read_oct_slice(path), bscan)


needs_realdata = pytest.mark.skipif(not REALDATA.is_dir(), reason="real sample images not on this machine")


@needs_realdata
def test_duke_single_panel_with_white_band():
    image = read_gray(REALDATA / "oct/spectralis/duke_dme_768x496.png")
    assert image[:40].min() == 255  # the band this test is about
    out = read_oct_slice(REALDATA / "oct/spectralis/duke_dme_768x496.png")
    assert out.shape == (496, 768)
    assert out[:40].max() < 50 and out[:, -1].max() < 50  # the top band and the white last column
    assert np.array_equal(out[60:, :-1], image[60:, :-1])


@needs_realdata
@pytest.mark.parametrize("layout", ["slo_496", "slo_crop_1536", "tall_white_band"])
def test_spectralis_linescan_two_panel_renders(layout):
    folder = REALDATA / "paired/spectralis_linescan"
    bscan = read_gray(folder / "Linescan_1_bscan0.png")  # 496x768; its first column is flat black
    slo = Image.fromarray(read_gray(folder / "Linescan_1_slo.png"))
    if layout == "slo_496":
        export = np.concatenate([np.asarray(slo.resize((496, 496), Image.BICUBIC)), bscan], axis=1)
    elif layout == "slo_crop_1536":
        export = np.concatenate([np.asarray(slo)[136:632], bscan], axis=1)
    else:
        export = np.full((728, 1536), 255, np.uint8)
        export[:, :728] = np.asarray(slo.resize((728, 728), Image.BICUBIC))
        export[:496, 768:] = bscan
    assert bscan[:, 0].max() == 0
    assert np.array_equal(crop_bscan_panel(export), bscan[:, 1:])


@needs_realdata
def test_pseudocolour_screenshot_is_rejected():
    with pytest.raises(ImageReadError, match="pseudocolour_screenshot_h1.jpg"):
        read_oct_slice(REALDATA / "robustness/pseudocolour_screenshot_h1.jpg")


def test_exif_orientation_is_applied_by_every_reader(tmp_path):
    """A photo stored sideways with Orientation=6 (rotate 90 degrees clockwise to view) is read upright, by the CF
    reader, the B-scan reader and the volume reader alike."""
    upright = np.zeros((40, 60, 3), np.uint8)
    upright[:, :20] = (200, 120, 40)  # a bright left third: nasal/temporal swap would move it
    stored = np.rot90(upright, k=1)  # what the camera wrote: the viewer turns it back clockwise
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(np.ascontiguousarray(stored)).save(tmp_path / "cf.png", exif=exif)
    out = read_rgb(tmp_path / "cf.png")
    assert out.shape == (40, 60, 3)
    assert np.array_equal(out, upright)
    gray_stored = np.ascontiguousarray(stored[..., 0])
    folder = tmp_path / "case7"
    folder.mkdir()
    for k in range(6):
        Image.fromarray(gray_stored).save(folder / f"case7_{k}.png", exif=exif)
    volume = read_volume(folder)
    assert volume.shape == (6, 40, 60) and np.array_equal(volume[2], upright[..., 0])
    assert np.array_equal(read_gray(folder / "case7_0.png"), upright[..., 0])


def test_a_transparent_surround_reads_dark_and_passes_the_input_check(tmp_path):
    photo = np.asarray(Image.fromarray(retina()).convert("RGBA")).copy()
    h, w = photo.shape[:2]
    yy, xx = np.mgrid[:h, :w]
    outside = (yy - h / 2) ** 2 + (xx - w / 2) ** 2 > (0.45 * min(h, w)) ** 2
    photo[outside] = (255, 255, 255, 0)  # white but transparent, as exported by some viewers
    Image.fromarray(photo).save(tmp_path / "cf.png")
    rgb = read_rgb(tmp_path / "cf.png")
    assert rgb[outside].max() == 0
    assert check_fundus_photo(rgb) == OK
