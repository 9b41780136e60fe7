"""Per-case metrics of several prediction folders against one ground truth, and the set metrics (FVD, FID/KID).

Per case (prediction resized to the ground-truth size, see RESIZE_RULE; data_range 255): SSIM per B-scan
(skimage defaults) and their mean, PSNR per volume, MS-SSIM and LPIPS (means over slices), radial
inconsistency of prediction and ground truth, and the mean absolute difference of retinal thickness per
slice and over the six (pixels; micrometres with the axial pixel size). The ground truth of a case is read
and segmented once for all methods.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch

from eyeoct.eval.cases import GroundTruth, resize_volume
from eyeoct.eval.settings import EvaluationSettings
from eyeoct.metrics import ms_ssim_per_image, psnr_per_volume, radial_inconsistency, ssim_per_image
from eyeoct.metrics.thickness import retinal_thickness, thickness_difference
from eyeoct.progress import progress_bar
from eyeoct.volume_io import read_volume

DATA_RANGE = 255.0


def load_prediction(pred_dir: Path, case_id: str, size: tuple[int, int]) -> tuple[np.ndarray, tuple[int, int]]:
    """(prediction resized to `size` (H, W), its own H, W), uint8 [6,H,W]."""
    pred = read_volume(pred_dir / case_id)
    return resize_volume(pred, size), tuple(pred.shape[-2:])


class _BatchedFeatures:
    """Feeds volumes to a feature extractor in batches, keeping only the features."""

    def __init__(self, extractor, batch_size: int):
        self.extractor, self.batch_size, self.pending, self.features = extractor, batch_size, [], []

    def add(self, volume: np.ndarray) -> None:
        self.pending.append(volume)
        if len(self.pending) >= self.batch_size:
            self.flush()

    def flush(self) -> None:
        if self.pending:
            self.features.append(self.extractor.volume_features(self.pending))
            self.pending = []

    def result(self) -> np.ndarray:
        self.flush()
        return np.concatenate(self.features)


class _Networks:
    """The weight-based metric networks the chosen metrics need (each loads local weights or fails clearly)."""

    def __init__(self, metrics: tuple[str, ...], settings: EvaluationSettings, device: str):
        from eyeoct.metrics.fvd import I3DFeatures
        from eyeoct.metrics.inception import InceptionFeatures
        from eyeoct.metrics.lpips import LPIPS

        self.i3d = I3DFeatures(settings.fvd_weights, device) if "fvd" in metrics else None
        wants_inception = "fid" in metrics or "kid" in metrics
        self.inception = InceptionFeatures(settings.inception_weights, device) if wants_inception else None
        self.lpips = (LPIPS(settings.lpips_backbone, settings.lpips_linear, settings.lpips_net).to(device)
                      if "lpips" in metrics else None)

    def extractors(self) -> dict[str, object]:
        return {name: net for name, net in (("fvd", self.i3d), ("fid_kid", self.inception)) if net is not None}


def _case_row(pred: np.ndarray, gt: np.ndarray, gt_thickness: np.ndarray | None, metrics: tuple[str, ...],
              settings: EvaluationSettings, device: str, lpips) -> dict:
    p, t = torch.from_numpy(pred).to(device), torch.from_numpy(gt).to(device)
    row: dict = {}
    if "ssim" in metrics:
        per_slice = ssim_per_image(p, t, DATA_RANGE).cpu().numpy()
        row["ssim"] = float(per_slice.mean())
        row.update({f"ssim_{k}": float(v) for k, v in enumerate(per_slice)})
    if "psnr" in metrics:
        row["psnr"] = float(psnr_per_volume(p[None], t[None], DATA_RANGE)[0])
    if "msssim" in metrics:
        row["msssim"] = float(ms_ssim_per_image(p, t, DATA_RANGE).mean())
    if "lpips" in metrics:
        row["lpips"] = float(lpips.volume_distance(pred[None], gt[None])[0])
    if "radial" in metrics:
        row["radial_pred"] = float(radial_inconsistency(pred, DATA_RANGE, settings.radial_band))
        row["radial_gt"] = float(radial_inconsistency(gt, DATA_RANGE, settings.radial_band))
    if gt_thickness is not None:
        row["thickness_gt_px"] = float(gt_thickness.mean())
        per_slice = thickness_difference(retinal_thickness(pred), gt_thickness)
        row["thickness_mae_px"] = float(per_slice.mean())
        row.update({f"thickness_mae_px_{k}": float(v) for k, v in enumerate(per_slice)})
        if settings.axial_um is not None:
            row["thickness_mae_um"] = row["thickness_mae_px"] * settings.axial_um
    return row


def score_methods(pred_dirs: dict[str, Path], truth: GroundTruth, case_ids: list[str], metrics: tuple[str, ...],
                  settings: EvaluationSettings, device: str) -> tuple[pd.DataFrame, dict[str, dict]]:
    """Per-case table (one row per method and case: method, case, pred_size, gt_size, metric columns) and,
    per method, the set metrics' results ({"fvd": {...}, "fid_kid": {...}} with N and weight hashes)."""
    networks = _Networks(metrics, settings, device)
    extractors = networks.extractors()
    real = {key: _BatchedFeatures(net, settings.batch_size) for key, net in extractors.items()}
    fake = {m: {key: _BatchedFeatures(net, settings.batch_size) for key, net in extractors.items()} for m in pred_dirs}
    rows = []
    for case_id in progress_bar(case_ids, desc="evaluating cases", unit="case", quiet=not settings.progress):
        target = truth.load(case_id)
        gt_thickness = retinal_thickness(target) if "thickness" in metrics else None
        for accumulator in real.values():
            accumulator.add(target)
        for method, pred_dir in pred_dirs.items():
            pred, pred_size = load_prediction(pred_dir, case_id, target.shape[-2:])
            rows.append({"method": method, "case": case_id, "pred_size": "x".join(map(str, pred_size)),
                         "gt_size": "x".join(map(str, target.shape[-2:])),
                         **_case_row(pred, target, gt_thickness, metrics, settings, device, networks.lpips)})
            for accumulator in fake[method].values():
                accumulator.add(pred)
    return pd.DataFrame(rows), _set_results(networks, real, fake)


def _set_results(networks: _Networks, real: dict, fake: dict) -> dict[str, dict]:
    results: dict[str, dict] = {method: {} for method in fake}
    if not real:
        return results
    real_features = {key: acc.result() for key, acc in real.items()}
    for method, accumulators in fake.items():
        if networks.i3d is not None:
            from eyeoct.metrics.fvd import fvd_from_features
            results[method]["fvd"] = {**fvd_from_features(real_features["fvd"], accumulators["fvd"].result(),
                                                           networks.i3d.sha256), "weights": str(networks.i3d.path)}
        if networks.inception is not None:
            from eyeoct.metrics.inception import fid_kid_from_features
            results[method]["fid_kid"] = {
                **fid_kid_from_features(real_features["fid_kid"], accumulators["fid_kid"].result(),
                                        networks.inception.sha256), "weights": str(networks.inception.path)}
    if networks.lpips is not None:
        for method in results:
            results[method]["lpips_weights_sha256"] = networks.lpips.sha256
    return results
