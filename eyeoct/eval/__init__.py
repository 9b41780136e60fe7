"""Evaluation of prediction folders against ground truth: case matching, metrics, statistics, the report."""
from eyeoct.eval.cases import CaseMismatchError, GroundTruth, match_cases, resize_volume
from eyeoct.eval.metric_plan import ALL_METRICS, DEFAULT_METRICS, MetricUnavailableError
from eyeoct.eval.run import Comparison, compare_methods, evaluate_folder
from eyeoct.eval.settings import EvaluationSettings

__all__ = ["CaseMismatchError", "GroundTruth", "match_cases", "resize_volume", "ALL_METRICS", "DEFAULT_METRICS",
           "MetricUnavailableError", "Comparison", "compare_methods", "evaluate_folder", "EvaluationSettings"]
