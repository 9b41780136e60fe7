"""One procedural eye in millimetres, shared by the colour fundus and the OCT renderers.

Frame: x to the right and y downward as viewed in the CF photo, origin at the CF image centre.
Everything is drawn for a right eye (disc right of the fovea) and mirrored in x for a left eye.
Lesion arrays hold one row per lesion: (x, y, radius) plus, for drusen, the height in mm.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from eyeoct.data.phantom.fields import SmoothField
from eyeoct.data.phantom.vessels import VesselTree, make_vessel_tree

FIELD_EXTENT_MM = (-8.0, 8.0)


@dataclass(frozen=True)
class Oedema:
    """Macular oedema: Gaussian thickening of the INL/ONL centred at (x, y)."""

    x: float
    y: float
    sigma: float
    amplitude: float


@dataclass
class EyeGeometry:
    """All parameters of one eye; positions in mm in the CF-centred frame."""

    laterality: str
    pathology: str
    fovea: np.ndarray
    disc: np.ndarray
    disc_radii: tuple[float, float]  # horizontal, vertical
    cup_ratio: float
    vessels: VesselTree
    fundus_tint: np.ndarray  # per-eye RGB pigmentation factors
    choroid_texture: SmoothField  # visible in the CF
    thickness_texture: SmoothField  # fine layer thickness variation, hidden from the CF
    retina_depth_mm: float  # depth of Bruch's membrane under the fovea in the B-scans
    retina_curvature: float  # mm of rise per mm^2 away from the fovea (the eye's bowl)
    retina_tilt: np.ndarray  # mm of depth change per mm in x and y
    choroid_thickness_mm: float
    myopia: float = 0.0  # 0 emmetropic .. 1 highly myopic (long eye); see apply_axial_length
    drusen: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), np.float32))
    exudates: np.ndarray = field(default_factory=lambda: np.zeros((0, 3), np.float32))
    haemorrhages: np.ndarray = field(default_factory=lambda: np.zeros((0, 3), np.float32))
    microaneurysms: np.ndarray = field(default_factory=lambda: np.zeros((0, 3), np.float32))
    cysts: np.ndarray = field(default_factory=lambda: np.zeros((0, 3), np.float32))
    oedema: Oedema | None = None


def _choose_pathology(rng: np.random.Generator, p_drusen: float, p_diabetic: float) -> str:
    u = rng.random()
    if u < p_drusen:
        return "drusen"
    if u < p_drusen + p_diabetic:
        return "diabetic"
    return "normal"


def _scatter_around(rng: np.random.Generator, centre: np.ndarray, n: int, spread: float) -> np.ndarray:
    return centre + spread * rng.standard_normal((n, 2))


def _make_drusen(rng: np.random.Generator, fovea: np.ndarray) -> np.ndarray:
    n = int(rng.integers(6, 25))
    xy = _scatter_around(rng, fovea, n, 0.9)
    radius = rng.uniform(0.06, 0.28, n)
    height = np.minimum(radius * rng.uniform(0.25, 0.45, n), 0.09)
    return np.column_stack([xy, radius, height]).astype(np.float32)


def _make_diabetic(rng: np.random.Generator, geom: EyeGeometry, p_oedema: float) -> None:
    """Haemorrhages, microaneurysms, and (with oedema) cysts plus a partial ring of hard exudates."""
    f = geom.fovea
    n_h = int(rng.integers(3, 14))
    hxy = f + rng.uniform(-4.5, 4.5, (n_h, 2)) * [1.0, 0.8]
    geom.haemorrhages = np.column_stack([hxy, rng.uniform(0.06, 0.3, n_h)]).astype(np.float32)
    n_m = int(rng.integers(5, 20))
    mxy = f + rng.uniform(-3.5, 3.5, (n_m, 2))
    geom.microaneurysms = np.column_stack([mxy, rng.uniform(0.02, 0.045, n_m)]).astype(np.float32)
    if rng.random() < p_oedema:
        centre = f + 0.15 * rng.standard_normal(2)
        sigma = rng.uniform(0.7, 1.3)
        geom.oedema = Oedema(float(centre[0]), float(centre[1]), float(sigma), float(rng.uniform(0.1, 0.3)))
        n_c = int(rng.integers(10, 30))
        cxy = _scatter_around(rng, centre, n_c, 0.5 * sigma)
        geom.cysts = np.column_stack([cxy, rng.uniform(0.08, 0.3, n_c)]).astype(np.float32)
        n_e = int(rng.integers(15, 60))
        arc_start = rng.uniform(0, 2 * np.pi)
        ang = arc_start + rng.uniform(0, rng.uniform(2.0, 5.5), n_e)
        ring = (1.6 + 0.25 * rng.standard_normal(n_e)) * sigma
        exy = centre + np.column_stack([np.cos(ang), np.sin(ang)]) * ring[:, None]
    else:
        n_e = int(rng.integers(0, 12))
        exy = _scatter_around(rng, f, n_e, 1.5)
    geom.exudates = np.column_stack([exy, rng.uniform(0.02, 0.07, len(exy))]).astype(np.float32)


def _mirror(geom: EyeGeometry) -> None:
    flip = np.array([-1.0, 1.0], np.float32)
    geom.fovea = geom.fovea * flip
    geom.disc = geom.disc * flip
    geom.vessels = geom.vessels.mirrored()
    for name in ("drusen", "exudates", "haemorrhages", "microaneurysms", "cysts"):
        arr = getattr(geom, name).copy()
        arr[:, 0] *= -1
        setattr(geom, name, arr)
    if geom.oedema is not None:
        o = geom.oedema
        geom.oedema = Oedema(-o.x, o.y, o.sigma, o.amplitude)
    geom.retina_tilt = geom.retina_tilt * flip


def apply_axial_length(geom: EyeGeometry, myopia: float) -> None:
    """Couple the eye's length to what both modalities show, as in real myopia.

    OCT: a longer eye is more curved, sits deeper in the scan window and has a thinner choroid.
    CF: a paler, tessellated fundus (the choroidal texture shows through the thinner fundus) and a
    peripapillary atrophy crescent at the disc's temporal edge (see `eyeoct.data.phantom.cf`).
    The values drawn before stay, scaled to 30%, as eye-to-eye variation that the CF does not show.
    """
    geom.myopia = myopia
    geom.retina_curvature = 0.006 + 0.018 * myopia + 0.3 * (geom.retina_curvature - 0.015)
    geom.retina_depth_mm = 0.56 + 0.2 * myopia + 0.3 * (geom.retina_depth_mm - 0.675)
    geom.choroid_thickness_mm = 0.36 - 0.18 * myopia + 0.3 * (geom.choroid_thickness_mm - 0.275)
    geom.retina_tilt = (0.3 * geom.retina_tilt).astype(np.float32)


def sample_eye(rng: np.random.Generator, p_right: float, p_drusen: float, p_diabetic: float,
               p_oedema: float) -> EyeGeometry:
    """Draw one eye. The draw order is fixed, so the same generator state gives the same eye."""
    laterality = "R" if rng.random() < p_right else "L"
    pathology = _choose_pathology(rng, p_drusen, p_diabetic)
    fovea = np.array([-1.6, 0.25]) + 0.25 * rng.standard_normal(2)
    disc = fovea + np.array([4.5 + 0.25 * rng.standard_normal(), -0.35 + 0.2 * rng.standard_normal()])
    disc_rx = float(rng.uniform(0.75, 0.9))
    disc_radii = (disc_rx, disc_rx * float(rng.uniform(1.05, 1.15)))  # discs are slightly tall ovals
    vessels = make_vessel_tree(rng, fovea, disc)
    geom = EyeGeometry(
        laterality=laterality, pathology=pathology,
        fovea=fovea.astype(np.float32), disc=disc.astype(np.float32), disc_radii=disc_radii,
        cup_ratio=float(rng.uniform(0.25, 0.55)), vessels=vessels,
        fundus_tint=(1.0 + np.array([0.06, 0.12, 0.15]) * rng.standard_normal(3)).astype(np.float32),
        choroid_texture=SmoothField.random(rng, FIELD_EXTENT_MM, FIELD_EXTENT_MM, 0.06, 0.12),
        thickness_texture=SmoothField.random(rng, FIELD_EXTENT_MM, FIELD_EXTENT_MM, 0.25, 0.6),
        retina_depth_mm=float(rng.uniform(0.6, 0.75)),
        retina_curvature=float(rng.uniform(0.008, 0.022)),
        retina_tilt=(0.02 * rng.standard_normal(2)).astype(np.float32),
        choroid_thickness_mm=float(rng.uniform(0.2, 0.35)),
    )
    apply_axial_length(geom, float(rng.random()))  # drawn before the lesions: same for every pathology mix
    if pathology == "drusen":
        geom.drusen = _make_drusen(rng, geom.fovea)
    elif pathology == "diabetic":
        _make_diabetic(rng, geom, p_oedema)
    if laterality == "L":
        _mirror(geom)
    return geom
