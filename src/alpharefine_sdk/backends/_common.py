"""Helpers shared by the exported-graph engines (ONNX Runtime, OpenVINO).

The engines feed the graphs exactly what the torch engine feeds the network (the LUT-normalised
float32 crops). fp32 graphs return their own float32 soft-argmax corners; a bf16 graph's corner
logits go through the network's float32 soft-argmax here, so crop maths, normalisation and
coordinate maths exist once.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Any, List, Optional, Sequence, Tuple

import numpy as np

from ..config import ModelConfig
from ..geometry.normalize import normalize_crops


@lru_cache(maxsize=1)
def physical_cores() -> int:
    """Physical cores this process may run on (SMT siblings counted once); at least 1."""
    try:
        cpus = sorted(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return max(1, (os.cpu_count() or 2) // 2)
    cores = set()
    for cpu in cpus:
        f = Path(f"/sys/devices/system/cpu/cpu{cpu}/topology/thread_siblings_list")
        try:
            cores.add(f.read_text().strip())
        except OSError:
            cores.add(str(cpu))
    return max(1, len(cores))


def check_threads(threads: Optional[int]) -> int:
    """``threads`` validated; ``None``: the physical cores, capped by ``torch.get_num_threads()``
    (one knob for every engine: a worker process that set torch's threads gets as many here)."""
    if threads is None:
        import torch

        return max(1, min(physical_cores(), torch.get_num_threads()))
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ValueError(f"threads must be a positive int or None (= physical cores); got {threads!r}")
    return threads


def check_crops(crops: Any, config: ModelConfig, name: str = "crops") -> np.ndarray:
    """``[B, S, S, 3]`` uint8 crops, or a ValueError naming the expected shape."""
    s = config.preprocessing.input_size
    if not isinstance(crops, np.ndarray) or crops.dtype != np.uint8 or crops.ndim != 4 or crops.shape[1:] != (s, s, 3):
        got = f"{type(crops).__name__} {getattr(crops, 'dtype', '')} {getattr(crops, 'shape', '')}"
        raise ValueError(f"{name} must be a uint8 array [B, {s}, {s}, 3] (RGB crops); got {got}")
    return crops


def network_input(crops: Any, config: ModelConfig) -> np.ndarray:
    """uint8 RGB crops ``[B, S, S, 3]`` -> exact float32 network input ``[B, 3, S, S]``."""
    pre = config.preprocessing
    return normalize_crops(check_crops(crops, config), pre.mean, pre.std)


def corners_from_scores(scores: np.ndarray, stride: int, offset: float = 0.0) -> np.ndarray:
    """Corner logits ``[B, 2, H, W]`` -> corners ``[B, 4]`` float32 via the network's fp32 soft-argmax
    (cells ``stride`` px apart, shifted ``offset`` px: the exported manifest's ``stride`` and
    ``corner_offset``)."""
    import torch

    from ..nn.heads import soft_argmax

    s = torch.from_numpy(np.ascontiguousarray(scores, dtype=np.float32))
    with torch.inference_mode():
        c = soft_argmax(s, stride, offset)
    return c.numpy()


def concat_kernels(kernels: Sequence[np.ndarray]) -> np.ndarray:
    """Stack per-target template kernels ``[1, C, k, k]`` along the batch axis."""
    kernels = list(kernels)
    if not kernels:
        raise ValueError("concat() needs at least one kernel")
    return kernels[0] if len(kernels) == 1 else np.ascontiguousarray(np.concatenate(kernels, axis=0))


def check_kernels(kernels: Any, batch: int, shape: Tuple[int, ...]) -> np.ndarray:
    """Kernels for ``batch`` crops, as float32 ``[batch, *shape]``."""
    k = np.asarray(kernels)
    if k.dtype != np.float32 or k.shape != (batch, *shape):
        raise ValueError(
            f"kernels must be float32 {(batch, *shape)} (one template kernel per search crop, from "
            f"this engine's template()); got {k.dtype} {k.shape}"
        )
    return np.ascontiguousarray(k)


def graph_names(with_mask: bool, with_iou: bool = False) -> List[str]:
    """Output names of the search graph (``iou`` for networks with an IoU head)."""
    return ["scores", "corners", *(["mask"] if with_mask else []), *(["iou"] if with_iou else [])]


def centre_corners(batch: int, size: int) -> np.ndarray:
    """A placeholder input box ``[B, 4]`` (the crop's central half) for graphs that take one when
    no IoU is asked for: the boxes and masks do not depend on it."""
    return np.tile(np.array([[size / 4, size / 4, 3 * size / 4, 3 * size / 4]], dtype=np.float32), (batch, 1))


class ExportedGraphEngine:
    """Graph bookkeeping shared by the ONNX Runtime and OpenVINO engines: the graphs of an
    ``onnx_dir`` written by ``export_onnx``, or (without one) the network's own export, made once
    per weights and kept in the Hugging Face cache (:mod:`.onnx_cache`). The box + mask graph is
    loaded on the first ``mask=True`` call. Subclasses implement :meth:`_load_graph`."""

    net: Any
    config: ModelConfig
    precision: str
    options: dict  # as given to the engine
    onnx_dir: Any
    manifest: dict

    def __getstate__(self) -> dict:
        """Picklable (eval worker processes, Ray): the runtime's sessions are rebuilt on load, from
        the same graph folder."""
        options = {**self.options, "onnx_dir": str(self.graph_dir)}
        return {"net": self.net, "config": self.config, "precision": self.precision, "options": options}

    def __setstate__(self, state: dict) -> None:
        type(self).__init__(self, state["net"], state["config"], precision=state["precision"], **state["options"])

    def _init_graphs(self, onnx_dir: Any) -> None:
        from .onnx_export import read_manifest

        self.onnx_dir = onnx_dir
        if onnx_dir is None:
            from .onnx_cache import cached_export

            self.graph_dir = cached_export(self.net, self.config)
            self.manifest = read_manifest(self.graph_dir, self.config)  # weights checked by the cache
        else:
            self.graph_dir = Path(onnx_dir)
            self.manifest = read_manifest(self.graph_dir, self.config, self.net)
        self._graphs: dict = {}
        for v in ("template", "box"):
            self._graphs[v] = self._load_graph(v, self.graph_dir / self.manifest["graphs"][v])
        self.stride = int(self.manifest["stride"])
        self.corner_offset = float(self.manifest.get("corner_offset", 0.0))  # absent before mnv2_cmi4
        self.kernel_shape = tuple(self.manifest["kernel_shape"])

    def _load_graph(self, variant: str, path: Path) -> Any:
        """Build the runtime's executable object for one ONNX file."""
        raise NotImplementedError

    @property
    def scores(self) -> bool:
        """Whether the graphs predict IoUs (a network with an IoU head): ``search_scored`` works."""
        return bool(self.manifest.get("iou", False))

    def feeds(self, x: np.ndarray, k: np.ndarray, input_corners: Optional[np.ndarray] = None) -> dict:
        """The search graph's inputs (the input box only for graphs that take one)."""
        f = {"images": x, "kernel": k}
        if self.scores:
            f["input_corners"] = (
                centre_corners(x.shape[0], x.shape[-1])
                if input_corners is None
                else np.ascontiguousarray(input_corners, dtype=np.float32).reshape(x.shape[0], 4)
            )
        return f

    @property
    def has_mask(self) -> bool:
        """Whether the box + mask graph is available (loaded on first use)."""
        return "mask" in self.manifest["graphs"]

    def _search_graph(self, with_mask: bool) -> Any:
        v = "mask" if with_mask else "box"
        if v not in self._graphs:
            if not self.has_mask:
                raise ValueError(
                    f"onnx_dir={str(self.onnx_dir)!r} holds no mask graph; re-export with "
                    "`alpharefine-sdk export ... --mask` (or export_onnx(..., with_mask=True))"
                )
            self._graphs[v] = self._load_graph(v, self.graph_dir / self.manifest["graphs"][v])
        return self._graphs[v]
