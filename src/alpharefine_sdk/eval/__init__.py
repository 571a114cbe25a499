"""Evaluation harness: dataset readers, metrics, the base-vs-refined runner, plots and reports.

Names load on first use: importing this package imports nothing heavy; ``evaluate`` brings in the
runner (and torch/OpenCV) when called.
"""
from __future__ import annotations

from typing import Any

__all__ = ["Sequence", "load_sequence", "find_sequences", "evaluate", "EvalResults", "paired_bootstrap_ci"]

_LAZY = {
    "Sequence": ("datasets", "Sequence"),
    "load_sequence": ("datasets", "load_sequence"),
    "find_sequences": ("datasets", "find_sequences"),
    "evaluate": ("runner", "evaluate"),
    "EvalResults": ("report", "EvalResults"),
    "paired_bootstrap_ci": ("metrics", "paired_bootstrap_ci"),
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        value = getattr(importlib.import_module(f".{module}", __name__), attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'alpharefine_sdk.eval' has no attribute {name!r}")
