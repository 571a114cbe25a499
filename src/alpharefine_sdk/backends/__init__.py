"""Inference engines: run the network on uint8 crops. Crop and box maths stay in ``geometry``.

Every engine offers ``template(crops) -> kernels``, ``concat(kernels) -> kernels`` and
``search(crops, kernels, with_mask) -> (corners [B,4] float32, masks [B,S,S] float32 | None)``,
with crops ``[B, S, S, 3]`` uint8 RGB numpy arrays.
"""

from __future__ import annotations

from typing import Any, Optional

BACKENDS = ("torch", "onnxruntime", "openvino")


def make_engine(
    backend: str, net: Any, config: Any, *, device: Optional[str] = None, precision: str = "fp32", **options: Any
) -> Any:
    """Build the engine named ``backend`` for ``net`` (a loaded :class:`~alpharefine_sdk.nn.arnet.RefinerNet`)."""
    if backend == "torch":
        from .torch_engine import TorchEngine

        return TorchEngine(net, config, device=device, precision=precision)
    if backend in ("onnxruntime", "ort", "onnx"):
        from .onnxruntime_engine import OnnxRuntimeEngine

        return OnnxRuntimeEngine(net, config, precision=precision, **options)
    if backend == "openvino":
        from .openvino_engine import OpenVinoEngine

        return OpenVinoEngine(net, config, precision=precision, **options)
    raise ValueError(f"unknown backend {backend!r}; choose one of {BACKENDS}")
