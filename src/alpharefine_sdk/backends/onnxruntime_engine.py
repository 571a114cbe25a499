"""ONNX Runtime engine: the exported template and search graphs on the CPU execution provider."""
from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from .._optional import require
from ..config import ModelConfig
from ..nn.arnet import RefinerNet
from . import _common as C
from .onnx_export import export_graphs, read_manifest

OPTIONS = ("onnx_dir", "threads", "spin")


class OnnxRuntimeEngine:
    """Exact fp32 inference with ONNX Runtime; same interface as :class:`TorchEngine`.

    Options: ``onnx_dir`` (a folder from ``export_onnx``; default: export ``net`` now),
    ``threads`` (intra-op threads, default the physical cores), ``spin`` (let idle worker threads
    spin, default True: lowest latency, but set False when other processes share the CPU).
    """

    name = "onnxruntime"

    def __init__(self, net: RefinerNet, config: ModelConfig, *, precision: str = "fp32", **options: Any) -> None:
        self._ort = require("onnxruntime")
        unknown = sorted(set(options) - set(OPTIONS))
        if unknown:
            raise ValueError(f"unknown option(s) {unknown} for backend='onnxruntime'; valid: {OPTIONS}")
        if precision != "fp32":
            raise ValueError(
                f"backend='onnxruntime' runs fp32 only; got precision={precision!r}. "
                "For bf16 use backend='openvino' or backend='torch'"
            )
        self.net, self.config, self.precision = net, config, precision
        self.threads = C.check_threads(options.get("threads"))
        self.spin = bool(options.get("spin", True))
        self.onnx_dir = options.get("onnx_dir")
        self._sessions: Dict[str, Any] = {}
        if self.onnx_dir is not None:
            self.manifest = read_manifest(self.onnx_dir, config, net)
            for v in self.manifest["graphs"]:
                self._sessions[v] = self._session(Path(self.onnx_dir) / self.manifest["graphs"][v])
        else:
            self.manifest = self._export_and_load(("template", "box"))
        self.stride = int(self.manifest["stride"])
        self.kernel_shape = tuple(self.manifest["kernel_shape"])

    # ------------------------------------------------------------------ construction
    def _session(self, path: Path) -> Any:
        ort = self._ort
        so = ort.SessionOptions()
        so.intra_op_num_threads = self.threads
        so.inter_op_num_threads = 1
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        so.add_session_config_entry("session.intra_op.allow_spinning", "1" if self.spin else "0")
        return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])

    def _export_and_load(self, variants: Sequence[str]) -> Dict[str, Any]:
        with tempfile.TemporaryDirectory(prefix="alpharefine-onnx-") as tmp:
            out = export_graphs(self.net, self.config, Path(tmp) / "onnx", with_mask="mask" in variants)
            manifest = read_manifest(out, self.config)
            for v in variants:
                self._sessions[v] = self._session(out / manifest["graphs"][v])
        return manifest

    @property
    def has_mask(self) -> bool:
        """Whether the box + mask graph is available (built on first use when exporting from ``net``)."""
        return "mask" in self._sessions or self.onnx_dir is None

    def _search_session(self, with_mask: bool) -> Any:
        v = "mask" if with_mask else "box"
        if v not in self._sessions:
            if self.onnx_dir is not None:
                raise ValueError(
                    f"onnx_dir={str(self.onnx_dir)!r} holds no mask graph; re-export with "
                    "`alpharefine-sdk export ... --mask` (or export_onnx(..., with_mask=True))"
                )
            self._export_and_load(("mask",))
        return self._sessions[v]

    # ------------------------------------------------------------------ engine interface
    def template(self, crops: np.ndarray) -> np.ndarray:
        x = C.network_input(crops, self.config)
        return self._sessions["template"].run(["kernel"], {"images": x})[0]

    def concat(self, kernels: Sequence[np.ndarray]) -> np.ndarray:
        return C.concat_kernels(kernels)

    def search_outputs(self, crops: np.ndarray, kernels: np.ndarray, with_mask: bool = False) -> List[np.ndarray]:
        """The raw graph outputs ``scores, corners[, mask]`` for uint8 crops."""
        x = C.network_input(crops, self.config)
        k = C.check_kernels(kernels, x.shape[0], self.kernel_shape)
        return self._search_session(with_mask).run(C.graph_names(with_mask), {"images": x, "kernel": k})

    def search(self, crops: np.ndarray, kernels: np.ndarray, with_mask: bool = False) -> Tuple[np.ndarray, Optional[np.ndarray]]:
        outs = self.search_outputs(crops, kernels, with_mask)
        corners = C.corners_from_scores(outs[0], self.stride)
        return corners, (outs[2] if with_mask else None)
