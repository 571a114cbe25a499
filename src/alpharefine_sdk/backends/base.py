"""The contract between :class:`~alpharefine_sdk.refiner.Refiner` and an inference engine.

An engine runs the network on ``[B, S, S, 3]`` uint8 RGB crops and knows nothing of frames or
boxes (``geometry`` does that). Every engine (``TorchEngine``, ``OnnxRuntimeEngine``,
``OpenVinoEngine``, the GPU ``FastTorchEngine``) satisfies :class:`Engine`.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping, Optional, Protocol, Sequence, Tuple, runtime_checkable

import numpy as np

# The options each engine takes (keyword arguments of ``Refiner(..., backend=..., **options)``).
OPTIONS = {"torch": ("fold_bn", "channels_last", "compile"), "onnxruntime": ("onnx_dir", "threads", "spin"),
           "openvino": ("onnx_dir", "threads", "device_name")}  # fmt: skip


@runtime_checkable
class Engine(Protocol):
    """What a :class:`Refiner` needs from an engine.

    Attributes:
        name: the backend name (``"torch"``, ``"onnxruntime"``, ``"openvino"``, ``"torch-fast"``).
        config: the :class:`~alpharefine_sdk.config.ModelConfig` of the weights.
        net: the loaded :class:`~alpharefine_sdk.nn.arnet.RefinerNet`, exactly as loaded (never a
            folded or compiled copy): what ``save_pretrained`` and ``export_onnx`` write.
        precision: ``"fp32"`` (exact), ``"bf16"`` or ``"fp16"``.
    """

    name: str
    config: Any
    net: Any
    precision: str

    def template(self, crops: np.ndarray) -> Any:
        """Template kernels for ``[B, S, S, 3]`` uint8 crops (engine-specific type)."""
        ...

    def concat(self, kernels: Sequence[Any]) -> Any:
        """Stack per-target kernels (from :meth:`template`) along the batch axis."""
        ...

    def search(
        self, crops: np.ndarray, kernels: Any, with_mask: bool = False
    ) -> Tuple[np.ndarray, Optional[np.ndarray]]:
        """Corners ``[B, 4]`` float32 (crop pixels) and, if asked, masks ``[B, S, S]`` float32."""
        ...


def check_options(backend: str, options: Mapping[str, Any], valid: Iterable[str], *, runs: str = "") -> None:
    """Refuse options ``backend`` does not know, naming the valid ones (typos never pass silently).

    ``runs``: for ``backend="auto"``, the engine it picked (whose options are the valid ones).
    """
    valid = tuple(valid)
    unknown = sorted(set(options) - set(valid))
    if unknown:
        listed = ", ".join(valid) if valid else "none"
        where = f"backend={backend!r}" + (f" (which runs {runs!r} here)" if runs else "")
        raise ValueError(f"unknown option(s) {unknown} for {where}; valid options: {listed}")
