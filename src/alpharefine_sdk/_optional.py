"""Lazy imports of optional dependencies with errors that name the extra to install."""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any, Callable

from .errors import MissingDependencyError

_HINTS = {
    "cv2": "OpenCV is needed for crops: pip install 'alpharefine-sdk[opencv]' "
    "(or 'alpharefine-sdk[contrib]' for CSRT/KCF; keep only one OpenCV wheel installed)",
    "onnx": "pip install 'alpharefine-sdk[onnx]'",
    "onnxruntime": "pip install 'alpharefine-sdk[onnx]'",
    "openvino": "pip install 'alpharefine-sdk[openvino]'",
    "triton": "pip install 'alpharefine-sdk[gpu]' (Triton ships with CUDA builds of PyTorch)",
    "matplotlib": "pip install 'alpharefine-sdk[eval]'",
    "got10k": "pip install 'alpharefine-sdk[eval]'",
    "ray": "pip install 'alpharefine-sdk[ray]' (on every node of the cluster)",
    "gradio": "pip install 'alpharefine-sdk[demo]'",
    "trax": "pip install 'alpharefine-sdk[vot]'",
}


def require(name: str) -> ModuleType:
    """Import ``name`` or raise :class:`MissingDependencyError` saying how to install it."""
    try:
        return importlib.import_module(name)
    except ImportError as e:
        top = name.split(".")[0]
        hint = _HINTS.get(top, f"pip install {top}")
        raise MissingDependencyError(f"{name} is not installed ({e}). Fix: {hint}") from e


def lazy_getattr(package: str, table: dict) -> "Callable[[str], Any]":
    """A module ``__getattr__`` that imports ``table[name] = (submodule, attribute)`` on first use
    and caches it in the package, so importing the package itself stays cheap."""
    import sys

    def __getattr__(name: str) -> Any:
        if name in table:
            module, attr = table[name]
            value = getattr(importlib.import_module(f".{module}", package), attr)
            setattr(sys.modules[package], name, value)
            return value
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__
