"""The PyTorch engine: fp32 by default, with inference-only rewrites that keep it exact.

By default the network that runs is a copy with every batch norm folded into its convolution
(float64 maths) in channels-last layout, called under ``torch.inference_mode``: the same function
as the loaded network within float32 rounding (corners within 1e-4 px on the parity cases), and
several times faster on CPU for small networks. ``fold_bn=False, channels_last=False`` runs the
loaded network itself, bit for bit the reference. ``compile=True`` adds ``torch.compile`` (opt-in:
it needs a compiler toolchain and compiles on the first call of each batch size).
"""

from __future__ import annotations

import contextlib
import copy
from typing import Any, Optional, Sequence, Tuple

import numpy as np
import torch

from ..config import ModelConfig
from ..geometry.normalize import normalize_crops, normalize_crops_nhwc, normalize_crops_torch
from ..nn.arnet import RefinerNet
from .base import OPTIONS, check_options
from .fold import fold_batch_norms

PRECISIONS = ("fp32", "bf16", "fp16")


def default_device(device: Optional[str] = None) -> torch.device:
    """``device`` if given, else CUDA when present, else CPU."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def _flag(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be True or False; got {value!r}")
    return value


class TorchEngine:
    """Frozen, eval-mode network on one device; inputs are uint8 crops, outputs numpy.

    Options: ``fold_bn`` (default True), ``channels_last`` (default True), ``compile`` (default
    False). ``net`` stays the network exactly as loaded (what ``save_pretrained`` writes);
    ``run_net`` is the one that runs.
    """

    name = "torch"

    def __init__(
        self,
        net: RefinerNet,
        config: ModelConfig,
        *,
        device: Optional[str] = None,
        precision: str = "fp32",
        **options: Any,
    ) -> None:
        check_options("torch", options, OPTIONS["torch"])
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}; got {precision!r}")
        self.device = default_device(device)
        if precision == "fp16" and self.device.type == "cpu":
            raise ValueError("precision='fp16' needs a CUDA device; use 'bf16' on CPU")
        self.fold_bn = _flag("fold_bn", options.get("fold_bn", True))
        self.channels_last = _flag("channels_last", options.get("channels_last", True))
        self.compile = _flag("compile", options.get("compile", False))
        self.net = net.to(self.device).eval()
        for p in self.net.parameters():
            p.requires_grad_(False)
        self.config = config
        self.precision = precision
        self.run_net = self._build(self.net)
        self._search = self.run_net.search
        if self.compile:
            self._search = torch.compile(self.run_net.search, dynamic=False)

    def _build(self, net: RefinerNet) -> RefinerNet:
        if not (self.fold_bn or self.channels_last):
            return net
        run = copy.deepcopy(net)
        if self.fold_bn:
            fold_batch_norms(run)
        if self.channels_last:
            run = run.to(memory_format=torch.channels_last)
        return run.eval()

    @property
    def dtype(self) -> torch.dtype:
        return next(self.net.parameters()).dtype

    def _autocast(self):
        if self.precision == "fp32":
            return contextlib.nullcontext()
        dtype = torch.bfloat16 if self.precision == "bf16" else torch.float16
        return torch.autocast(self.device.type, dtype=dtype)

    def _inputs(self, crops: np.ndarray) -> torch.Tensor:
        pre = self.config.preprocessing
        if self.device.type == "cpu":
            if self.channels_last:  # NHWC values, NCHW shape: a channels-last view, no copy
                return torch.from_numpy(normalize_crops_nhwc(crops, pre.mean, pre.std)).permute(0, 3, 1, 2)
            return torch.from_numpy(normalize_crops(crops, pre.mean, pre.std))
        u8 = torch.from_numpy(np.ascontiguousarray(crops)).to(self.device, non_blocking=True)
        x = normalize_crops_torch(u8, pre.mean, pre.std).to(self.dtype)
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x

    def template(self, crops: np.ndarray) -> torch.Tensor:
        with torch.inference_mode(), self._autocast():
            return self.run_net.template_kernel(self._inputs(crops)).to(self.dtype).contiguous()

    def concat(self, kernels: Sequence[torch.Tensor]) -> torch.Tensor:
        return kernels[0] if len(kernels) == 1 else torch.cat(list(kernels), dim=0)

    def search(
        self, crops: np.ndarray, kernels: torch.Tensor, with_mask: bool = False
    ) -> Tuple[np.ndarray, Optional[np.ndarray]]:
        with torch.inference_mode(), self._autocast():
            corners, mask = self._search(self._inputs(crops), kernels, with_mask)
        corners_np = corners.float().cpu().numpy()
        mask_np = mask.float().cpu().numpy() if mask is not None else None
        return corners_np, mask_np

    @property
    def scores(self) -> bool:
        """True when the network predicts IoUs (an IoU head): :meth:`search_scored` works."""
        return getattr(self.net, "iou_head", None) is not None

    def search_scored(
        self, crops: np.ndarray, kernels: torch.Tensor, input_corners: np.ndarray, with_mask: bool = False
    ) -> Tuple[np.ndarray, Optional[np.ndarray], np.ndarray]:
        """:meth:`search` plus the predicted IoU ``[B, 2]`` (refined box, input box) in [0, 1]."""
        inp = torch.as_tensor(np.asarray(input_corners, dtype=np.float32), device=self.device)
        with torch.inference_mode(), self._autocast():
            corners, mask, iou = self.run_net.search_scored(self._inputs(crops), kernels, inp, with_mask)
        mask_np = mask.float().cpu().numpy() if mask is not None else None
        return corners.float().cpu().numpy(), mask_np, iou.float().cpu().numpy()
