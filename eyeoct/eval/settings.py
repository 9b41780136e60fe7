"""What an evaluation computes and shows (one dataclass shared by the script, the demo and the library)."""
from __future__ import annotations

from dataclasses import dataclass

from eyeoct.case_layout import NUM_SLICES
from eyeoct.eval.metric_plan import check_metric_names
from eyeoct.eval.statistics import DEFAULT_LEVEL, DEFAULT_RESAMPLES


@dataclass
class EvaluationSettings:
    """Metrics (None: the defaults, see metric_plan), local weights (None: the EYEOCT_* environment
    variables), statistics and report options."""

    metrics: tuple[str, ...] | None = None
    fvd_weights: str | None = None
    inception_weights: str | None = None
    lpips_backbone: str | None = None
    lpips_linear: str | None = None
    lpips_net: str = "alex"
    radial_band: int = 3
    device: str = "auto"
    batch_size: int = 8
    gt_data_root: str | None = None
    axial_um: float | None = None  # axial pixel size of the ground-truth B-scans (thickness in micrometres)
    cf_dir: str | None = None  # CF photos named <case id>.<ext> for the example rows
    examples: int = 6  # eyes shown as image rows: best, median, worst of the first method, then random ones
    example_slices: tuple[int, ...] = (0,)
    bootstrap: int = DEFAULT_RESAMPLES
    level: float = DEFAULT_LEVEL
    seed: int = 0  # bootstrap resamples and the random example eyes
    progress: bool = True  # a progress bar over cases (only on a terminal)

    def __post_init__(self):
        if self.metrics is not None:
            self.metrics = tuple(self.metrics)
            check_metric_names(self.metrics)
        self.example_slices = tuple(int(k) for k in self.example_slices)
        bad_slices = [k for k in self.example_slices if not 0 <= k < NUM_SLICES]
        if bad_slices or not self.example_slices:
            raise ValueError(f"example slices must be in 0..{NUM_SLICES - 1}, got {list(self.example_slices)}")
        if self.examples < 0 or self.bootstrap < 1:
            raise ValueError(f"examples must be >= 0 and bootstrap >= 1, got {self.examples} and {self.bootstrap}")
        if self.axial_um is not None and not self.axial_um > 0:
            raise ValueError(f"axial pixel size must be positive (micrometres), got {self.axial_um}")

    @property
    def weights(self) -> dict[str, str | None]:
        return {"fvd": self.fvd_weights, "inception": self.inception_weights,
                "lpips_backbone": self.lpips_backbone, "lpips_linear": self.lpips_linear}
