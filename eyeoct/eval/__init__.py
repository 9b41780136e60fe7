"""Evaluation of a prediction folder against ground truth: case matching, metrics, report."""
from eyeoct.eval.cases import CaseMismatchError, GroundTruth, match_cases, resize_volume
from eyeoct.eval.run import EvaluationSettings, evaluate_folder

__all__ = ["CaseMismatchError", "GroundTruth", "match_cases", "resize_volume", "EvaluationSettings",
           "evaluate_folder"]
