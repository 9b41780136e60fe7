"""Tests of the procedural eye: determinism, shapes, and that the metadata agrees with the pixels."""
import json

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter, median_filter

from eyeoct.data.phantom import PhantomCase, PhantomConfig, render_case
from eyeoct.data.phantom.cf import myopic_crescent_width_mm
from eyeoct.data.phantom.layers import VITREOUS

SMALL = PhantomConfig(cf_size=64, oct_height=64, oct_width=64)
MEDIUM = PhantomConfig(cf_size=96, oct_height=248, oct_width=384)


def _with(config: PhantomConfig, **changes) -> PhantomConfig:
    return PhantomConfig(**{**config.__dict__, **changes})


def _rpe_rows(bscan: np.ndarray) -> np.ndarray:
    """Row of the brightest pixel in every column (the RPE in a noise-free B-scan)."""
    return np.argmax(bscan, axis=0)


def _away_from_vessels(crossings: list[int], width: int, margin: int = 8) -> np.ndarray:
    """Columns farther than `margin` from every vessel crossing (where the RPE is not shadowed)."""
    cols = np.arange(width)
    return np.all(np.abs(cols[:, None] - np.asarray(crossings + [-10 * margin])[None, :]) > margin, axis=1)


def test_same_seed_and_index_give_identical_arrays_and_other_index_differs():
    a, b = render_case(3, 5, SMALL), render_case(3, 5, SMALL)
    np.testing.assert_array_equal(a.cf, b.cf)
    np.testing.assert_array_equal(a.oct, b.oct)
    assert json.dumps(a.meta, sort_keys=True) == json.dumps(b.meta, sort_keys=True)
    c = render_case(3, 6, SMALL)
    assert np.abs(a.cf.astype(int) - c.cf.astype(int)).mean() > 2.0
    assert np.abs(a.oct.astype(int) - c.oct.astype(int)).mean() > 2.0
    d = render_case(4, 5, SMALL)
    assert np.abs(a.oct.astype(int) - d.oct.astype(int)).mean() > 2.0


@pytest.mark.parametrize("cf_size,height,width", [(32, 32, 32), (64, 64, 96), (80, 48, 40)])
def test_shapes_dtypes_and_json_metadata(cf_size, height, width):
    case = render_case(0, 1, PhantomConfig(cf_size=cf_size, oct_height=height, oct_width=width))
    assert isinstance(case, PhantomCase)
    assert case.cf.shape == (cf_size, cf_size, 3) and case.cf.dtype == np.uint8
    assert case.oct.shape == (6, height, width) and case.oct.dtype == np.uint8
    meta = json.loads(json.dumps(case.meta))
    assert meta["laterality"] in ("L", "R")
    assert meta["pathology"] in ("normal", "drusen", "diabetic")
    assert len(meta["fovea_mm"]) == 2 and len(meta["disc_mm"]) == 2
    assert sorted(case.meta["vessel_crossings"]) == list(range(6))
    for cols in case.meta["vessel_crossings"].values():
        assert all(0 <= c < width for c in cols)


def test_full_size_defaults():
    case = render_case(1, 0)
    assert case.cf.shape == (512, 512, 3)
    assert case.oct.shape == (6, 496, 768)
    # the circular field of view: dark corners, bright centre
    assert case.cf[:8, :8].mean() < 10 and case.cf[200:312, 200:312].mean() > 60


def test_noise_free_has_same_geometry_and_less_variance():
    noisy = render_case(2, 3, MEDIUM).oct.astype(np.float64)
    clean_case = render_case(2, 3, MEDIUM, noise_free=True)
    clean = clean_case.oct.astype(np.float64)
    assert clean_case.meta == render_case(2, 3, MEDIUM).meta
    for k in range(6):
        r = np.corrcoef(gaussian_filter(noisy[k], 2).ravel(), clean[k].ravel())[0, 1]
        assert r > 0.9, (k, r)
        # speckle: neighbouring pixels differ far more in the noisy scan
        assert np.abs(np.diff(noisy[k], axis=1)).mean() > 2.5 * np.abs(np.diff(clean[k], axis=1)).mean()


