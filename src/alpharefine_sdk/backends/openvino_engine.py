"""OpenVINO engine: the exported graphs compiled for the CPU plugin, fp32 or bf16."""

from __future__ import annotations

import threading
import warnings
from pathlib import Path
from typing import Any, Dict, Optional, Sequence, Tuple

import numpy as np

from .._optional import require
from ..config import ModelConfig
from ..nn.arnet import RefinerNet
from . import _common as C
from .base import OPTIONS, check_options

PRECISIONS = {"fp32": "f32", "bf16": "bf16"}


class OpenVinoEngine(C.ExportedGraphEngine):
    """OpenVINO inference; same interface as :class:`TorchEngine`.

    ``precision="fp32"`` (default) pins ``INFERENCE_PRECISION_HINT`` to f32, which keeps the exact
    path (OpenVINO would otherwise pick bf16 on CPUs that support it). ``precision="bf16"`` runs
    the graphs in bfloat16; the corner soft-argmax is then redone in float32 from the logits.
    Options: ``onnx_dir`` (a folder from ``export_onnx``; default: export ``net`` now),
    ``threads`` (default the physical cores), ``device_name`` (OpenVINO device, default "CPU").
    """

    name = "openvino"

    def __init__(self, net: RefinerNet, config: ModelConfig, *, precision: str = "fp32", **options: Any) -> None:
        self._ov = require("openvino")
        check_options("openvino", options, OPTIONS["openvino"])
        if precision not in PRECISIONS:
            raise ValueError(f"backend='openvino' supports precision 'fp32' or 'bf16'; got {precision!r}")
        self.net, self.config, self.precision, self.options = net, config, precision, dict(options)
        self.threads = C.check_threads(options.get("threads"))
        self.device_name = str(options.get("device_name", "CPU"))
        self.core = self._ov.Core()
        if precision == "bf16" and "BF16" not in self._capabilities():
            warnings.warn(
                f"this {self.device_name} has no native bf16 (OPTIMIZATION_CAPABILITIES lacks BF16); "
                "precision='bf16' will be slow or run in f32: use precision='fp32'",
                RuntimeWarning,
                stacklevel=3,
            )
        self._compiled: Dict[str, Any] = {}
        self._lock = threading.Lock()  # an infer request serves one call at a time
        self._init_graphs(options.get("onnx_dir"))

    # ------------------------------------------------------------------ construction
    def _capabilities(self) -> Sequence[str]:
        try:
            return list(self.core.get_property(self.device_name, "OPTIMIZATION_CAPABILITIES"))
        except Exception as e:  # an unknown device name surfaces here
            raise ValueError(
                f"OpenVINO device {self.device_name!r} is not available ({e}); use device_name='CPU'"
            ) from None

    def _load_graph(self, variant: str, path: Path) -> Any:
        """Compile one graph; the infer request is what the engine keeps per variant."""
        props = {
            "INFERENCE_PRECISION_HINT": PRECISIONS[self.precision],
            "PERFORMANCE_HINT": "LATENCY",
            "NUM_STREAMS": 1,
            "INFERENCE_NUM_THREADS": self.threads,
        }
        model = self.core.read_model(str(path))
        compiled = self.core.compile_model(model, self.device_name, props)
        self._compiled[variant] = compiled
        return compiled.create_infer_request()

    # ------------------------------------------------------------------ engine interface
    def template(self, crops: np.ndarray) -> np.ndarray:
        x = C.network_input(crops, self.config)
        req = self._graphs["template"]
        with self._lock:
            req.infer({"images": x})
            return np.array(req.get_tensor("kernel").data, dtype=np.float32, copy=True)

    def concat(self, kernels: Sequence[np.ndarray]) -> np.ndarray:
        return C.concat_kernels(kernels)

    def search(
        self, crops: np.ndarray, kernels: np.ndarray, with_mask: bool = False
    ) -> Tuple[np.ndarray, Optional[np.ndarray]]:
        corners, mask, _ = self._run_search(crops, kernels, with_mask, None)
        return corners, mask

    def search_scored(
        self, crops: np.ndarray, kernels: np.ndarray, input_corners: np.ndarray, with_mask: bool = False
    ) -> Tuple[np.ndarray, Optional[np.ndarray], np.ndarray]:
        """:meth:`search` plus the predicted IoU ``[B, 2]`` (refined box, input box)."""
        return self._run_search(crops, kernels, with_mask, input_corners)

    def _run_search(self, crops, kernels, with_mask: bool, input_corners):
        x = C.network_input(crops, self.config)
        k = C.check_kernels(kernels, x.shape[0], self.kernel_shape)
        req = self._search_graph(with_mask)
        copy = lambda name: np.array(req.get_tensor(name).data, dtype=np.float32, copy=True)  # noqa: E731
        with self._lock:
            req.infer(self.feeds(x, k, input_corners))
            mask = copy("mask") if with_mask else None
            iou = copy("iou") if input_corners is not None else None
            if self.precision == "fp32":  # the graph's own float32 soft-argmax
                return copy("corners"), mask, iou
            scores = copy("scores")
        # bf16 logits: soft-argmax in float32
        return C.corners_from_scores(scores, self.stride, self.corner_offset), mask, iou
