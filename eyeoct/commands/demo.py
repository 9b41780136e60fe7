"""The built-in demo on CPU: phantom data -> stage 1 -> stage 2 -> inference -> baselines -> evaluation.

    eyeoct-demo
    eyeoct-demo --samples-per-input 2 ae.trainer.max_steps=200 dm.trainer.max_steps=200   # quicker look
    eyeoct-demo --seed 1                      # every seed 1 (both stages, sampling)
    eyeoct-demo --precision fp32              # fp32 even where the CPU has native bf16 kernels

Everything is written to a new folder runs/demo/<timestamp>/ (see eyeoct/demo.py); its report.html
holds the results table.
"""
import argparse
import dataclasses
import logging
from pathlib import Path

from eyeoct.cli import add_print_config, print_config
from eyeoct.demo import PRECISIONS, DemoSettings, run_demo, stage_configs
from eyeoct.logging_utils import setup_logging
from ldm.models.diffusion.samplers import DEFAULT_SAMPLER, SAMPLER_NAMES


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", default="runs", help="parent of the demo folder (default: runs)")
    parser.add_argument("--sampler", choices=SAMPLER_NAMES, default=DEFAULT_SAMPLER)
    parser.add_argument("--steps", "--ddim-steps", dest="steps", type=int, default=None,
                        help="sampling steps (default: dpmpp-2m 10, as measured on the demo models; ddim 50)")
    parser.add_argument("--precision", choices=PRECISIONS, default="auto",
                        help="both training stages and sampling: fp32, or bf16 autocast (auto: bf16 where the CPU "
                             "has native bf16 kernels, AVX512-BF16 or AMX, else fp32)")
    parser.add_argument("--guidance", type=float, default=DemoSettings.guidance,
                        help=f"classifier-free guidance scale (1 = none; default {DemoSettings.guidance})")
    parser.add_argument("--seed", type=int, default=0,
                        help="run.seed of both training stages (an ae./dm. run.seed override wins) and the "
                             "inference sampling seed")
    parser.add_argument("--samples-per-input", type=int, default=8,
                        help="samples per held-out eye; their per-pixel mean is scored")
    parser.add_argument("overrides", nargs="*", metavar="ae.key=value|dm.key=value",
                        help="overrides for the stage-1 (ae.) or stage-2 (dm.) config")
    add_print_config(parser, "the demo settings and the merged stage-1 (ae) and stage-2 (dm) configs")
    args = parser.parse_args(argv)
    bad = [o for o in args.overrides if not o.startswith(("ae.", "dm."))]
    if bad:
        parser.error(f"overrides must start with ae. or dm., got {bad}")
    setup_logging("INFO")
    settings = DemoSettings(root=Path(args.root), sampler=args.sampler, steps=args.steps, guidance=args.guidance,
                            precision=args.precision, seed=args.seed, samples_per_input=args.samples_per_input,
                            overrides_ae=tuple(o[3:] for o in args.overrides if o.startswith("ae.")),
                            overrides_dm=tuple(o[3:] for o in args.overrides if o.startswith("dm.")))
    if args.print_config:
        configs = stage_configs(settings, settings.root / "demo" / "<timestamp>")
        print_config({"demo": {k: str(v) if isinstance(v, Path) else v for k, v in dataclasses.asdict(settings).items()},
                      **configs})
        return
    demo_dir = run_demo(settings)
    logging.getLogger("demo").info("done: open %s", demo_dir / "report.html")
