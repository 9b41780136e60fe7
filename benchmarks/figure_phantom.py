"""Figure: the phantom's CF photo and six radial B-scans for a normal, a drusen and a diabetic eye, and a
normal long (myopic) eye.

Writes benchmarks/figures/phantom_cases.png (one row per eye: CF | B-scans at 0..150 degrees in two
rows of three) and prints the render time per case at 64x64 and at full size (CF 512, B-scans 496x768).

    python benchmarks/figure_phantom.py [--seed 0] [--out benchmarks/figures/phantom_cases.png]
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from eyeoct.data.phantom import PhantomConfig, render_case

CF_PX = 232
BSCAN_HW = (112, 174)
GREY_LEVELS = 96  # palette entries for the B-scans; the rest hold the CF colours
PATHOLOGY_CONFIGS = {
    "normal": dict(p_drusen=0.0, p_diabetic=0.0),
    "drusen": dict(p_drusen=1.0, p_diabetic=0.0),
    "diabetic": dict(p_drusen=0.0, p_diabetic=1.0, p_oedema=1.0),
}


def long_eye_index(seed: int, start: int, min_myopia: float = 0.8) -> int:
    """First index from `start` whose normal eye is long (myopic): crescent and tessellation in the CF,
    a deeper, more curved retina over a thinner choroid in the OCT."""
    config = PhantomConfig(**PATHOLOGY_CONFIGS["normal"], cf_size=32, oct_height=32, oct_width=32)
    return next(i for i in range(start, start + 1000) if render_case(seed, i, config).meta["myopia"] >= min_myopia)


def case_row(seed: int, index: int, pathology: str) -> np.ndarray:
    """RGB row: the CF and the six B-scans (two rows of three), downsampled from full size."""
    case = render_case(seed, index, PhantomConfig(**PATHOLOGY_CONFIGS[pathology]))
    cf = np.asarray(Image.fromarray(case.cf).resize((CF_PX, CF_PX), Image.Resampling.LANCZOS))
    h, w = BSCAN_HW
    scans = [np.asarray(Image.fromarray(s).resize((w, h), Image.Resampling.LANCZOS)) for s in case.oct]
    gap = 2
    grid = np.zeros((2 * h, 3 * w + 2 * gap), np.uint8)
    for k, scan in enumerate(scans):
        r, c = divmod(k, 3)
        grid[r * h:(r + 1) * h, c * (w + gap):c * (w + gap) + w] = scan
    grid = np.pad(grid, ((0, max(0, CF_PX - 2 * h)), (0, 0)))
    row = np.concatenate([cf, np.zeros((CF_PX, 4, 3), np.uint8), np.repeat(grid[..., None], 3, axis=2)], axis=1)
    image = Image.fromarray(row)
    label = f"{pathology} ({case.meta['laterality']}), myopia {case.meta['myopia']:.2f}, seed {seed} index {index}"
    ImageDraw.Draw(image).text((4, 4), label, fill=(255, 255, 255))
    for k in range(6):
        r, c = divmod(k, 3)
        ImageDraw.Draw(image).text((CF_PX + 8 + c * (w + gap), r * h + 2), f"{30 * k} deg", fill=(255, 255, 0))
    return np.asarray(image)


def save_palette_png(rgb: np.ndarray, path: Path) -> None:
    """Save as an 8-bit palette PNG (keeps the file small): exact grey levels for the B-scans
    (quantised to GREY_LEVELS) and a median-cut palette for the coloured CF pixels."""
    n_colour = 256 - GREY_LEVELS
    grey = (rgb[..., 0] == rgb[..., 1]) & (rgb[..., 1] == rgb[..., 2])
    colour_pixels = Image.fromarray(rgb[~grey][None])
    palette_image = colour_pixels.quantize(colors=n_colour, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    colour = Image.fromarray(rgb).quantize(palette=palette_image, dither=Image.Dither.NONE)
    index = np.asarray(colour).copy()
    index[grey] = n_colour + np.round(rgb[..., 0][grey].astype(np.float64) * (GREY_LEVELS - 1) / 255.0).astype(np.uint8)
    palette = palette_image.getpalette()[: 3 * n_colour]
    palette += [0] * (3 * n_colour - len(palette))
    palette += [round(v * 255 / (GREY_LEVELS - 1)) for v in range(GREY_LEVELS) for _ in range(3)]
    image = Image.fromarray(index, mode="P")
    image.putpalette(palette)
    image.save(path, optimize=True)


def time_per_case(config: PhantomConfig, n: int) -> tuple[float, float]:
    """Mean wall-clock and CPU seconds per rendered case (CPU time is robust to a busy machine)."""
    render_case(0, 0, config)
    wall, cpu = time.perf_counter(), time.process_time()
    for index in range(1, n + 1):
        render_case(0, index, config)
    return (time.perf_counter() - wall) / n, (time.process_time() - cpu) / n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--index", type=int, default=2, help="phantom index of the normal, drusen and diabetic eyes")
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent / "figures" / "phantom_cases.png"))
    args = parser.parse_args()
    rows = [case_row(args.seed, args.index, p) for p in PATHOLOGY_CONFIGS]
    rows.append(case_row(args.seed, long_eye_index(args.seed, args.index + 1), "normal"))
    sep = np.zeros((4, rows[0].shape[1], 3), np.uint8)
    figure = np.concatenate([part for row in rows for part in (row, sep)][:-1], axis=0)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    save_palette_png(figure, out)
    print(f"wrote {out} ({figure.shape[1]}x{figure.shape[0]}, {out.stat().st_size / 1024:.0f} KB)")
    small = time_per_case(PhantomConfig(cf_size=64, oct_height=64, oct_width=64), 20)
    full = time_per_case(PhantomConfig(), 3)
    for label, (wall, cpu) in (("64x64 (CF 64, B-scans 64x64)", small), ("full size (CF 512, B-scans 496x768)", full)):
        print(f"render time per case, {label}: wall {1000 * wall:.1f} ms, CPU {1000 * cpu:.1f} ms")
    print(f"ratio full/64x64 (CPU) = {full[1] / small[1]:.1f}")


if __name__ == "__main__":
    main()
