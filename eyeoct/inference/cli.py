"""`scripts/infer.py`: arguments, then model loading, input collection and the inference run."""
from __future__ import annotations

import argparse
import logging
import sys

from cldm.cldm import SAMPLING_DTYPES
from eyeoct.cli import add_print_config, parse_size, print_config
from eyeoct.config import ConfigError
from eyeoct.data.errors import DataError
from eyeoct.inference.inputs import collect_inputs
from eyeoct.inference.layout import check_output_dir
from ldm.util.files import OutputFolderError
from eyeoct.devices import resolve_device
from eyeoct.inference.loading import load_inference_model, model_config, resolve_model_files
from eyeoct.inference.runner import OUTPUT_FORMATS, InferenceOptions, InferenceResult, cf_preparer, run_inference
from eyeoct.inference.statistics import SUBMIT_MODES
from eyeoct.logging_utils import setup_logging
from ldm.models.diffusion.samplers import DEFAULT_SAMPLER, SAMPLER_NAMES, default_steps

logger = logging.getLogger(__name__)


def inference_arg_parser() -> argparse.ArgumentParser:
    """The command-line interface of `scripts/infer.py`."""
    p = argparse.ArgumentParser(description="Generate the six OCT B-scans of each CF photograph "
                                            "(APTOS-2024 submission layout).")
    p.add_argument("--run", metavar="RUN_DIR", help="training run folder (config.yaml, checkpoints/last.ckpt) or "
                                                  "stage-2 export folder (model.yaml, model.safetensors)")
    p.add_argument("--config", metavar="CFG", help="model config (with --ckpt) instead of --run")
    p.add_argument("--ckpt", metavar="CKPT", help="checkpoint (default with --run: checkpoints/last.ckpt)")
    p.add_argument("--first-stage", metavar="DIR",
                   help="stage-1 export folder, when it is no longer where the run's config says")
    p.add_argument("--input", required=True, metavar="PATH", help="an image, a folder of images, or an APTOS CSV")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder (must be new or empty)")
    p.add_argument("--sampler", choices=SAMPLER_NAMES, default=DEFAULT_SAMPLER,
                   help=f"ddim, or dpmpp-2m: DPM-Solver++(2M), the same quality in fewer steps "
                        f"(default: {DEFAULT_SAMPLER})")
    p.add_argument("--steps", "--ddim-steps", dest="steps", type=int, default=None, metavar="N",
                   help="sampling steps (model evaluations; default: " +
                        ", ".join(f"{name} {default_steps(name)}" for name in SAMPLER_NAMES) +
                        "); --ddim-steps is the former name")
    p.add_argument("--guidance", type=float, default=1.0, help="classifier-free guidance scale (1 = none)")
    p.add_argument("--eta", type=float, default=0.0,
                   help="DDIM eta (0 = deterministic given the start noise; ddim only)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch-size", type=int, default=1)
    p.add_argument("--samples-per-input", type=int, default=1, metavar="K",
                   help="K > 1 also writes every sample and per-pixel std (uncertainty) maps")
    p.add_argument("--submit", choices=SUBMIT_MODES, default="first",
                   help="with K > 1: submit sample 0 (first) or the per-pixel mean of the K samples")
    p.add_argument("--size", type=parse_size, default=(448, 320), metavar="WxH", help="slice size written")
    p.add_argument("--format", choices=OUTPUT_FORMATS, default="jpg")
    p.add_argument("--zip", action="store_true", help="also write DIR/submission.zip of the case folders")
    p.add_argument("--precision", choices=sorted(SAMPLING_DTYPES), default="fp32",
                   help="autocast of the CF encoder, UNet and ControlNet (bf16 on recent GPUs: about 2x faster)")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1, ... (default: cuda if available)")
    p.add_argument("--overwrite", action="store_true", help="replace the results of a previous run in DIR")
    p.add_argument("--skip-bad", action="store_true", help="skip unreadable images (listed in DIR/skipped.txt)")
    p.add_argument("--strict-inputs", action="store_true",
                   help="skip inputs that do not look like colour fundus photographs (listed in DIR/skipped.txt); "
                        "by default they are processed with a warning and flagged in index.csv (input_check)")
    p.add_argument("--quiet", action="store_true", help="no progress bar (it shows only on a terminal anyway)")
    p.add_argument("--no-ema", action="store_true", help="sample with the raw weights instead of the EMA ones")
    add_print_config(p, "the model files, the model config they build and every inference setting")
    p.add_argument("--log-level", default="INFO")
    return p


def main(argv: list[str] | None = None) -> InferenceResult | None:
    """Parse `argv`, run inference and log a summary (with `--print-config`: print the settings, run nothing)."""
    args = inference_arg_parser().parse_args(argv)
    setup_logging(args.log_level)
    if not args.print_config:  # inputs and output folder before anything heavy: nothing is written yet
        inputs = collect_inputs(args.input)
        check_output_dir(args.out, args.overwrite, args.input)
    config, ckpt = resolve_model_files(args.run, args.config, args.ckpt)
    if args.print_config:
        settings = {k: v for k, v in vars(args).items() if k not in ("print_config", "log_level")}
        print_config({"model_files": {"config": str(config), "weights": str(ckpt)},
                      "inference": {**settings, "device": resolve_device(args.device)},
                      "model_config": model_config(config, ckpt, args.first_stage)})
        return None
    options = InferenceOptions(sampler=args.sampler, steps=args.steps, precision=args.precision,
                               guidance=args.guidance, eta=args.eta,
                               seed=args.seed, batch_size=args.batch_size, samples_per_input=args.samples_per_input,
                               size=args.size, ext=args.format, submit=args.submit, skip_bad=args.skip_bad,
                               strict_inputs=args.strict_inputs, make_zip=args.zip, checkpoint=str(ckpt),
                               progress=not args.quiet)
    loaded = load_inference_model(config, ckpt, resolve_device(args.device), use_ema=not args.no_ema,
                                  first_stage=args.first_stage)
    result = run_inference(loaded.model, cf_preparer(loaded.cf_size), inputs, args.out, options, args.overwrite,
                           args.input)
    logger.info("wrote %d cases to %s (index %s%s)", len(result.cases), args.out, result.index_path,
                f", zip {result.zip_path}" if result.zip_path else "")
    if result.skipped:
        logger.warning("skipped %d inputs:\n%s", len(result.skipped),
                       "\n".join(f"  {path}: {reason}" for path, reason in result.skipped))
    return result


def cli_entry(argv: list[str] | None = None) -> None:
    """`main`, with bad input (files, folders, config, options) reported as one line instead of a traceback."""
    try:
        main(argv)
    except (DataError, ConfigError, OutputFolderError, FileNotFoundError, ValueError) as err:
        sys.exit(f"error: {err}")