def test_vessel_crossings_are_shadowed_below_the_rpe():
    config = _with(MEDIUM, cf_size=128, p_drusen=0.0, p_diabetic=0.0)
    measured = 0
    for index in range(3):
        case = render_case(7, index, config, noise_free=True)
        for k, details in case.meta["vessel_crossing_details"].items():
            cols = [c["column"] for c in details]
            for c in details:
                col = c["column"]
                far = [j for j in (col - 12, col + 12) if 0 <= j < config.oct_width
                       and all(abs(j - other) > 8 for other in cols)]
                if c["width_mm"] < 0.07 or c["sin_angle"] < 0.5 or not far or any(
                        0 < abs(col - o) < 6 for o in cols):
                    continue
                img = case.oct[k].astype(np.float64)
                rpe = int(np.median(_rpe_rows(img[:, far])))
                below = slice(rpe + 4, rpe + 30)
                inside = img[below, col].mean()
                outside = np.mean([img[below, j].mean() for j in far])
                assert inside < 0.8 * outside, (index, k, c, inside, outside)
                measured += 1
    assert measured >= 5


def test_laterality_puts_the_disc_on_the_nasal_side():
    seen = set()
    for index in range(12):
        case = render_case(11, index, _with(SMALL, cf_size=128))
        lum = gaussian_filter(case.cf.astype(np.float64).mean(axis=2), 3)
        row, col = np.unravel_index(np.argmax(lum), lum.shape)
        expected_right = case.meta["laterality"] == "R"
        assert (col > 64) == expected_right, (index, case.meta["laterality"], col)
        assert abs(col - case.meta["disc_px"][0]) < 12 and abs(row - case.meta["disc_px"][1]) < 12
        seen.add(case.meta["laterality"])
    assert seen == {"L", "R"}


def test_drusen_raise_the_rpe():
    base = _with(MEDIUM, p_drusen=0.0, p_diabetic=0.0)
    for index in range(3):
        normal = render_case(5, index, base, noise_free=True)
        drusen = render_case(5, index, _with(base, p_drusen=1.0), noise_free=True)
        assert normal.meta["pathology"] == "normal" and drusen.meta["pathology"] == "drusen"
        lifts = []
        for k, (n, d) in enumerate(zip(normal.oct, drusen.oct)):
            lift = _rpe_rows(n) - _rpe_rows(d)
            clear = _away_from_vessels(normal.meta["vessel_crossings"][k], MEDIUM.oct_width)
            lifts.append(lift[clear])
        lifts = np.concatenate(lifts)
        assert lifts.max() >= 6, index     # a bump of >= 6 rows (~47 um at 248 rows over 1.92 mm)
        assert lifts.min() >= -1, index    # drusen never push the RPE down


def test_oedema_thickens_the_retina_at_the_fovea():
    base = _with(MEDIUM, p_drusen=0.0, p_diabetic=0.0)
    oedema_cfg = _with(base, p_diabetic=1.0, p_oedema=1.0)

    def central_thickness(case: PhantomCase) -> float:
        mid = case.oct.shape[2] // 2
        thick = []
        for bscan in case.oct[:, :, mid - 3:mid + 4].astype(np.float64):
            profile = bscan.mean(axis=1)
            ilm = int(np.argmax(profile > 2 * VITREOUS * 255))  # first row clearly above the vitreous
            thick.append(int(np.argmax(profile)) - ilm)
        return float(np.median(thick))

    for index in range(3):
        normal = render_case(9, index, base, noise_free=True)
        sick = render_case(9, index, oedema_cfg, noise_free=True)
        assert any(les["type"] == "macular_oedema" for les in sick.meta["lesions"])
        assert any(les["type"] == "cyst" for les in sick.meta["lesions"])
        assert central_thickness(sick) > central_thickness(normal) + 10, index


