"""Reference predictions (mean volume, nearest-neighbour retrieval, phantom oracle) for evaluation."""
from eyeoct.baselines.data import BaselineData, baseline_data
from eyeoct.baselines.encoder import load_cf_encoder
from eyeoct.baselines.pipeline import write_baselines
from eyeoct.baselines.run import (GROUND_TRUTH, BASELINE_METHODS, BaselineError, BaselineSettings, check_methods,
                                  create_empty_output_dir, run_baselines)

__all__ = ["BaselineData", "baseline_data", "load_cf_encoder", "GROUND_TRUTH", "BASELINE_METHODS", "BaselineError",
           "BaselineSettings", "check_methods", "create_empty_output_dir", "run_baselines", "write_baselines"]
