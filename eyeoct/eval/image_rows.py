"""Example rows of the report: for chosen eyes, CF | ground truth | each method, each tile labelled with its SSIM.

Eyes: the best, median and worst case of the first method by its main metric, then eyes drawn at random
(seeded) from the rest. Tiles are legible: B-scans narrower than MIN_TILE_WIDTH are enlarged by an integer
factor with nearest-neighbour interpolation (pixels stay visible as pixels), wider than MAX_TILE_WIDTH are
reduced with a box filter. A tile shows the chosen slices stacked (slice 0 by default: the horizontal scan).
"""
from __future__ import annotations

import io
import math

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from eyeoct.metrics import ssim_per_image

MIN_TILE_WIDTH = 256
MAX_TILE_WIDTH = 512
HEADER = 36  # pixels of label band above every tile
GAP = 4
DATA_RANGE = 255.0


def pick_examples(values: np.ndarray, case_ids: list[str], count: int, seed: int,
                  higher_is_better: bool = True) -> list[tuple[str, str]]:
    """[(label, case id)]: best, median and worst by `values` [n] (ties by case id), then random cases."""
    if count <= 0 or not case_ids:
        return []
    ranked = np.nan_to_num(np.asarray(values, np.float64), nan=-np.inf if higher_is_better else np.inf)
    keys = -ranked if higher_is_better else ranked
    order = [case_ids[i] for i in np.lexsort((np.array(case_ids), keys))]
    chosen: dict[str, str] = {}
    for label, case_id in (("best", order[0]), ("median", order[len(order) // 2]), ("worst", order[-1])):
        chosen.setdefault(case_id, label)
    rest = [c for c in case_ids if c not in chosen]
    rng = np.random.default_rng(seed)
    for case_id in rng.permutation(rest)[: max(0, count - len(chosen))]:
        chosen[str(case_id)] = "random"
    return [(label, case_id) for case_id, label in list(chosen.items())[:count]]


def tile_size(height: int, width: int) -> tuple[int, int]:
    """(height, width) a B-scan of this size is shown at."""
    if width < MIN_TILE_WIDTH:
        factor = math.ceil(MIN_TILE_WIDTH / width)
        return height * factor, width * factor
    if width > MAX_TILE_WIDTH:
        return max(1, round(height * MAX_TILE_WIDTH / width)), MAX_TILE_WIDTH
    return height, width


def _scan_tile(volume: np.ndarray, slices: tuple[int, ...]) -> Image.Image:
    """The chosen slices of a uint8 volume [6,H,W] stacked vertically at the legible size, RGB."""
    height, width = tile_size(*volume.shape[-2:])
    method = Image.Resampling.NEAREST if width >= volume.shape[-1] else Image.Resampling.BOX
    canvas = Image.new("RGB", (width, len(slices) * (height + GAP) - GAP), "white")
    for index, k in enumerate(slices):
        canvas.paste(Image.fromarray(volume[k]).resize((width, height), method).convert("RGB"),
                     (0, index * (height + GAP)))
    return canvas


def _cf_tile(cf: np.ndarray, height: int) -> Image.Image:
    """The CF photo scaled to `height` (the B-scan tiles' height), keeping its aspect ratio."""
    image = Image.fromarray(cf).convert("RGB")
    width = max(1, round(image.width * height / image.height))
    method = Image.Resampling.NEAREST if height >= image.height else Image.Resampling.BOX
    return image.resize((width, height), method)


def tile_labels(gt: np.ndarray, preds: dict[str, np.ndarray], slices: tuple[int, ...]) -> dict[str, str]:
    """Per method the label of its tile: SSIM over all six slices and, for one shown slice, that slice's."""
    labels = {}
    for name, pred in preds.items():
        per_slice = ssim_per_image(pred, gt, DATA_RANGE).numpy()
        label = f"SSIM {per_slice.mean():.3f}"
        if len(slices) == 1:
            label += f" (slice {slices[0]}: {per_slice[slices[0]]:.3f})"
        labels[name] = label
    return labels


def example_row_png(gt: np.ndarray, preds: dict[str, np.ndarray], slices: tuple[int, ...] = (0,),
                    cf: np.ndarray | None = None) -> bytes:
    """PNG of one eye: [CF |] ground truth | each prediction (uint8 [6,H,W] at the ground truth's size)."""
    font = ImageFont.load_default(size=13)
    labels = tile_labels(gt, preds, slices)
    tiles = [("ground truth", "", _scan_tile(gt, slices))]
    tiles += [(name, labels[name], _scan_tile(pred, slices)) for name, pred in preds.items()]
    body = tiles[0][2].height
    if cf is not None:
        tiles.insert(0, ("CF photo", "", _cf_tile(cf, body)))
    canvas = Image.new("RGB", (sum(tile.width for _, _, tile in tiles) + GAP * (len(tiles) - 1), HEADER + body),
                       "white")
    draw = ImageDraw.Draw(canvas)
    x = 0
    for title, subtitle, tile in tiles:
        draw.text((x + 2, 2), title, fill="black", font=font)
        draw.text((x + 2, 18), subtitle, fill=(40, 40, 160), font=font)
        canvas.paste(tile, (x, HEADER))
        x += tile.width + GAP
    buffer = io.BytesIO()
    canvas.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def legibility_note(gt_size: tuple[int, int], slices: tuple[int, ...]) -> str:
    """How the tiles show B-scans of `gt_size` (H, W): which slices, enlarged or reduced by how much."""
    height, width = gt_size
    shown_height, shown_width = tile_size(height, width)
    if shown_width > width:
        scale = f"enlarged {shown_width // width}x with nearest-neighbour interpolation"
    elif shown_width < width:
        scale = f"reduced to {shown_width} px wide with a box filter"
    else:
        scale = "at their own size"
    which = "slice" if len(slices) == 1 else "slices"
    return f"Tiles show {which} {', '.join(map(str, slices))} ({height}x{width} B-scans, {scale})."
