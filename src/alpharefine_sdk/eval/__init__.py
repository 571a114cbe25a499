"""Evaluation harness: dataset readers, metrics, the base-vs-refined runner, plots and reports.

Names load on first use: importing this package imports nothing heavy; ``evaluate`` brings in the
runner (and torch/OpenCV) when called.
"""

from __future__ import annotations

from .._optional import lazy_getattr

__all__ = ["Sequence", "load_sequence", "find_sequences", "evaluate", "EvalResults", "paired_bootstrap_ci"]

_LAZY = {
    "Sequence": ("datasets", "Sequence"),
    "load_sequence": ("datasets", "load_sequence"),
    "find_sequences": ("datasets", "find_sequences"),
    "evaluate": ("runner", "evaluate"),
    "EvalResults": ("report", "EvalResults"),
    "paired_bootstrap_ci": ("metrics", "paired_bootstrap_ci"),
}

__getattr__ = lazy_getattr(__name__, _LAZY)
