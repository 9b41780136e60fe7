"""The retinal vessel tree of the phantom: arteries and veins as line segments in millimetres.

Coordinates are those of a right eye (disc to the right of the fovea as viewed, y pointing down);
the caller mirrors them for a left eye. Four arcades (superior/inferior x temporal/nasal) of one
artery and one vein each leave the disc; the temporal ones arch around the macula. Side branches
are smooth random walks that taper and stop short of the foveal avascular zone. Each generation
of branches is drawn in one batch (arrays padded to the longest polyline) to keep it fast.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

ARTERY, VEIN = 0, 1
STEP_MM = 0.08
FAZ_RADIUS_MM = 0.35
TRUNK_WIDTH_MM = {ARTERY: 0.11, VEIN: 0.15}
MAX_BRANCHES_PER_PARENT = 10


@dataclass(frozen=True)
class VesselTree:
    """Vessel segments: start/end points [N,2] (x, y in mm), width [N] in mm, kind [N] (0 artery, 1 vein)."""

    p0: np.ndarray
    p1: np.ndarray
    width: np.ndarray
    kind: np.ndarray

    def mirrored(self) -> "VesselTree":
        flip = np.array([-1.0, 1.0], np.float32)
        return VesselTree(self.p0 * flip, self.p1 * flip, self.width, self.kind)


@dataclass
class _Generation:
    """Polylines of one branching generation: points [B,N,2] padded, n_points [B], widths, kinds."""

    points: np.ndarray
    n_points: np.ndarray
    w_start: np.ndarray
    w_end: np.ndarray
    kind: np.ndarray

    def segments(self) -> tuple[np.ndarray, ...]:
        n_max = self.points.shape[1] - 1
        j = np.arange(n_max)[None, :]
        valid = j < (self.n_points[:, None] - 1)
        frac = j / np.maximum(self.n_points[:, None] - 2, 1)
        width = self.w_start[:, None] + (self.w_end - self.w_start)[:, None] * frac
        kind = np.broadcast_to(self.kind[:, None], valid.shape)
        return self.points[:, :-1][valid], self.points[:, 1:][valid], width[valid], kind[valid]


def _catmull_rom(points: np.ndarray, step: float) -> np.ndarray:
    """Dense polyline through `points` [K,2] (Catmull-Rom spline), samples about `step` mm apart."""
    padded = np.vstack([2 * points[0] - points[1], points, 2 * points[-1] - points[-2]])
    a, b, c, d = padded[:-3], padded[1:-2], padded[2:-1], padded[3:]
    n = np.maximum(2, np.ceil(np.linalg.norm(c - b, axis=1) / step).astype(int))
    piece = np.repeat(np.arange(len(n)), n)
    t = ((np.arange(n.sum()) - np.repeat(np.cumsum(n) - n, n)) / np.repeat(n, n))[:, None]
    a, b, c, d = a[piece], b[piece], c[piece], d[piece]
    curve = 0.5 * (2 * b + (-a + c) * t + (2 * a - 5 * b + 4 * c - d) * t ** 2 + (-a + 3 * b - 3 * c + d) * t ** 3)
    return np.vstack([curve, points[-1:]])


def _arcade_waypoints(rng: np.random.Generator, fovea: np.ndarray, disc: np.ndarray, side: float,
                      temporal: bool, kind: int) -> np.ndarray:
    """Waypoints of one main vessel; side -1 superior, +1 inferior. The vessels leave the cup
    vertically, then the temporal ones arch around the macula and the nasal ones fan out."""
    spread = 1.0 if kind == VEIN else 0.88
    shift = 0.08 if kind == VEIN else -0.08
    out = -1.0 if temporal else 1.0
    pts = [disc + [shift, side * 0.05], disc + [shift + out * 0.2, side * 0.9]]
    if temporal:
        arch = (2.7 + 0.4 * rng.standard_normal()) * spread
        pts += [disc + [-1.0, side * 2.0 * spread],
                [0.5 * (fovea[0] + disc[0]) - 0.3, fovea[1] + side * arch],
                [fovea[0] - 0.3, fovea[1] + side * (arch + 0.2)],
                [fovea[0] - 3.5, fovea[1] + side * (arch - 0.3)],
                [fovea[0] - 7.5, fovea[1] + side * (arch - 1.4)]]
    else:
        pts += [disc + [1.0, side * 2.0 * spread], disc + [2.8, side * 3.0 * spread],
                disc + [6.0, side * 4.0 * spread]]
    pts = np.asarray(pts, np.float64)
    pts[2:] += 0.15 * rng.standard_normal(pts[2:].shape)
    return pts


def _trunks(rng: np.random.Generator, fovea: np.ndarray, disc: np.ndarray) -> _Generation:
    lines, w0, kinds = [], [], []
    for temporal in (True, False):
        for side in (-1.0, 1.0):
            for kind in (ARTERY, VEIN):
                lines.append(_catmull_rom(_arcade_waypoints(rng, fovea, disc, side, temporal, kind), STEP_MM))
                w0.append(TRUNK_WIDTH_MM[kind] * rng.uniform(0.9, 1.1) * (1.0 if temporal else 0.8))
                kinds.append(kind)
    n = np.array([len(line) for line in lines])
    points = np.stack([np.pad(line, ((0, n.max() - len(line)), (0, 0)), mode="edge") for line in lines])
    w0 = np.array(w0)
    return _Generation(points, n, w0, 0.45 * w0, np.array(kinds))


def _branch(rng: np.random.Generator, parent: _Generation, fovea: np.ndarray, first_gap: tuple[int, int],
            gap: tuple[int, int], length: tuple[float, float]) -> _Generation:
    """One generation of side branches along every polyline of `parent`."""
    n_par = len(parent.n_points)
    gaps = rng.integers(gap[0], gap[1], (n_par, MAX_BRANCHES_PER_PARENT))
    gaps[:, 0] = rng.integers(first_gap[0], first_gap[1], n_par)
    pos = np.cumsum(gaps, axis=1)
    ok = pos < (parent.n_points[:, None] - 3)
    par, pos = np.nonzero(ok)[0], pos[ok]
    nb = len(par)
    if nb == 0:
        return _Generation(np.zeros((0, 2, 2)), np.zeros(0, int), np.zeros(0), np.zeros(0), np.zeros(0, int))
    start = parent.points[par, pos]
    tangent = parent.points[par, pos + 1] - parent.points[par, pos - 1]
    heading = np.arctan2(tangent[:, 1], tangent[:, 0])
    side = rng.choice([-1.0, 1.0], nb)
    angle = heading + side * rng.uniform(0.5, 1.2, nb)
    to_fovea = fovea - start
    toward_macula = (np.linalg.norm(to_fovea, axis=1) < 3.5) & (
        side * (tangent[:, 0] * to_fovea[:, 1] - tangent[:, 1] * to_fovea[:, 0]) > 0)
    bend = np.where(toward_macula, 0.0, side * rng.uniform(-0.2, 0.4, nb))  # macular branches run straight in
    lengths = rng.uniform(length[0], length[1], nb)
    n_steps = int(np.ceil(lengths.max() / STEP_MM))
    turns = bend[:, None] * STEP_MM + 0.25 * np.sqrt(STEP_MM) * rng.standard_normal((nb, n_steps))
    angles = angle[:, None] + np.cumsum(turns, axis=1) - turns[:, :1]
    steps = STEP_MM * np.stack([np.cos(angles), np.sin(angles)], axis=-1)
    points = np.concatenate([start[:, None], start[:, None] + np.cumsum(steps, axis=1)], axis=1)
    n_points = np.maximum(2, (lengths / STEP_MM).astype(int) + 1)
    inside = np.linalg.norm(points - fovea, axis=-1) < FAZ_RADIUS_MM + 0.1
    first_inside = np.where(inside.any(axis=1), np.argmax(inside, axis=1), n_points)
    n_points = np.maximum(2, np.minimum(n_points, first_inside))
    frac = pos / np.maximum(parent.n_points[par] - 2, 1)
    w_parent = parent.w_start[par] + (parent.w_end[par] - parent.w_start[par]) * frac
    w_start = w_parent * rng.uniform(0.5, 0.75, nb)
    return _Generation(points, n_points, w_start, 0.6 * w_start, parent.kind[par])


def make_vessel_tree(rng: np.random.Generator, fovea: np.ndarray, disc: np.ndarray) -> VesselTree:
    """Arteries and veins of a right eye leaving the disc at `disc`, arching around `fovea`."""
    trunks = _trunks(rng, fovea, disc)
    branches = _branch(rng, trunks, fovea, (4, 10), (8, 18), (1.5, 4.5))
    twigs = _branch(rng, branches, fovea, (5, 12), (7, 15), (0.8, 2.5))
    parts = [g.segments() for g in (trunks, branches, twigs)]
    p0, p1, width, kind = (np.concatenate(p) for p in zip(*parts))
    return VesselTree(p0.astype(np.float32), p1.astype(np.float32), width.astype(np.float32),
                      kind.astype(np.int8))
