"""The phantom's CF-information ceiling: each held-out eye predicted by the mean volume of the training eyes that
share its CF-visible facts.

For a held-out eye, the training eyes of the same laterality and pathology (`same_kind`) and, among those, the
`k` closest in axial length (myopia; `nearest_by_facts`, ties to the lower training index). The mean of their
OCT volumes is the prediction. It reads the phantom's hidden parameters, so it is no predictor from the photo:
it bounds what a predictor that recovers those facts from the CF could reach with a mean of similar eyes.
Used by the demo's report (as the method `ceiling`) and by `benchmarks/phantom_ceiling.py`.
"""
from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from eyeoct.data.transforms import unit_to_uint8
from eyeoct.volume_io import write_volume

logger = logging.getLogger(__name__)

DEFAULT_K = 8
DESCRIPTION = ("mean OCT volume of the {k} training eyes with the same laterality and pathology closest in axial "
               "length (the phantom's hidden parameters that the CF shows); a bound, not a predictor")


def same_kind(facts: dict, train_facts: Sequence[dict]) -> list[int]:
    """Indices of the training eyes with the same laterality and pathology as `facts`."""
    key = (facts["laterality"], facts["pathology"])
    return [i for i, other in enumerate(train_facts) if (other["laterality"], other["pathology"]) == key]


def nearest_by_facts(facts: dict, train_facts: Sequence[dict], k: int) -> list[int]:
    """Indices of the `k` eyes of `same_kind` closest in myopia (all of them if fewer)."""
    candidates = same_kind(facts, train_facts)
    return sorted(candidates, key=lambda i: (abs(train_facts[i]["myopia"] - facts["myopia"]), i))[:k]


def ceiling_volumes(train_volumes: np.ndarray, train_facts: Sequence[dict], heldout_facts: Sequence[dict],
                    k: int | None = DEFAULT_K) -> np.ndarray:
    """float64 [M,6,H,W] predictions for the held-out eyes from training volumes [N,6,H,W]: the mean over
    `nearest_by_facts` (or over every eye of `same_kind` when k is None). An eye with no training eye of its
    kind gets the mean of all training volumes."""
    volumes = np.asarray(train_volumes, np.float64)
    out = np.empty((len(heldout_facts), *volumes.shape[1:]), np.float64)
    for index, facts in enumerate(heldout_facts):
        chosen = same_kind(facts, train_facts) if k is None else nearest_by_facts(facts, train_facts, k)
        if not chosen:
            logger.warning("no training eye of kind %s/%s: the ceiling uses the mean of all training eyes",
                           facts["laterality"], facts["pathology"])
            chosen = list(range(len(volumes)))
        out[index] = volumes[chosen].mean(axis=0)
    return out


def write_ceiling(train_set, heldout_sets: Sequence, out_dir: str | Path, k: int = DEFAULT_K,
                  ext: str = "png") -> Path:
    """Write the ceiling of every held-out case (PhantomDatasets: they know their `eye_facts`) in the submission
    layout under the new folder `out_dir`, rounded to uint8 (half to even), with a `baseline.json`."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=False)
    train_volumes = np.stack([unit_to_uint8(train_set[i]["oct"]) for i in range(len(train_set))])
    train_facts = [train_set.eye_facts(i) for i in range(len(train_set))]
    ids = []
    for dataset in heldout_sets:
        facts = [dataset.eye_facts(i) for i in range(len(dataset))]
        predictions = ceiling_volumes(train_volumes, train_facts, facts, k)
        for index, prediction in enumerate(predictions):
            case_id = dataset.case_id(index)
            write_volume(out_dir, case_id, np.clip(np.rint(prediction), 0, 255).astype(np.uint8), ext=ext)
            ids.append(case_id)
    record = {"method": "ceiling", "description": DESCRIPTION.format(k=k), "k": k, "train_cases": len(train_set),
              "heldout_cases": len(ids)}
    (out_dir / "baseline.json").write_text(json.dumps(record, indent=2) + "\n")
    logger.info("CF-information ceiling (k=%d) of %d held-out eyes written to %s", k, len(ids), out_dir)
    return out_dir
