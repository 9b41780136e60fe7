"""Figure: the ILM and RPE found by eyeoct.metrics.thickness on real B-scans of four devices.

Reads B-scans from the shared real-data folder (never part of the repository), finds the boundaries at full
size, draws them on a reduced copy of the rows around the retina (ILM red, RPE outer edge cyan) and writes one
small PNG
(benchmarks/figures/thickness_real.png). Prints each image's size and median retinal thickness in pixels
(and micrometres where the axial pixel size is known).

    python benchmarks/figure_thickness_real.py [--realdata ../shared/realdata] [--out benchmarks/figures/thickness_real.png]
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from eyeoct.data.images import read_oct_slice
from eyeoct.metrics.thickness import find_boundaries

TILE_WIDTH = 380
# (file under the real-data folder, label, axial micrometres per pixel or None when not known)
IMAGES = (
    ("paired/spectralis_linescan/Linescan_1_bscan0.png", "Spectralis line scan (.vol)", 3.87),
    ("oct/spectralis/duke_dme_768x496.png", "Spectralis, DME (Duke)", 3.87),
    ("oct/spectralis/choroidalyzer_image2.png", "Spectralis export (Choroidalyzer)", None),
    ("oct/octa500_10201_OS/bscan_201.bmp", "Optovue (OCTA-500), fovea", 2000 / 640),
    ("oct/octa500_10201_OS/bscan_033.bmp", "Optovue (OCTA-500), off fovea", 2000 / 640),
    ("oct/bioptigen_eye1/average.tif", "Bioptigen (Duke), averaged", None),
)
RED, CYAN = (255, 70, 70), (70, 230, 255)


def tile(image: np.ndarray, ilm: np.ndarray, rpe: np.ndarray, title: str) -> Image.Image:
    """The rows around the retina reduced to TILE_WIDTH, both boundaries drawn, and a title band."""
    span = float(rpe.max() - ilm.min())
    top = int(max(0, ilm.min() - 0.3 * span))
    bottom = int(min(image.shape[0], rpe.max() + 0.5 * span))
    image, ilm, rpe = image[top:bottom], ilm - top, rpe - top
    height, width = image.shape
    scale = TILE_WIDTH / width
    size = (TILE_WIDTH, max(1, round(height * scale)))
    picture = Image.fromarray(image).resize(size, Image.Resampling.BOX).convert("RGB")
    draw = ImageDraw.Draw(picture)
    cols = (np.arange(width) + 0.5) * scale
    for rows, colour in ((ilm, RED), (rpe, CYAN)):
        draw.line(list(zip(cols.tolist(), ((rows + 0.5) * scale).tolist())), fill=colour, width=2)
    out = Image.new("RGB", (size[0], size[1] + 20), "white")
    out.paste(picture, (0, 20))
    ImageDraw.Draw(out).text((3, 3), title, fill="black")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    repo = Path(__file__).resolve().parents[1]
    parser.add_argument("--realdata", type=Path, default=repo.parent / "shared" / "realdata")
    parser.add_argument("--out", type=Path, default=repo / "benchmarks" / "figures" / "thickness_real.png")
    args = parser.parse_args()
    if not args.realdata.is_dir():
        raise SystemExit(f"real-data folder not found: {args.realdata} (pass --realdata)")
    tiles = []
    for relative, label, axial_um in IMAGES:
        image = read_oct_slice(args.realdata / relative)
        ilm, rpe = find_boundaries(image)
        thickness = float(np.median(rpe - ilm))
        in_um = f" = {thickness * axial_um:.0f} um" if axial_um else ""
        print(f"{relative:<52} {image.shape[0]:>4}x{image.shape[1]:<4} median thickness {thickness:6.1f} px{in_um}")
        tiles.append(tile(image, ilm, rpe, f"{label}: {thickness:.0f} px{in_um}"))
    columns = 3
    rows = [tiles[i:i + columns] for i in range(0, len(tiles), columns)]
    heights = [max(t.height for t in row) for row in rows]
    canvas = Image.new("RGB", (columns * (TILE_WIDTH + 6) - 6, sum(heights) + 6 * (len(rows) - 1)), "white")
    y = 0
    for row, height in zip(rows, heights):
        for index, picture in enumerate(row):
            canvas.paste(picture, (index * (TILE_WIDTH + 6), y))
        y += height + 6
    args.out.parent.mkdir(parents=True, exist_ok=True)
    canvas.quantize(colors=128).save(args.out, optimize=True)  # grey levels plus the two line colours
    print(f"wrote {args.out} ({canvas.width}x{canvas.height}, {args.out.stat().st_size // 1024} KiB)")


if __name__ == "__main__":
    main()
