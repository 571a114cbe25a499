"""OpenVINO engine: the exported graphs compiled for the CPU plugin, fp32 or bf16."""
from __future__ import annotations

import tempfile
import threading
import warnings
from pathlib import Path
from typing import Any, Dict, Optional, Sequence, Tuple

import numpy as np

from .._optional import require
from ..config import ModelConfig
from ..nn.arnet import RefinerNet
from . import _common as C
from .onnx_export import export_graphs, read_manifest

PRECISIONS = {"fp32": "f32", "bf16": "bf16"}
OPTIONS = ("onnx_dir", "threads", "device_name")


class OpenVinoEngine:
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
        unknown = sorted(set(options) - set(OPTIONS))
        if unknown:
            raise ValueError(f"unknown option(s) {unknown} for backend='openvino'; valid: {OPTIONS}")
        if precision not in PRECISIONS:
            raise ValueError(f"backend='openvino' supports precision 'fp32' or 'bf16'; got {precision!r}")
        self.net, self.config, self.precision = net, config, precision
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
        self.onnx_dir = options.get("onnx_dir")
        self._compiled: Dict[str, Any] = {}
        self._requests: Dict[str, Any] = {}
        self._lock = threading.Lock()  # an infer request serves one call at a time
        if self.onnx_dir is not None:
            self.manifest = read_manifest(self.onnx_dir, config, net)
            for v, name in self.manifest["graphs"].items():
                self._compile(v, Path(self.onnx_dir) / name)
        else:
            self.manifest = self._export_and_compile(("template", "box"))
        self.stride = int(self.manifest["stride"])
        self.kernel_shape = tuple(self.manifest["kernel_shape"])

    # ------------------------------------------------------------------ construction
    def _capabilities(self) -> Sequence[str]:
        try:
            return list(self.core.get_property(self.device_name, "OPTIMIZATION_CAPABILITIES"))
        except Exception as e:  # an unknown device name surfaces here
            raise ValueError(f"OpenVINO device {self.device_name!r} is not available ({e}); use device_name='CPU'") from None

    def _compile(self, variant: str, path: Path) -> None:
        props = {
            "INFERENCE_PRECISION_HINT": PRECISIONS[self.precision],
            "PERFORMANCE_HINT": "LATENCY",
            "NUM_STREAMS": 1,
            "INFERENCE_NUM_THREADS": self.threads,
        }
        model = self.core.read_model(str(path))
        compiled = self.core.compile_model(model, self.device_name, props)
        self._compiled[variant] = compiled
        self._requests[variant] = compiled.create_infer_request()

    def _export_and_compile(self, variants: Sequence[str]) -> Dict[str, Any]:
        with tempfile.TemporaryDirectory(prefix="alpharefine-openvino-") as tmp:
            out = export_graphs(self.net, self.config, Path(tmp) / "onnx", with_mask="mask" in variants)
            manifest = read_manifest(out, self.config)
            for v in variants:
                self._compile(v, out / manifest["graphs"][v])
        return manifest

    @property
    def has_mask(self) -> bool:
        return "mask" in self._compiled or self.onnx_dir is None

    def _request(self, with_mask: bool) -> Any:
        v = "mask" if with_mask else "box"
        if v not in self._requests:
            if self.onnx_dir is not None:
                raise ValueError(
                    f"onnx_dir={str(self.onnx_dir)!r} holds no mask graph; re-export with "
                    "`alpharefine-sdk export ... --mask` (or export_onnx(..., with_mask=True))"
                )
            self._export_and_compile(("mask",))
        return self._requests[v]

    # ------------------------------------------------------------------ engine interface
    def template(self, crops: np.ndarray) -> np.ndarray:
        x = C.network_input(crops, self.config)
        req = self._requests["template"]
        with self._lock:
            req.infer({"images": x})
            return np.array(req.get_tensor("kernel").data, dtype=np.float32, copy=True)

    def concat(self, kernels: Sequence[np.ndarray]) -> np.ndarray:
        return C.concat_kernels(kernels)

    def search(self, crops: np.ndarray, kernels: np.ndarray, with_mask: bool = False) -> Tuple[np.ndarray, Optional[np.ndarray]]:
        x = C.network_input(crops, self.config)
        k = C.check_kernels(kernels, x.shape[0], self.kernel_shape)
        req = self._request(with_mask)
        with self._lock:
            req.infer({"images": x, "kernel": k})
            scores = np.array(req.get_tensor("scores").data, dtype=np.float32, copy=True)
            mask = np.array(req.get_tensor("mask").data, dtype=np.float32, copy=True) if with_mask else None
        return C.corners_from_scores(scores, self.stride), mask
