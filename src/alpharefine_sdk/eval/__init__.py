"""Evaluation harness: dataset readers, metrics, the base-vs-refined runner, plots and reports.

Only :mod:`.datasets` and :mod:`.metrics` are imported eagerly-on-demand; ``evaluate`` loads the
runner (and torch/OpenCV) on first use.
"""
from __future__ import annotations

from typing import Any

__all__ = ["Sequence", "load_sequence", "find_sequences", "evaluate"]

_LAZY = {
    "Sequence": ("datasets", "Sequence"),
    "load_sequence": ("datasets", "load_sequence"),
    "find_sequences": ("datasets", "find_sequences"),
    "evaluate": ("runner", "evaluate"),
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        value = getattr(importlib.import_module(f".{module}", __name__), attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'alpharefine_sdk.eval' has no attribute {name!r}")
