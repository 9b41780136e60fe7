"""The APTOS-size models of both stages for benchmarks, built from the configs without data or exports."""
from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig

from eyeoct.config import load_config

REPO = Path(__file__).resolve().parents[1]
CONFIGS = {
    "aptos": (REPO / "configs/ae/aptos_kl_f8.yaml", REPO / "configs/dm/aptos_cldm.yaml"),
    "tiny": (REPO / "configs/ae/tiny_test.yaml", REPO / "configs/dm/tiny_test.yaml"),  # CPU smoke runs
}


def autoencoder_config(size: str = "aptos", overrides: list[str] = ()) -> DictConfig:
    """The stage-1 config of `size` (its `model` and `data` blocks)."""
    return load_config([CONFIGS[size][0]], list(overrides))


def stage2_config(size: str = "aptos", overrides: list[str] = ()) -> DictConfig:
    """The stage-2 config of `size` with a randomly initialised first stage of that size's architecture in
    place of a trained export (same shapes and cost)."""
    ae = autoencoder_config(size).model
    cfg = load_config([CONFIGS[size][1]], ["model.params.first_stage=null", "model.params.scale_factor=1.0",
                                           *overrides])
    cfg.model.params.first_stage_config = {"target": ae.target, "params": {"ddconfig": ae.params.ddconfig}}
    return cfg
