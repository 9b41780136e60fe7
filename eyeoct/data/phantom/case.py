"""The built-in procedural eye: a paired colour fundus photo and six radial OCT B-scans.

One set of parameters in millimetres (drawn from `np.random.default_rng([seed, index])`) renders
both images, so what the CF shows (laterality, disc and fovea position, vessels, drusen, exudates,
haemorrhages) is really there in the B-scans (vessel shadows, RPE bumps, cysts, thickening).

Coordinates in `meta`: mm in the CF frame (origin at the CF image centre, x right, y down as
viewed); `*_px` are (col, row) pixels of the CF. B-scan k runs at 30k degrees counter-clockwise as
viewed through the fovea, left to right; `vessel_crossings[k]` lists the columns where slice k
crosses a vessel (int keys 0..5, strings after a JSON round trip).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from eyeoct.data.phantom.cf import FundusView, render_cf
from eyeoct.data.phantom.geometry import EyeGeometry, sample_eye
from eyeoct.data.phantom.oct import SLICE_ANGLES_DEG, boundary_rows, render_bscans

PHANTOM_VERSION = 1  # part of the dataset cache key: bump it whenever a change alters the rendered arrays

# Independent random streams of one case: the eye itself, its choroid texture, OCT speckle, CF noise.
_GEOMETRY, _TEXTURE, _SPECKLE, _CF_NOISE = 0, 1, 2, 3


@dataclass
class PhantomConfig:
    """Sizes and pathology mix of the phantom (all keyword, YAML-friendly)."""

    cf_size: int = 512
    oct_height: int = 496
    oct_width: int = 768
    scan_length_mm: float = 6.0
    scan_depth_mm: float = 1.92
    cf_fov_radius_mm: float = 6.5
    p_right: float = 0.5
    p_drusen: float = 0.3
    p_diabetic: float = 0.3
    p_oedema: float = 0.7
    speckle_looks: float = 1.5

    def __post_init__(self) -> None:
        for name in ("cf_size", "oct_height", "oct_width"):
            if int(getattr(self, name)) < 8:
                raise ValueError(f"PhantomConfig.{name} must be >= 8, got {getattr(self, name)!r}")
        for name in ("p_right", "p_drusen", "p_diabetic", "p_oedema"):
            if not 0.0 <= float(getattr(self, name)) <= 1.0:
                raise ValueError(f"PhantomConfig.{name} must be a probability in [0, 1], got {getattr(self, name)!r}")
        if self.p_drusen + self.p_diabetic > 1.0:
            raise ValueError("PhantomConfig: p_drusen + p_diabetic must be <= 1, "
                             f"got {self.p_drusen} + {self.p_diabetic}")
        for name in ("scan_length_mm", "scan_depth_mm", "cf_fov_radius_mm", "speckle_looks"):
            if not float(getattr(self, name)) > 0:
                raise ValueError(f"PhantomConfig.{name} must be positive, got {getattr(self, name)!r}")


@dataclass
class PhantomCase:
    """One rendered eye: `cf` uint8 [h,w,3], `oct` uint8 [6,H,W], `meta` JSON-serialisable dict."""

    cf: np.ndarray
    oct: np.ndarray
    meta: dict
    geometry: EyeGeometry


def _rng(seed: int, index: int, stream: int) -> np.random.Generator:
    if stream == _GEOMETRY:
        return np.random.default_rng([seed, index])
    return np.random.default_rng([seed, index, stream])


def _lesion_list(geom: EyeGeometry) -> list[dict]:
    lesions = []
    for kind, arr in (("druse", geom.drusen), ("hard_exudate", geom.exudates), ("haemorrhage", geom.haemorrhages),
                      ("microaneurysm", geom.microaneurysms), ("cyst", geom.cysts)):
        for row in arr:
            item = {"type": kind, "x_mm": round(float(row[0]), 4), "y_mm": round(float(row[1]), 4),
                    "radius_mm": round(float(row[2]), 4)}
            if kind == "druse":
                item["height_mm"] = round(float(row[3]), 4)
            lesions.append(item)
    if geom.oedema is not None:
        o = geom.oedema
        lesions.append({"type": "macular_oedema", "x_mm": round(o.x, 4), "y_mm": round(o.y, 4),
                        "radius_mm": round(o.sigma, 4), "thickening_mm": round(o.amplitude, 4)})
    return lesions


def _meta(geom: EyeGeometry, config: PhantomConfig, seed: int, index: int, crossings: dict) -> dict:
    view = FundusView((0.0, 0.0), 2.06 * config.cf_fov_radius_mm / config.cf_size, config.cf_size, config.cf_size)
    return {
        "seed": int(seed), "index": int(index),
        "laterality": geom.laterality, "pathology": geom.pathology,
        "fovea_mm": [round(float(v), 4) for v in geom.fovea],
        "disc_mm": [round(float(v), 4) for v in geom.disc],
        "fovea_px": [round(float(v), 2) for v in view.to_pixels(geom.fovea)],
        "disc_px": [round(float(v), 2) for v in view.to_pixels(geom.disc)],
        "disc_radius_mm": [round(float(v), 4) for v in geom.disc_radii],
        "myopia": round(float(geom.myopia), 4),
        "cf_mm_per_px": view.mm_per_px,
        "slice_angles_deg": list(SLICE_ANGLES_DEG),
        "lesions": _lesion_list(geom),
        "vessel_crossings": {k: [c["column"] for c in v] for k, v in crossings.items()},
        "vessel_crossing_details": crossings,
        "config": asdict(config),
    }


def eye_facts(seed: int, index: int, config: PhantomConfig | None = None) -> dict:
    """What the CF shows of eye `index` about its OCT, without rendering: laterality, pathology and myopia
    (axial length, 0..1), as in `render_case(...).meta`."""
    config = config or PhantomConfig()
    geom = sample_eye(_rng(seed, index, _GEOMETRY), config.p_right, config.p_drusen, config.p_diabetic, config.p_oedema)
    return {"laterality": geom.laterality, "pathology": geom.pathology, "myopia": round(float(geom.myopia), 4)}


def render_case(seed: int, index: int, config: PhantomConfig | None = None, noise_free: bool = False) -> PhantomCase:
    """Render eye number `index` of the phantom seeded by `seed` (both non-negative ints).

    The same (seed, index, config) always gives identical arrays; `noise_free=True` gives the same
    eye and B-scans without speckle (the CF is unchanged)."""
    config = config or PhantomConfig()
    if int(seed) < 0 or int(index) < 0:
        raise ValueError(f"render_case: seed and index must be >= 0, got seed={seed}, index={index}")
    geom = sample_eye(_rng(seed, index, _GEOMETRY), config.p_right, config.p_drusen, config.p_diabetic, config.p_oedema)
    cf = render_cf(geom, config.cf_size, config.cf_fov_radius_mm, _rng(seed, index, _CF_NOISE))
    oct_slices, crossings = render_bscans(
        geom, config.oct_height, config.oct_width, config.scan_length_mm, config.scan_depth_mm,
        _rng(seed, index, _TEXTURE), None if noise_free else _rng(seed, index, _SPECKLE), config.speckle_looks)
    return PhantomCase(cf=cf, oct=oct_slices, meta=_meta(geom, config, seed, index, crossings), geometry=geom)


def true_boundary_rows(case: PhantomCase, names: tuple[str, ...] = ("ilm", "rpe_bottom")) -> dict[str, np.ndarray]:
    """Where the renderer put the named layer boundaries of `case`'s six B-scans: fractional rows [6, W] each
    (see `eyeoct.data.phantom.oct.boundary_rows`). "ilm" is the inner limiting membrane, "rpe_bottom" the RPE's
    outer edge."""
    config = PhantomConfig(**case.meta["config"])
    return boundary_rows(case.geometry, config.oct_height, config.oct_width, config.scan_length_mm,
                         config.scan_depth_mm, names)
