"""Inference engines: run the network on uint8 crops. Crop and box maths stay in ``geometry``.

Every engine satisfies :class:`~alpharefine_sdk.backends.base.Engine`: ``template(crops) ->
kernels``, ``concat(kernels) -> kernels`` and ``search(crops, kernels, with_mask) -> (corners
[B,4] float32, masks [B,S,S] float32 | None)``, with crops ``[B, S, S, 3]`` uint8 RGB arrays.
``backend="auto"`` picks the fastest exact engine installed (:func:`auto_backend`).
"""

from __future__ import annotations

import importlib.util
import logging
from typing import Any, Optional

from .base import OPTIONS, check_options

BACKENDS = ("auto", "torch", "onnxruntime", "openvino")
ALIASES = {"ort": "onnxruntime", "onnx": "onnxruntime"}
# backend="auto" on CPU: the first of these whose runtime is installed, per precision. Exact
# (fp32) first: ONNX Runtime and OpenVINO run the cached ONNX export; torch is always there.
AUTO_ORDER = {"fp32": ("onnxruntime", "openvino", "torch"), "bf16": ("openvino", "torch"), "fp16": ("torch",)}
_RUNTIMES = {"onnxruntime": ("onnxruntime", "onnx"), "openvino": ("openvino", "onnx")}

log = logging.getLogger(__name__)


def installed(backend: str) -> bool:
    """Whether ``backend``'s runtime (and the ONNX exporter it needs) can be imported."""
    return all(importlib.util.find_spec(m) is not None for m in _RUNTIMES.get(backend, ()))


def auto_backend(precision: str = "fp32", device: Optional[str] = None) -> str:
    """The engine ``backend="auto"`` runs: torch on CUDA, else the first installed of
    :data:`AUTO_ORDER` for ``precision``."""
    if device is not None and str(device).split(":")[0] != "cpu":
        return "torch"
    if device is None:
        import torch

        if torch.cuda.is_available():
            return "torch"
    for backend in AUTO_ORDER.get(precision, ("torch",)):
        if backend == "torch" or installed(backend):
            return backend
    return "torch"


def make_engine(
    backend: str, net: Any, config: Any, *, device: Optional[str] = None, precision: str = "fp32", **options: Any
) -> Any:
    """Build the engine named ``backend`` for ``net`` (a loaded :class:`~alpharefine_sdk.nn.arnet.RefinerNet`).

    Options each engine does not know are refused with the list of valid ones. With
    ``backend="auto"``, an ONNX engine that cannot be built (its export fails) falls back to torch
    with a warning.
    """
    if not isinstance(backend, str) or ALIASES.get(backend, backend) not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; choose one of {BACKENDS}")
    backend = ALIASES.get(backend, backend)
    if backend == "auto":
        chosen = auto_backend(precision, device)
        check_options("auto", options, OPTIONS[chosen], runs=chosen)
        if chosen != "torch" and "onnx_dir" not in options:  # the export is ours: fall back if it fails
            try:
                return _build(chosen, net, config, device, precision, options)
            except Exception as e:  # noqa: BLE001 - any export/runtime failure: the exact torch engine still works
                import warnings

                warnings.warn(
                    f"backend='auto': the {chosen} engine could not be built ({type(e).__name__}: {e}); "
                    "running the torch engine instead",
                    RuntimeWarning,
                    stacklevel=3,
                )
                chosen, options = "torch", {}
        return _build(chosen, net, config, device, precision, options)
    check_options(backend, options, OPTIONS[backend])
    return _build(backend, net, config, device, precision, options)


def _build(backend: str, net: Any, config: Any, device: Optional[str], precision: str, options: dict) -> Any:
    if backend == "torch":
        from .torch_engine import TorchEngine

        return TorchEngine(net, config, device=device, precision=precision, **options)
    if device is not None and str(device).split(":")[0] != "cpu":
        raise ValueError(f"backend={backend!r} runs on the CPU; got device={device!r} (use backend='torch' on GPUs)")
    if backend == "onnxruntime":
        from .onnxruntime_engine import OnnxRuntimeEngine

        return OnnxRuntimeEngine(net, config, precision=precision, **options)
    from .openvino_engine import OpenVinoEngine

    return OpenVinoEngine(net, config, precision=precision, **options)
