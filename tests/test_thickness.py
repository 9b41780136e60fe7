"""Retinal boundaries and thickness (eyeoct.metrics.thickness) against the phantom renderer's true boundaries."""
import numpy as np
import pytest

from eyeoct.data.phantom import PhantomConfig, render_case, true_boundary_rows
from eyeoct.metrics.thickness import best_path, find_boundaries, retinal_thickness, thickness_difference

DEMO_SIZE = PhantomConfig(cf_size=32, oct_height=64, oct_width=96)  # the demo's B-scans
SPECTRALIS_SIZE = PhantomConfig(cf_size=32)  # 496x768, the default (Heidelberg Spectralis) size


def _boundary_errors(index: int, config: PhantomConfig, noise_free: bool) -> tuple[float, float, str]:
    case = render_case(0, index, config, noise_free=noise_free)
    truth = true_boundary_rows(case)
    ilm, rpe = find_boundaries(case.oct)
    return (float(np.abs(ilm - truth["ilm"]).mean()), float(np.abs(rpe - truth["rpe_bottom"]).mean()),
            case.meta["pathology"])


@pytest.mark.parametrize("noise_free", [True, False], ids=["noise-free", "speckled"])
def test_boundaries_within_2px_on_demo_sized_phantom_scans(noise_free):
    errors = [_boundary_errors(index, DEMO_SIZE, noise_free) for index in range(12)]
    assert {pathology for _, _, pathology in errors} == {"normal", "drusen", "diabetic"}
    for ilm_error, rpe_error, _ in errors:  # every eye (6 B-scans of 96 A-scans), not only the average
        assert ilm_error <= 2.0 and rpe_error <= 2.0
    assert np.mean([e[0] for e in errors]) <= 1.0 and np.mean([e[1] for e in errors]) <= 1.0


@pytest.mark.parametrize("noise_free", [True, False], ids=["noise-free", "speckled"])
def test_boundaries_within_2px_on_full_size_phantom_scans_with_lesions(noise_free):
    # eye 2: diabetic with haemorrhages, hard exudates and oedema cysts (shadows and bright foci in the retina)
    ilm_error, rpe_error, pathology = _boundary_errors(2, SPECTRALIS_SIZE, noise_free)
    assert pathology == "diabetic"
    assert ilm_error <= 2.0 and rpe_error <= 2.0


def test_true_boundary_rows_sit_on_the_rendered_layer_edges():
    case = render_case(0, 3, DEMO_SIZE, noise_free=True)
    truth = true_boundary_rows(case)
    cols = np.arange(96)
    image = case.oct.astype(float)
    for k in range(6):
        ilm = np.round(truth["ilm"][k]).astype(int)
        vitreous, retina = image[k, ilm - 2, cols], image[k, ilm + 1, cols]
        assert np.median(vitreous) == pytest.approx(0.07 * 255, abs=1.0)  # VITREOUS reflectivity
        assert np.median(retina) > 2 * np.median(vitreous)
    assert truth["ilm"].shape == truth["rpe_bottom"].shape == (6, 96)
    assert (truth["rpe_bottom"] > truth["ilm"]).all()


def test_flat_two_band_image_has_known_boundaries_and_thickness():
    image = np.full((2, 80, 60), 20.0)
    image[:, 20:44] = 120.0  # retina: rows 20..43
    image[:, 38:44] = 230.0  # the bright RPE band at its bottom, dark below row 44
    ilm, rpe = find_boundaries(image)
    assert ilm.shape == rpe.shape == (2, 60)
    np.testing.assert_allclose(ilm, 19.5, atol=0.5)  # the edge lies between rows 19 and 20
    np.testing.assert_allclose(rpe, 43.5, atol=0.5)
    np.testing.assert_allclose(retinal_thickness(image), 24.0, atol=1.0)
    assert thickness_difference(retinal_thickness(image), retinal_thickness(image)).tolist() == [0.0, 0.0]


def test_thickness_difference_is_the_mean_absolute_difference_per_slice():
    pred = np.array([[10.0, 12.0, 14.0], [5.0, 5.0, 5.0]])
    truth = np.array([[11.0, 12.0, 10.0], [5.0, 8.0, 2.0]])
    np.testing.assert_allclose(thickness_difference(pred, truth), [(1 + 0 + 4) / 3, (0 + 3 + 3) / 3])
    with pytest.raises(ValueError, match="differ in shape"):
        thickness_difference(pred, truth[:, :2])


def test_best_path_follows_the_cheapest_continuous_route():
    cost = np.zeros((1, 10, 6))
    rows = [2, 3, 4, 4, 3, 9]  # the last jump (3 -> 9) is beyond max_step 2
    for col, row in enumerate(rows):
        cost[0, row, col] = -1.0
    path = best_path(cost, max_step=2, smoothness=0.01)
    assert path[0, :5].tolist() == rows[:5] and abs(path[0, 5] - path[0, 4]) <= 2
    steady = best_path(cost, max_step=2, smoothness=5.0)  # a high penalty keeps the row
    assert len(set(steady[0].tolist())) == 1


def test_small_or_flat_inputs():
    with pytest.raises(ValueError, match="at least 8x8"):
        find_boundaries(np.zeros((6, 5, 40)))
    ilm, rpe = find_boundaries(np.zeros((12, 16), np.uint8))  # a blank prediction: no crash, finite rows
    assert np.isfinite(ilm).all() and np.isfinite(rpe).all()
