"""ONNX Runtime engine: the exported template and search graphs on the CPU execution provider."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from .._optional import require
from ..config import ModelConfig
from ..nn.arnet import RefinerNet
from . import _common as C
from .base import OPTIONS, check_options


class OnnxRuntimeEngine(C.ExportedGraphEngine):
    """Exact fp32 inference with ONNX Runtime; same interface as :class:`TorchEngine`.

    Options: ``onnx_dir`` (a folder from ``export_onnx``; default: the export of ``net`` kept in
    the Hugging Face cache, made on first use), ``threads`` (default the physical cores), ``spin``
    (let worker threads spin while a call runs, default True: lowest latency; set False when other
    processes share the CPU). Between calls the workers sleep, so they do not slow the tracker
    that runs between two refines.

    One crop runs on one session with ``threads`` intra-op threads. A batch (``refine_many``) is
    split across ``threads`` single-threaded sessions run side by side: whole crops per core, no
    per-layer synchronisation, which is where batching pays off for small networks.
    """

    name = "onnxruntime"

    def __init__(self, net: RefinerNet, config: ModelConfig, *, precision: str = "fp32", **options: Any) -> None:
        self._ort = require("onnxruntime")
        check_options("onnxruntime", options, OPTIONS["onnxruntime"])
        if precision != "fp32":
            raise ValueError(
                f"backend='onnxruntime' runs fp32 only; got precision={precision!r}. "
                "For bf16 use backend='openvino' or backend='torch'"
            )
        self.net, self.config, self.precision, self.options = net, config, precision, dict(options)
        self.threads = C.check_threads(options.get("threads"))
        self.spin = bool(options.get("spin", True))
        self._workers: Dict[str, List[Any]] = {}  # per graph: single-threaded sessions for batches
        self._pool: Any = None
        self._lock = threading.Lock()
        self._init_graphs(options.get("onnx_dir"))

    # ------------------------------------------------------------------ construction
    def _load_graph(self, variant: str, path: Path, threads: Optional[int] = None) -> Any:
        ort = self._ort
        so = ort.SessionOptions()
        so.intra_op_num_threads = threads or self.threads
        so.inter_op_num_threads = 1
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        so.add_session_config_entry("session.intra_op.allow_spinning", "1" if self.spin else "0")
        # spin within a run only: between runs the tracker's own threads get the cores
        so.add_session_config_entry("session.force_spinning_stop", "1")
        return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])

    # ------------------------------------------------------------------ engine interface
    def template(self, crops: np.ndarray) -> np.ndarray:
        x = C.network_input(crops, self.config)
        return self._graphs["template"].run(["kernel"], {"images": x})[0]

    def concat(self, kernels: Sequence[np.ndarray]) -> np.ndarray:
        return C.concat_kernels(kernels)

    def search_outputs(
        self,
        crops: np.ndarray,
        kernels: np.ndarray,
        with_mask: bool = False,
        names: Optional[List[str]] = None,
        input_corners: Optional[np.ndarray] = None,
    ) -> List[np.ndarray]:
        """The raw graph outputs ``scores, corners[, mask][, iou]`` (or those in ``names``) for uint8 crops."""
        x = C.network_input(crops, self.config)
        k = C.check_kernels(kernels, x.shape[0], self.kernel_shape)
        names = names or C.graph_names(with_mask, self.scores)
        graph = self._search_graph(with_mask)
        feeds = self.feeds(x, k, input_corners)
        if x.shape[0] < 2 or self.threads < 2:
            return graph.run(names, feeds)
        sessions = self._batch_sessions("mask" if with_mask else "box")
        bounds = np.linspace(0, x.shape[0], min(len(sessions), x.shape[0]) + 1).astype(int)
        jobs = [
            self._pool.submit(s.run, names, {n: v[a:b] for n, v in feeds.items()})
            for s, a, b in zip(sessions, bounds[:-1], bounds[1:])
        ]
        parts = [j.result() for j in jobs]
        return [np.concatenate([p[i] for p in parts]) for i in range(len(names))]

    def _batch_sessions(self, variant: str) -> List[Any]:
        """``threads`` single-threaded sessions of one graph (built on the first batch)."""
        with self._lock:
            if variant not in self._workers:
                from concurrent.futures import ThreadPoolExecutor

                path = self.graph_dir / self.manifest["graphs"][variant]
                self._workers[variant] = [self._load_graph(variant, path, threads=1) for _ in range(self.threads)]
                if self._pool is None:
                    self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="alpharefine-ort")
            return self._workers[variant]

    def search(
        self, crops: np.ndarray, kernels: np.ndarray, with_mask: bool = False
    ) -> Tuple[np.ndarray, Optional[np.ndarray]]:
        # fp32 graphs: the graph's own float32 soft-argmax gives the corners
        outs = self.search_outputs(crops, kernels, with_mask, ["corners", "mask"] if with_mask else ["corners"])
        return outs[0], (outs[1] if with_mask else None)

    def search_scored(
        self, crops: np.ndarray, kernels: np.ndarray, input_corners: np.ndarray, with_mask: bool = False
    ) -> Tuple[np.ndarray, Optional[np.ndarray], np.ndarray]:
        """:meth:`search` plus the predicted IoU ``[B, 2]`` (refined box, input box)."""
        names = ["corners", *(["mask"] if with_mask else []), "iou"]
        outs = self.search_outputs(crops, kernels, with_mask, names, input_corners)
        return outs[0], (outs[1] if with_mask else None), outs[-1]
