"""From held-out data and a CF-encoder choice to the written baselines (used by the script and the demo)."""
from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

from eyeoct.baselines.data import BaselineData
from eyeoct.baselines.encoder import DEFAULT_ENCODER_CONFIG, load_cf_encoder
from eyeoct.baselines.run import BaselineSettings, check_methods, run_baselines

logger = logging.getLogger(__name__)


def write_baselines(data: BaselineData, out_dir: str | Path, settings: BaselineSettings,
                    cf_encoder_config: str | Path | None = None, cf_encoder_ckpt: str | Path | None = None,
                    seed: int = 0) -> dict[str, Path]:
    """Write `settings.which` for `data`: the oracle is dropped where the data has no noise-free twin, and
    the CF encoder (random with `seed`, or trained from a stage-2 checkpoint) is loaded only for nn_encoder."""
    which = check_methods(settings.which)
    if "oracle" in which and data.noise_free is None:
        which.remove("oracle")
        logger.info("no noise-free oracle for this data (phantom only): skipping the oracle baseline")
    info = {**settings.info, "heldout_parts": data.parts}
    encoder = None
    if "nn_encoder" in which:
        encoder = load_cf_encoder(cf_encoder_config, cf_encoder_ckpt, seed)
        info["cf_encoder"] = {"config": str(cf_encoder_config or DEFAULT_ENCODER_CONFIG),
                              "checkpoint": str(cf_encoder_ckpt) if cf_encoder_ckpt else None, "seed": seed}
    settings = dataclasses.replace(settings, which=which, info=info)
    return run_baselines(data.train, data.heldout, out_dir, settings, encoder, data.noise_free)