def test_bad_config_and_arguments_are_clear_errors():
    with pytest.raises(ValueError, match="p_drusen"):
        PhantomConfig(p_drusen=0.7, p_diabetic=0.6)
    with pytest.raises(ValueError, match="cf_size"):
        PhantomConfig(cf_size=4)
    with pytest.raises(ValueError, match="seed"):
        render_case(-1, 0, SMALL)


def test_vessels_crossing_a_bscan_are_vessels_in_the_cf():
    config = _with(MEDIUM, cf_size=256, p_drusen=0.0, p_diabetic=0.0)
    checked = 0
    for index in range(2):
        case = render_case(8, index, config)
        green = case.cf[..., 1].astype(np.float64)
        fovea = np.array(case.meta["fovea_mm"])
        for k, details in case.meta["vessel_crossing_details"].items():
            a = np.deg2rad(case.meta["slice_angles_deg"][k])
            for c in details:
                if c["width_mm"] < 0.1:
                    continue
                xy = fovea + c["s_mm"] * np.array([np.cos(a), -np.sin(a)])
                col, row = np.round(xy / case.meta["cf_mm_per_px"] + (config.cf_size - 1) / 2).astype(int)
                ring = [green[row + dr, col + dc] for dr in range(-8, 9) for dc in range(-8, 9)
                        if 7 <= np.hypot(dr, dc) <= 8]
                assert green[row, col] < 0.85 * np.median(ring), (index, k, c)
                checked += 1
    assert checked >= 5


def test_axial_length_shows_in_both_modalities():
    """Myopic (long) eyes: deeper and more curved retina in the OCT; tessellated fundus and a peripapillary
    crescent in the CF."""
    config = _with(MEDIUM, p_drusen=0.0, p_diabetic=0.0)
    cases = sorted((render_case(3, i, config, noise_free=True) for i in range(10)), key=lambda c: c.meta["myopia"])
    short, long_ = cases[0], cases[-1]
    assert long_.meta["myopia"] - short.meta["myopia"] > 0.5
    centre = slice(MEDIUM.oct_width // 2 - 20, MEDIUM.oct_width // 2 + 20)
    edges = np.r_[0:30, MEDIUM.oct_width - 30:MEDIUM.oct_width]

    def depth_and_bowl(case):
        rows = np.stack([_rpe_rows(b) for b in case.oct])  # [6, W]
        return np.median(rows[:, centre]), np.median(rows[:, centre]) - np.median(rows[:, edges])

    (d_short, bowl_short), (d_long, bowl_long) = depth_and_bowl(short), depth_and_bowl(long_)
    assert d_long - d_short >= 8        # ~0.1 mm deeper at 248 rows over 1.92 mm
    assert bowl_long > bowl_short + 3    # the periphery rises more in the longer eye

    def texture(case):  # choroidal contrast of the red channel: vessels removed by a median, then high-passed
        side = case.cf.shape[0]
        yy, xx = np.mgrid[:side, :side]
        inside = np.hypot(yy - side / 2, xx - side / 2) < 0.35 * side
        red = median_filter(case.cf[..., 0].astype(np.float64), 5)
        return np.std((red - gaussian_filter(red, 6))[inside]) / red[inside].mean()

    assert texture(long_) > 1.4 * texture(short)

    def blue_beside_disc(case, offset_mm):  # blue of the CF just off the disc's edge, towards the fovea
        disc, fovea = np.array(case.meta["disc_px"]), np.array(case.meta["fovea_px"])
        towards = (fovea - disc) / np.linalg.norm(fovea - disc)
        col, row = np.round(disc + towards * (case.meta["disc_radius_mm"][0] + offset_mm)
                            / case.meta["cf_mm_per_px"]).astype(int)
        return float(case.cf[row, col, 2])

    assert myopic_crescent_width_mm(short.meta["myopia"]) < 0.05
    middle_of_crescent = myopic_crescent_width_mm(long_.meta["myopia"]) / 2
    assert middle_of_crescent > 0.25
    # the atrophic crescent is bare sclera (ATROPHY_RGB blue 0.66), the fundus there is orange (blue ~0.15)
    assert blue_beside_disc(long_, middle_of_crescent) > 2 * blue_beside_disc(short, middle_of_crescent)
