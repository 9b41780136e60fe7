"""Figure of a trained stage-1 autoencoder: held-out phantom B-scans over their reconstructions.

    python benchmarks/figure_ae_reconstruction.py RUN_DIR [--cases 2] [--out benchmarks/figures/ae_reconstruction.png]

RUN_DIR is a finished train_ae.py run (its export/ and config.yaml); the cases are the first ones of
the run's `test` data part (held-out eyes), reconstructed from the posterior mode. Prints their PSNR
(per volume) and SSIM (per slice, averaged).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from PIL import Image, ImageDraw

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from eyeoct.ae_images import slice_grid  # noqa: E402
from eyeoct.config import instantiate_from_config, load_config, require  # noqa: E402
from eyeoct.metrics import psnr_per_volume, ssim_per_image  # noqa: E402
from eyeoct.runs import CONFIG_NAME  # noqa: E402
from ldm.models.autoencoder_export import load_exported_autoencoder  # noqa: E402

HEADER = 28


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--cases", type=int, default=2)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks/figures/ae_reconstruction.png")
    args = parser.parse_args()
    model, _ = load_exported_autoencoder(args.run_dir / "export")
    datamodule = instantiate_from_config(require(load_config([args.run_dir / CONFIG_NAME]), "data"))
    dataset = datamodule.build_dataset("test")
    if dataset is None:
        raise SystemExit(f"{args.run_dir / CONFIG_NAME}: the data config has no 'test' part (held-out eyes)")
    x = torch.stack([dataset[k]["oct"] for k in range(args.cases)])
    with torch.no_grad():
        recon = model.decode(model.encode(x).mode()).clamp(-1, 1)
    psnr = psnr_per_volume(recon, x, data_range=2.0)
    ssim = ssim_per_image(recon, x, data_range=2.0).mean(dim=1)
    for k in range(args.cases):
        print(f"case {dataset.case_id(k)}: PSNR {psnr[k]:.2f} dB, SSIM {ssim[k]:.4f}")
    grid = (slice_grid(x, recon).permute(1, 2, 0).numpy() * 255).round().astype("uint8")
    image = Image.new("RGB", (grid.shape[1], grid.shape[0] + HEADER), "white")
    image.paste(Image.fromarray(grid), (0, HEADER))
    ImageDraw.Draw(image).text(
        (4, 4), f"held-out phantom eyes, slices 0-5; rows: input / reconstruction. "
                f"PSNR {psnr.mean():.1f} dB, SSIM {ssim.mean():.3f}", fill="black")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    image.save(args.out, optimize=True)
    print(f"wrote {args.out} ({args.out.stat().st_size / 1024:.0f} KB)")


if __name__ == "__main__":
    main()
