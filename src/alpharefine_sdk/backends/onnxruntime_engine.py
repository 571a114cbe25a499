"""ONNX Runtime engine: the exported template and search graphs on the CPU execution provider."""

from __future__ import annotations

from pathlib import Path
from typing import Any, List, Optional, Sequence, Tuple

import numpy as np

from .._optional import require
from ..config import ModelConfig
from ..nn.arnet import RefinerNet
from . import _common as C
from .base import check_options

OPTIONS = ("onnx_dir", "threads", "spin")


class OnnxRuntimeEngine(C.ExportedGraphEngine):
    """Exact fp32 inference with ONNX Runtime; same interface as :class:`TorchEngine`.

    Options: ``onnx_dir`` (a folder from ``export_onnx``; default: export ``net`` now),
    ``threads`` (intra-op threads, default the physical cores), ``spin`` (let idle worker threads
    spin, default True: lowest latency, but set False when other processes share the CPU).
    """

    name = "onnxruntime"

    def __init__(self, net: RefinerNet, config: ModelConfig, *, precision: str = "fp32", **options: Any) -> None:
        self._ort = require("onnxruntime")
        check_options("onnxruntime", options, OPTIONS)
        if precision != "fp32":
            raise ValueError(
                f"backend='onnxruntime' runs fp32 only; got precision={precision!r}. "
                "For bf16 use backend='openvino' or backend='torch'"
            )
        self.net, self.config, self.precision = net, config, precision
        self.threads = C.check_threads(options.get("threads"))
        self.spin = bool(options.get("spin", True))
        self._init_graphs(options.get("onnx_dir"))

    # ------------------------------------------------------------------ construction
    def _load_graph(self, variant: str, path: Path) -> Any:
        ort = self._ort
        so = ort.SessionOptions()
        so.intra_op_num_threads = self.threads
        so.inter_op_num_threads = 1
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        so.add_session_config_entry("session.intra_op.allow_spinning", "1" if self.spin else "0")
        return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])

    # ------------------------------------------------------------------ engine interface
    def template(self, crops: np.ndarray) -> np.ndarray:
        x = C.network_input(crops, self.config)
        return self._graphs["template"].run(["kernel"], {"images": x})[0]

    def concat(self, kernels: Sequence[np.ndarray]) -> np.ndarray:
        return C.concat_kernels(kernels)

    def search_outputs(
        self, crops: np.ndarray, kernels: np.ndarray, with_mask: bool = False, names: Optional[List[str]] = None
    ) -> List[np.ndarray]:
        """The raw graph outputs ``scores, corners[, mask]`` (or those in ``names``) for uint8 crops."""
        x = C.network_input(crops, self.config)
        k = C.check_kernels(kernels, x.shape[0], self.kernel_shape)
        return self._search_graph(with_mask).run(names or C.graph_names(with_mask), {"images": x, "kernel": k})

    def search(
        self, crops: np.ndarray, kernels: np.ndarray, with_mask: bool = False
    ) -> Tuple[np.ndarray, Optional[np.ndarray]]:
        # fp32 graphs: the graph's own float32 soft-argmax gives the corners
        outs = self.search_outputs(crops, kernels, with_mask, ["corners", "mask"] if with_mask else ["corners"])
        return outs[0], (outs[1] if with_mask else None)
